"""One arriving flight is one element on the board (DESIGN 7), though each
crew member gives its arrival on their own tablet, minutes apart: a note
joins the flight its airline, number and arrival airport name when their
`sta` are within flights.SAME_FLIGHT, and takes that flight's `sta`."""
from __future__ import annotations

import json
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope, flights
from crewreport.db import get_db
from crewreport.times import stamp

from .helpers import AuthActions, Make, board_flights, deliver, row, text, utcnow


def claimed_sta(app: Flask, rid: str) -> str:
    """The sta the tablet signed (the envelope is kept as received)."""
    stored = json.loads(row(app, rid)["envelope"])  # type: ignore[index]
    return json.loads(envelope.b64u_decode(stored["protected"]))["sta"]


def test_notes_from_two_tablets_minutes_apart_make_one_flight(client: FlaskClient, app: Flask,
                                                             make_envelope: Make, auth: AuthActions) -> None:
    base = utcnow().replace(second=0, microsecond=0) + timedelta(hours=1)
    first = deliver(client, make_envelope, flight="ZZ202", sta=stamp(base))
    second = deliver(client, make_envelope, flight="ZZ202", sta=stamp(base + timedelta(minutes=2)))
    earlier = deliver(client, make_envelope, flight="ZZ202", sta=stamp(base - timedelta(minutes=50)))
    auth.login("officer")
    cards = [f for f in board_flights(text(client.get("/triage/"))) if f["flight"] == "ZZ202"]
    assert len(cards) == 1 and cards[0]["sta"] == stamp(base)  # the first note's arrival
    assert sorted(cards[0]["reports"]) == sorted([first, second, earlier])
    assert row(app, second)["sta"] == stamp(base)  # type: ignore[index]
    assert claimed_sta(app, second) == stamp(base + timedelta(minutes=2))  # the envelope as signed
    # the flight page decides for all three
    page = text(client.get(f"/triage/flights/ZZ/ZZ202/{stamp(base)}"))
    assert 'data-report-count="3"' in page


def test_the_same_number_another_day_or_elsewhere_is_another_flight(client: FlaskClient, app: Flask,
                                                                   make_envelope: Make, auth: AuthActions) -> None:
    base = utcnow().replace(second=0, microsecond=0) + timedelta(hours=1)
    today = deliver(client, make_envelope, flight="ZZ202", sta=stamp(base))
    tomorrow = deliver(client, make_envelope, flight="ZZ202", sta=stamp(base + timedelta(hours=24)))
    later = deliver(client, make_envelope, flight="ZZ202", sta=stamp(base + timedelta(hours=3, minutes=1)))
    manchester = deliver(client, make_envelope, flight="ZZ202", arr="MAN", sta=stamp(base + timedelta(minutes=5)))
    other = deliver(client, make_envelope, flight="ZZ203", sta=stamp(base + timedelta(minutes=5)))
    stas = {rid: row(app, rid)["sta"] for rid in (today, tomorrow, later, manchester, other)}  # type: ignore[index]
    assert stas == {today: stamp(base), tomorrow: stamp(base + timedelta(hours=24)),
                    later: stamp(base + timedelta(hours=3, minutes=1)),
                    manchester: stamp(base + timedelta(minutes=5)), other: stamp(base + timedelta(minutes=5))}


def test_two_notes_of_a_new_flight_in_one_batch_make_one_flight(client: FlaskClient, app: Flask,
                                                                make_envelope: Make) -> None:
    base = utcnow().replace(second=0, microsecond=0) + timedelta(hours=2)
    batch = [make_envelope(flight="ZZ404", sta=stamp(base + timedelta(minutes=m))) for m in (0, 3)]
    results = client.post("/api/v1/reports/batch", json={"envelopes": batch}).get_json()["results"]
    assert all("receipt" in r for r in results)
    ids = [json.loads(envelope.b64u_decode(e["protected"]))["id"] for e in batch]
    assert [row(app, rid)["sta"] for rid in ids] == [stamp(base)] * 2  # type: ignore[index]


def test_finding_the_flight_reads_the_index_never_the_flights_reports(app: Flask) -> None:
    """Two probes of report_flight (no timing here): a flight with thousands
    of reports, one tablet's flood say, costs each new note no more."""
    with app.app_context():
        db = get_db()
        statements: list[str] = []
        db.set_trace_callback(statements.append)
        try:
            assert flights.flight_sta(db, "ZZ", "ZZ1", "LHR", "2026-12-01T10:00:00Z") == "2026-12-01T10:00:00Z"
        finally:
            db.set_trace_callback(None)
        query = next(s for s in statements if "FROM report" in s)
        plan = [r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + query)]
    searches = [d for d in plan if d.startswith(("SEARCH", "SCAN report"))]
    assert len(searches) == 2 and all("INDEX report_flight" in d and "sta>" in d for d in searches), plan
