"""The triage workflow: statuses and the steps between them, the expiring
lock an officer holds while working on a report, the one transaction every
officer action runs in (`acting_on`), and the workflow's sealed record (status
history with reasons, notes)."""
from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from flask import abort, current_app
from flask_login import current_user

from .. import audit, keys
from ..auth import session_alive
from ..db import transaction
from ..display import when
from ..sealed_text import NOTE_INFO, REASON_INFO, open_text, seal_text
from ..times import stamp

STATUSES = ("received", "assessing", "meet_aircraft", "no_further_action", "referred")
# Every step needs a reason; closed reports can be reopened (back to
# assessing), and a "meet aircraft" decision is followed by its outcome. An
# Immediate report can go straight from received to meet aircraft: officers
# leave for the stand first and assess there.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("assessing", "meet_aircraft"),
    "assessing": ("meet_aircraft", "no_further_action", "referred"),
    "meet_aircraft": ("no_further_action", "referred", "assessing"),
    "no_further_action": ("assessing",),
    "referred": ("assessing",),
}
CLOSED = ("no_further_action", "referred")
OPEN = ("received", "assessing", "meet_aircraft")
# A decision for a whole flight moves every open report of it in one step.
FLIGHT_DECISIONS = ("meet_aircraft", "no_further_action", "referred")
# The same note by the same officer on the same report within this long is
# the note form sent twice (a double click, a retried POST), kept once.
SENT_TWICE = timedelta(minutes=1)


