"""The Border Force board over the Flask test client: reports grouped by
arriving flight, their order, filters, pages, the refresh and its new marks,
the queries at 10,000 reports, and the CSV export with its formula guard."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from crewreport import flights
from crewreport.db import WRITE_WAIT, get_db, transaction
from crewreport.times import stamp
from crewreport.triage import queue, views

from .helpers import (
    AuthActions,
    Make,
    board_flights,
    bulk_insert,
    deliver,
    events,
    report_line,
    row,
    text,
    update_report,
    utcnow,
    valid_body,
)


def queue_ids(client: FlaskClient, query: str = "status=any") -> list[str]:
    """The report ids on a board page, flight after flight."""
    resp = client.get(f"/triage/?{query}")
    assert resp.status_code == 200
    return [rid for f in board_flights(text(resp)) for rid in f["reports"]]


def flights_on(client: FlaskClient, query: str = "status=any") -> list[dict[str, Any]]:
    resp = client.get(f"/triage/?{query}")
    assert resp.status_code == 200
    return board_flights(text(resp))


# -- the queue -----------------------------------------------------------------------------

def test_board_groups_by_flight_and_orders_by_landing_child_urgency(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    soon = stamp(utcnow() + timedelta(hours=2))  # one landing time, even if a second ticks between deliveries
    adult = valid_body(people=[{"role": "possible_victim", "age_range": "25_39"}], indicators=[])
    child = valid_body(people=[], indicators=["child_dressed_older"])
    later = deliver(client, make_envelope, flight="ZZ1", sta=stamp(utcnow() + timedelta(hours=5)),
                    urgency="immediate", body=child)
    routine = deliver(client, make_envelope, flight="ZZ2", sta=soon, urgency="routine", body=adult)
    immediate = deliver(client, make_envelope, flight="ZZ3", sta=soon, urgency="immediate", body=adult)
    child_routine = deliver(client, make_envelope, flight="ZZ4", sta=soon, urgency="routine", body=child)
    # three reports on one flight: one row, newest last, highest urgency shown
    first = deliver(client, make_envelope, flight="ZZ5", sta=soon, urgency="routine", body=adult)
    second = deliver(client, make_envelope, flight="ZZ5", sta=soon, urgency="immediate", body=adult)
    third = deliver(client, make_envelope, flight="ZZ5", sta=soon, urgency="routine", body=adult)
    update_report(app, first, received_at=stamp(utcnow() - timedelta(minutes=5)))
    update_report(app, third, received_at=stamp(utcnow() + timedelta(seconds=5)))
    # the same flight number on another day is another flight
    other_day = deliver(client, make_envelope, flight="ZZ5", sta=stamp(utcnow() + timedelta(hours=26)), body=adult)
    auth.login("officer")
    flights = flights_on(client)
    assert [(f["flight"], f["reports"]) for f in flights] == [
        ("ZZ4", [child_routine]), ("ZZ3", [immediate]), ("ZZ5", [first, second, third]), ("ZZ2", [routine]),
        ("ZZ1", [later]), ("ZZ5", [other_day])]
    assert [f["report-count"] for f in flights] == ["1", "1", "3", "1", "1", "1"]
    assert [f.get("child") for f in flights] == ["true", None, None, None, "true", None]
    assert flights[0]["sta"] == soon and flights[2]["urgency"] == "immediate"
    assert ">Immediate<" in flights[2]["html"] and "3 reports" in flights[2]["html"]
    assert "to LHR" in flights[2]["html"] and "nobody has it" in flights[2]["html"]
    with app.app_context():
        zz5 = get_db().execute("SELECT flight_id FROM report WHERE id = ?", (first,)).fetchone()[0]
    assert f'href="/triage/flights/{zz5}"' in flights[2]["html"]


def test_late_arrivals_never_rank_above_flights_still_to_land(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """A tablet that claims a landing long past, or any note received after
    its flight landed, is listed among late arrivals, below every flight
    still to land and below flights that landed with their reports on time.
    A flight that landed minutes ago with its note in before stays at the top."""
    upcoming = deliver(client, make_envelope, flight="ZZ10", sta=stamp(utcnow() + timedelta(hours=20)),
                       urgency="routine")
    # made on a clock a month slow (the oldest a note may be) and claiming to land a minute later
    absurd_created = utcnow() - timedelta(days=29)
    absurd = deliver(client, make_envelope, flight="ZZ11", urgency="immediate", created=stamp(absurd_created),
                     sta=stamp(absurd_created + timedelta(minutes=1)), body=valid_body(child_involved=True))
    late = deliver(client, make_envelope, flight="ZZ12", sta=stamp(utcnow() - timedelta(minutes=1)),
                   urgency="immediate")
    update_report(app, absurd, received_at=stamp(utcnow() - timedelta(minutes=1)))  # late ones: newest receipt first
    landed = deliver(client, make_envelope, flight="ZZ13", sta=stamp(utcnow() + timedelta(hours=1)),
                     urgency="routine")
    update_report(app, landed, sta=stamp(utcnow() - timedelta(minutes=90)),
                  received_at=stamp(utcnow() - timedelta(hours=2)))
    # landed two minutes ago, its note in well before: passengers are still at the gate
    just = deliver(client, make_envelope, flight="ZZ14", sta=stamp(utcnow() + timedelta(hours=1)),
                   urgency="routine")
    update_report(app, just, sta=stamp(utcnow() - timedelta(minutes=2)),
                  received_at=stamp(utcnow() - timedelta(minutes=22)))
    auth.login("officer")
    for query in ("", "status=any", "urgency=immediate", "child=1"):
        flights = flights_on(client, query)
        sections = [f["section"] for f in flights]
        assert sections == sorted(sections, key=["upcoming", "landed", "late"].index), (query, sections)
    flights = flights_on(client, "status=any")
    assert [(f["flight"], f["section"]) for f in flights] == [
        ("ZZ14", "upcoming"), ("ZZ10", "upcoming"), ("ZZ13", "landed"),
        ("ZZ12", "late"), ("ZZ11", "late")]  # late ones: newest receipt first
    assert [f["reports"] for f in flights] == [[just], [upcoming], [landed], [late], [absurd]]
    page = text(client.get("/triage/?status=any"))
    heads = re.findall(r'class="board-section" data-section="(\w+)"><h2>([^<]+)', page)
    assert heads == [("upcoming", "Still to land or just landed"), ("landed", "Landed"),
                     ("late", "Arrived after landing ")]


def test_landed_flights_stay_on_the_board_for_a_while(client: FlaskClient, app: Flask, make_envelope: Make,
                                                      auth: AuthActions) -> None:
    decided = deliver(client, make_envelope, flight="ZZ20")
    long_ago = deliver(client, make_envelope, flight="ZZ21")
    still_open = deliver(client, make_envelope, flight="ZZ22")
    closed = stamp(utcnow())
    update_report(app, decided, status="no_further_action", closed_at=closed,
                  sta=stamp(utcnow() - queue.LANDED_VISIBLE + timedelta(minutes=10)),
                  received_at=stamp(utcnow() - timedelta(hours=3)))
    update_report(app, long_ago, status="referred", closed_at=closed,
                  sta=stamp(utcnow() - queue.LANDED_VISIBLE - timedelta(minutes=10)),
                  received_at=stamp(utcnow() - timedelta(hours=4)))
    update_report(app, still_open, sta=stamp(utcnow() - timedelta(days=1)),
                  received_at=stamp(utcnow() - timedelta(days=1, hours=1)))
    auth.login("officer")
    flights = flights_on(client, "")
    assert [(f["flight"], f["section"]) for f in flights] == [("ZZ20", "landed"), ("ZZ22", "landed")]
    assert "section-landed" in flights[0]["html"].split(">")[0]
    assert "No further action" in flights[0]["html"]
    assert [f["flight"] for f in flights_on(client, "status=open")] == ["ZZ22"]


def test_a_busy_flight_lists_its_newest_reports_and_links_the_rest(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    sta = stamp(utcnow() + timedelta(hours=1))
    ids = [deliver(client, make_envelope, flight="ZZ77", sta=sta) for _ in range(flights.LISTED_PER_FLIGHT + 2)]
    for n, rid in enumerate(ids):
        update_report(app, rid, received_at=stamp(utcnow() - timedelta(minutes=60 - n)))
    auth.login("officer")
    [busy] = flights_on(client)
    assert busy["report-count"] == str(len(ids))
    assert busy["reports"] == ids[2:]  # the newest, newest last
    assert "2 earlier reports on the flight's page" in busy["html"]


def test_an_empty_board_says_none_and_a_flight_names_its_airline(client: FlaskClient, app: Flask,
                                                                make_envelope: Make, auth: AuthActions) -> None:
    auth.login("officer")
    page = text(client.get("/triage/?status=any"))
    assert '<span id="queue-total">0</span> flights' in page and '<span id="queue-reports">0</span> reports' in page
    data = client.get("/triage/queue.json?status=any&since=2026-01-01T00:00:00Z").get_json()
    assert (data["total"], data["reports"], data["ids"]) == (0, 0, [])
    assert "new-elsewhere" not in data["pager"]  # nothing new anywhere
    deliver(client, make_envelope, flight="ZZ40")
    [flight] = flights_on(client)
    assert (flight["airline"], flight["flight"]) == ("ZZ", "ZZ40")


def test_each_look_says_from_when_a_refresh_counts_a_report_as_arrived(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """The open board decides "just arrived" (and alerts) by the server's own
    times: each line's receipt time, against the previous look's time less the
    longest a receipt can wait for the store's write lock."""
    rid = deliver(client, make_envelope, flight="ZZ41")
    stored = row(app, rid)
    assert stored is not None
    received = stored["received_at"]
    auth.login("officer")
    before = stamp(datetime.now(UTC) - queue.ARRIVAL_SLACK)
    page = text(client.get("/triage/"))
    data = client.get("/triage/queue.json").get_json()
    after = stamp(datetime.now(UTC) - queue.ARRIVAL_SLACK)
    [looked] = re.findall(r'id="queue"[^>]*data-arrivals-after="([^"]+)"', page)
    assert before <= looked <= data["arrivals_after"] <= after
    assert data["arrivals_after"] == stamp(datetime.fromisoformat(data["now"]) - queue.ARRIVAL_SLACK)
    for html in (page, data["html"]):
        assert f'data-received="{received}"' in report_line(html, rid).split(">")[0]
    with app.app_context():  # a receipt stamped before the lock may be stored this much later
        waited = timedelta(milliseconds=get_db().execute("PRAGMA busy_timeout").fetchone()[0])
    assert waited == timedelta(seconds=WRITE_WAIT)
    assert 2 * waited < queue.ARRIVAL_SLACK  # a group commit's wait behind the one before, then its own


