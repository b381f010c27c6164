"""Airline security's acts on crew accounts and tablets, as they take effect:
a revoked tablet's crew member is signed out everywhere (so it cannot be set
up again without the password), and a form submitted twice at once (a
double click served by two workers) gets a clear answer, never a 500 or a
second audit event."""
from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from crewreport import auth as auth_module
from crewreport import envelope, review

from .helpers import DEVICE_ID, PASSWORD, AuthActions, count, events, raced, signed_in, text


def enrol_new_key(client: FlaskClient) -> int:
    """What a signed-in crew app does to set a tablet up: the status of the answer."""
    key = ec.generate_private_key(ec.SECP256R1())
    resp = client.post("/api/v1/devices", json={"public_key": envelope.jwk_from_public_key(key.public_key()),
                                                "label": "Tablet"})
    return resp.status_code


def crew_sessions(app: Flask) -> int:
    return count(app, "SELECT count(*) FROM user_session s JOIN user u ON u.id = s.user_id"
                      " WHERE u.username = 'crew'")


def test_revoking_a_tablet_signs_its_crew_member_out(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    """A tablet handed over or taken while its crew session lives (a sign-out
    after set-up that did not get through) was set up again with one tap of
    "set up again": the revocation undone without the password. The
    confirmation says the crew member sets a tablet up again by signing in."""
    tablet = app.test_client()
    assert tablet.post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 302
    auth.login("security")
    assert client.post(f"/review/devices/{DEVICE_ID}/revoke").status_code == 303
    assert crew_sessions(app) == 0 and not signed_in(tablet)
    assert enrol_new_key(tablet) == 401
    # The crew member signs in again and sets a tablet up: that works.
    assert tablet.post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 302
    assert enrol_new_key(tablet) == 201


def test_the_cli_revocation_signs_the_crew_member_out_too(app: Flask) -> None:
    tablet = app.test_client()
    assert tablet.post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 302
    result = app.test_cli_runner().invoke(args=["revoke-device", DEVICE_ID])
    assert result.exit_code == 0, result.output
    assert crew_sessions(app) == 0 and not signed_in(tablet)


def test_revoking_one_tablet_of_another_crew_member_signs_no_one_else_out(client: FlaskClient, app: Flask,
                                                                          auth: AuthActions) -> None:
    other = app.test_client()
    assert other.post("/auth/login", data={"username": "crew-yy", "password": PASSWORD}).status_code == 302
    auth.login("security")
    assert client.post(f"/review/devices/{DEVICE_ID}/revoke").status_code == 303
    assert signed_in(other) and signed_in(client)


def test_a_crew_account_created_twice_at_once_is_made_once(client: FlaskClient, app: Flask, auth: AuthActions,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The name was looked up before the write lock was taken: the second of
    two POSTs at once hit the store's UNIQUE constraint, a 500."""
    auth.login("security")
    raced(app, monkeypatch, auth_module,
          "INSERT INTO user (username, password_hash, role, airline, created_at)"
          " VALUES ('ZZ/twice', 'x', 'crew', 'ZZ', '2026-01-01T00:00:00Z')")
    resp = client.post("/review/crew", data={"username": "twice", "password": "long enough password"})
    assert resp.status_code == 409 and "already has a crew account ZZ/twice" in text(resp)
    assert count(app, "SELECT count(*) FROM user WHERE username = 'ZZ/twice'") == 1


def test_a_tablet_revoked_twice_at_once_is_revoked_and_audited_once(client: FlaskClient, app: Flask,
                                                                   auth: AuthActions,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The second of two POSTs at once changed no row but still recorded a
    `device_revoked` event and said it had revoked the tablet."""
    auth.login("security")
    raced(app, monkeypatch, review, "UPDATE device SET revoked_at = '2026-01-01T00:00:00Z' WHERE id = ?", DEVICE_ID)
    resp = client.post(f"/review/devices/{DEVICE_ID}/revoke")
    assert resp.status_code == 409 and "already revoked" in text(resp)
    assert events(app, "device_revoked") == []


def test_a_reset_password_signs_in_at_once_after_failed_tries(client: FlaskClient, app: Flask,
                                                               auth: AuthActions) -> None:
    """A crew member who forgot their password and tried it a few times asks
    their security team for a new one, on the ground before a flight: the
    failures counted against the old password kept the new one refused
    ("wait 15 minutes") from that tablet, and the tablet could not be set up."""
    tablet = app.test_client()
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        tablet.post("/auth/login", data={"username": "crew", "password": "what was it again"})
    assert "Too many failed attempts" in text(tablet.post("/auth/login", data={"username": "crew",
                                                                               "password": PASSWORD}))
    auth.login("security")
    crew_id = count(app, "SELECT id FROM user WHERE username = 'crew'")
    resp = client.post(f"/review/crew/{crew_id}/password", data={"new_password": "a brand new password"})
    assert resp.status_code == 303
    assert tablet.post("/auth/login", data={"username": "crew", "password": "a brand new password"}).status_code == 302


def test_a_refused_reset_says_whose_password_was_not_reset(client: FlaskClient, app: Flask,
                                                           auth: AuthActions) -> None:
    """The crew page has a reset form on every row: a refusal said only "Not
    reset: ...", above a list of every crew account."""
    auth.login("security")
    crew_id = count(app, "SELECT id FROM user WHERE username = 'crew'")
    resp = client.post(f"/review/crew/{crew_id}/password", data={"new_password": "short"})
    assert resp.status_code == 400
    assert "Password of crew not reset: Use at least 12 characters" in text(resp)
