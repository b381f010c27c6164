"""The store: stdlib sqlite3, one connection per request on `g`.

A request borrows one of the process's idle connections and gives it back at
the end (`close_db`; see crewreport.pool for why they are kept, and why per
process rather than per thread).

The schema is built from numbered migrations in `migrations/NNNN_name.sql`,
applied in order inside one transaction each and tracked by
`PRAGMA user_version`. Nothing here ever drops data: `init-db` on an existing
store only applies the migrations it has not seen.
"""
from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import click
from flask import Flask, current_app, g
from flask.cli import with_appcontext
from werkzeug.routing import IntegerConverter, Map

from .pool import IdlePool

MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# Seconds a writer may wait for the store, all told, before it fails as a busy
# store does ("database is locked": a 503, or a command's one line). Also the
# connection's own busy wait, and what a receipt stamped before the write lock
# may lag behind (triage.queue.ARRIVAL_SLACK).
WRITE_WAIT = 30


class StoreConnection(sqlite3.Connection):
    """A connection that remembers which file it opened (the writer queue's lock sits beside it)."""

    path: str = ""


def connect(path: str) -> sqlite3.Connection:
    """A connection with the pragmas every user of the store relies on."""
    # The store holds password hashes and the audit log: owner-only, like the
    # keys. SQLite gives the -wal and -shm files the database file's mode.
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    # check_same_thread off: a pooled connection may be given back by another
    # thread than the one that opened it (crewreport.pool); one user at a time.
    conn = sqlite3.connect(path, timeout=WRITE_WAIT, isolation_level=None, factory=StoreConnection,
                           check_same_thread=False)
    conn.path = path
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    # A receipt promises the report is on disk: FULL syncs the WAL on commit.
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute(f"PRAGMA busy_timeout = {int(WRITE_WAIT * 1000)}")
    # Deleted reports (retention) are overwritten, not left in free pages.
    conn.execute("PRAGMA secure_delete = ON")
    return conn


# Room for every request a worker holds at once: under `serve` the requests
# waiting on a group commit (crewreport.group_commit) each hold theirs, and a
# pool smaller than that opens and closes connections under load.
_pool = IdlePool(lambda path: connect(path), size=32)  # looked up when called: tests trace `connect`


def get_db() -> sqlite3.Connection:
    """This request's connection, borrowed from the process's idle ones."""
    if "db" not in g:
        g.db, g.db_identity = _pool.borrow(current_app.config["DATABASE"])
    return g.db


def close_db(e: BaseException | None = None) -> None:
    db = g.pop("db", None)
    if db is not None:
        _pool.give_back(db, getattr(db, "path", ""), g.pop("db_identity", None))


