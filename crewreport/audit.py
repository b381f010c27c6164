"""Append-only audit events, each chained to the one before by SHA-256.

A row's hash covers the previous row's hash and the row's own fields in a
canonical JSON form, so editing, deleting or reordering any row breaks every
hash after it, and `verify-audit` says where. Events never carry report
content or rejected payloads: only who, what, which, when.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass
from typing import Any

import click
from flask import has_request_context, request
from flask.cli import with_appcontext

from .cli_text import TEXT
from .db import get_db, roll_back, transaction
from .times import now
from .unavailable import SIDE_WRITE_WAIT, skipped_when_unavailable

GENESIS = "0" * 64


def row_hash(prev_hash: str, at: str, actor: str | None, action: str,
             subject: str | None, detail: str) -> str:
    canonical = json.dumps(
        [prev_hash, at, actor, action, subject, detail],
        ensure_ascii=False, separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def record(action: str, *, actor: str | None = None, subject: str | None = None,
           db: sqlite3.Connection | None = None, **detail: Any) -> str:
    """Append one event; join the caller's transaction if one is open.

    Outside a transaction it takes the write lock itself, so two writers can
    never chain onto the same previous row.
    """
    db = db if db is not None else get_db()
    if actor is None and has_request_context():
        from flask_login import current_user

        if current_user and current_user.is_authenticated:
            actor = f"user:{current_user.username}"
    if actor is None:
        actor = "system" if not has_request_context() else "anonymous"
    own = not db.in_transaction
    if own:
        db.execute("BEGIN IMMEDIATE")
    try:
        flush_tallies(db)
        digest = append(db, action, actor, subject, detail)
        if own:
            db.execute("COMMIT")
    except BaseException:
        if own:
            roll_back(db)
        raise
    return digest


def append(db: sqlite3.Connection, action: str, actor: str, subject: str | None,
           detail: dict[str, Any]) -> str:
    """Chain one row onto the last, in the caller's transaction (which holds
    the write lock and has run `flush_tallies` in it): for a writer of many
    rows at once, such as a batch of reports, where `record` would look for
    closed tallies again before each row. (A transaction that runs across a
    minute's end may then chain rows of the new minute before the old
    minute's summary row, which the next audit write adds; the counts and
    the chain are unchanged.)"""
    body = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    last = db.execute("SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1").fetchone()
    prev = last["hash"] if last else GENESIS
    at = now()
    digest = row_hash(prev, at, actor, action, subject, body)
    db.execute(
        "INSERT INTO audit_event (at, actor, action, subject, detail, prev_hash, hash)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (at, actor, action, subject, body, prev, digest),
    )
    return digest


def record_repeated(db: sqlite3.Connection, action: str, actor: str, code: str, *,
                    count: int = 1, subject: str | None = None, **detail: Any) -> None:
    """Record `count` identical events (same actor, action and code) of this minute.

    The first of a minute is chained at once, as any event; the repeats only
    add to a count in `audit_tally`, and once the minute is over one chained
    summary row carries the minute's total (see `flush_tallies`). A device
    that sends the same refused batch all day adds at most two rows a minute
    per code, and every row in the chain stays verifiable. Call inside the
    caller's transaction.
    """
    flush_tallies(db)
    minute = now()[:16]
    updated = db.execute(
        "UPDATE audit_tally SET count = count + ? WHERE actor = ? AND action = ? AND code = ? AND minute = ?",
        (count, actor, action, code, minute)).rowcount
    if updated:
        return
    digest = append(db, action, actor, subject, {"code": code, **detail})
    db.execute("INSERT INTO audit_tally (actor, action, code, minute, count, first_hash)"
               " VALUES (?, ?, ?, ?, ?, ?)", (actor, action, code, minute, count, digest))


def record_throttled(action: str, actor: str, address: str) -> None:
    """An attempt refused because its account or address is throttled.

    Each refused attempt is still a request anyone can repeat, so these are
    counted per actor and minute (`record_repeated`), not chained one row
    each: the first of a minute keeps its address, the summary the count.
    """
    db = get_db()
    with transaction(db):
        record_repeated(db, action, actor, "throttled", address=address)


def flush_tallies(db: sqlite3.Connection) -> None:
    """Chain a summary row for every minute that is over and had repeats.

    Runs with every audit write, inside its transaction: a count is final
    (and tamper-evident) from the first event after its minute; until then it
    is in `audit_tally`.
    """
    minute = now()[:16]
    closed = db.execute("SELECT * FROM audit_tally WHERE minute < ? ORDER BY minute, actor, action, code",
                        (minute,)).fetchall()
    for tally in closed:
        if tally["count"] > 1:
            append(db, tally["action"], tally["actor"], None,
                   {"code": tally["code"], "count": tally["count"], "minute": tally["minute"],
                    "first": tally["first_hash"]})
        db.execute("DELETE FROM audit_tally WHERE actor = ? AND action = ? AND code = ? AND minute = ?",
                   (tally["actor"], tally["action"], tally["code"], tally["minute"]))


def client_address() -> str:
    return (request.remote_addr or "-") if has_request_context() else "-"


@dataclass
class ChainReport:
    ok: bool
    count: int
    problem: str | None = None
    at_id: int | None = None
    head: str = GENESIS  # hash of the last good event: record it elsewhere as an anchor
    head_id: int = 0
    from_id: int = 0  # the walk started after this event (0: from the start)
    full_verified_at: str | None = None  # when the whole chain last passed a full check


def verify_chain(db: sqlite3.Connection) -> ChainReport:
    """Walk the whole chain from the start; the first broken link is the finding."""
    return _walk(db, 0, GENESIS, 0)


def _walk(db: sqlite3.Connection, after_id: int, prev: str, count: int) -> ChainReport:
    expected_id = after_id + 1 if after_id else None
    head_id = after_id
    for row in db.execute("SELECT * FROM audit_event WHERE id > ? ORDER BY id", (after_id,)):
        if expected_id is not None and row["id"] != expected_id:
            return ChainReport(False, count, f"event {expected_id} is missing", expected_id, from_id=after_id)
        if row["prev_hash"] != prev:
            return ChainReport(False, count, f"event {row['id']} does not follow the one before", row["id"],
                               from_id=after_id)
        digest = row_hash(row["prev_hash"], row["at"], row["actor"], row["action"],
                          row["subject"], row["detail"])
        if digest != row["hash"]:
            return ChainReport(False, count, f"event {row['id']} was altered", row["id"], from_id=after_id)
        prev, head_id = row["hash"], row["id"]
        count += 1
        expected_id = row["id"] + 1
    return ChainReport(True, count, head=prev, head_id=head_id, from_id=after_id)


def verify_since_checkpoint(db: sqlite3.Connection) -> ChainReport:
    """Verify only the events after the last verified one, then move the checkpoint.

    The checkpoint (id and hash of the last event verified) must still match
    its event, so a rewrite of the checkpointed event or of the events after
    it is found here. An edit further back is found only by a full check
    (`verify-audit`), which is why the report says when that last passed.
    Without a checkpoint this is a full check.
    """
    point = db.execute("SELECT * FROM audit_checkpoint WHERE id = 1").fetchone()
    if point is None:
        result = verify_chain(db)
        if result.ok:
            save_checkpoint(db, result, full=True)
            result.full_verified_at = now()
        return result
    problem = checkpoint_problem(db, point)
    if problem:
        return ChainReport(False, point["count"], problem, point["event_id"], from_id=point["event_id"],
                           full_verified_at=point["full_verified_at"])
    result = _walk(db, point["event_id"], point["hash"], point["count"])
    result.full_verified_at = point["full_verified_at"]
    if result.ok and result.head_id > point["event_id"]:
        save_checkpoint(db, result, full=False)
    return result


def checkpoint_problem(db: sqlite3.Connection, point: sqlite3.Row | None = None) -> str | None:
    """What is wrong with the last verified event, or None: it must still be
    there, as it was. A chain alone cannot show that its newest events were
    cut; this shows it for events cut after they were verified (the
    checkpoint is in the same file, so an anchor kept elsewhere is stronger)."""
    if point is None:
        point = db.execute("SELECT * FROM audit_checkpoint WHERE id = 1").fetchone()
        if point is None:
            return None
    event = db.execute("SELECT * FROM audit_event WHERE id = ?", (point["event_id"],)).fetchone()
    if event is None or event["hash"] != point["hash"] or point["hash"] != row_hash(
            event["prev_hash"], event["at"], event["actor"], event["action"], event["subject"], event["detail"]):
        return f"event {point['event_id']}, verified before, was altered or removed"
    return None


def save_checkpoint(db: sqlite3.Connection, result: ChainReport, *, full: bool) -> None:
    """Remember the last verified event; never move the checkpoint back.
    Not when the store cannot take writes: the chain was checked all the
    same, and the next check only walks further."""
    if not result.head_id:
        return
    stamp = now()
    with skipped_when_unavailable("the audit checkpoint"), transaction(db, wait=SIDE_WRITE_WAIT):
        db.execute(
            "INSERT INTO audit_checkpoint (id, event_id, hash, count, verified_at) VALUES (1, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET event_id = excluded.event_id, hash = excluded.hash,"
            " count = excluded.count, verified_at = excluded.verified_at"
            " WHERE excluded.event_id > audit_checkpoint.event_id",
            (result.head_id, result.head, result.count, stamp))
        if full:
            db.execute("UPDATE audit_checkpoint SET full_verified_at = ?", (stamp,))


def drop_checkpoint(db: sqlite3.Connection) -> None:
    """After a failed full check: every later view walks the whole chain again."""
    with transaction(db):
        db.execute("DELETE FROM audit_checkpoint")


def has_event(db: sqlite3.Connection, digest: str) -> bool:
    return db.execute("SELECT 1 FROM audit_event WHERE hash = ?", (digest,)).fetchone() is not None


def events_for(db: sqlite3.Connection, subject: str) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT * FROM audit_event WHERE subject = ? ORDER BY id", (subject,)
    ).fetchall()


@click.command("verify-audit")
@click.option("--report", "report_id", type=TEXT, default=None, help="Also list the trail of one report.")
@click.option("--anchor", "anchors", type=TEXT, multiple=True, metavar="HASH",
              help="A head hash printed by an earlier run and kept elsewhere; the chain must still contain it.")
@with_appcontext
def verify_audit_command(report_id: str | None, anchors: tuple[str, ...]) -> None:
    """Check the audit chain; exit status 0 only when it is intact.

    A chain alone cannot show that its newest events were cut off: the last
    event verified (the checkpoint) must still be there, and a head hash kept
    somewhere else and passed back with --anchor shows it even when the
    checkpoint was cut too.
    """
    db = get_db()
    if report_id:
        for row in events_for(db, f"report:{report_id}"):
            click.echo(f"{row['at']}  {row['actor'] or '-':24}  {row['action']:20}  {row['detail']}")
    result = verify_chain(db)
    if not result.ok:
        drop_checkpoint(db)
        click.echo(f"Audit chain BROKEN: {result.problem} (after {result.count} good events).", err=True)
        raise SystemExit(1)
    problem = checkpoint_problem(db)
    if problem:  # kept, unlike after a broken link: the next run must say so again
        click.echo(f"Audit chain BROKEN: {problem}; events were cut from its end.", err=True)
        raise SystemExit(1)
    missing = [a for a in anchors if not has_event(db, a.strip().lower())]
    if missing:
        click.echo(f"Audit chain BROKEN: anchor {missing[0]} is not in the chain; "
                   "events after it were removed (or the anchor is from another store).", err=True)
        raise SystemExit(1)
    save_checkpoint(db, result, full=True)
    click.echo(f"Audit chain intact: {result.count} events. Head: {result.head}")
