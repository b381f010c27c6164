"""The role-by-route access matrix, built from `app.url_map` so that a new route
cannot be forgotten: a route neither in EXPECTED nor under an owned prefix fails.

Roles: anonymous, crew, airline_security, border_force, admin. "Allowed" means
the request got past access control: not 401/403, not sent to sign-in, no 5xx
(a 404 for a made-up id, or a 400 for an empty form, counts as allowed).
"""
from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import IntegerConverter, PathConverter, Rule

from .helpers import AuthActions

PUBLIC = "public"          # anyone, signed in or not
SIGNED_IN = "signed_in"    # any signed-in user
INTAKE = "intake"          # no cookie needed: the envelope's signature is the credential
SIGN_OUT = "sign_out"      # anyone; always ends on the sign-in page
STAFF = "staff"            # any signed-in user but crew

EXPECTED: dict[tuple[str, str], str] = {
    ("/static/<path:filename>", "GET"): PUBLIC,
    ("/", "GET"): PUBLIC,
    ("/manifest.webmanifest", "GET"): PUBLIC,
    ("/sw.js", "GET"): PUBLIC,
    ("/favicon.ico", "GET"): PUBLIC,
    ("/auth/login", "GET"): PUBLIC,
    ("/auth/login", "POST"): PUBLIC,
    ("/auth/logout", "POST"): SIGN_OUT,
    ("/auth/session", "GET"): PUBLIC,
    ("/auth/password", "GET"): SIGNED_IN,
    ("/auth/password", "POST"): SIGNED_IN,
    ("/auth/recovery-codes", "GET"): STAFF,
    ("/auth/recovery-codes", "POST"): STAFF,
    ("/api/v1/keys", "GET"): PUBLIC,
    ("/api/v1/openapi.json", "GET"): PUBLIC,
    ("/api/v1/devices", "POST"): "crew",
    ("/api/v1/devices/<device_id>", "GET"): PUBLIC,
    ("/api/v1/reports", "POST"): INTAKE,
    ("/api/v1/reports/batch", "POST"): INTAKE,
    ("/api/v1/reports/status", "POST"): INTAKE,
}
# Every route under these prefixes belongs to one role only.
OWNED_PREFIXES = {"/triage": "border_force", "/review": "airline_security", "/admin": "admin"}
ROLES = {None: "anonymous", "crew": "crew", "security": "airline_security",
         "officer": "border_force", "admin": "admin"}
STATIC_SAMPLE = "css/crew.css"


def expectation(rule: Rule, method: str) -> str | None:
    if (rule.rule, method) in EXPECTED:
        return EXPECTED[(rule.rule, method)]
    for prefix, role in OWNED_PREFIXES.items():
        if rule.rule == prefix or rule.rule.startswith(prefix + "/"):
            return role
    return None


def sample_url(app: Flask, rule: Rule) -> str:
    """The rule with made-up values: random ids the app has never seen."""
    values: dict[str, Any] = {}
    for name, converter in rule._converters.items():
        if isinstance(converter, IntegerConverter):
            values[name] = 987654
        elif isinstance(converter, PathConverter):
            values[name] = STATIC_SAMPLE
        else:
            values[name] = str(uuid.uuid4())
    with app.test_request_context():
        adapter = app.url_map.bind("localhost")
        return adapter.build(rule.endpoint, values, method=next(iter(sorted(rule.methods - {"HEAD", "OPTIONS"}))))  # type: ignore[operator]


def routes(app: Flask) -> list[tuple[Rule, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return found


def sent_to_sign_in(resp: Any) -> bool:
    return resp.status_code in (301, 302, 303) and resp.headers.get("Location", "").startswith("/auth/login")


def allowed(resp: Any) -> bool:
    return resp.status_code < 500 and resp.status_code not in (401, 403) and not sent_to_sign_in(resp)


def verdict(category: str, role: str, resp: Any) -> str | None:
    """None when the response is what `category` promises for `role`, else why not."""
    status = resp.status_code
    if status >= 500:
        return f"server error {status}"
    if category == SIGN_OUT:
        return None if sent_to_sign_in(resp) else f"not sent to sign-in ({status})"
    if category in (PUBLIC, INTAKE):
        return None if allowed(resp) else f"refused ({status})"
    if role == "anonymous":
        return None if (sent_to_sign_in(resp) or status == 401) else f"anonymous got {status}"
    if category == STAFF and role == "crew":
        return None if status == 403 else f"expected 403, got {status}"
    if category in (SIGNED_IN, STAFF) or category == role:
        return None if allowed(resp) else f"refused ({status} {resp.headers.get('Location', '')})"
    return None if status == 403 else f"expected 403, got {status}"


class Sessions:
    """One real sign-in per user, its session cookie reused by a fresh client
    for each request: a staff code is good once, so signing in again for each
    of hundreds of requests would be refused as a replayed code."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.cookies: dict[str, str] = {}

    def client(self, username: str | None) -> FlaskClient:
        client = self.app.test_client()
        if username and username not in self.cookies:
            assert AuthActions(client).login(username).status_code == 302
            cookie = client.get_cookie(self.app.config["SESSION_COOKIE_NAME"])
            assert cookie is not None
            self.cookies[username] = cookie.value
        if username:
            client.set_cookie(self.app.config["SESSION_COOKIE_NAME"], self.cookies[username])
        return client

    def request(self, username: str | None, method: str, url: str) -> Any:
        client = self.client(username)
        headers = {"Accept": "text/html"}
        if url.startswith("/api/"):
            return client.open(url, method=method, json={}, headers=headers)
        resp = client.open(url, method=method, data={}, headers=headers)
        if url == "/auth/logout" and username:
            self.cookies.pop(username)  # that session has ended
        return resp


def request(app: Flask, username: str | None, method: str, url: str) -> Any:
    return Sessions(app).request(username, method, url)


def test_every_route_has_an_expectation(app: Flask) -> None:
    missing = [f"{method} {rule.rule} ({rule.endpoint})" for rule, method in routes(app)
               if expectation(rule, method) is None]
    assert not missing, "add these routes to EXPECTED in tests/test_access.py: " + ", ".join(missing)


def test_expectations_name_real_routes(app: Flask) -> None:
    real = {(rule.rule, method) for rule, method in routes(app)}
    assert not set(EXPECTED) - real, f"stale entries: {set(EXPECTED) - real}"


def test_access_matrix(app: Flask) -> None:
    problems = []
    checked = 0
    sessions = Sessions(app)
    for rule, method in routes(app):
        category = expectation(rule, method)
        if category is None:
            continue  # reported by test_every_route_has_an_expectation
        url = sample_url(app, rule)
        for username, role in ROLES.items():
            resp = sessions.request(username, method, url)
            checked += 1
            why = verdict(category, role, resp)
            if why:
                problems.append(f"{method} {url} as {role} ({category}): {why}")
    assert checked >= len(EXPECTED) * len(ROLES)
    assert not problems, "\n".join(problems)


def test_api_refusals_are_json(app: Flask) -> None:
    anonymous = request(app, None, "POST", "/api/v1/devices")
    assert anonymous.status_code == 401 and anonymous.get_json()["error"]["code"] == "unauthenticated"
    officer = request(app, "officer", "POST", "/api/v1/devices")
    assert officer.status_code == 403 and officer.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize(("prefix", "owner"), sorted(OWNED_PREFIXES.items()))
def test_owned_prefix_home_allows_owner(app: Flask, prefix: str, owner: str) -> None:
    username = {v: k for k, v in ROLES.items()}[owner]
    resp = request(app, username, "GET", prefix + "/")
    assert resp.status_code == 200