def test_queue_filters(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    lhr = deliver(client, make_envelope, flight="ZZ31", arr="LHR", urgency="priority",
                  sta=stamp(utcnow() + timedelta(hours=3)))
    man = deliver(client, make_envelope, flight="ZZ32", arr="MAN", urgency="routine",
                  sta=stamp(utcnow() + timedelta(hours=12)))
    gone = deliver(client, make_envelope, flight="ZZ33", arr="LGW", urgency="immediate",
                   sta=stamp(utcnow() + timedelta(hours=1)))
    update_report(app, gone, sta=stamp(utcnow() - timedelta(hours=30)), status="referred", closed_at=stamp(utcnow()))
    auth.login("officer")
    assert set(queue_ids(client, "status=any")) == {lhr, man, gone}
    assert queue_ids(client, "") == [lhr, man]  # default: open reports only
    assert queue_ids(client, "status=any&arr=man") == [man]
    assert queue_ids(client, "status=closed") == [gone]
    assert queue_ids(client, "status=received") == [lhr, man]
    assert queue_ids(client, "status=any&urgency=immediate") == [gone]
    assert queue_ids(client, "status=any&window=6h") == [lhr]
    assert queue_ids(client, "status=any&window=24h") == [lhr, man]
    assert queue_ids(client, "status=any&window=upcoming") == [lhr, man]
    assert queue_ids(client, "status=any&window=past") == [gone]
    assert queue_ids(client, "status=any&mine=1") == []
    with app.app_context():
        officer = get_db().execute("SELECT id FROM user WHERE username = 'officer'").fetchone()["id"]
    update_report(app, man, assignee_id=officer)
    assert queue_ids(client, "status=any&mine=1") == [man]
    adult = deliver(client, make_envelope, body=valid_body(people=[], indicators=[]),
                    sta=stamp(utcnow() + timedelta(hours=30)))
    assert adult in queue_ids(client, "status=any")
    assert queue_ids(client, "status=any&child=1") == [lhr, man, gone]  # the default body has a 12-17
    assert 'id="f-child" name="child" value="1" checked' in text(client.get("/triage/?child=1"))
    update_report(app, adult, status="referred", sta=stamp(utcnow() - timedelta(hours=30)))
    # unknown values are dropped, said so, and never reach SQL
    resp = client.get("/triage/?status=x';DROP TABLE report;--&arr=12345&window=forever")
    assert resp.status_code == 200
    assert "Ignored an unrecognised value for: arrival airport, status, time window" in text(resp)
    assert {rid for f in board_flights(text(resp)) for rid in f["reports"]} == {lhr, man}


def test_queue_shows_countdown_urgency_assignee_and_late_arrival(client: FlaskClient, app: Flask,
                                                                 make_envelope: Make, auth: AuthActions) -> None:
    ontime = deliver(client, make_envelope, flight="ZZ7", sta=stamp(utcnow() + timedelta(hours=3)))
    late = deliver(client, make_envelope, flight="ZZ8", sta=stamp(utcnow() - timedelta(hours=1)))
    auth.login("officer")
    page = text(client.get("/triage/"))
    ontime_flight, late_flight = (f["html"] for f in board_flights(page))
    ontime_row, late_row = report_line(page, ontime), report_line(page, late)
    assert "lands in 2 h 59 min" in ontime_flight or "lands in 3 h 00 min" in ontime_flight
    assert "before landing" in ontime_row and "After landing" not in ontime_row
    assert "landed 1 h" in late_flight and ">Late<" in late_row and "after landing" in late_row
    assert "is-late" in late_row.split(">")[0] and "is-late" not in ontime_row.split(">")[0]
    assert f'datetime="{row(app, ontime)["sta"]}"' in ontime_flight  # type: ignore[index]
    assert "LOS → LHR" in ontime_row and "Priority" in ontime_row


def test_queue_pages(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    first = deliver(client, make_envelope)
    bulk_insert(app, queue.PER_PAGE + 5, template_id=first)
    auth.login("officer")
    page1 = queue_ids(client, "status=any")  # one report per flight here
    page2 = queue_ids(client, "status=any&page=2")
    assert len(page1) == queue.PER_PAGE and len(page2) == 6
    assert not set(page1) & set(page2)
    assert "Page 2 of 2" in text(client.get("/triage/?status=any&page=2"))
    assert queue_ids(client, "status=any&page=99") == page2  # clamped to the last page


def test_refresh_endpoint_and_new_since_last_look(client: FlaskClient, app: Flask,
                                                  make_envelope: Make, auth: AuthActions) -> None:
    sta = stamp(utcnow() + timedelta(hours=3))
    old = deliver(client, make_envelope, sta=sta)
    update_report(app, old, received_at=stamp(utcnow() - timedelta(minutes=10)))
    auth.login("officer")
    first = text(client.get("/triage/"))
    assert "is-new" not in first  # first look: nothing to compare with
    with app.app_context():
        seen = get_db().execute("SELECT queue_seen_at FROM officer_seen").fetchone()[0]
    fresh = deliver(client, make_envelope, sta=sta)
    update_report(app, fresh, received_at=stamp(datetime.now(UTC) + timedelta(seconds=2)))
    data = client.get(f"/triage/queue.json?status=open&since={seen}").get_json()
    assert set(data["ids"]) == {old, fresh} and data["total"] == 1 and data["reports"] == 2
    assert "is-new" in report_line(data["html"], fresh).split(">")[0]
    assert "is-new" not in report_line(data["html"], old).split(">")[0]
    assert 'data-new="true"' in board_flights(data["html"])[0]["html"].split(">")[0]
    second = text(client.get("/triage/"))
    assert re.search(rf'data-report-id="{fresh}"[^>]*is-new', second)
    assert not re.search(rf'data-report-id="{old}"[^>]*is-new', second)
    assert 'data-refresh-url="/triage/queue.json?' in second
    assert f'<input type="hidden" name="since" value="{seen}">' in second  # kept across filter changes
    filtered = text(client.get(f"/triage/?status=any&since={seen}"))
    assert re.search(rf'data-report-id="{fresh}"[^>]*is-new', filtered)
    assert re.search(r'src="/static/js/triage\.js\?v=[0-9a-f]{16}"', second)


# -- the export -------------------------------------------------------------------------------

def test_csv_export_of_the_queue(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    a = deliver(client, make_envelope, sta=stamp(utcnow() + timedelta(hours=2)), arr="MAN")
    b = deliver(client, make_envelope, sta=stamp(utcnow() + timedelta(hours=1)))
    update_report(app, a, flight="=HYPERLINK(\"http://x\")", dep="+1", arr="@SUM")  # hostile cells
    auth.login("officer")
    resp = client.get("/triage/export.csv?status=any")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(resp))))
    assert rows[0] == list(queue.CSV_FIELDS)
    assert [r[1] for r in rows[1:]] == [b, a]
    hostile = rows[2]
    assert hostile[3] == "'=HYPERLINK(\"http://x\")" and hostile[4] == "'+1" and hostile[5] == "'@SUM"
    assert all(not cell.startswith(("=", "+", "@")) for r in rows for cell in r)
    assert "narrative" not in text(resp) and "passports" not in text(resp)
    assert 58 <= int(rows[1][11]) <= 60  # minutes before landing
    assert rows[1][12] == "1"  # the default test body has a child aged 12-17
    exported = events(app, "queue_exported")
    assert len(exported) == 1 and json.loads(exported[0]["detail"])["rows"] == 2