def roll_back(conn: sqlite3.Connection) -> None:
    """ROLLBACK, unless SQLite rolled the transaction back itself (a disk
    full or an I/O error mid-transaction, a COMMIT that could not be
    written): a second one would raise over the reason."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


class transaction:
    """`with transaction(db):` — BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on error;
    `transaction(db, wait=2)` gives up waiting for the store sooner.

    IMMEDIATE takes the write lock up front, so two requests racing on the same
    report id serialise here instead of failing half-way with SQLITE_BUSY.

    Writers first queue on an advisory lock file beside the store (flock),
    then take SQLite's lock, free by then. SQLite's own busy handler polls
    with sleeps of 1, 2, 5, 10... ms, which under a burst costs more than the
    durable commit itself; the queue is tried again every 0.2 ms at most
    in a burst (FIRST_POLL). SQLite's lock stays the guarantee; the
    queue only makes waiting cheap.

    The whole wait, the queue's and then SQLite's, ends at one deadline,
    WRITE_WAIT from the start: a writer behind one that holds the store for
    long (an operator's `sqlite3` shell in a transaction, a hung command)
    then fails as a busy store does, "database is locked", a 503 for a
    request (crewreport.unavailable). The kernel's own wait for a flock,
    prompter still, cannot be given a deadline without signals (gevent
    workers and threads here): hence the polling.

    Under `serve`'s gevent worker the SQLite calls and the sync of the
    commit block the whole worker process, never just one request, and
    nothing inside a transaction may yield to another greenlet: gunicorn
    imports this module before gevent patches `threading` (for the logger
    class), so `_queued` is one per process there, shared by every request.
    Handing the lock wait and the commit to gevent's thread pool was measured
    and was slower (the thread and the worker fight over the GIL); the intake
    instead shares one commit among the requests a worker holds at once
    (crewreport.group_commit).
    """

    def __init__(self, db: sqlite3.Connection, wait: float | None = None) -> None:
        self.db = db
        self.wait = wait  # seconds for the whole wait, when not WRITE_WAIT
        self.queue: int | None = None

    def __enter__(self) -> sqlite3.Connection:
        deadline = time.monotonic() + (WRITE_WAIT if self.wait is None else self.wait)
        self.queue = _join_writer_queue(self.db, deadline)
        try:
            _begin(self.db, deadline)
        except BaseException:
            self._leave_queue()
            raise
        return self.db

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None:
                try:
                    self.db.execute("COMMIT")
                except sqlite3.Error:
                    # A COMMIT SQLite refuses (a deferred constraint, say)
                    # leaves the transaction open: nothing of it may stay.
                    roll_back(self.db)
                    raise
            else:
                roll_back(self.db)
        finally:
            self._leave_queue()

    def _leave_queue(self) -> None:
        if self.queue is not None:
            os.close(self.queue)  # closing releases the flock
            self.queue = None
            _queued.fd = None


_queued = threading.local()  # .fd: the writer lock this thread holds, if any

# A writer that finds the lock file taken tries it again and again, after a
# pause that doubles each time from FIRST_POLL up to BURST_POLL: a turn in a
# burst is the length of a commit (a sync: milliseconds), and this is about
# as prompt as the kernel's own wake-up. It does not yield meanwhile (gevent
# could not wake it sooner than a millisecond), so the worker waits as it
# did for the kernel. A writer still waiting after HOLD_OFF (longer than a
# batch's commit on a busy machine) is behind one that holds the store for
# long: from then on its pauses let the worker's other requests run
# (gevent's `time.sleep`, monkey-patched under `serve`) and grow to
# LAST_POLL, a hundred tries a second; and until a writer of this process
# takes the lock again, every other one of them yields from its first
# pause (`_held_long`), or each would stop the worker for HOLD_OFF.
FIRST_POLL = 0.00005
BURST_POLL = 0.0002
HOLD_OFF = 0.25
LAST_POLL = 0.01
_held_long: set[str] = set()  # stores whose queue a writer of this process found held past HOLD_OFF


def _join_writer_queue(db: sqlite3.Connection, deadline: float) -> int | None:
    """Take this store's writer lock file by `deadline`; None when there is
    none to take, or it is still taken then (BEGIN IMMEDIATE then asks
    SQLite once, without waiting: the lock file is only a queue).

    A thread that already holds it (a transaction opened inside another, which
    SQLite refuses anyway) does not wait on itself.

    Yielding to other greenlets while waiting (past HOLD_OFF) is safe with
    `_queued` shared by all of them: it is set only once the lock is taken,
    with no switch between the two, and cleared before the next switch
    (nothing in a transaction yields), so no other greenlet sees it set.
    """
    path = getattr(db, "path", "")
    if not path or db.in_transaction or getattr(_queued, "fd", None) is not None:
        return None
    try:
        fd = os.open(path + "-writer", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return None
    try:
        if _poll(fd, deadline, path):
            _queued.fd = fd
            return fd
    except OSError:
        pass
    except BaseException:  # a greenlet killed or a Ctrl-C while it waits
        os.close(fd)
        raise
    os.close(fd)
    return None


def _poll(fd: int, deadline: float, path: str) -> bool:
    """Take the flock on `fd` by `deadline` (see FIRST_POLL): True once taken,
    False when the deadline has passed first."""
    began, pause, blocking = time.monotonic(), FIRST_POLL, None
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _held_long.discard(path)
            return True
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:
                return False
            if now - began >= HOLD_OFF:
                _held_long.add(path)
            held_long = path in _held_long
            blocking = blocking or _blocking_sleep()  # only once the lock was found taken
            # time.sleep looked up now: gevent's once patched.
            (time.sleep if held_long else blocking)(min(pause, deadline - now))
            pause = min(pause * 2, LAST_POLL if held_long else BURST_POLL)


def _blocking_sleep() -> Callable[[float], None]:
    """`time.sleep` as it was before gevent patched it, if it did: a pause
    that blocks the worker rather than waiting for gevent's next turn."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey.get_original("time", "sleep") if monkey is not None else time.sleep


def _begin(db: sqlite3.Connection, deadline: float) -> None:
    """BEGIN IMMEDIATE, SQLite's busy wait cut to what is left of the deadline
    when the queue took some of it, then put back as it was (a connection
    kept in the pool, or one given a wait of its own, keeps it)."""
    left = max(0, round((deadline - time.monotonic()) * 1000))
    if left < round(WRITE_WAIT * 1000):
        usual = db.execute("PRAGMA busy_timeout").fetchone()[0]
        if left < usual:
            db.execute(f"PRAGMA busy_timeout = {left}")
            try:
                db.execute("BEGIN IMMEDIATE")
            finally:
                db.execute(f"PRAGMA busy_timeout = {usual}")
            return
    db.execute("BEGIN IMMEDIATE")


class SchemaTooNew(click.ClickException):
    """The store was migrated by newer code: refuse it rather than guess.

    A ClickException so `init-db`, `demo` and `serve` end with one clear line.
    """


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, sql) for every migration shipped in the package, in order."""
    found = []
    for entry in resources.files("crewreport.migrations").iterdir():
        m = MIGRATION_NAME.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [n for n, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, got {numbers}")
    return found


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply the migrations the store has not seen yet; return their names."""
    applied = []
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    known = migrations()
    if current > len(known):
        raise SchemaTooNew(
            f"the store is at schema version {current}, newer than this code "
            f"(version {len(known)}); upgrade the code, do not run an older release on it"
        )
    for number, name, sql in known[current:]:
        # executescript would COMMIT first; run the statements in our own transaction.
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            roll_back(conn)
            raise
        applied.append(name)
    return applied


