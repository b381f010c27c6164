"""Deciding for a whole arriving flight: one reason, confirmed once, every
open report the officer was shown moved and audited, locks respected and
named, and nothing moved when the flight changed after the page loaded."""
from __future__ import annotations

import html
import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db, transaction
from crewreport.times import stamp
from crewreport.triage import flight as flight_module

from .helpers import (
    AuthActions,
    Make,
    add_officer,
    csrf_login,
    deliver,
    events,
    login_as,
    raced,
    row,
    staff_client,
    text,
    update_report,
    user_id,
    utcnow,
)


def flight_reports(client: FlaskClient, make_envelope: Make, n: int, flight: str = "ZZ202",
                   sta: str | None = None) -> tuple[str, list[str]]:
    sta = sta or stamp(utcnow() + timedelta(minutes=14))
    return sta, [deliver(client, make_envelope, flight=flight, sta=sta) for _ in range(n)]


def flight_path(app: Flask, sta: str, flight: str = "ZZ202") -> str:
    """The page of the flight whose reports give this number and sta."""
    with app.app_context():
        found = get_db().execute("SELECT flight_id FROM report WHERE flight = ? AND sta = ?", (flight, sta)).fetchone()
    assert found, f"no flight {flight} at {sta}"
    return f"/triage/flights/{found[0]}"


def shown_ids(client: FlaskClient, sta: str, flight: str = "ZZ202") -> str:
    page = text(client.get(flight_path(client.application, sta, flight)))
    m = re.search(r'name="report_ids" type="hidden" value="([^"]*)"', page)
    assert m, "no decision form"
    return m.group(1)


def ids_of(shown: str) -> set[str]:
    """The report ids a flight page's form lists (each as "id:status")."""
    return {token.split(":")[0] for token in shown.split()}


def decide(client: FlaskClient, sta: str, ids: str, decision: str = "meet_aircraft",
           reason: str = "Meet at stand 23 with safeguarding", confirm: bool = True, flight: str = "ZZ202") -> Any:
    data = {"decision": decision, "reason": reason, "report_ids": ids}
    if confirm:
        data["confirm"] = "y"
    return client.post(flight_path(client.application, sta, flight) + "/decision", data=data)


def statuses(app: Flask, ids: list[str]) -> list[str]:
    return [row(app, i)["status"] for i in ids]  # type: ignore[index]


def test_meet_aircraft_for_the_whole_flight_in_one_step(client: FlaskClient, app: Flask, make_envelope: Make,
                                                        auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 4)
    other_flight = deliver(client, make_envelope, flight="ZZ203", sta=sta)
    update_report(app, ids[1], status="assessing")
    update_report(app, ids[2], status="meet_aircraft")
    update_report(app, ids[3], status="referred", closed_at=stamp(utcnow()))
    auth.login("officer")
    shown = shown_ids(client, sta)
    assert ids_of(shown) == set(ids[:3])  # the open ones of this flight, and only those
    resp = decide(client, sta, shown)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(flight_path(app, sta))
    assert statuses(app, ids) == ["meet_aircraft", "meet_aircraft", "meet_aircraft", "referred"]
    assert row(app, other_flight)["status"] == "received"  # type: ignore[index]
    moved = {e["subject"]: json.loads(e["detail"]) for e in events(app, "status_changed")}
    assert moved == {f"report:{ids[0]}": {"from": "received", "to": "meet_aircraft", "flight": f"ZZ/ZZ202/{sta}"},
                     f"report:{ids[1]}": {"from": "assessing", "to": "meet_aircraft", "flight": f"ZZ/ZZ202/{sta}"}}
    decided = events(app, "flight_decided")
    assert len(decided) == 1 and json.loads(decided[0]["detail"])["moved"] == 2
    page = text(client.get(flight_path(app, sta)))
    assert "2 reports moved to Meet aircraft" in page and "Already Meet aircraft" in page
    # the one reason is in each moved report's history, sealed at rest
    assert "Meet at stand 23 with safeguarding" in text(client.get(f"/triage/reports/{ids[0]}"))
    with app.app_context():
        sealed = [r[0] for r in get_db().execute("SELECT reason_sealed FROM report_status_history")]
    assert len(sealed) == 2 and all("stand" not in s for s in sealed)


def test_closing_a_flight_from_received_in_one_step(client: FlaskClient, app: Flask, make_envelope: Make,
                                                    auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 2)
    auth.login("officer")
    answer = decide(client, sta, shown_ids(client, sta), "no_further_action", "Family, checked at the gate")
    assert answer.status_code == 303
    assert statuses(app, ids) == ["no_further_action"] * 2
    assert all(row(app, i)["closed_at"] for i in ids)  # type: ignore[index]