def test_csv_export_gives_each_report_its_flights_arrival_too(client: FlaskClient, make_envelope: Make,
                                                              auth: AuthActions) -> None:
    """A delay announced after a note moves its flight on the board; the export
    says so beside the note's own arrival (which stays what its tablet signed)."""
    first = stamp(utcnow() + timedelta(hours=1))
    delayed = stamp(utcnow() + timedelta(hours=2))
    early = deliver(client, make_envelope, flight="ZZ31", sta=first)
    late = deliver(client, make_envelope, flight="ZZ31", sta=delayed)  # made later: the freshest estimate
    auth.login("officer")
    rows = list(csv.DictReader(io.StringIO(text(client.get("/triage/export.csv?status=any")))))
    by_id = {r["id"]: r for r in rows}
    assert (by_id[early]["sta"], by_id[early]["flight_sta"]) == (first, delayed)
    assert (by_id[late]["sta"], by_id[late]["flight_sta"]) == (delayed, delayed)
    assert list(queue.CSV_FIELDS)[:13] == ["reference", "id", "airline", "flight", "dep", "arr", "sta", "urgency",
                                           "status", "assignee", "received_at", "minutes_before_landing", "child"]


def test_csv_cell_guard() -> None:
    assert queue.csv_cell("=1+1") == "'=1+1"
    assert queue.csv_cell("-2") == "'-2"
    assert queue.csv_cell("\t=x") == "'\t=x"
    assert queue.csv_cell("LHR") == "LHR"
    assert queue.csv_cell(-20) == -20


