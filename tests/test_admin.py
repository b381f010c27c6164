"""The admin audit pages: chain integrity, a report's trail (also after a
purge), look-up by reference, and access."""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db

from .helpers import AuthActions, Make, deliver, login_as, row, text, update_report


def test_trail_of_a_report_in_order(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    other = deliver(client, make_envelope)
    auth.login("officer")
    client.get(f"/triage/reports/{rid}")
    client.post(f"/triage/reports/{rid}/status", data={"status": "assessing", "reason": "SECRET-REASON"})
    client.post(f"/triage/reports/{rid}/notes", data={"text": "SECRET-NOTE"})
    login_as(client, "admin")
    resp = client.get(f"/admin/reports/{rid}")
    assert resp.status_code == 200
    page = text(resp)
    actions = [a for a in ("report_received", "report_opened", "status_changed",
                           "note_added") if f'data-action="{a}"' in page]
    assert actions == ["report_received", "report_opened", "status_changed", "note_added"]
    positions = [page.index(f'data-action="{a}"') for a in actions]
    assert positions == sorted(positions)
    assert "user:officer" in page and "device:" in page
    assert other not in page
    assert "SECRET-REASON" not in page and "SECRET-NOTE" not in page
    assert 'data-ok="true"' in page and "Audit chain intact" in page


def test_index_shows_chain_and_finds_by_reference(client: FlaskClient, app: Flask, make_envelope: Make,
                                                  auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("admin")
    page = text(client.get("/admin/"))
    assert 'data-ok="true"' in page and "report_received" in page
    reference = row(app, rid)["reference"]  # type: ignore[index]
    resp = client.get(f"/admin/?report={reference.lower()}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/reports/{rid}")
    assert client.get(f"/admin/reports/{uuid.uuid4()}").status_code == 404


def test_a_broken_chain_is_reported(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    with app.app_context():
        db = get_db()
        # Tamper as an attacker with file access would: around the trigger.
        db.execute("DROP TRIGGER audit_event_no_update")
        db.execute("UPDATE audit_event SET detail = '{\"reference\":\"FORGED\"}' WHERE action = 'report_received'")
    auth.login("admin")
    for path in ("/admin/", f"/admin/reports/{rid}"):
        page = text(client.get(path))
        assert 'data-ok="false"' in page and "Audit chain BROKEN" in page and "was altered" in page


def test_trail_outlives_a_purged_report(client: FlaskClient, app: Flask, make_envelope: Make, runner: Any,
                                        auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    update_report(app, rid, status="referred", closed_at="2000-01-01T00:00:00Z")
    assert runner.invoke(args=["purge"]).exit_code == 0
    assert row(app, rid) is None
    auth.login("admin")
    page = text(client.get(f"/admin/reports/{rid}"))
    assert 'id="purged"' in page and 'data-action="report_purged"' in page and 'data-action="report_received"' in page


@pytest.mark.parametrize("who", [None, "crew", "security", "officer", "admin"])
def test_access_matrix(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                       who: str | None) -> None:
    rid = deliver(client, make_envelope)
    if who:
        auth.login(who)
    for path in ("/admin/", f"/admin/reports/{rid}", f"/admin/?report={rid}"):
        resp = client.get(path)
        if who is None:
            assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], path
        elif who == "admin":
            assert resp.status_code in (200, 303), path
        else:
            assert resp.status_code == 403, (who, path)


def test_look_up_by_reference_as_typed_and_a_clear_miss(client: FlaskClient, app: Flask, make_envelope: Make,
                                                       auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    with app.app_context():
        reference = get_db().execute("SELECT reference FROM report WHERE id = ?", (rid,)).fetchone()[0]
    auth.login("admin")
    for typed in (reference, reference.lower(), reference.replace("-", ""), f" {reference.lower().replace('-', ' ')} "):
        resp = client.get("/admin/", query_string={"report": typed})
        assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/admin/reports/{rid}"), typed
    resp = client.get("/admin/", query_string={"report": "NOPE-00"})
    assert resp.status_code == 404
    page = resp.get_data(as_text=True)
    assert "No report and no audit trail" in page and 'name="csrf-token"' in page
