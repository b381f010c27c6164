"""Staff error pages speak the app's words, keep its navigation and CSRF
meta, and say who a refused page is for and when to try again."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import TooManyRequests

from .helpers import AuthActions, text

WERKZEUG_WORDS = ("You don't have the permission", "The requested URL was not found", "Werkzeug")


@pytest.mark.parametrize(("who", "path", "audience", "role"), [
    ("security", "/triage/", "Border Force officers", "airline security, ZZ"),
    ("officer", "/review/", "airline security teams", "Border Force officer"),
    ("crew", "/admin/", "administrators", "cabin crew, ZZ"),
    ("admin", "/triage/reports/x", "Border Force officers", "administrator"),
])
def test_forbidden_says_who_you_are_and_whom_the_page_is_for(client: FlaskClient, auth: AuthActions, who: str,
                                                             path: str, audience: str, role: str) -> None:
    auth.login(who)
    resp = client.get(path)
    assert resp.status_code == 403
    page = text(resp)
    assert f"You are signed in as <strong>{who}</strong> ({role})." in page
    assert f"This page is for {audience}." in page
    assert '<meta name="csrf-token"' in page and 'class="topbar"' in page and "Sign out" in page
    assert 'data-error="403"' in page and not any(w in page for w in WERKZEUG_WORDS)


def test_not_found_in_the_apps_words(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("officer")
    resp = client.get("/no/such/page")
    assert resp.status_code == 404
    page = text(resp)
    assert "Page not found" in page and 'class="topbar"' in page and 'href="/triage/"' in page
    assert not any(w in page for w in WERKZEUG_WORDS)
    signed_out = text(FlaskClient(client.application).get("/nothing-here"))
    assert "Page not found" in signed_out and "Sign in" in signed_out


def test_too_many_requests_says_when_to_retry(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    def limited() -> str:
        raise TooManyRequests(retry_after=170)

    app.add_url_rule("/triage/limited-for-test", "limited_for_test", limited)
    auth.login("officer")
    resp = client.get("/triage/limited-for-test")
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "170"
    page = text(resp)
    assert "Too many attempts" in page and "wait 3 minutes" in page and 'class="topbar"' in page
    assert not any(w in page for w in WERKZEUG_WORDS)


def test_api_errors_stay_json(client: FlaskClient) -> None:
    resp = client.get("/api/v1/nothing")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
