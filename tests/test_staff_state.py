"""Administrators switch staff accounts off and on at /admin/users: never
their own, never the last active administrator, and an officer switched off
lets go of the reports they held (crewreport/lifecycle.py says why)."""
from __future__ import annotations

import json

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import lifecycle
from crewreport.auth import create_user
from crewreport.triage import workflow

from .helpers import (
    PASSWORD,
    TOTP_SECRET,
    AuthActions,
    Make,
    active,
    add_officer,
    deliver,
    events,
    raced,
    row,
    signed_in,
    staff_client,
    text,
    user_id,
)


def test_admin_deactivates_an_officer_whose_locks_and_assignments_are_let_go(
        client: FlaskClient, app: Flask, auth: AuthActions, make_envelope: Make) -> None:
    """An officer who left must not keep others off a report (a lock), nor
    keep it looking taken (an assignment) while no one works on it."""
    report_id = deliver(client, make_envelope)
    officer = staff_client(app, "officer")
    assert officer.post(f"/triage/reports/{report_id}/assign",
                        data={"assignee": user_id(app, "officer")}).status_code in (302, 303)
    assert row(app, report_id)["lock_user_id"] == user_id(app, "officer")  # type: ignore[index]
    auth.login("admin")
    page = text(client.get(f"/admin/users/{user_id(app, 'officer')}/deactivate"))
    assert "Deactivate officer?" in page and "the reports assigned to them (1 now) become unassigned" in page
    assert client.post(f"/admin/users/{user_id(app, 'officer')}/deactivate").status_code == 303
    after = row(app, report_id)
    assert after["lock_user_id"] is None and after["assignee_id"] is None  # type: ignore[index]
    assert not signed_in(officer)
    unlocked = events(app, "report_unlocked", f"report:{report_id}")
    assert [json.loads(e["detail"])["reason"] for e in unlocked] == ["deactivated"]
    unassigned = json.loads(events(app, "report_assigned", f"report:{report_id}")[-1]["detail"])
    assert unassigned == {"assignee": None, "reason": "assignee_deactivated", "was": "officer"}
    listed = text(client.get("/admin/users")).split(f'data-user-id="{user_id(app, "officer")}"')[1].split("</tr>")[0]
    assert "Deactivated" in listed and "by admin" in listed


def test_a_report_is_not_assigned_to_an_officer_deactivated_meanwhile(
        client: FlaskClient, app: Flask, make_envelope: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """The list of officers is read before the write lock: one switched off
    since must not be given the report."""
    report_id = deliver(client, make_envelope)
    officer = staff_client(app, "officer")
    add_officer(app)
    raced(app, monkeypatch, workflow, "UPDATE user SET active = 0 WHERE username = 'officer2'")
    resp = officer.post(f"/triage/reports/{report_id}/assign", data={"assignee": user_id(app, "officer2")})
    assert resp.status_code == 409 and "officer2 was deactivated meanwhile" in text(resp)
    assert row(app, report_id)["assignee_id"] is None  # type: ignore[index]


def test_an_admin_cannot_deactivate_themselves(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    auth.login("admin")
    me = user_id(app, "admin")
    page = text(client.get("/admin/users"))
    assert f"/admin/users/{me}/deactivate" not in page and f"/admin/users/{user_id(app, 'officer')}/deactivate" in page
    resp = client.post(f"/admin/users/{me}/deactivate")
    assert resp.status_code == 400 and "your own account" in text(resp)
    assert active(app, "admin") and signed_in(client)


def test_the_last_active_admin_is_never_deactivated(client: FlaskClient, app: Flask, auth: AuthActions,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two administrators switching each other off at once would leave none:
    the count is taken under the write lock."""
    with app.app_context():
        create_user("admin2", "admin", PASSWORD, totp_secret=TOTP_SECRET)
    auth.login("admin2")
    # The other administrator's request has switched this one off meanwhile.
    raced(app, monkeypatch, lifecycle, "UPDATE user SET active = 0 WHERE username = 'admin2'")
    resp = client.post(f"/admin/users/{user_id(app, 'admin')}/deactivate")
    assert resp.status_code == 409 and "last active administrator" in text(resp)
    assert active(app, "admin") and events(app, "user_deactivated") == []


def test_admin_reactivates_staff_and_never_touches_crew(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    auth.login("admin")
    officer = user_id(app, "officer")
    assert client.post(f"/admin/users/{officer}/deactivate").status_code == 303
    assert client.post(f"/admin/users/{officer}/deactivate").status_code == 409
    assert "Reactivate officer?" in text(client.get(f"/admin/users/{officer}/reactivate"))
    assert client.post(f"/admin/users/{officer}/reactivate").status_code == 303
    assert active(app, "officer") and len(events(app, "user_deactivated")) == 1
    assert client.post(f"/admin/users/{user_id(app, 'crew')}/deactivate").status_code == 404
    assert active(app, "crew")


