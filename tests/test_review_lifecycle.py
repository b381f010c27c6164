"""Airline security's acts on crew accounts and tablets, as they take
effect: a form submitted twice at once (a double click served by two
workers) gets a clear answer, never a 500."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import auth as auth_module

from .helpers import AuthActions, count, raced, text


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