def test_a_report_that_arrived_after_the_page_loaded_stops_the_decision(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 2)
    auth.login("officer")
    shown = shown_ids(client, sta)
    newcomer = deliver(client, make_envelope, flight="ZZ202", sta=sta)
    resp = decide(client, sta, shown)
    assert resp.status_code == 409
    page = text(resp)
    assert "Nothing was changed" in page and row(app, newcomer)["reference"] in page  # type: ignore[index]
    assert re.search(rf'data-report-id="{newcomer}"[^>]*data-changed="true"', page)
    assert statuses(app, ids + [newcomer]) == ["received"] * 3
    assert events(app, "status_changed") == [] and events(app, "flight_decided") == []
    # the page that says so lists the newcomer: deciding from it now moves all three
    now_shown = re.search(r'name="report_ids" type="hidden" value="([^"]*)"', page).group(1)  # type: ignore[union-attr]
    assert ids_of(now_shown) == set(ids + [newcomer])
    assert decide(client, sta, now_shown).status_code == 303
    assert statuses(app, ids + [newcomer]) == ["meet_aircraft"] * 3


@pytest.mark.parametrize(("change", "says"), [
    ("closed meanwhile", "The flight changed while you had it open (closed meanwhile: {closed})."),
    ("not of this flight", "The form is not this flight's list (the form lists 1 report not on this flight)."),
    ("invented", "The form is not this flight's list (the form lists 1 report not on this flight)."),
    ("two invented", "The form is not this flight's list (the form lists 2 reports not on this flight)."),
])
def test_a_list_that_is_not_the_flights_open_reports_moves_nothing_and_says_what_differs(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions, change: str, says: str) -> None:
    sta, ids = flight_reports(client, make_envelope, 2)
    other = deliver(client, make_envelope, flight="ZZ999", sta=sta)
    auth.login("officer")
    shown = shown_ids(client, sta)
    if change == "closed meanwhile":
        update_report(app, ids[0], status="no_further_action")
    elif change == "not of this flight":
        shown += " " + other
    elif change == "invented":
        shown += " 00000000-0000-4000-8000-000000000000"
    else:
        shown += " 00000000-0000-4000-8000-000000000000 00000000-0000-4000-8000-000000000001"
    resp = decide(client, sta, shown)
    assert resp.status_code == 409
    assert events(app, "status_changed") == []
    assert row(app, other)["status"] == "received"  # type: ignore[index]
    message = re.search(r'id="flight-message">([^<]*)<', text(resp))
    assert message, "no message"
    expected = says.format(closed=row(app, ids[0])["reference"])  # type: ignore[index]
    expected += " Nothing was changed. Read the list again, then decide."
    assert html.unescape(message.group(1)) == expected
    assert other not in message.group(1)  # another flight's report is counted, never named


def test_a_report_another_officer_holds_is_named_not_moved(client: FlaskClient, app: Flask, make_envelope: Make,
                                                           auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 3)
    login_as(client, "officer")
    assert client.post(f"/triage/reports/{ids[1]}/lock").status_code == 303
    add_officer(app, "officer2")
    client = app.test_client()  # another browser: the holder stays signed in
    login_as(client, "officer2")
    resp = decide(client, sta, shown_ids(client, sta))
    assert resp.status_code == 303
    assert statuses(app, ids) == ["meet_aircraft", "received", "meet_aircraft"]
    page = text(client.get(flight_path(app, sta)))
    reference = row(app, ids[1])["reference"]  # type: ignore[index]
    assert f"{reference} (held by officer until" in page and "Not changed" in page
    assert json.loads(events(app, "flight_decided")[0]["detail"])["held"] == 1


@pytest.mark.parametrize(("fields", "message"), [
    ({"confirm": False}, "Tick the box"),
    ({"reason": "   "}, "Give a reason"),
    ({"reason": "\u200b"}, "Give a reason"),
    ({"decision": "received"}, "Not a valid choice"),
    ({"decision": "assessing"}, "Not a valid choice"),
])
def test_incomplete_decisions_change_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                             auth: AuthActions, fields: dict[str, Any], message: str) -> None:
    sta, ids = flight_reports(client, make_envelope, 2)
    auth.login("officer")
    args = {"ids": shown_ids(client, sta), **fields}
    resp = decide(client, sta, **args)
    assert resp.status_code == 400 and message in text(resp) and "Nothing was changed" in text(resp)
    assert statuses(app, ids) == ["received"] * 2 and events(app, "status_changed") == []