def test_who_has_a_flight_counts_live_locks_only(client: FlaskClient, app: Flask, make_envelope: Make,
                                                 auth: AuthActions) -> None:
    sta = stamp(utcnow() + timedelta(hours=1))
    held, expired = (deliver(client, make_envelope, flight="ZZ66", sta=sta) for _ in range(2))
    with app.app_context():
        ids = {r["username"]: r["id"] for r in get_db().execute("SELECT id, username FROM user")}
    update_report(app, held, lock_user_id=ids["admin"], lock_expires_at=stamp(utcnow() + timedelta(minutes=5)))
    update_report(app, expired, lock_user_id=ids["security"], lock_expires_at=stamp(utcnow() - timedelta(minutes=5)),
                  assignee_id=ids["officer"])
    auth.login("officer")
    [flight] = flights_on(client)
    assert "· admin, officer<" in flight["html"] and "security" not in flight["html"]


def test_a_csv_export_is_the_whole_selection_or_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                                        auth: AuthActions, monkeypatch: Any) -> None:
    """Over the export's limit the file used to stop without a word; now the officer is told to narrow it."""
    monkeypatch.setattr(queue, "CSV_MAX_ROWS", 2)
    monkeypatch.setattr(views, "CSV_MAX_ROWS", 2)
    for arr in ("LHR", "LHR", "MAN"):
        deliver(client, make_envelope, arr=arr)
    auth.login("officer")
    refused = client.get("/triage/export.csv?status=any")
    assert refused.status_code == 303 and refused.mimetype != "text/csv"
    assert refused.headers["Location"].startswith("/triage/?") and "status=any" in refused.headers["Location"]
    page = text(client.get(refused.headers["Location"]))
    assert "Not exported: these filters select more than 2 reports." in page
    assert events(app, "queue_exported") == []
    narrowed = client.get("/triage/export.csv?status=any&arr=LHR")
    assert narrowed.status_code == 200 and len(list(csv.reader(io.StringIO(text(narrowed))))) == 3
    assert json.loads(events(app, "queue_exported")[0]["detail"])["rows"] == 2


