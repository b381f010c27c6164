"""Airline security's acts on crew accounts and tablets, as they take
effect: a form submitted twice at once (a double click served by two
workers) gets a clear answer, never a 500 or a second audit event."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import auth as auth_module
from crewreport import review

from .helpers import DEVICE_ID, AuthActions, count, events, raced, text


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
