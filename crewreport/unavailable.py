"""A store that cannot take a write just now (its disk full, an I/O error, a
lock held past the 30 s wait) is answered 503 with Retry-After, like
missing keys: never a 500 with a traceback.

Nothing of the request was stored (its transaction rolled back, and under
`serve` its group's: crewreport.group_commit), so a tablet keeps its notes
queued and sends them again when told, and a person is asked to try again
in a minute. The log gets one line naming the condition for the operator:
a traceback for every request would fill a full disk faster.
"""
from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from flask import Flask
from werkzeug.exceptions import ServiceUnavailable

from .group_commit import NotStored

log = logging.getLogger(__name__)

RETRY_AFTER = 60  # seconds
# How long a write that a page can do without (skipped_when_unavailable)
# waits for the store at most, `transaction(db, wait=SIDE_WRITE_WAIT)`: the
# page is not held for the writers' whole wait (db.WRITE_WAIT) by it.
SIDE_WRITE_WAIT = 2.0
# SQLite's primary result codes for a store that is there but cannot take
# this write now. Anything else (a mistake in the SQL, a constraint) stays a 500.
UNAVAILABLE = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
                         sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL,
                         sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL})


def store_condition(exc: BaseException | None) -> str | None:
    """SQLite's name for the condition (`SQLITE_FULL`, ...) when `exc`, or what
    it was raised from, is the store unable to write; else None."""
    while exc is not None:
        # The extended code's low byte is the primary code (SQLITE_IOERR_FSYNC is an SQLITE_IOERR).
        if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorcode", -1) & 0xFF) in UNAVAILABLE:
            return str(exc.sqlite_errorname)
        exc = exc.__cause__
    return None


@contextmanager
def skipped_when_unavailable(what: str) -> Iterator[None]:
    """Around a write a page that only reads can do without (a mark of what
    was seen, never an audit event): when the store cannot take it, the page
    is still shown, with a warning in the log, rather than a 503. Any other
    error is raised."""
    try:
        yield
    except sqlite3.Error as exc:
        condition = store_condition(exc)
        if condition is None:
            raise
        log.warning("%s was not written: the store cannot take writes (%s)", what, condition)


def answer(exc: Exception) -> Any:
    """The 503 answer, in the API's JSON or as the app's error page; any other
    store error is raised again, to be the 500 (and traceback) a bug deserves."""
    condition = store_condition(exc)
    if condition is None:
        raise exc
    log.error("the store cannot take writes (%s): answered 503, nothing stored", condition)
    from . import error_page

    return error_page(ServiceUnavailable(
        "The service cannot save anything just now. Nothing was lost: try again in a minute.",
        retry_after=RETRY_AFTER))


def said_plainly(callback: Callable[..., Any]) -> Callable[..., Any]:
    """A command's callback that ends with one line and exit status 1, not a
    traceback, when the store cannot take its writes. Each transaction it
    finished stays whole and the commands can be run again."""
    if getattr(callback, "said_plainly", False):
        return callback

    @functools.wraps(callback)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except (sqlite3.Error, NotStored) as exc:
            condition = store_condition(exc)
            if condition is None:
                raise
            raise click.ClickException(
                f"the store cannot take writes ({condition}): a full disk, a read-only file or a lock held "
                "too long. What this command finished stays whole; run it again once the store can.") from exc

    wrapped.said_plainly = True  # type: ignore[attr-defined]
    return wrapped


def init_app(app: Flask) -> None:
    """The 503 answers, and plain words from the app's commands (which are
    module-level objects: wrapped once, whichever app comes first)."""
    app.register_error_handler(sqlite3.Error, answer)
    app.register_error_handler(NotStored, answer)
    for command in app.cli.commands.values():
        if command.callback is not None:
            command.callback = said_plainly(command.callback)