def test_empty_list_is_refused(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 1)
    auth.login("officer")
    assert decide(client, sta, "").status_code == 400
    assert statuses(app, ids) == ["received"]


def test_single_report_goes_from_received_to_meet_aircraft_in_one_step(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope, urgency="immediate")
    auth.login("officer")
    page = text(client.get(f"/triage/reports/{rid}"))
    assert '<option value="meet_aircraft">Meet aircraft</option>' in page
    resp = client.post(f"/triage/reports/{rid}/status", data={"status": "meet_aircraft", "reason": "Leaving now",
                                                              "from_status": "received"})
    assert resp.status_code == 303 and row(app, rid)["status"] == "meet_aircraft"  # type: ignore[index]


def test_report_page_lists_the_other_reports_of_its_flight(client: FlaskClient, app: Flask, make_envelope: Make,
                                                           auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 3)
    elsewhere = deliver(client, make_envelope, flight="ZZ203", sta=sta)
    auth.login("officer")
    page = text(client.get(f"/triage/reports/{ids[0]}"))
    same = re.search(r'<ol class="flight-reports compact" id="same-flight">(.*?)</ol>', page, re.S).group(1)  # type: ignore[union-attr]
    assert re.findall(r'data-report-id="([0-9a-f-]{36})"', same) == ids
    for other in ids[1:]:
        assert f'href="/triage/reports/{other}"' in same
    assert elsewhere not in page
    assert f'href="{flight_path(app, sta)}"' in page and "Decide for the flight (3 open)" in page


def test_flight_page_hooks_and_missing_flights(client: FlaskClient, app: Flask, make_envelope: Make,
                                               auth: AuthActions) -> None:
    sta, ids = flight_reports(client, make_envelope, 2)
    auth.login("officer")
    page = text(client.get(flight_path(app, sta)))
    assert f'data-flight="ZZ202" data-sta="{sta}" data-report-count="2" data-child="true"' in page
    assert "Narrative" not in page and "passports" not in page  # nothing decrypted here
    assert events(app, "report_opened") == []
    path = flight_path(app, sta)
    missing = "/triage/flights/" + str(int(path.rsplit("/", 1)[1]) + 1)
    for gone in (missing, "/triage/flights/x", path + "/x", "/triage/flights/ZZ/ZZ999/" + sta,
                 "/triage/flights/ZZ/ZZ202/tomorrow", "/triage/flights/zz/ZZ202/" + sta,
                 "/triage/flights/ZZ/ZZ202/" + stamp(utcnow()), "/triage/flights/ZZ/ZZ202/" + sta + "/x"):
        assert client.get(gone).status_code == 404, gone
    assert client.post(missing + "/decision", data={"report_ids": " ".join(ids)}).status_code == 404
    assert statuses(app, ids) == ["received"] * 2


