"""Who a report's lock keeps out, beyond the lock itself (tests/test_triage.py):
assigning hands the report over, a note claims nothing, and an officer who
signs out (or is signed out everywhere) lets go of every report they held."""
from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import keys
from crewreport.db import get_db
from crewreport.times import stamp
from crewreport.triage import views

from .helpers import AuthActions, Make, add_officer, deliver, events, login_as, row, text, utcnow


def officer_ids(app: Flask) -> dict[str, int]:
    with app.app_context():
        return {r["username"]: r["id"] for r in get_db().execute("SELECT id, username FROM user")}


def meet(client: FlaskClient, rid: str) -> int:
    """The assignee acting on an urgent report: Meet aircraft."""
    resp = client.post(f"/triage/reports/{rid}/status",
                       data={"status": "meet_aircraft", "reason": "On my way to the stand", "from_status": "received"})
    return resp.status_code


def urgent(client: FlaskClient, make_envelope: Make) -> str:
    return deliver(client, make_envelope, sta=stamp(utcnow() + timedelta(minutes=15)), urgency="immediate")


def test_the_officer_a_report_is_handed_to_can_act_on_it_at_once(client: FlaskClient, app: Flask,
                                                                  make_envelope: Make) -> None:
    rid = urgent(client, make_envelope)
    add_officer(app)
    ids = officer_ids(app)
    login_as(client, "officer")
    assert client.post(f"/triage/reports/{rid}/lock").status_code == 303  # working on it, then hands it over
    assert client.post(f"/triage/reports/{rid}/assign", data={"assignee": ids["officer2"]}).status_code == 303
    assert row(app, rid)["lock_user_id"] is None  # type: ignore[index]
    login_as(client, "officer2")
    assert meet(client, rid) == 303
    assert row(app, rid)["status"] == "meet_aircraft"  # type: ignore[index]


def test_assigning_to_oneself_takes_the_lock_and_a_note_takes_none(client: FlaskClient, app: Flask,
                                                                   make_envelope: Make) -> None:
    rid = urgent(client, make_envelope)
    add_officer(app)
    ids = officer_ids(app)
    login_as(client, "officer")
    assert client.post(f"/triage/reports/{rid}/notes", data={"text": "Seen the gate list"}).status_code == 303
    assert row(app, rid)["lock_user_id"] is None  # type: ignore[index]
    assert client.post(f"/triage/reports/{rid}/assign", data={"assignee": ids["officer"]}).status_code == 303
    assert row(app, rid)["lock_user_id"] == ids["officer"]  # type: ignore[index]
    # a note from the holder keeps the lock going; from anyone else it is refused, as before
    held_until = row(app, rid)["lock_expires_at"]  # type: ignore[index]
    assert client.post(f"/triage/reports/{rid}/notes", data={"text": "Stand 23"}).status_code == 303
    assert row(app, rid)["lock_expires_at"] >= held_until  # type: ignore[index]
    other = app.test_client()
    login_as(other, "officer2")
    assert other.post(f"/triage/reports/{rid}/notes", data={"text": "mine"}).status_code == 409


def test_signing_out_lets_go_of_the_officers_locks(client: FlaskClient, app: Flask, make_envelope: Make,
                                                   auth: AuthActions) -> None:
    first, second = urgent(client, make_envelope), urgent(client, make_envelope)
    add_officer(app)
    login_as(client, "officer")
    for rid in (first, second):
        assert client.post(f"/triage/reports/{rid}/lock").status_code == 303
    # signed in elsewhere too: one sign-out keeps the locks
    desk = app.test_client()
    login_as(desk, "officer")
    desk.post("/auth/logout")
    assert row(app, first)["lock_user_id"] is not None  # type: ignore[index]
    client.post("/auth/logout")  # the end of the shift
    assert [row(app, rid)["lock_user_id"] for rid in (first, second)] == [None, None]  # type: ignore[index]
    unlocked = events(app, "report_unlocked")
    assert sorted(e["subject"] for e in unlocked) == sorted(f"report:{rid}" for rid in (first, second))
    assert {json.loads(e["detail"])["reason"] for e in unlocked} == {"signed_out"}
    login_as(client, "officer2")
    assert meet(client, first) == 303