class Refused(Exception):
    """An officer's action refused: shown with its message; nothing was changed."""

    def __init__(self, report_id: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.report_id, self.message, self.status = report_id, message, status


def get_report(db: sqlite3.Connection, report_id: str) -> sqlite3.Row:
    """The report row or 404 (ids are looked up, never interpolated)."""
    row = db.execute("SELECT * FROM report WHERE id = ?", (report_id,)).fetchone()
    if row is None:
        abort(404)
    return row


def last_change(db: sqlite3.Connection, report_id: str | None = None, flight_id: int | None = None) -> int:
    """The id of the last status change of a report (or of any report of a
    flight); 0 before the first. A form carries it: the status alone cannot
    tell a report decided and reopened meanwhile from one nobody touched.
    Read it before the rows a page shows, so that a change landing in between
    makes the form stale (refused), never current."""
    if report_id is not None:
        found = db.execute("SELECT max(id) FROM report_status_history WHERE report_id = ?", (report_id,))
    else:
        found = db.execute("SELECT max(h.id) FROM report r JOIN report_status_history h ON h.report_id = r.id"
                           " WHERE r.flight_id = ?", (flight_id,))
    return int(found.fetchone()[0] or 0)


def changed_by(db: sqlite3.Connection, report_id: str) -> str:
    """Who made the report's last status change, and when, for a refusal:
    "You" when it was the officer asking (the form sent twice, another tab)."""
    h = db.execute("SELECT h.at, h.actor_id, u.username FROM report_status_history h LEFT JOIN user u"
                   " ON u.id = h.actor_id WHERE h.report_id = ? ORDER BY h.id DESC LIMIT 1", (report_id,)).fetchone()
    if h is None:
        return "Someone"
    who = "You" if h["actor_id"] == current_user.id_number else (h["username"] or "Someone")
    return f"{who} (at {when(h['at'])})"


def lock_holder(row: sqlite3.Row, at: str) -> int | None:
    """Who holds the report's lock now (None when free or expired)."""
    if row["lock_user_id"] and (row["lock_expires_at"] or "") > at:
        return int(row["lock_user_id"])
    return None


def username(db: sqlite3.Connection, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    r = db.execute("SELECT username FROM user WHERE id = ?", (user_id,)).fetchone()
    return r["username"] if r else None


def officers(db: sqlite3.Connection) -> list[sqlite3.Row]:
    """The active Border Force officers, whom a report can be assigned to."""
    return db.execute("SELECT id, username FROM user WHERE role = 'border_force' AND active = 1"
                      " ORDER BY username").fetchall()


@contextmanager
def acting_on(db: sqlite3.Connection, report_id: str, at: datetime,
              not_done: str = "Nothing was changed.") -> Iterator[sqlite3.Row]:
    """The write transaction of an officer's action on one report.

    The report is re-read under the write lock, so what is checked is what is
    changed; the action is refused (and rolled back) while another officer
    holds the report's lock.
    """
    with transaction(db):
        if not session_alive(db):
            raise Refused(report_id, f"You were signed out meanwhile. {not_done}", 401)
        row = get_report(db, report_id)
        holder = lock_holder(row, stamp(at))
        if holder is not None and holder != current_user.id_number:
            raise Refused(report_id, f"{username(db, holder)} is working on this report (locked until "
                                     f"{when(row['lock_expires_at'])}). {not_done}")
        yield row


def renew_lock(db: sqlite3.Connection, report_id: str, at: datetime) -> str:
    """Take or extend the lock for the current officer; returns its expiry."""
    expires = stamp(at + timedelta(minutes=current_app.config["LOCK_MINUTES"]))
    db.execute("UPDATE report SET lock_user_id = ?, lock_expires_at = ? WHERE id = ?",
               (current_user.id_number, expires, report_id))
    return expires


def let_go(db: sqlite3.Connection, report_id: str) -> None:
    """Release the report's lock, whoever held it (the caller checked it may)."""
    db.execute("UPDATE report SET lock_user_id = NULL, lock_expires_at = NULL WHERE id = ?", (report_id,))


def keep_lock(db: sqlite3.Connection, row: sqlite3.Row, at: datetime) -> None:
    """Extend the lock if the current officer holds it; never take one (a note
    or an assignment is no claim to be working on the report)."""
    if lock_holder(row, stamp(at)) == current_user.id_number:
        renew_lock(db, row["id"], at)


def move(db: sqlite3.Connection, ring: keys.Keyring, row: sqlite3.Row, target: str, reason: str,
         at: datetime, **detail: Any) -> None:
    """Change one report's status inside the caller's transaction: the row,
    the history with its reason sealed, and the audit event."""
    report_id = row["id"]
    kid, sealed = seal_for_border_force(ring, reason, report_id, REASON_INFO)
    db.execute("UPDATE report SET status = ?, status_changed_at = ?, closed_at = ? WHERE id = ?",
               (target, stamp(at), stamp(at) if target in CLOSED else None, report_id))
    db.execute("INSERT INTO report_status_history (report_id, at, actor_id, from_status, to_status,"
               " reason_kid, reason_sealed) VALUES (?, ?, ?, ?, ?, ?, ?)",
               (report_id, stamp(at), current_user.id_number, row["status"], target, kid, sealed))
    audit.record("status_changed", subject=f"report:{report_id}", db=db,
                 **{"from": row["status"], "to": target}, **detail)


def seal_for_border_force(ring: keys.Keyring, text: str, report_id: str, info: bytes) -> tuple[str, str]:
    """(kid, sealed) of `text` sealed to the current Border Force key (X-Wing where there is one)."""
    kid = ring.text_key()
    return kid, seal_text(ring.recipient_key(kid).public_key(), text, report_id, info)


def history(db: sqlite3.Connection, ring: keys.Keyring, row: sqlite3.Row) -> list[dict[str, Any]]:
    """Status history with reasons opened; the first entry is the receipt."""
    entries: list[dict[str, Any]] = [{"at": row["received_at"], "actor": "intake", "from_status": None,
                                      "to_status": "received", "reason": "Delivered by the crew device."}]
    for h in db.execute("SELECT h.*, u.username FROM report_status_history h"
                        " LEFT JOIN user u ON u.id = h.actor_id WHERE h.report_id = ? ORDER BY h.id",
                        (row["id"],)):
        entries.append({"at": h["at"], "actor": h["username"], "from_status": h["from_status"],
                        "to_status": h["to_status"],
                        "reason": open_text(ring.held(h["reason_kid"]), h["reason_sealed"],
                                            row["id"], REASON_INFO)})
    return entries


def sent_twice(db: sqlite3.Connection, ring: keys.Keyring, report_id: str, text: str, at: datetime) -> bool:
    """Whether the current officer's last note on the report, written less
    than SENT_TWICE ago, says `text` already (its sealed copy is opened to
    compare: each sealing of one text differs)."""
    last = db.execute("SELECT at, kid, sealed FROM report_note WHERE report_id = ? AND author_id = ?"
                      " ORDER BY id DESC LIMIT 1", (report_id, current_user.id_number)).fetchone()
    return last is not None and last["at"] >= stamp(at - SENT_TWICE) and \
        open_text(ring.held(last["kid"]), last["sealed"], report_id, NOTE_INFO) == text


def notes(db: sqlite3.Connection, ring: keys.Keyring, report_id: str) -> list[dict[str, Any]]:
    """The report's notes, opened, oldest first."""
    return [{"at": n["at"], "author": n["username"],
             "text": open_text(ring.held(n["kid"]), n["sealed"], report_id, NOTE_INFO)}
            for n in db.execute("SELECT n.*, u.username FROM report_note n LEFT JOIN user u"
                                " ON u.id = n.author_id WHERE n.report_id = ? ORDER BY n.id", (report_id,))]
