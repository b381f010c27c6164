"""Sign-in and sessions: messages, throttling, session renewal, password
change ending every session, cookie flags, argon2id, safe `next`."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport.auth import safe_next
from crewreport.db import get_db

from .helpers import PASSWORD, AuthActions

LOGIN_ERROR = "Username or password is not right."


def session_info(client: FlaskClient) -> dict[str, Any]:
    resp = client.get("/auth/session")
    assert resp.status_code == 200
    return resp.get_json()


def set_cookie(resp: Any, name: str = "crewreport_session") -> str:
    """The Set-Cookie header of the session cookie in `resp`."""
    found = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(name + "=")]
    assert found, resp.headers
    return found[0]


def test_sign_in_and_out(client: FlaskClient, auth: AuthActions) -> None:
    assert session_info(client)["signed_in"] is False
    resp = auth.login("officer")
    assert resp.status_code == 302 and resp.headers["Location"] == "/triage/"
    info = session_info(client)
    assert info["signed_in"] is True
    assert (info["username"], info["role"], info["airline"]) == ("officer", "border_force", None)
    assert info["csrf_token"]
    assert auth.logout().status_code == 302
    assert session_info(client)["signed_in"] is False


def test_each_role_lands_on_its_home(app: Flask) -> None:
    homes = {"crew": "/", "security": "/review/", "officer": "/triage/", "admin": "/admin/"}
    for username, home in homes.items():
        resp = AuthActions(app.test_client()).login(username)
        assert resp.headers["Location"] == home, username


def test_session_shows_crew_airline(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("crew")
    info = session_info(client)
    assert (info["role"], info["airline"]) == ("crew", "ZZ")


def normalised_page(html: str, username: str) -> str:
    """The page without what legitimately differs: tokens and the echoed username."""
    html = re.sub(r'(content|value)="[^"]*"', r'\1=""', html)
    return html.replace(username, "USERNAME")


def test_wrong_password_and_unknown_user_look_the_same(client: FlaskClient, auth: AuthActions) -> None:
    wrong = auth.login("officer", "not the password")
    unknown = auth.login("nobody-at-all", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    assert LOGIN_ERROR in wrong.get_data(as_text=True)
    assert normalised_page(wrong.get_data(as_text=True), "officer") == \
        normalised_page(unknown.get_data(as_text=True), "nobody-at-all")
    assert session_info(client)["signed_in"] is False


def test_sign_out_ends_the_session_for_good(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    """A copy of the cookie taken before sign-out is worth nothing after it."""
    assert auth.login("officer").status_code == 302
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    assert client.get("/triage/").status_code == 200
    auth.logout()
    thief = app.test_client()
    thief.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value)
    resp = thief.get("/triage/")
    assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"]
    with app.app_context():
        assert get_db().execute("SELECT count(*) FROM user_session").fetchone()[0] == 0


def test_the_session_store_holds_no_usable_token(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("officer")
    with app.app_context():
        stored = get_db().execute("SELECT token_sha256 FROM user_session").fetchone()[0]
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"]).value  # type: ignore[union-attr]
    assert len(stored) == 64 and stored not in cookie


def test_unknown_usernames_are_not_written_to_the_audit_log(app: Flask, auth: AuthActions) -> None:
    """A password typed into the username box must not live on in the log."""
    auth.login("MySecretPassw0rd!", "x")
    auth.login("officer", "wrong")
    with app.app_context():
        rows = get_db().execute("SELECT actor, detail FROM audit_event WHERE action = 'sign_in_failed'").fetchall()
    assert [r["actor"] for r in rows] == ["unknown-user", "user:officer"]
    assert all("MySecretPassw0rd" not in r["detail"] for r in rows)


def test_session_renewed_on_sign_in(client: FlaskClient, auth: AuthActions) -> None:
    with client.session_transaction() as sess:
        sess["planted"] = "attacker-chosen"
    before = client.get_cookie("crewreport_session")
    assert before is not None
    resp = auth.login("officer")
    after = client.get_cookie("crewreport_session")
    assert after is not None and after.value != before.value
    assert "crewreport_session=" in set_cookie(resp)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess.get("_user_id")


def test_password_change_ends_every_session(app: Flask) -> None:
    first, second = app.test_client(), app.test_client()
    AuthActions(first).login("crew")
    AuthActions(second).login("crew")
    assert session_info(second)["signed_in"] is True
    resp = first.post("/auth/password", data={"current_password": PASSWORD,
                                              "new_password": "a brand new passphrase"})
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/auth/login")
    assert session_info(first)["signed_in"] is False
    assert session_info(second)["signed_in"] is False
    # A stolen copy of the old cookie is no good either.
    assert AuthActions(app.test_client()).login("crew", PASSWORD).status_code == 200
    assert AuthActions(app.test_client()).login("crew", "a brand new passphrase").status_code == 302


def test_password_change_needs_the_current_password(client: FlaskClient, auth: AuthActions) -> None:
    auth.login("crew")
    resp = client.post("/auth/password", data={"current_password": "wrong",
                                               "new_password": "a brand new passphrase"})
    assert resp.status_code == 200
    assert "not your current password" in resp.get_data(as_text=True)
    assert session_info(client)["signed_in"] is True


@pytest.mark.parametrize("path", ["/auth/password", "/auth/recovery-codes"])
def test_an_open_session_is_no_way_round_the_password_throttle(app: Flask, client: FlaskClient,
                                                               auth: AuthActions, path: str) -> None:
    """Whoever finds a session open can guess the password here only as
    slowly as at the sign-in form: failures count there, then both refuse."""
    user = "crew" if path == "/auth/password" else "officer"
    auth.login(user)
    data = {"new_password": "a brand new passphrase", "code": "000000"}
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        resp = client.post(path, data={"current_password": "a guess", **data})
        assert resp.status_code == 200 and "not your current password" in resp.get_data(as_text=True)
    resp = client.post(path, data={"current_password": PASSWORD, **data})  # even the right one, now
    assert resp.status_code == 429 and "Too many failed attempts" in resp.get_data(as_text=True)
    assert int(resp.headers["Retry-After"]) > 0
    with app.app_context():
        failed = get_db().execute("SELECT count(*) FROM audit_event WHERE action = 'password_check_failed'"
                                  " AND subject = ?", (f"user:{user}",)).fetchone()[0]
    assert failed == limit
    assert session_info(client)["signed_in"] is True  # nothing changed
    client.post("/auth/logout")
    assert auth.login(user).status_code == 429  # and the sign-in form counts them too


def test_cookie_flags_over_http(client: FlaskClient) -> None:
    resp = client.post("/auth/login", data={"username": "officer", "password": PASSWORD})
    cookie = set_cookie(resp)
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_cookie_secure_over_https(client: FlaskClient) -> None:
    resp = client.post("/auth/login", data={"username": "officer", "password": PASSWORD},
                       base_url="https://localhost")
    cookie = set_cookie(resp)
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_a_sign_in_lasts_twelve_hours(client: FlaskClient) -> None:
    """The session cookie outlives the browser's session, for one duty."""
    resp = client.post("/auth/login", data={"username": "crew", "password": PASSWORD})
    expires = re.search(r"Expires=([^;]+)", set_cookie(resp))
    assert expires, "a signed-in session is a persistent cookie"
    left = parsedate_to_datetime(expires.group(1)) - datetime.now(UTC)
    assert timedelta(hours=11, minutes=59) < left <= timedelta(hours=12)


