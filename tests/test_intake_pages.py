"""What a new report's commit writes: a receipt waits for its commit, and the
commit writes every page the report changed to the write-ahead log and syncs
it, one page for each index the report is in. These tests read the log
itself (no timing): a report on a known flight writes no page of an index
it does not need (migration 0010, `flights.place`)."""
from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db
from crewreport.times import stamp
from crewreport.triage import queue

from .helpers import AuthActions, Make, deliver, row, text, utcnow

WAL_HEADER, FRAME_HEADER = 32, 24


def written(app: Flask, send: Callable[[], object]) -> list[str]:
    """The b-trees (tables and indexes) whose pages `send()` wrote to the log."""
    path = app.config["DATABASE"]
    held = sqlite3.connect(path)  # the last connection's close would checkpoint the log away
    try:
        # Busy (a reader's snapshot) would leave earlier commits' frames in
        # the log, to be counted as this one's: say so instead.
        busy, _, _ = held.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0 and Path(path + "-wal").stat().st_size == 0, "the log was not emptied first"
        send()
        log = Path(path + "-wal").read_bytes()
        page_size = struct.unpack(">I", log[8:12])[0]
        numbers = {struct.unpack(">I", log[at:at + 4])[0]
                   for at in range(WAL_HEADER, len(log), FRAME_HEADER + page_size)}
        owner = dict(held.execute("SELECT pageno, name FROM dbstat"))
        return sorted({owner.get(n, "(free)") for n in numbers})
    finally:
        held.close()


def test_a_report_on_a_known_flight_writes_no_index_it_does_not_need(
        client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    sta = stamp(utcnow() + timedelta(hours=3))
    first = deliver(client, make_envelope, flight="ZZ410", sta=sta)
    pages = written(app, lambda: deliver(client, make_envelope, flight="ZZ410", sta=sta))
    # the log was read: the report's row and its id are there
    assert {"report", "sqlite_autoindex_report_1", "report_flight", "audit_event"} <= set(pages), pages
    # a new report has no assignee, no lock, is not closed; its flight's arrival is unchanged
    assert not {"report_assignee", "report_lock_user", "report_closed", "flight_arrival", "flight_arr"} & set(pages)
    with app.app_context():
        indexes = {r[0] for r in get_db().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert not {"report_received", "report_urgency", "report_arr"} & indexes
    assert row(app, first)["flight_id"] is not None  # type: ignore[index]


def test_an_arrival_that_moves_rewrites_the_flights_index(
        client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    """A later estimate moves the flight (and so writes flight_arrival); a
    note made earlier than the flight's estimate writes nothing of the flight."""
    sta = stamp(utcnow() + timedelta(hours=3))
    later = stamp(utcnow() + timedelta(hours=3, minutes=25))
    first = deliver(client, make_envelope, flight="ZZ411", sta=sta)
    pages = written(app, lambda: deliver(client, make_envelope, flight="ZZ411", sta=later))
    assert "flight_arrival" in pages, pages
    with app.app_context():
        assert get_db().execute("SELECT sta FROM flight WHERE id = ?",
                                (row(app, first)["flight_id"],)).fetchone()[0] == later  # type: ignore[index]
    made_before = stamp(utcnow() - timedelta(hours=1))
    pages = written(app, lambda: deliver(client, make_envelope, flight="ZZ411", sta=sta, created=made_before))
    assert not {"flight", "flight_arrival"} & set(pages), pages


def test_the_airport_filter_offers_the_airports_of_the_flights(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """The filter's airports come from the flights (flight_arr): each
    arrival airport of a report, once."""
    for flight, arr in (("ZZ412", "MAN"), ("ZZ413", "LHR"), ("ZZ414", "MAN")):
        deliver(client, make_envelope, flight=flight, arr=arr)
    with app.app_context():
        assert queue.airports(get_db()) == ["LHR", "MAN"]
    auth.login("officer")
    page = text(client.get("/triage/?arr=MAN&status=any"))
    assert "ZZ412" in page and "ZZ414" in page and "ZZ413" not in page