def test_a_flights_address_from_before_flight_ids_still_leads_to_it(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """A bookmark, or a page left open across the upgrade, names a flight by
    airline, number and sta: its page is found, and its decision goes
    through, still checked against what that page showed."""
    sta, ids = flight_reports(client, make_envelope, 2)
    auth.login("officer")
    legacy = f"/triage/flights/ZZ/ZZ202/{sta}"
    resp = client.get(legacy)
    assert resp.status_code == 302 and resp.headers["Location"] == flight_path(app, sta)
    shown = shown_ids(client, sta)
    stale = client.post(legacy + "/decision", data={"decision": "meet_aircraft", "reason": "stand 4",
                                                    "report_ids": " ".join(ids), "confirm": "y"})
    assert stale.status_code == 307 and stale.headers["Location"] == flight_path(app, sta) + "/decision"
    resp = client.post(legacy + "/decision", follow_redirects=True,
                       data={"decision": "meet_aircraft", "reason": "stand 4", "report_ids": shown, "confirm": "y"})
    assert resp.status_code == 200 and statuses(app, ids) == ["meet_aircraft"] * 2


@pytest.mark.parametrize("who", [None, "crew", "security", "admin"])
def test_only_officers_reach_a_flight(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                                      who: str | None) -> None:
    sta, ids = flight_reports(client, make_envelope, 1)
    if who:
        auth.login(who)
    for resp in (client.get(flight_path(app, sta)), decide(client, sta, " ".join(ids))):
        assert resp.status_code == (302 if who is None else 403)
    assert statuses(app, ids) == ["received"]


def test_a_decision_needs_the_pages_csrf_token(csrf_app: Flask, make_envelope: Make) -> None:
    client = csrf_app.test_client()
    sta, ids = flight_reports(client, make_envelope, 2)
    csrf_login(client, "officer")
    page = text(client.get(flight_path(csrf_app, sta)))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    shown = shown_ids(client, sta)
    assert decide(client, sta, shown).status_code == 400  # no token
    assert statuses(csrf_app, ids) == ["received"] * 2
    resp = client.post(flight_path(csrf_app, sta) + "/decision", data={"decision": "meet_aircraft", "reason": "stand 4",
                                                             "report_ids": shown, "confirm": "y", "csrf_token": token})
    assert resp.status_code == 303 and statuses(csrf_app, ids) == ["meet_aircraft"] * 2


def test_a_page_loaded_before_another_officers_decision_moves_nothing(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """Officers A and B open the flight; A decides Meet aircraft; B's older
    page (the same reports, still open) must not overwrite that unseen."""
    sta, ids = flight_reports(client, make_envelope, 2)
    add_officer(app, "officer2")
    login_as(client, "officer2")
    seen_by_b = shown_ids(client, sta)
    login_as(client, "officer")
    assert decide(client, sta, shown_ids(client, sta)).status_code == 303
    login_as(client, "officer2")
    resp = decide(client, sta, seen_by_b, "no_further_action", "Looks like a family")
    assert resp.status_code == 409
    assert statuses(app, ids) == ["meet_aircraft"] * 2
    message = html.unescape(re.search(r'id="flight-message">([^<]*)<', text(resp)).group(1))  # type: ignore[union-attr]
    references = ", ".join(f"{row(app, i)['reference']} (now Meet aircraft)" for i in ids)  # type: ignore[index]
    assert message.startswith(f"The flight changed while you had it open (decided meanwhile: {references}).")
    assert all(re.search(rf'data-report-id="{i}"[^>]*data-changed="true"', text(resp)) for i in ids)
    # A bare id (a page from before statuses were carried) counts as changed too.
    assert decide(client, sta, " ".join(ids), "no_further_action", "Looks like a family").status_code == 409
    assert statuses(app, ids) == ["meet_aircraft"] * 2


def test_a_flooded_flight_is_still_decided_in_one_step(client: FlaskClient, app: Flask, make_envelope: Make,
                                                       auth: AuthActions) -> None:
    """1 000 open reports on one flight (one misbehaving tablet's flood), each
    with its status in the form, still fit the form."""
    sta, (first,) = flight_reports(client, make_envelope, 1, flight="ZZ909")
    with app.app_context():
        db = get_db()
        columns = [r[1] for r in db.execute("PRAGMA table_info(report)") if r[1] not in ("id", "reference")]
        copied = ", ".join(columns)
        with transaction(db):
            for n in range(999):
                db.execute(f"INSERT INTO report (id, reference, {copied}) SELECT ?, ?, {copied}"
                           " FROM report WHERE id = ?", (str(uuid.uuid4()), f"FL{n:04d}", first))
        db.execute("UPDATE report SET status = 'meet_aircraft' WHERE reference LIKE 'FL0%'")  # some decided already
    auth.login("officer")
    shown = shown_ids(client, sta, "ZZ909")
    assert len(ids_of(shown)) == 1000
    resp = decide(client, sta, shown, "no_further_action", "One tablet's flood, checked", flight="ZZ909")
    assert resp.status_code == 303, text(resp)[-300:]
    with app.app_context():
        assert get_db().execute("SELECT count(*) FROM report WHERE status = 'no_further_action'").fetchone()[0] == 1000


def test_a_flight_decision_of_an_officer_deactivated_meanwhile_moves_nothing(
        client: FlaskClient, app: Flask, make_envelope: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """An action on one report checks, under the write lock, that its
    officer's session still exists; the decision for a whole flight did not,
    and moved every report of it for someone switched off (or signed out
    everywhere) since the request began."""
    sta, ids = flight_reports(client, make_envelope, 2)
    officer = staff_client(app, "officer")
    shown = shown_ids(officer, sta)
    raced(app, monkeypatch, flight_module, "DELETE FROM user_session WHERE user_id = ?", user_id(app, "officer"))
    resp = decide(officer, sta, shown)
    assert resp.status_code == 401 and "signed out meanwhile" in text(resp)
    assert statuses(app, ids) == ["received", "received"]
    assert events(app, "status_changed") == [] and events(app, "flight_decided") == []