def test_passwords_are_argon2id(app: Flask) -> None:
    with app.app_context():
        hashes = [r[0] for r in get_db().execute("SELECT password_hash FROM user")]
    assert hashes and all(h.startswith("$argon2id$") for h in hashes)
    assert not any(PASSWORD in h for h in hashes)


def test_production_hash_profile_is_argon2id(app: Flask) -> None:
    """Read the production profile's parameters instead of paying for a hash."""
    from argon2 import Type

    from crewreport.auth import hasher

    app.config["PASSWORD_HASH_FAST"] = False
    with app.app_context():
        production = hasher()
    assert production.type is Type.ID
    assert production.memory_cost >= 19 * 1024 and production.time_cost >= 2  # OWASP's argon2id minimum


@pytest.mark.parametrize("target", [
    "//evil.example", "https://evil.example", "http://evil.example/x", "\\\\evil.example",
    "javascript:alert(1)", " //evil.example", "///evil.example",
])
def test_next_open_redirect_refused(auth: AuthActions, target: str) -> None:
    resp = auth.login("officer", query_string={"next": target})
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/triage/"


@pytest.mark.parametrize("target", ["/\\evil.example", "/%2F%2Fevil.example", "/\t/evil.example"])
def test_next_tricky_paths_stay_on_this_site(auth: AuthActions, target: str) -> None:
    """Browsers read `/\\host` as `//host`; what reaches them must be a plain local path."""
    resp = auth.login("officer", query_string={"next": target})
    location = resp.headers["Location"]
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc
    assert location.startswith("/") and not location.startswith("//")
    assert "\\" not in location and "\t" not in location


@pytest.mark.parametrize("target", ["/\\evil.example", "/a\\b", "/\t/evil.example", "/x\x00", "/x\x1f", "/x\x7f",
                                    "//evil.example", "evil.example", ""])
def test_safe_next_refuses_what_a_browser_could_read_as_another_site(target: str) -> None:
    """Each layer on its own: Werkzeug's redirect would also escape some of these."""
    assert safe_next(target) is None


@pytest.mark.parametrize("target", ["/triage/", "/triage/?sort=sta&q=a b", "/review/#x", "/~x"])
def test_safe_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target) == target


def test_next_local_path_kept(auth: AuthActions) -> None:
    resp = auth.login("officer", query_string={"next": "/triage/?sort=sta"})
    assert resp.headers["Location"] == "/triage/?sort=sta"


def test_sign_in_is_audited(app: Flask, auth: AuthActions) -> None:
    auth.login("officer", "wrong")
    auth.login("officer")
    with app.app_context():
        rows = get_db().execute(
            "SELECT action, actor FROM audit_event WHERE action LIKE 'sign_in%' ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [("sign_in_failed", "user:officer"), ("sign_in", "user:officer")]


def test_protected_page_redirects_to_sign_in(client: FlaskClient) -> None:
    resp = client.get("/triage/")
    assert resp.status_code == 302
    assert resp.headers["Location"].startswith("/auth/login?next=")


def test_a_request_without_a_session_cookie_builds_no_session_serializer(app: Flask, client: Any,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The tablets' API requests carry no cookie: no key derivation for them
    (it cost the intake's hot path), and no cookie set in the answer."""
    from crewreport.sessions import SessionInterface

    def refuse(self: Any, app: Flask) -> None:
        raise AssertionError("a session serializer was built for a request without a cookie")

    monkeypatch.setattr(SessionInterface, "get_signing_serializer", refuse)
    resp = client.get("/api/v1/keys")
    assert resp.status_code == 200 and "Set-Cookie" not in resp.headers
    monkeypatch.undo()
    assert isinstance(app.session_interface, SessionInterface)
    signed_in = client.get("/auth/session")  # a page that writes the session still sets its cookie
    assert signed_in.status_code == 200 and "crewreport_session" in signed_in.headers.get("Set-Cookie", "")
