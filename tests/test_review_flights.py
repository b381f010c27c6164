"""Airline security's view of its arriving flights: the list in the
officers' board order without the child flag, a busy flight's every report
on its own page, and nothing of another airline's flights, not even a
number."""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db, transaction
from crewreport.times import stamp

from .helpers import (
    AuthActions,
    KeySet,
    Make,
    board_flights,
    deliver,
    deliver_yy,
    login_as,
    row,
    text,
    update_report,
    utcnow,
    valid_body,
)


def test_reports_grouped_by_flight_in_board_order_without_the_child_flag(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    sta = stamp(utcnow() + timedelta(hours=2))
    adult = valid_body(people=[], indicators=[])
    child = valid_body(people=[], indicators=[], child_involved=True)
    routine_child = deliver(client, make_envelope, flight="ZZ31", sta=sta, urgency="routine", body=child)
    busy = [deliver(client, make_envelope, flight="ZZ30", sta=sta, urgency="immediate", body=adult) for _ in range(3)]
    later = deliver(client, make_envelope, flight="ZZ32", sta=stamp(utcnow() + timedelta(hours=9)), body=adult)
    late = deliver(client, make_envelope, flight="ZZ33", sta=stamp(utcnow() - timedelta(hours=1)), body=adult)
    auth.login("security")
    page = text(client.get("/review/"))
    flights = board_flights(page)
    # the officers' order but for child involvement, which the airline may not learn
    assert [(f["flight"], f["reports"]) for f in flights] == [
        ("ZZ30", busy), ("ZZ31", [routine_child]), ("ZZ32", [later]), ("ZZ33", [late])]
    assert [f["section"] for f in flights] == ["upcoming", "upcoming", "upcoming", "late"]
    assert flights[0]["report-count"] == "3"
    assert "data-child" not in page and "Child" not in page


def test_a_busy_flight_lists_every_report_on_its_own_page(client: FlaskClient, app: Flask, make_envelope: Make,
                                                          keyset: KeySet, auth: AuthActions) -> None:
    """The list shows the newest reports of a busy flight; the rest are on
    the flight's page, never out of the airline's sight (and never in
    another airline's)."""
    from crewreport import flights
    sta = stamp(utcnow() + timedelta(hours=1))
    ids = [deliver(client, make_envelope, flight="ZZ77", sta=sta) for _ in range(flights.LISTED_PER_FLIGHT + 2)]
    for n, rid in enumerate(ids):
        update_report(app, rid, received_at=stamp(utcnow() - timedelta(minutes=60 - n)))
    auth.login("security")
    listed = text(client.get("/review/"))
    assert ids[0] not in listed and ids[-1] in listed
    link = f'href="/review/reports/{ids[-1]}/flight"'
    assert f'<a {link}>2 earlier reports on the flight\'s page</a>' in listed
    page = text(client.get(f"/review/reports/{ids[-1]}/flight"))
    assert text(client.get(f"/review/reports/{ids[0]}/flight")) == page  # any of its reports leads there
    assert f'data-flight="ZZ77" data-sta="{sta}" data-report-count="{len(ids)}" data-section="upcoming"' in page
    assert ">Still to land or just landed<" in page and 'title="Highest urgency">Priority<' in page
    assert [r for r in ids if f'data-report-id="{r}"' in page] == ids
    assert page.index(ids[0]) < page.index(ids[-1])  # newest last
    assert "Meet aircraft" not in page and "Received" in page  # Border Force's status in outline
    assert client.get(f"/review/reports/{uuid.uuid4()}/flight").status_code == 404
    yy = deliver_yy(client, make_envelope, keyset)
    assert client.get(f"/review/reports/{yy}/flight").status_code == 404
    login_as(client, "security-yy")
    assert client.get(f"/review/reports/{ids[0]}/flight").status_code == 404
    assert client.get(f"/review/reports/{yy}/flight").status_code == 200
    for who, status in (("officer", 403), ("crew", 403)):
        login_as(client, who)
        assert client.get(f"/review/reports/{ids[0]}/flight").status_code == status, who


def request_steps(monkeypatch: pytest.MonkeyPatch, client: FlaskClient, path: str) -> tuple[Any, int]:
    """A GET and the SQLite VM steps the review view's queries took (a
    machine-independent stand-in for how long the answer took)."""
    from crewreport import review
    real, steps, seen = review.get_db, [0], []

    def counted() -> Any:
        db = real()
        if db not in seen:
            db.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1) or 0, 1)
            seen.append(db)
        return db
    monkeypatch.setattr(review, "get_db", counted)
    try:
        resp = client.get(path)
    finally:
        for db in seen:
            db.set_progress_handler(None, 1)
        monkeypatch.setattr(review, "get_db", real)
    return resp, steps[0]


def test_another_airlines_flight_answers_as_a_missing_one_in_body_and_work(
        client: FlaskClient, app: Flask, make_envelope: Make, keyset: KeySet, auth: AuthActions,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another airline's busy flight is a 404 like a flight that does not
    exist: same body, and no more work for the store (which a stopwatch over
    many requests would read as that flight's number of reports)."""
    yy = deliver_yy(client, make_envelope, keyset)
    with app.app_context():
        db = get_db()
        cols = [c[1] for c in db.execute("PRAGMA table_info(report)")]
        picked = ", ".join(f":{c}" if c in ("id", "reference") else c for c in cols)
        with transaction(db):
            for n in range(300):  # copies of the note on the same flight
                db.execute(f"INSERT INTO report ({', '.join(cols)}) SELECT {picked} FROM report WHERE id = :of",
                           {"id": str(uuid.uuid4()), "reference": f"R{n}", "of": yy})
    auth.login("security")
    other, other_steps = request_steps(monkeypatch, client, f"/review/reports/{yy}/flight")
    absent, absent_steps = request_steps(monkeypatch, client, f"/review/reports/{uuid.uuid4()}/flight")
    assert other.status_code == absent.status_code == 404
    assert text(other) == text(absent)
    assert abs(other_steps - absent_steps) <= 20, (other_steps, absent_steps)


def test_flight_links_say_nothing_of_other_airlines_flights(client: FlaskClient, app: Flask, make_envelope: Make,
                                                            keyset: KeySet, auth: AuthActions) -> None:
    """The flight ids are one sequence for every airline: shown in an
    airline's links, the gap between two of its flights counts the flights
    other airlines reported on in between (and names ids that are another
    airline's flights, not missing ones)."""
    first = deliver_yy(client, make_envelope, keyset)
    for n in range(3):
        deliver(client, make_envelope, flight=f"ZZ{n + 1}")
    second = deliver_yy(client, make_envelope, keyset, sta=stamp(utcnow() + timedelta(hours=20)))
    ids = [row(app, r)["flight_id"] for r in (first, second)]  # type: ignore[index]
    assert ids[1] - ids[0] == 4  # three ZZ flights in between
    login_as(client, "security-yy")
    listed = text(client.get("/review/"))
    assert listed.count('/flight"') == 2 and "/review/flights/" not in listed
    for flight_id in ids:
        assert f"/{flight_id}/" not in listed and f"/{flight_id}\"" not in listed