def split_sql(script: str) -> Iterator[str]:
    """Statements of a migration, respecting trigger bodies (BEGIN ... END;)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--") and not buf.strip():
            continue
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf.strip()
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buf[:80]!r}")


def init_db() -> list[str]:
    return migrate(get_db())


@click.command("init-db")
@with_appcontext
def init_db_command() -> None:
    """Create the store or bring it up to date. Never destroys data."""
    from . import keys  # keys needs the store; the store does not need keys

    applied = init_db()
    version = get_db().execute("PRAGMA user_version").fetchone()[0]
    if applied:
        click.echo(f"Applied {', '.join(applied)}; schema version {version}.")
    else:
        click.echo(f"Store is up to date (schema version {version}).")
    # An instance made before envelope version 2 gains its X-Wing keys here;
    # its P-256 keys stay as they are.
    made = keys.add_missing_v2_keys(get_db())
    if made:
        click.echo(f"Made X-Wing (v2) recipient keys: {', '.join(made)}")


# SQLite's INTEGER is 64-bit signed; sqlite3 raises OverflowError on a larger Python int.
SQLITE_MAX_INT = 2**63 - 1
SQLITE_MIN_INT = -(2**63)


class StoreInteger(IntegerConverter):
    """The app's `<int:…>`: bounded to SQLite's range, so an id of 2**63 or
    more (which no row can have) is a 404 like any other missing row, not an
    OverflowError in the query that looks it up."""

    def __init__(self, url_map: Map, *args: Any, **kwargs: Any) -> None:
        super().__init__(url_map, *args, **kwargs)
        self.max = SQLITE_MAX_INT if self.max is None else min(self.max, SQLITE_MAX_INT)
        self.min = SQLITE_MIN_INT if self.min is None else max(self.min, SQLITE_MIN_INT)


def init_app(app: Flask) -> None:
    """Close the store after each request; give every route's `<int:…>` SQLite's
    range (before any blueprint adds its rules)."""
    app.url_map.converters["int"] = StoreInteger
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
