"""Idle SQLite connections kept for the next request of this process.

Opening a connection costs a file open and its pragmas, and closing the last
one to a WAL store checkpoints and syncs it: milliseconds a request. So a
request borrows an idle connection and gives it back at its end.

The idle connections belong to the process, not to a thread: under
gunicorn's gevent worker (what `serve` runs) `threading.local` is local to
each greenlet, that is to each HTTP connection, so a per-thread cache would
open and close a connection for every request. A connection is lent to one
borrower at a time, and may be given back by another thread than the one that
opened it (`check_same_thread=False` in the openers; SQLite's own mutexes
stay on). A connection is reused only for the same file at the same path
(a restore may replace the file) and in the process that opened it: a
connection must never cross a fork.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable

Identity = tuple[int, int] | None


def file_identity(path: str) -> Identity:
    """(device, inode) of the file at `path`, None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


class IdlePool:
    """At most `size` idle connections, each tagged with its path and file."""

    def __init__(self, opener: Callable[[str], sqlite3.Connection], size: int = 8) -> None:
        self.opener, self.size = opener, size
        self.idle: list[tuple[sqlite3.Connection, str, Identity]] = []
        self.pid = os.getpid()
        # Connections inherited through a fork: never used nor closed here
        # (closing could release the parent's locks), only kept referenced.
        self.inherited: list[sqlite3.Connection] = []

    def borrow(self, path: str) -> tuple[sqlite3.Connection, Identity]:
        """An idle connection to `path` if one still opens that file, else a new one."""
        self._after_fork()
        identity = file_identity(path)
        while self.idle:
            try:
                conn, kept_path, kept_identity = self.idle.pop()
            except IndexError:  # another thread took the last one
                break
            if kept_path == path and identity is not None and kept_identity == identity:
                return conn, identity
            conn.close()
        return self.opener(path), file_identity(path)

    def give_back(self, conn: sqlite3.Connection, path: str, identity: Identity) -> None:
        """Keep a clean connection for the next borrower, or close it."""
        if os.getpid() != self.pid:
            self.inherited.append(conn)
            return
        try:
            if conn.in_transaction:  # a request that failed mid-transaction
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            conn.close()
            return
        if len(self.idle) >= self.size:
            conn.close()
            return
        self.idle.append((conn, path, identity))

    def clear(self) -> None:
        """Close every idle connection (tests, and a counters file started afresh)."""
        self._after_fork()
        idle, self.idle = self.idle, []  # one swap: another thread may be borrowing
        for conn, _, _ in idle:
            conn.close()

    def _after_fork(self) -> None:
        if os.getpid() != self.pid:
            self.inherited.extend(conn for conn, _, _ in self.idle)
            self.idle = []
            self.pid = os.getpid()
