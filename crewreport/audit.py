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

from .db import get_db
from .times import now

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
    body = json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    own = not db.in_transaction
    if own:
        db.execute("BEGIN IMMEDIATE")
    try:
        last = db.execute("SELECT hash FROM audit_event ORDER BY id DESC LIMIT 1").fetchone()
        prev = last["hash"] if last else GENESIS
        at = now()
        digest = row_hash(prev, at, actor, action, subject, body)
        db.execute(
            "INSERT INTO audit_event (at, actor, action, subject, detail, prev_hash, hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (at, actor, action, subject, body, prev, digest),
        )
        if own:
            db.execute("COMMIT")
    except BaseException:
        if own:
            db.execute("ROLLBACK")
        raise
    return digest


def client_address() -> str:
    return (request.remote_addr or "-") if has_request_context() else "-"


@dataclass
class ChainReport:
    ok: bool
    count: int
    problem: str | None = None
    at_id: int | None = None
    head: str = GENESIS  # hash of the last good event: record it elsewhere as an anchor


def verify_chain(db: sqlite3.Connection) -> ChainReport:
    """Walk the chain from the start; the first broken link is the finding."""
    prev = GENESIS
    count = 0
    expected_id = None
    for row in db.execute("SELECT * FROM audit_event ORDER BY id"):
        if expected_id is not None and row["id"] != expected_id:
            return ChainReport(False, count, f"event {expected_id} is missing", expected_id)
        if row["prev_hash"] != prev:
            return ChainReport(False, count, f"event {row['id']} does not follow the one before", row["id"])
        digest = row_hash(row["prev_hash"], row["at"], row["actor"], row["action"],
                          row["subject"], row["detail"])
        if digest != row["hash"]:
            return ChainReport(False, count, f"event {row['id']} was altered", row["id"])
        prev = row["hash"]
        count += 1
        expected_id = row["id"] + 1
    return ChainReport(True, count, head=prev)


def has_event(db: sqlite3.Connection, digest: str) -> bool:
    return db.execute("SELECT 1 FROM audit_event WHERE hash = ?", (digest,)).fetchone() is not None


def events_for(db: sqlite3.Connection, subject: str) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT * FROM audit_event WHERE subject = ? ORDER BY id", (subject,)
    ).fetchall()


@click.command("verify-audit")
@click.option("--report", "report_id", default=None, help="Also list the trail of one report.")
@click.option("--anchor", "anchors", multiple=True, metavar="HASH",
              help="A head hash printed by an earlier run and kept elsewhere; the chain must still contain it.")
@with_appcontext
def verify_audit_command(report_id: str | None, anchors: tuple[str, ...]) -> None:
    """Check the audit chain; exit status 0 only when it is intact.

    A chain alone cannot show that its newest events were cut off: keep the
    printed head hash somewhere else and pass it back with --anchor.
    """
    db = get_db()
    if report_id:
        for row in events_for(db, f"report:{report_id}"):
            click.echo(f"{row['at']}  {row['actor'] or '-':24}  {row['action']:20}  {row['detail']}")
    result = verify_chain(db)
    if not result.ok:
        click.echo(f"Audit chain BROKEN: {result.problem} (after {result.count} good events).", err=True)
        raise SystemExit(1)
    missing = [a for a in anchors if not has_event(db, a.strip().lower())]
    if missing:
        click.echo(f"Audit chain BROKEN: anchor {missing[0]} is not in the chain; "
                   "events after it were removed (or the anchor is from another store).", err=True)
        raise SystemExit(1)
    click.echo(f"Audit chain intact: {result.count} events. Head: {result.head}")
