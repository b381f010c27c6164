"""A form rendered before another officer acted is refused, with a clear
message, and changes nothing, even when the report shows its old status
again (decided and reopened meanwhile): the status alone cannot tell."""
from __future__ import annotations

import html
import re
from datetime import timedelta

from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db
from crewreport.times import stamp

from .helpers import Make, add_officer, count, deliver, form_fields, login_as, row, staff_client, text, utcnow

HISTORY = "SELECT count(*) FROM report_status_history"


def move(client: FlaskClient, rid: str, status: str, reason: str) -> int:
    """Change a report's status from its page, as an officer does."""
    fields = form_fields(text(client.get(f"/triage/reports/{rid}")), "status-form")
    resp = client.post(f"/triage/reports/{rid}/status", data={**fields, "status": status, "reason": reason})
    return resp.status_code


def test_a_page_from_before_a_close_and_reopen_cannot_close_the_report(client: FlaskClient, app: Flask,
                                                                       make_envelope: Make) -> None:
    """B's page shows Assessing; A closes the report, then C's new information
    reopens it (Assessing again). B's old form must not close it unread."""
    rid = deliver(client, make_envelope)
    add_officer(app)
    login_as(client, "officer")
    assert move(client, rid, "assessing", "Looking at it") == 303
    other = staff_client(app, "officer2")
    stale = form_fields(text(other.get(f"/triage/reports/{rid}")), "status-form")
    assert move(client, rid, "no_further_action", "Family travelling together") == 303
    assert move(client, rid, "assessing", "The gate says the documents are held by the companion") == 303
    assert client.post(f"/triage/reports/{rid}/unlock").status_code == 303
    before, steps = row(app, rid), count(app, HISTORY)
    resp = other.post(f"/triage/reports/{rid}/status",
                      data={**stale, "status": "no_further_action", "reason": "Nothing in it"})
    assert resp.status_code == 409
    assert "officer (at " in text(resp) and "changed this report to Assessing" in text(resp)
    assert "Nothing was changed" in text(resp)
    assert row(app, rid) == before and count(app, HISTORY) == steps
    # The page read again carries the reopen: the decision goes through.
    assert move(other, rid, "no_further_action", "Read the gate's note; still nothing") == 303


def test_a_status_form_sent_twice_is_refused_and_says_it_was_you(client: FlaskClient, app: Flask,
                                                                 make_envelope: Make) -> None:
    """A double click sends the form twice: the second is refused, naming the
    officer themself (not "someone"), and records nothing."""
    rid = deliver(client, make_envelope)
    login_as(client, "officer")
    fields = {**form_fields(text(client.get(f"/triage/reports/{rid}")), "status-form"),
              "status": "meet_aircraft", "reason": "Stand 23"}
    assert client.post(f"/triage/reports/{rid}/status", data=fields).status_code == 303
    resp = client.post(f"/triage/reports/{rid}/status", data=fields)
    assert resp.status_code == 409 and "You (at " in text(resp)
    assert count(app, HISTORY) == 1


def test_a_damaged_marker_is_a_field_error(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    rid = deliver(client, make_envelope)
    login_as(client, "officer")
    resp = client.post(f"/triage/reports/{rid}/status",
                       data={"status": "assessing", "reason": "x", "from_change": "1 OR 1=1"})
    assert resp.status_code == 400 and "The form is damaged" in text(resp)
    assert row(app, rid)["status"] == "received"  # type: ignore[index]


def flight_page(client: FlaskClient, app: Flask, rid: str) -> str:
    with app.app_context():
        flight_id = get_db().execute("SELECT flight_id FROM report WHERE id = ?", (rid,)).fetchone()[0]
    return f"/triage/flights/{flight_id}"


def test_a_flight_page_from_before_a_decide_and_reopen_moves_nothing(client: FlaskClient, app: Flask,
                                                                     make_envelope: Make) -> None:
    """B's flight page lists two reports Assessing; A closes one and reopens
    it with new information. B's decision for the flight (from the same
    statuses) must not close it unread."""
    sta = stamp(utcnow() + timedelta(minutes=40))
    ids = [deliver(client, make_envelope, flight="ZZ303", sta=sta) for _ in range(2)]
    add_officer(app)
    login_as(client, "officer")
    for rid in ids:
        assert move(client, rid, "assessing", "Looking at it") == 303
        assert client.post(f"/triage/reports/{rid}/unlock").status_code == 303
    path = flight_page(client, app, ids[0])
    other = staff_client(app, "officer2")
    stale = form_fields(text(other.get(path)), "flight-decision")
    assert move(client, ids[0], "no_further_action", "Nothing in it") == 303
    assert move(client, ids[0], "assessing", "The captain saw the companion take her passport") == 303
    assert client.post(f"/triage/reports/{ids[0]}/unlock").status_code == 303
    steps = count(app, HISTORY)
    data = {**stale, "decision": "no_further_action", "reason": "Families", "confirm": "y"}
    resp = other.post(path + "/decision", data=data)
    assert resp.status_code == 409
    message = html.unescape(re.search(r'id="flight-message">([^<]*)<', text(resp)).group(1))  # type: ignore[union-attr]
    assert f"decided meanwhile: {row(app, ids[0])['reference']} (now Assessing)" in message  # type: ignore[index]
    assert [row(app, i)["status"] for i in ids] == ["assessing"] * 2  # type: ignore[index]
    assert count(app, HISTORY) == steps
    # The page the refusal shows is current: deciding from it works.
    fresh = form_fields(text(resp), "flight-decision")
    assert other.post(path + "/decision", data={**data, **fresh}).status_code == 303
    assert [row(app, i)["status"] for i in ids] == ["no_further_action"] * 2  # type: ignore[index]


def test_a_note_sent_twice_is_kept_once(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    """A double click on Add note posts it twice: the second is refused (the
    officer is told it was kept), so the report's notes do not say it twice."""
    rid = deliver(client, make_envelope)
    login_as(client, "officer")
    fields = {**form_fields(text(client.get(f"/triage/reports/{rid}")), "note-form"),
              "text": "Companion holds both passports"}
    assert client.post(f"/triage/reports/{rid}/notes", data=fields).status_code == 303
    resp = client.post(f"/triage/reports/{rid}/notes", data=fields)
    assert resp.status_code == 409 and "it is kept once" in text(resp)
    assert count(app, "SELECT count(*) FROM report_note") == 1
    # Another note, or the same words from another officer, are notes of their own.
    assert client.post(f"/triage/reports/{rid}/notes", data={**fields, "text": "Seat 14C"}).status_code == 303
    add_officer(app)
    other = staff_client(app, "officer2")
    assert other.post(f"/triage/reports/{rid}/notes", data=fields).status_code == 303
    assert count(app, "SELECT count(*) FROM report_note") == 3
