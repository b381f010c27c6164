"""Retention: reports closed more than RETENTION_DAYS ago are removed.

A report counts as closed since the later of its closing and its latest
note, and one an officer holds (an unexpired lock) is left for the next run:
what someone is working on now is never removed under them.

Each connection has `secure_delete` on (db.connect), so SQLite overwrites
deleted cells with zeros; after the deletes the WAL is checkpointed and
truncated, so no copy of a purged envelope, note or reason stays in the
database files. Each purge is an audit event naming the report id and its
reference, never its content; the report's earlier audit trail is kept.
"""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import click
from flask import current_app
from flask.cli import with_appcontext

from . import audit
from . import db as store
from .db import get_db, transaction
from .times import stamp

CLOSED = ("no_further_action", "referred")


class WalNotTruncated(Exception):
    """A reader kept the WAL busy: purged content may still be in it."""


def fold_wal(db: sqlite3.Connection, wait_ms: int | None = None) -> None:
    """Fold the WAL into the (zeroed) database file and truncate it.

    A checkpoint cannot pass a reader's snapshot: SQLite waits for readers
    through the busy handler, up to `wait_ms` (db.WRITE_WAIT's when None),
    then reports busy=1 and leaves old page images in place. Then say so
    rather than claim a clean purge.
    """
    usual = int(store.WRITE_WAIT * 1000)
    db.execute(f"PRAGMA busy_timeout = {usual if wait_ms is None else int(wait_ms)}")
    try:
        busy, _log, _done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.execute(f"PRAGMA busy_timeout = {usual}")
    if busy:
        raise WalNotTruncated("another connection kept the WAL busy; run purge again when it is idle")


def closed_before(at: datetime, days: int) -> str:
    """The cutoff `days` before `at`; a span reaching back past year 1 (timedelta
    or datetime would overflow) is the start of year 1, before which nothing
    was closed."""
    try:
        return stamp(at - timedelta(days=days))
    except OverflowError:
        return stamp(datetime.min.replace(tzinfo=UTC))


def purge(db: sqlite3.Connection, days: int, at: datetime | None = None,
          dry_run: bool = False) -> list[str]:
    """Remove reports closed before `at - days`; return their ids.

    One transaction per report, so an interruption leaves whole reports
    either purged (with their event) or untouched.
    """
    at = at or datetime.now(UTC)
    cutoff, now = closed_before(at, days), stamp(at)
    # Due: closed before the cutoff, no note since, and not held by an officer now.
    due_sql = ("SELECT id, reference, closed_at, flight_id FROM report"
               " WHERE closed_at IS NOT NULL AND closed_at < :cutoff"
               " AND status IN ('no_further_action', 'referred')"
               " AND NOT EXISTS (SELECT 1 FROM report_note n WHERE n.report_id = report.id AND n.at >= :cutoff)"
               " AND (lock_user_id IS NULL OR lock_expires_at IS NULL OR lock_expires_at <= :now)")
    due = db.execute(due_sql + " ORDER BY closed_at", {"cutoff": cutoff, "now": now}).fetchall()
    if dry_run:
        return [r["id"] for r in due]
    purged = []
    for r in due:
        with transaction(db):
            still = db.execute(due_sql + " AND id = :id AND closed_at = :closed_at",
                               {"cutoff": cutoff, "now": now, "id": r["id"], "closed_at": r["closed_at"]}).fetchone()
            if still is None:  # reopened, noted, taken (or purged) meanwhile
                continue
            notes = db.execute("DELETE FROM report_note WHERE report_id = ?", (r["id"],)).rowcount
            steps = db.execute("DELETE FROM report_status_history WHERE report_id = ?", (r["id"],)).rowcount
            db.execute("DELETE FROM report WHERE id = ?", (r["id"],))
            # A flight with no report left is itself metadata of purged reports.
            db.execute("DELETE FROM flight WHERE id = ?1 AND NOT EXISTS"
                       " (SELECT 1 FROM report WHERE flight_id = ?1)", (r["flight_id"],))
            audit.record("report_purged", actor="system", subject=f"report:{r['id']}", db=db,
                         reference=r["reference"], closed_at=r["closed_at"], retention_days=days,
                         notes=notes, status_steps=steps)
        purged.append(r["id"])
    # Old page images in the WAL could still hold purged content: this run's,
    # or an earlier run's that a reader kept from folding (its error says to
    # run purge again, which then has nothing left to delete but this).
    fold_wal(db)
    return purged


@click.command("purge")
@click.option("--days", type=click.IntRange(min=0), default=None,
              help="Remove reports closed more than this many days ago (default: RETENTION_DAYS, 365).")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@with_appcontext
def purge_command(days: int | None, dry_run: bool) -> None:
    """Remove reports closed more than RETENTION_DAYS ago."""
    if days is None:
        days = int(current_app.config["RETENTION_DAYS"])
    try:
        ids = purge(get_db(), days, dry_run=dry_run)
    except WalNotTruncated as exc:
        raise click.ClickException(f"Reports were purged, but {exc}.") from None
    verb = "Would purge" if dry_run else "Purged"
    click.echo(f"{verb} {len(ids)} report{'' if len(ids) == 1 else 's'} closed more than {days} days ago.")
    for report_id in ids:
        click.echo(f"  {report_id}")
