"""Group commit: the reports a worker holds at one moment share one durable commit.

A receipt promises that its report is on disk, so every accepted report
waits for a commit and its sync. Under `serve`'s gevent worker, the
requests of one worker take turns on one thread, and a SQLite call never
yields: a request that committed at once would hold the whole worker while
its sync ran, and each report would pay a sync of its own.

Here a request's writes (a function of the connection) first join the
worker's waiting group. The first to join leads: it waits until the worker
has nothing else ready to run (`gevent.idle`), so that every request the
worker has already read gets as far as its own writes and joins too; then
it writes every part in one transaction, each part in a savepoint so that
one request's error stays its own, commits once, and wakes the others.
Every request answers only after that commit has returned: the promise is
unchanged, and the sync is paid once for the group.

Outside gevent (the test client, the CLI, a threaded server) each request's
writes are their own transaction, as before.
"""
from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from typing import Any

from .db import transaction

Write = Callable[[sqlite3.Connection], None]

# The longest a leader waits for the worker to fall idle. Idle is the usual
# end of the wait (a few milliseconds under load); the cap only keeps a
# worker that is never idle from holding a group back.
MAX_WAIT = 0.05


def under_gevent() -> bool:
    """True in a gevent worker (sockets patched), where waiting lets other requests run."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


class Part:
    """One request's writes in a group, and the error they ended with, if any."""

    __slots__ = ("write", "done", "error")

    def __init__(self, write: Write, done: Any) -> None:
        self.write, self.done = write, done
        self.error: BaseException | None = None


class GroupCommit:
    """The waiting group of one store in one process.

    Without locks: greenlets switch only where one waits, and no one waits
    between looking at `waiting` or `leading` and changing them.
    """

    def __init__(self, grouped: Callable[[], bool] = under_gevent) -> None:
        self.grouped = grouped
        self.waiting: list[Part] = []
        self.leading = False

    def run(self, db: sqlite3.Connection, write: Write) -> None:
        """`write(db)` inside a durable transaction; returns once it is committed,
        raises what `write` raised, or `NotStored` when the group could not commit."""
        if not self.grouped():
            with transaction(db):
                write(db)
            return
        import gevent  # only ever reached in a gevent worker
        from gevent.event import Event

        mine = Part(write, Event())
        self.waiting.append(mine)
        if self.leading:
            # A request cancelled here still has its part written: its report
            # is stored without an answer, and the tablet's resend gets the
            # stored receipt (never the other way round).
            mine.done.wait()
        else:
            self.leading = True
            try:
                with gevent.Timeout(MAX_WAIT, False):  # False: just stop waiting
                    gevent.idle()
            finally:
                # Even a leader interrupted while waiting writes the group:
                # the others are waiting on it.
                try:
                    while self.waiting:
                        group, self.waiting = self.waiting, []
                        commit(db, group)
                finally:
                    self.leading = False
        if mine.error is not None:
            raise mine.error


class NotStored(RuntimeError):
    """The group's transaction did not commit, so this request's report is not
    stored. One per request (the cause, shared, is its `__cause__`), so that no
    two requests' tracebacks are written into one exception."""


def commit(db: sqlite3.Connection, group: list[Part]) -> None:
    """Every part in one transaction, each in its own savepoint; then wake them all.

    A part that raises is rolled back to its savepoint and gets its error; the
    others are kept. If the transaction cannot begin or commit, nothing of the
    group is stored and every part without an error of its own gets
    `NotStored`. Whatever stops the group (even an exit of the worker in the
    middle), no part is ever woken as stored unless the commit returned.
    """
    stored = False
    cause: BaseException | None = None
    try:
        with transaction(db):
            for part in group:
                db.execute("SAVEPOINT part")
                try:
                    part.write(db)
                except Exception as exc:  # handed to its own request, which raises it
                    if not db.in_transaction:
                        # SQLite rolled the whole transaction back (a full
                        # disk, an I/O error): the group's failure, not the part's.
                        raise
                    db.execute("ROLLBACK TO part")
                    part.error = exc
                db.execute("RELEASE part")
        stored = True
    except Exception as exc:  # noqa: BLE001 - the cause of every request's NotStored
        cause = exc
    finally:
        for part in group:
            if not stored and part.error is None:
                part.error = NotStored("the group's transaction did not commit")
                part.error.__cause__ = cause
            part.done.set()


# One group a store: every part is written through the leader's connection,
# so parts for another file must never join it.
_groups: dict[str, GroupCommit] = {}


def run(db: sqlite3.Connection, write: Write) -> None:
    """`write(db)` durably committed, in this process's group for the store
    `db` opened (see the module's docstring)."""
    path = getattr(db, "path", "")
    group = _groups.get(path)
    if group is None:
        group = _groups[path] = GroupCommit(lambda: under_gevent())  # looked up when called: tests set it
    group.run(db, write)
