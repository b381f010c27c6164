"""Headers every response carries, caching rules, HSTS over HTTPS only, and the
CSRF meta tag on HTML pages."""
from __future__ import annotations

import re

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from .helpers import AuthActions

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
PUBLIC_PATHS = ["/auth/login", "/auth/session", "/api/v1/keys", "/", "/manifest.webmanifest", "/sw.js",
                "/static/css/crew.css"]


def csp_directives(value: str) -> dict[str, str]:
    return {part.split()[0]: " ".join(part.split()[1:]) for part in value.split(";") if part.strip()}


@pytest.mark.parametrize("path", PUBLIC_PATHS)
def test_common_headers(client: FlaskClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200, path
    for name, value in COMMON.items():
        assert resp.headers.get(name) == value, (path, name)
    csp = csp_directives(resp.headers["Content-Security-Policy"])
    assert csp["default-src"] == "'self'"
    assert csp["script-src"] == "'self'"  # no inline script, no eval
    assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
    assert "unsafe-inline" not in resp.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in resp.headers


@pytest.mark.parametrize("path", ["/auth/login", "/auth/session", "/api/v1/keys"])
def test_pages_and_api_not_stored(client: FlaskClient, path: str) -> None:
    assert "no-store" in client.get(path).headers["Cache-Control"]


def test_signed_in_pages_and_errors_not_stored(app: Flask) -> None:
    client = app.test_client()
    AuthActions(client).login("officer")
    for path in ("/triage/", "/auth/password", "/api/v1/nothing-here"):
        assert "no-store" in client.get(path).headers["Cache-Control"], path
    resp = client.post("/api/v1/reports", json={"bad": 1})
    assert resp.status_code == 400 and "no-store" in resp.headers["Cache-Control"]


def test_crew_shell_revalidates(client: FlaskClient) -> None:
    """The shell holds nothing personal; the service worker keeps it, so it is no-cache, not no-store."""
    for path in ("/", "/sw.js", "/manifest.webmanifest"):
        cache = client.get(path).headers["Cache-Control"]
        assert "no-cache" in cache or "no-store" in cache, path
        assert "public" not in cache and "immutable" not in cache


def test_static_is_cacheable(client: FlaskClient) -> None:
    resp = client.get("/static/css/crew.css")
    assert resp.status_code == 200
    assert "no-store" not in resp.headers.get("Cache-Control", "")
    assert resp.headers.get("ETag") or resp.headers.get("Last-Modified")


def test_hsts_only_over_https(client: FlaskClient) -> None:
    for path in ("/auth/login", "/api/v1/keys"):
        assert "Strict-Transport-Security" not in client.get(path).headers
        hsts = client.get(path, base_url="https://localhost").headers.get("Strict-Transport-Security", "")
        assert re.fullmatch(r"max-age=(\d+).*", hsts) and int(hsts.split("=")[1].split(";")[0]) >= 31536000


def test_html_pages_carry_csrf_meta(client: FlaskClient) -> None:
    html = client.get("/auth/login").get_data(as_text=True)
    assert re.search(r'<meta name="csrf-token" content="[^"]{20,}">', html)


def test_the_crew_shell_carries_no_token_and_sets_no_cookie(client: FlaskClient) -> None:
    """The shell is kept by the service worker for as long as its version
    lasts: a token in it would be stale, and each load would start a session
    nobody uses. Without them, every load of one version is the same bytes."""
    first, second = client.get("/"), client.get("/")
    assert first.status_code == 200 and "Set-Cookie" not in first.headers
    assert "csrf" not in first.get_data(as_text=True).lower()
    assert first.get_data() == second.get_data()


def test_signed_in_pages_carry_csrf_meta(app: Flask) -> None:
    for username, path in (("officer", "/triage/"), ("security", "/review/"), ("admin", "/admin/"),
                           ("crew", "/auth/password")):
        client = app.test_client()
        AuthActions(client).login(username)
        resp = client.get(path)
        assert resp.status_code == 200, (username, path)
        assert re.search(r'<meta name="csrf-token" content="[^"]{20,}">', resp.get_data(as_text=True)), path


def test_json_errors_are_json(client: FlaskClient) -> None:
    resp = client.get("/api/v1/unknown")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"
    resp = client.get("/api/v1/reports")
    assert resp.status_code == 405 and resp.get_json()["error"]["code"] == "method_not_allowed"


def test_behind_a_proxy_the_client_address_and_scheme_are_the_forwarded_ones(app: Flask) -> None:
    """With PROXY_COUNT set, throttling sees each client, and the session cookie is Secure."""
    from crewreport import create_app
    proxied = create_app({**app.config, "PROXY_COUNT": 1})
    client = proxied.test_client()
    resp = client.post("/auth/login", data={"username": "nobody", "password": "x"},
                       headers={"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"})
    assert resp.status_code == 200
    with proxied.app_context():
        from crewreport.db import get_db
        assert get_db().execute("SELECT address FROM login_failure").fetchone()[0] == "203.0.113.7"
    cookie = resp.headers.get("Set-Cookie", "")
    assert "Secure" in cookie


@pytest.mark.parametrize(("who", "path", "status"), [
    (None, "/no/such/page", 404),
    ("officer", "/triage/reports/no-such-report", 404),
    ("security", "/triage/", 403),
    ("crew", "/admin/", 403),
])
def test_error_pages_are_app_pages(client: FlaskClient, auth: AuthActions, who: str | None,
                                   path: str, status: int) -> None:
    """Error pages carry the CSRF meta and a way back, like every HTML page."""
    if who:
        auth.login(who)
    resp = client.get(path)
    assert resp.status_code == status
    page = resp.get_data(as_text=True)
    assert re.search(r'<meta name="csrf-token" content="[^"]+">', page)
    assert "no-store" in resp.headers["Cache-Control"]


def test_unrouted_api_paths_answer_json(client: FlaskClient) -> None:
    for method, path, code in (("GET", "/api/v1/nothing", "not_found"),
                               ("GET", "/api/v1/reports", "method_not_allowed"),
                               ("DELETE", "/api/v1/keys", "method_not_allowed")):
        resp = client.open(path, method=method)
        assert resp.is_json and resp.get_json()["error"]["code"] == code, path


def test_429_says_when_to_retry(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 0
    resp = client.post("/api/v1/reports", json={})
    assert resp.status_code == 429 and 1 <= int(resp.headers["Retry-After"]) <= 60
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        auth.login("officer", "wrong")
    resp = auth.login("officer")
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) == app.config["LOGIN_WINDOW_SECONDS"]


def test_a_views_own_header_is_kept_and_not_doubled(client: FlaskClient) -> None:
    """The crew shell sets its own Cache-Control; the app-wide defaults fill
    in only what a response lacks, each header once."""
    resp = client.get("/")
    assert resp.headers.getlist("Cache-Control") == ["no-cache"]
    api = client.get("/api/v1/keys")
    for name in ("Content-Security-Policy", "X-Frame-Options", "Cache-Control"):
        assert len(api.headers.getlist(name)) == 1, name


def test_a_views_own_header_counts_whatever_its_case(app: Flask) -> None:
    """HTTP header names are case-insensitive: a view that sets
    `cache-control` or `x-frame-options` keeps its value, alone."""
    def own() -> tuple[str, int, dict[str, str]]:
        return "ok", 200, {"cache-control": "private, max-age=60", "x-frame-options": "SAMEORIGIN"}

    app.add_url_rule("/test-own-headers", view_func=own)
    resp = app.test_client().get("/test-own-headers")
    assert resp.headers.getlist("Cache-Control") == ["private, max-age=60"]
    assert resp.headers.getlist("X-Frame-Options") == ["SAMEORIGIN"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_a_static_file_for_a_signed_in_officer_carries_no_session(app: Flask, client: FlaskClient,
                                                                    auth: AuthActions) -> None:
    """Cached for a year by anyone between: never with someone's session cookie."""
    assert auth.login("officer").status_code == 302
    with app.test_request_context():
        url = url_for("static", filename="css/staff.css")
    resp = client.get(url)
    assert resp.status_code == 200 and "public" in resp.headers["Cache-Control"]
    assert "Set-Cookie" not in resp.headers
    assert client.get("/auth/session").get_json()["signed_in"]  # the session itself goes on


def test_an_error_page_under_static_is_not_stored(client: FlaskClient, auth: AuthActions) -> None:
    assert auth.login("officer").status_code == 302
    resp = client.get("/static/js/no-such-file.js")
    assert resp.status_code == 404
    assert "officer" in resp.get_data(as_text=True)  # it names who is signed in
    assert resp.headers["Cache-Control"] == "no-store"