def shown_new(page: str, rid: str) -> bool:
    assert f'data-report-id="{rid}"' in page, "not on the board"
    return re.search(rf'data-report-id="{rid}"[^>]*is-new', page) is not None


def test_each_view_of_the_board_has_its_own_new_marks(client: FlaskClient, app: Flask, make_envelope: Make,
                                                      auth: AuthActions) -> None:
    auth.login("officer")
    client.get("/triage/")
    client.get("/triage/?arr=LHR")
    with app.app_context(), transaction(get_db()) as db:  # both looks were a minute ago
        db.execute("UPDATE officer_seen SET queue_seen_at = ?", (stamp(utcnow() - timedelta(seconds=60)),))
    lhr = deliver(client, make_envelope, flight="ZZ101", arr="LHR")
    man = deliver(client, make_envelope, flight="ZZ303", arr="MAN")
    for rid in (lhr, man):
        update_report(app, rid, received_at=stamp(utcnow() - timedelta(seconds=30)))
    heathrow = text(client.get("/triage/?arr=LHR"))
    assert shown_new(heathrow, lhr) and man not in heathrow
    # Heathrow's look showed nothing of Manchester's: on the whole board both are new
    whole = text(client.get("/triage/"))
    assert shown_new(whole, man) and shown_new(whole, lhr)
    assert not shown_new(text(client.get("/triage/?arr=LHR")), lhr)  # seen there now
    # a later page keeps the first page's mark, and moves none
    with app.app_context():
        marks = get_db().execute("SELECT view, queue_seen_at FROM officer_seen ORDER BY view").fetchall()
    client.get("/triage/?page=2")
    with app.app_context():
        assert get_db().execute("SELECT view, queue_seen_at FROM officer_seen ORDER BY view").fetchall() == marks
    assert [m["view"] for m in marks] == ["", "arr=LHR"]


def test_a_report_stored_in_the_second_of_a_look_is_still_new(client: FlaskClient, app: Flask,
                                                              make_envelope: Make, auth: AuthActions) -> None:
    auth.login("officer")
    first = text(client.get("/triage/"))
    with app.app_context():
        mark = get_db().execute("SELECT queue_seen_at FROM officer_seen").fetchone()[0]
    rid = deliver(client, make_envelope)
    assert rid not in first
    update_report(app, rid, received_at=mark)  # stamped in whole seconds, as the look was
    assert shown_new(text(client.get("/triage/")), rid)