def test_a_second_factor_reset_signs_out_and_lets_go(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    rid = urgent(client, make_envelope)
    login_as(client, "officer")
    assert client.post(f"/triage/reports/{rid}/lock").status_code == 303
    result = app.test_cli_runner().invoke(args=["reset-second-factor", "officer"])
    assert result.exit_code == 0, result.output
    assert row(app, rid)["lock_user_id"] is None  # type: ignore[index]
    assert "Sign in" in text(client.get("/triage/", follow_redirects=True))


def test_locks_of_others_stay_when_one_officer_signs_out(client: FlaskClient, app: Flask,
                                                         make_envelope: Make) -> None:
    rid = urgent(client, make_envelope)
    add_officer(app)
    login_as(client, "officer2")
    assert client.post(f"/triage/reports/{rid}/lock").status_code == 303
    other = app.test_client()
    login_as(other, "officer")
    other.post("/auth/logout")
    assert row(app, rid)["lock_user_id"] == officer_ids(app)["officer2"]  # type: ignore[index]


def test_a_sign_out_in_another_tab_during_an_action_leaves_no_lock(client: FlaskClient, app: Flask,
                                                                   make_envelope: Make,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The other tab's sign-out commits after this request loaded its user and
    before its write: the action is refused, and no lock outlives the session."""
    rid = urgent(client, make_envelope)
    login_as(client, "officer")
    other_tab = app.test_client()
    other_tab.set_cookie("crewreport_session", client.get_cookie("crewreport_session").value)  # type: ignore[union-attr]
    real_keyring = keys.keyring

    def signed_out_meanwhile() -> keys.Keyring:
        answers: list[int] = []  # a concurrent request: its own thread, context and connection
        tab = threading.Thread(target=lambda: answers.append(other_tab.post("/auth/logout").status_code))
        tab.start()
        tab.join()
        assert answers == [302]
        return real_keyring()

    monkeypatch.setattr(views.keys, "keyring", signed_out_meanwhile)
    resp = client.post(f"/triage/reports/{rid}/status",
                       data={"status": "assessing", "reason": "Looking into it", "from_status": "received"})
    assert resp.status_code == 401 and "signed out meanwhile" in text(resp)
    assert (row(app, rid)["status"], row(app, rid)["lock_user_id"]) == ("received", None)  # type: ignore[index]


def test_a_stale_page_cannot_take_a_report_handed_to_another_officer(client: FlaskClient, app: Flask,
                                                                     make_envelope: Make) -> None:
    """A and B both have the report open, assigned to nobody. B hands it to C
    (B holds no lock, so none passes). A's page still says nobody: A's
    "assign to me" must not silently take it from C, who believes it is
    theirs; as with a status, A is told and nothing changes."""
    rid = urgent(client, make_envelope)
    add_officer(app, "officer2")
    add_officer(app, "officer3")
    ids = officer_ids(app)
    login_as(client, "officer")
    page = text(client.get(f"/triage/reports/{rid}"))
    assert 'name="from_assignee"' in page
    other = app.test_client()
    login_as(other, "officer2")
    assert other.post(f"/triage/reports/{rid}/assign",
                      data={"assignee": ids["officer3"], "from_assignee": 0}).status_code == 303
    before = row(app, rid)
    resp = client.post(f"/triage/reports/{rid}/assign", data={"assignee": ids["officer"], "from_assignee": 0})
    assert resp.status_code == 409
    assert "officer3" in text(resp) and "Nothing was changed" in text(resp)
    assert row(app, rid) == before
    assert len(events(app, "report_assigned", f"report:{rid}")) == 1
    # having looked again, A may take it over
    assert client.post(f"/triage/reports/{rid}/assign",
                       data={"assignee": ids["officer"], "from_assignee": ids["officer3"]}).status_code == 303
    assert row(app, rid)["assignee_id"] == ids["officer"]  # type: ignore[index]
