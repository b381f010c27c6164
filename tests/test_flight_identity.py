"""One arriving flight is one element on the board (DESIGN 7), though crew on
different tablets give its arrival minutes apart, and though a delay moves
it: the intake puts each report on its flight (`flights.place`), the flight
takes its newest report's arrival, and each report keeps its own."""
from __future__ import annotations

import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import db as store
from crewreport.db import get_db
from crewreport.display import when
from crewreport.times import parse_utc, stamp

from .helpers import (
    AuthActions,
    Make,
    board_flights,
    count,
    deliver,
    report_line,
    row,
    store_before,
    text,
    update_report,
    utcnow,
)


def flight_of(app: Flask, report_id: str) -> int:
    return row(app, report_id)["flight_id"]  # type: ignore[index]


def board(client: FlaskClient, query: str = "status=any") -> list[dict[str, object]]:
    return board_flights(text(client.get(f"/triage/?{query}")))


def test_two_crews_minutes_apart_make_one_flight_with_the_newest_arrival(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """Crew A gives 14:05 from the moving map, crew B 14:20 from the
    announcement: one element, two reports, the arrival B gave last."""
    a_sta = stamp(utcnow() + timedelta(hours=2, minutes=5))
    b_sta = stamp(utcnow() + timedelta(hours=2, minutes=20))
    a = deliver(client, make_envelope, flight="ZZ300", sta=a_sta)
    b = deliver(client, make_envelope, flight="ZZ300", sta=b_sta, urgency="immediate")
    other = deliver(client, make_envelope, flight="ZZ301", sta=a_sta)
    assert flight_of(app, a) == flight_of(app, b) != flight_of(app, other)
    assert (row(app, a)["sta"], row(app, b)["sta"]) == (a_sta, b_sta)  # type: ignore[index]  # each keeps its own
    auth.login("officer")
    flights = board(client)
    assert [(f["flight"], f["report-count"], f["reports"]) for f in flights] == [
        ("ZZ301", "1", [other]), ("ZZ300", "2", [a, b])]
    assert flights[1]["sta"] == b_sta and flights[1]["urgency"] == "immediate"
    page = text(client.get(f"/triage/flights/{flight_of(app, a)}"))
    assert f'data-flight="ZZ300" data-sta="{b_sta}" data-report-count="2"' in page
    opened = text(client.get(f"/triage/reports/{a}"))
    assert "all 2 reports of this flight" in opened
    assert f'data-countdown datetime="{b_sta}"' in opened and "(this note gave " in opened
    auth.logout()
    auth.login("security")  # airline security's list groups the same way
    review = text(client.get("/review/"))
    assert review.count('data-flight="ZZ300"') == 1 and f'data-sta="{b_sta}"' in review


def test_a_delay_moves_the_flight_and_later_estimates_still_join_it(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """The first note's arrival has passed, but a later note says the flight
    is delayed: the flight is still to land, at the later time; and a third
    estimate, near the new one but far from the first, joins it too."""
    first = deliver(client, make_envelope, flight="ZZ310", sta=stamp(utcnow() + timedelta(hours=1)))
    update_report(app, first, sta=stamp(utcnow() - timedelta(minutes=20)),
                  received_at=stamp(utcnow() - timedelta(hours=2)))
    delayed = stamp(utcnow() + timedelta(hours=2, minutes=30))
    second = deliver(client, make_envelope, flight="ZZ310", sta=delayed)
    third = deliver(client, make_envelope, flight="ZZ310", sta=stamp(utcnow() + timedelta(hours=4)))
    assert flight_of(app, first) == flight_of(app, second) == flight_of(app, third)
    auth.login("officer")
    [flight] = board(client)
    assert flight["section"] == "upcoming" and flight["report-count"] == "3"
    assert flight["sta"] == row(app, third)["sta"]  # type: ignore[index]


def test_the_same_number_another_day_airport_or_airline_is_another_flight(
        client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    sta = utcnow() + timedelta(hours=2)
    today = deliver(client, make_envelope, flight="ZZ320", sta=stamp(sta))
    edge = deliver(client, make_envelope, flight="ZZ320", sta=stamp(sta + timedelta(hours=3)))
    beyond = deliver(client, make_envelope, flight="ZZ320", sta=stamp(sta + timedelta(hours=6, seconds=1)))
    tomorrow = deliver(client, make_envelope, flight="ZZ320", sta=stamp(sta + timedelta(days=1)))
    elsewhere = deliver(client, make_envelope, flight="ZZ320", arr="MAN", sta=stamp(sta))
    assert flight_of(app, today) == flight_of(app, edge)  # within three hours of the flight's arrival
    assert len({flight_of(app, today), flight_of(app, beyond), flight_of(app, tomorrow),
                flight_of(app, elsewhere)}) == 4
    with app.app_context():
        from crewreport import flights  # the rule itself, for another airline's number
        db = get_db()
        ours = flight_of(app, tomorrow)
        assert flights.place(db, "YY", "ZZ320", "LHR", stamp(sta + timedelta(days=1))) != ours
        # one number landing at two airports (a domestic leg): two places to meet
        assert flights.place(db, "ZZ", "ZZ320", "MAN", stamp(sta + timedelta(days=1))) != ours
        assert flights.place(db, "ZZ", "ZZ320", "LHR", stamp(sta + timedelta(days=1, minutes=5))) == ours
        # between two flights of one number, the nearer one
        later = flights.place(db, "ZZ", "ZZ320", "LHR", stamp(sta + timedelta(days=1, hours=4)))
        assert later != ours
        assert flights.place(db, "ZZ", "ZZ320", "LHR", stamp(sta + timedelta(days=1, hours=2, minutes=40))) == later


def test_a_batch_places_its_notes_of_one_flight_together(client: FlaskClient, app: Flask,
                                                         make_envelope: Make) -> None:
    envs = [make_envelope(flight="ZZ330", sta=stamp(utcnow() + timedelta(hours=1, minutes=m))) for m in (0, 7, 15)]
    resp = client.post("/api/v1/reports/batch", json={"envelopes": envs})
    assert resp.status_code == 200 and all("receipt" in r for r in resp.get_json()["results"])
    assert count(app, "SELECT count(DISTINCT flight_id) FROM report WHERE flight = 'ZZ330'") == 1
    assert count(app, "SELECT count(*) FROM flight WHERE flight = 'ZZ330'") == 1


def test_purge_removes_a_flight_only_with_its_last_report(client: FlaskClient, app: Flask, make_envelope: Make,
                                                          runner: FlaskCliRunner) -> None:
    sta = stamp(utcnow() + timedelta(hours=1))
    kept, purged = (deliver(client, make_envelope, flight="ZZ340", sta=sta) for _ in range(2))
    alone = deliver(client, make_envelope, flight="ZZ341", sta=sta)
    alone_flight = flight_of(app, alone)  # the newest flight
    long_ago = stamp(utcnow() - timedelta(days=400))
    for rid in (purged, alone):
        update_report(app, rid, status="referred", closed_at=long_ago)
    assert runner.invoke(args=["purge"]).exit_code == 0
    assert row(app, purged) is None and row(app, alone) is None
    assert [tuple(r) for r in sqlite_rows(app, "SELECT flight FROM flight")] == [("ZZ340",)]
    assert count(app, "SELECT count(*) FROM flight WHERE id = ?", flight_of(app, kept)) == 1
    # a deleted flight's id is never another flight's: its old address finds nothing
    assert flight_of(app, deliver(client, make_envelope, flight="ZZ342", sta=sta)) > alone_flight


def sqlite_rows(app: Flask, sql: str) -> list[sqlite3.Row]:
    with app.app_context():
        return get_db().execute(sql).fetchall()


def test_reports_stored_before_flights_had_rows_are_put_on_flights_as_the_intake_would(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0009 puts the reports of one airline, number and airport whose
    arrivals are within three hours of each other on one flight, at the
    arrival of the report made last (never after its receipt)."""
    t = "2026-11-30T10:00:00Z"
    conn = store_before(tmp_path, monkeypatch, "_flight.sql", t)
    late = "2026-11-30T12:00:00Z"  # a receipt two and a half hours after it was made
    for n, (number, sta, created, received) in enumerate([
            ("ZZ1", "2026-11-30T14:00:00Z", "2026-11-30T10:30:40Z", "2026-11-30T10:30:00Z"),  # a clock 40 s fast
            ("ZZ1", "2026-11-30T14:00:00Z", "2026-11-30T09:30:00Z", late),
            ("ZZ1", "2026-11-30T14:20:00Z", t, t), ("ZZ2", "2026-11-30T14:00:00Z", t, t),
            ("ZZ1", "2026-11-30T16:05:00Z", "2026-11-30T13:00:00Z", "2026-11-30T10:45:00Z")]):  # a clock proven fast
        conn.execute(
            "INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
            " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
            " receipt_signature, status_changed_at) VALUES (?, ?, 'dev-1', 'ZZ', ?, 'CDG', 'LHR', ?,"
            " 'routine', 2, ?, '[]', '{}', 'abc', ?, 'rc', 'sg', ?)",
            (f"r-{n}", f"REF-{n}", number, sta, created, received, received))
    store.migrate(conn)
    placed = conn.execute("SELECT r.id, f.airline, f.flight, f.sta FROM report r JOIN flight f ON f.id = r.flight_id"
                          " ORDER BY r.id").fetchall()
    assert [tuple(r) for r in placed] == [
        ("r-0", "ZZ", "ZZ1", "2026-11-30T14:00:00Z"), ("r-1", "ZZ", "ZZ1", "2026-11-30T14:00:00Z"),
        ("r-2", "ZZ", "ZZ1", "2026-11-30T14:00:00Z"), ("r-3", "ZZ", "ZZ2", "2026-11-30T14:00:00Z"),
        ("r-4", "ZZ", "ZZ1", "2026-11-30T14:00:00Z")]
    # each flight's estimate, as flights.estimated has it: r-0's, made on a clock
    # a little fast and counted at its receipt (10:30), not r-2's (10:00), nor
    # r-4's, whose clock is proven fast (its "13:00" would be the freshest)
    assert [tuple(r) for r in conn.execute("SELECT flight, sta, estimated FROM flight ORDER BY id")] == [
        ("ZZ1", "2026-11-30T14:00:00Z", "2026-11-30T10:30:00Z"), ("ZZ2", "2026-11-30T14:00:00Z", t)]
    # and the intake's next flight gets the next id
    assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'flight'").fetchone()[0] == 2
    assert conn.execute("SELECT count(*) FROM report WHERE flight_id IS NULL").fetchone()[0] == 0


@pytest.mark.parametrize("late_note", ["queued offline since the first estimate", "from a tablet whose clock is slow"])
def test_an_older_estimate_received_last_does_not_move_the_flight_back(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions, late_note: str) -> None:
    """The crew's freshest word is that the flight lands in 90 minutes. A note
    that reaches the intake after it but says the flight landed an hour ago
    was made earlier: written four hours ago when the flight was still on
    time and queued offline since, or written now on a tablet whose clock is
    two hours slow (its `sta` from "lands in 0:50" on that clock). The flight
    is still to land, at the freshest estimate (the reverted fca5943 failed
    the same way, with the first note's sta)."""
    now = utcnow().replace(microsecond=0)
    fresh_sta = stamp(now + timedelta(minutes=90))
    fresh = deliver(client, make_envelope, flight="ZZ350", created=stamp(now - timedelta(minutes=10)), sta=fresh_sta)
    if late_note.startswith("queued"):
        made, stale_sta = now - timedelta(hours=4), now - timedelta(minutes=70)
    else:
        made = now - timedelta(hours=2)
        stale_sta = made + timedelta(minutes=50)
    stale = deliver(client, make_envelope, flight="ZZ350", created=stamp(made), sta=stamp(stale_sta))
    assert flight_of(app, fresh) == flight_of(app, stale)  # one flight, as it should be
    auth.login("officer")
    [flight] = board(client)
    assert (flight["section"], flight["sta"]) == ("upcoming", fresh_sta), late_note
    assert f'data-countdown datetime="{fresh_sta}"' in text(client.get(f"/triage/reports/{stale}"))


def test_a_report_of_a_flight_still_to_land_is_not_marked_received_after_landing(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """A note made on time (landing in 3 h at the time) reaches the intake
    ten minutes after that first estimate; a delay was announced since and
    the flight lands in an hour. The board, the flight page, the report page
    and the airline's list say how long before the landing it came, as they
    say of the flight, not "Late, 10 min after landing" under a flight still
    to land."""
    now = utcnow().replace(microsecond=0)
    first_sta = now - timedelta(minutes=10)
    early = deliver(client, make_envelope, flight="ZZ360", created=stamp(first_sta - timedelta(hours=3)),
                    sta=stamp(first_sta))
    update_report(app, early, received_at=stamp(now))
    delayed = deliver(client, make_envelope, flight="ZZ360", sta=stamp(now + timedelta(hours=1)))
    assert flight_of(app, early) == flight_of(app, delayed)
    auth.login("officer")
    board_page = text(client.get("/triage/"))
    [flight] = board_flights(board_page)
    assert flight["section"] == "upcoming"
    pages = {"board": report_line(board_page, early),
             "flight page": report_line(text(client.get(f"/triage/flights/{flight_of(app, early)}")), early),
             "report page": text(client.get(f"/triage/reports/{early}"))}
    auth.logout()
    auth.login("security")
    pages["airline's list"] = report_line(text(client.get("/review/")), early)
    pages["airline's report page"] = text(client.get(f"/review/reports/{early}"))
    for name, html in pages.items():
        assert "after landing" not in html and "is-late" not in html and ">Late<" not in html, name
        assert "1 h 00 min before landing" in html, name


def test_stale_estimates_received_one_after_another_never_move_the_flight(
        client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    """Two notes queued offline since take-off arrive after the crew's
    freshest word, the older first: neither gives the flight its arrival
    (the flight remembers when its estimate was made, not the last note's)."""
    now = utcnow().replace(microsecond=0)
    fresh_sta = stamp(now + timedelta(minutes=90))
    fresh = deliver(client, make_envelope, flight="ZZ370", created=stamp(now - timedelta(minutes=5)), sta=fresh_sta)
    for hours_ago in (5, 4):
        deliver(client, make_envelope, flight="ZZ370", created=stamp(now - timedelta(hours=hours_ago)),
                sta=stamp(now - timedelta(minutes=30)))
    assert count(app, "SELECT count(*) FROM report WHERE flight_id = ?", flight_of(app, fresh)) == 3
    assert [tuple(r) for r in sqlite_rows(app, "SELECT sta FROM flight WHERE flight = 'ZZ370'")] == [(fresh_sta,)]


def test_a_note_joins_the_nearer_of_two_flights_of_its_number(app: Flask) -> None:
    """The same number lands at 10:00 and again at 14:00 (flights made in
    that order): a note saying 11:00 is the first's, one saying 13:00 the
    second's."""
    with app.app_context():
        from crewreport import flights
        db = get_db()
        at = (utcnow() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
        morning = flights.place(db, "ZZ", "ZZ380", "LHR", stamp(at))
        afternoon = flights.place(db, "ZZ", "ZZ380", "LHR", stamp(at + timedelta(hours=4)))
        assert flights.place(db, "ZZ", "ZZ380", "LHR", stamp(at + timedelta(hours=1))) == morning
        assert flights.place(db, "ZZ", "ZZ380", "LHR", stamp(at + timedelta(hours=3))) == afternoon


def test_a_note_as_near_to_two_flights_joins_the_newer(app: Flask) -> None:
    """10:00 and 14:00 of one number, a note saying 12:00: the flight made
    last, as the intake has always chosen (`id DESC`); a tablet whose clock
    is proven fast ('') moves neither."""
    with app.app_context():
        from crewreport import flights
        db = get_db()
        at = (utcnow() + timedelta(days=2)).replace(hour=10, minute=0, second=0, microsecond=0)
        morning = flights.place(db, "ZZ", "ZZ381", "LHR", stamp(at), "")
        afternoon = flights.place(db, "ZZ", "ZZ381", "LHR", stamp(at + timedelta(hours=4)), "")
        assert morning != afternoon
        assert flights.place(db, "ZZ", "ZZ381", "LHR", stamp(at + timedelta(hours=2)), "") == afternoon


def test_a_later_note_with_the_same_arrival_makes_the_estimate_newer(app: Flask) -> None:
    """The arrival stays (and its index is not written), but the flight's
    estimate is now the later note's: a note made between the two, giving
    another arrival, is older than the freshest estimate and moves nothing."""
    with app.app_context():
        from crewreport import flights
        db = get_db()
        at = utcnow() + timedelta(hours=3)
        first, second, between = (stamp(utcnow() - timedelta(minutes=m)) for m in (120, 60, 90))
        flight_id = flights.place(db, "ZZ", "ZZ382", "LHR", stamp(at), first)
        assert flights.place(db, "ZZ", "ZZ382", "LHR", stamp(at), second) == flight_id
        assert tuple(db.execute("SELECT sta, estimated FROM flight WHERE id = ?", (flight_id,)).fetchone()) == (
            stamp(at), second)
        assert flights.place(db, "ZZ", "ZZ382", "LHR", stamp(at + timedelta(minutes=20)), between) == flight_id
        assert tuple(db.execute("SELECT sta, estimated FROM flight WHERE id = ?", (flight_id,)).fetchone()) == (
            stamp(at), second)


def test_landing_and_receipt_at_the_same_second(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    """At the second of landing a flight is still to land; a note received
    at the second its flight lands came before the landing, not after."""
    sta = utcnow().replace(microsecond=0) + timedelta(hours=1)
    now_landing = deliver(client, make_envelope, flight="ZZ390", sta=stamp(sta))
    on_the_dot = deliver(client, make_envelope, flight="ZZ391", sta=stamp(sta - timedelta(hours=2)))
    update_report(app, on_the_dot, received_at=stamp(sta - timedelta(hours=2)))
    with app.app_context():
        from crewreport import flights
        found, *_ = flights.load_flights(get_db(), "", [], sta, page=1, per_page=10, child_first=True)
    sections = {f.flight: f.section for f in found}
    assert sections == {"ZZ390": "upcoming", "ZZ391": "landed"}, (now_landing, sections)


def test_a_tablet_whose_clock_is_fast_does_not_move_the_flight_later(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """Ten minutes ago a crew said the flight lands in an hour. Now a note
    comes from a tablet whose clock is two hours fast (an old crew app, or a
    clock changed since its offset was learnt): its `created` is two hours
    after its receipt, which the server sees, and its "lands in 0:50" gives an
    arrival two hours late. The intake bounds that note's `created` by its
    receipt, so it counts as the freshest estimate and the whole flight moves
    to "lands in 2 h 50": officers would plan for an aircraft that lands in 50
    minutes. (Before flights had rows that note stood apart and the right
    element stayed on the board; a slow clock is already handled.)"""
    now = utcnow().replace(microsecond=0)
    fresh_sta = now + timedelta(minutes=50)
    fresh = deliver(client, make_envelope, flight="ZZ370", created=stamp(now - timedelta(minutes=10)),
                    sta=stamp(fresh_sta))
    fast_clock = now + timedelta(hours=2)
    fast = deliver(client, make_envelope, flight="ZZ370", created=stamp(fast_clock),
                   sta=stamp(fast_clock + timedelta(minutes=50)))
    assert flight_of(app, fresh) == flight_of(app, fast)
    auth.login("officer")
    [flight] = board(client)
    shown = parse_utc(str(flight["sta"]))
    assert abs(shown - fresh_sta) <= timedelta(minutes=5), f"the board says the flight lands at {flight['sta']}"


def early_note_of_delayed_flight(client: FlaskClient, app: Flask, make_envelope: Make) -> tuple[str, str]:
    """A note made on time (landing 10 min ago, as it said then) received now;
    since then a delay: the flight lands in an hour. (report id, flight sta)"""
    now = utcnow().replace(microsecond=0)
    first_sta = now - timedelta(minutes=10)
    early = deliver(client, make_envelope, flight="ZZ380", created=stamp(first_sta - timedelta(hours=3)),
                    sta=stamp(first_sta))
    update_report(app, early, received_at=stamp(now))
    delayed = stamp(now + timedelta(hours=1))
    assert flight_of(app, deliver(client, make_envelope, flight="ZZ380", sta=delayed)) == flight_of(app, early)
    return early, delayed


def fact(html: str, term: str) -> str:
    m = re.search(rf"<dt>{term}</dt><dd>(.*?)</dd>", html, re.S)
    assert m, f"no {term!r} on the page"
    return m.group(1)


@pytest.mark.parametrize(("who", "path", "received"), [
    ("security", "/review/reports/{}", "Received"),  # the airline's page of the report
    ("officer", "/triage/reports/{}/nrm", "Report received"),  # the NRM prompt sheet's flight context
])
def test_a_reports_pages_give_the_arrival_its_lead_time_is_counted_from(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions, who: str, path: str,
        received: str) -> None:
    """A page that says a report came "1 h 00 min before landing" (against
    the flight's arrival, as the lists and the report page say) gives that
    arrival as "Scheduled arrival", not the note's own, ten minutes ago:
    "scheduled 10 min ago, received now, 1 h before landing" contradicts
    itself, and "10 min after landing" of a flight still to land misleads."""
    early, flight_sta = early_note_of_delayed_flight(client, app, make_envelope)
    auth.login(who)
    page = text(client.get(path.format(early)))
    assert "1 h 00 min before landing" in fact(page, received)
    assert fact(page, "Scheduled arrival").startswith(when(flight_sta))


def test_one_flight_stored_before_the_upgrade_at_arrivals_minutes_apart_is_one_flight_after_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store is upgraded while ZZ1 is in the air: its two crews gave its
    arrival as 14:00 and 14:12, which the board of the day showed as two
    flights. After 0009 the board (and the airline's list, for as long as the
    reports are kept) must show one ZZ1 landing at the freshest estimate, as
    it does for every flight reported after the upgrade; the next day's ZZ1
    stays another flight."""
    t = "2026-11-30T08:00:00Z"
    conn = store_before(tmp_path, monkeypatch, "_flight.sql", t)
    for n, (sta, made) in enumerate([("2026-11-30T14:12:00Z", "2026-11-30T10:00:00Z"),
                                     ("2026-11-30T14:00:00Z", "2026-11-30T09:00:00Z"),
                                     ("2026-12-01T14:00:00Z", "2026-12-01T09:00:00Z")]):
        conn.execute(
            "INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
            " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
            " receipt_signature, status_changed_at) VALUES (?, ?, 'dev-1', 'ZZ', 'ZZ1', 'CDG', 'LHR', ?,"
            " 'routine', 2, ?, '[]', '{}', 'abc', ?, 'rc', 'sg', ?)", (f"r-{n}", f"REF-{n}", sta, made, made, made))
    store.migrate(conn)
    placed = dict(conn.execute("SELECT id, flight_id FROM report").fetchall())
    assert placed["r-0"] == placed["r-1"] != placed["r-2"]
    assert conn.execute("SELECT sta FROM flight WHERE id = ?", (placed["r-0"],)).fetchone()[0] == \
        "2026-11-30T14:12:00Z"


def test_when_a_report_was_made_as_far_as_the_server_can_tell() -> None:
    from crewreport.flights import estimated
    received = "2026-11-30T12:00:00Z"
    assert estimated("2026-11-30T11:10:00Z", received) == "2026-11-30T11:10:00Z"  # queued 50 min
    assert estimated("2026-11-30T12:01:00Z", received) == received  # a clock a minute fast: never after receipt
    assert estimated("2026-11-30T12:01:01Z", received) == ""  # proven fast: older than any estimate
