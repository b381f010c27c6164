"""Sign-in throttling: guessing is slowed, the real user is not locked out by
strangers, and nothing typed into the username box is kept in clear."""
from __future__ import annotations

import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from crewreport import throttle
from crewreport.db import get_db
from crewreport.throttle import CLOSED, DEVICE_COOKIE, DEVICE_COOKIE_DAYS, UNDER_ATTACK, account_key, address_key

from .helpers import PASSWORD, AuthActions, store_bytes


def from_address(app: Flask, address: str, username: str, password: str,
                 client: FlaskClient | None = None) -> int:
    """One full sign-in attempt from `address`; the status of its last step."""
    client = client or app.test_client()
    return int(AuthActions(client).login(username, password, environ_base={"REMOTE_ADDR": address}).status_code)


def spread_failures(app: Flask, username: str, count: int, prefix: str = "10.0") -> None:
    """`count` wrong passwords for `username`, each from an address of its own."""
    for i in range(count):
        assert from_address(app, f"{prefix}.{i // 250}.{i % 250 + 1}", username, "wrong password") == 200


def test_wrong_passwords_from_many_addresses_do_not_lock_the_user_out(app: Flask) -> None:
    """20 wrong passwords from 20 addresses used to refuse even the right
    password from a new address; now it signs in (crew, and staff through the code)."""
    limit = app.config["LOGIN_MAX_FAILURES"]
    for username in ("officer", "crew"):
        spread_failures(app, username, 4 * limit)
        assert from_address(app, "192.0.2.77", username, PASSWORD) == 302, username


def test_under_attack_each_address_gets_one_try_at_the_account(app: Flask) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    spread_failures(app, "crew", UNDER_ATTACK * limit)
    # An address that already failed for the account is refused, right password or not.
    assert from_address(app, "10.0.0.1", "crew", PASSWORD) == 429
    # Other accounts from that address are not under attack.
    assert from_address(app, "10.0.0.1", "officer", PASSWORD) == 302


def test_a_browser_that_signed_in_before_is_never_refused_by_strangers(app: Flask) -> None:
    """With enough failures the untrusted channel closes for the account (a new
    address is refused too), but the browser holding a device cookie signs in."""
    limit = app.config["LOGIN_MAX_FAILURES"]
    desk = app.test_client()
    assert from_address(app, "192.0.2.10", "officer", PASSWORD, desk) == 302
    assert desk.get_cookie(DEVICE_COOKIE, path="/auth/") is not None
    AuthActions(desk).logout()
    spread_failures(app, "officer", CLOSED * limit)
    assert from_address(app, "192.0.2.99", "officer", PASSWORD) == 429
    # Even from an address the attacker used, the trusted browser signs in.
    assert from_address(app, "10.0.0.3", "officer", PASSWORD, desk) == 302


def test_device_cookie_is_per_user_and_signed(app: Flask) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    browser = app.test_client()
    assert from_address(app, "192.0.2.10", "crew", PASSWORD, browser) == 302
    AuthActions(browser).logout()
    spread_failures(app, "officer", CLOSED * limit)
    # crew's device cookie does not make the browser trusted for officer.
    assert from_address(app, "192.0.2.10", "officer", PASSWORD, browser) == 429
    # A forged cookie is no cookie.
    forged = app.test_client()
    forged.set_cookie(DEVICE_COOKIE, "eyJ4IjoieSJ9.forged.sig", path="/auth/")
    assert from_address(app, "192.0.2.11", "officer", PASSWORD, forged) == 429


def device_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(DEVICE_COOKIE, path="/auth/")
    assert cookie is not None
    return cookie.value


def trusted_for(app: Flask, value: str, username: str) -> bool:
    """Whether a browser sending this device cookie is trusted for `username`."""
    with app.test_request_context(headers={"Cookie": f"{DEVICE_COOKIE}={value}"}):
        user_id = get_db().execute("SELECT id FROM user WHERE username = ?", (username,)).fetchone()[0]
        return throttle.device_for(user_id) is not None


def test_device_cookie_flags(app: Flask) -> None:
    """Only the sign-in pages see it, no script reads it, no other site sends
    it, and it lasts DEVICE_COOKIE_DAYS; Secure wherever the session cookie is."""
    def flags(client: FlaskClient, **kwargs: Any) -> set[str]:
        resp = AuthActions(client).login("crew", **kwargs)
        found = [h for h in resp.headers.getlist("Set-Cookie") if h.startswith(DEVICE_COOKIE + "=")]
        assert len(found) == 1
        return {part.strip() for part in found[0].split(";")[1:] if not part.strip().startswith("Expires=")}

    expected = {"Path=/auth/", "HttpOnly", "SameSite=Strict", f"Max-Age={DEVICE_COOKIE_DAYS * 86400}"}
    assert flags(app.test_client()) == expected
    assert flags(app.test_client(), base_url="https://localhost") == expected | {"Secure"}
    app.config["SESSION_COOKIE_SECURE"] = True  # behind a proxy that ends TLS
    assert flags(app.test_client()) == expected | {"Secure"}


def test_a_device_cookie_is_trusted_for_its_days_and_its_purpose_only(app: Flask,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    browser = app.test_client()
    assert AuthActions(browser).login("crew").status_code == 302
    assert trusted_for(app, device_cookie(browser), "crew")
    with app.test_request_context():
        entries = throttle._serializer().loads(device_cookie(browser))
        for days, trusted in ((DEVICE_COOKIE_DAYS - 1, True), (DEVICE_COOKIE_DAYS + 1, False)):
            signed_at = int(time.time()) - days * 86400
            with monkeypatch.context() as m:
                m.setattr(TimestampSigner, "get_timestamp", lambda self, at=signed_at: at)
                old = throttle._serializer().dumps(entries)
            assert trusted_for(app, old, "crew") is trusted, days
        # The same secret signing something else (Flask's session, itsdangerous's defaults) is no device cookie.
        others = [URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=salt).dumps(entries)
                  for salt in ("cookie-session", b"itsdangerous", None)]
    assert not any(trusted_for(app, other, "crew") for other in others)


def test_the_device_cookie_keeps_the_users_who_signed_in_last(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "DEVICE_COOKIE_USERS", 2)
    shared = app.test_client()
    for username in ("crew", "officer", "crew", "security"):
        assert AuthActions(shared).login(username).status_code == 302
        AuthActions(shared).logout()
    value = device_cookie(shared)
    assert [trusted_for(app, value, u) for u in ("crew", "officer", "security")] == [True, False, True]


def test_a_trusted_browser_guessing_locks_only_itself(app: Flask) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    browser = app.test_client()
    assert from_address(app, "192.0.2.10", "crew", PASSWORD, browser) == 302
    AuthActions(browser).logout()
    for _ in range(limit):
        assert from_address(app, "192.0.2.10", "crew", "wrong password", browser) == 200
    assert from_address(app, "192.0.2.10", "crew", PASSWORD, browser) == 429
    # Its failures did not count against the account or the address elsewhere.
    assert from_address(app, "192.0.2.10", "crew", PASSWORD) == 302


def test_throttled_per_account_and_address(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert auth.login("officer", "wrong").status_code == 200
    resp = auth.login("officer", PASSWORD)
    assert resp.status_code == 429 and "Too many failed attempts" in resp.get_data(as_text=True)
    assert resp.headers["Retry-After"] == str(app.config["LOGIN_WINDOW_SECONDS"])
    assert client.get("/auth/session").get_json()["signed_in"] is False
    # The same account by another name case is the same account.
    assert auth.login("OFFICER", PASSWORD).status_code == 429
    # The officer at their own desk is not affected.
    assert from_address(app, "10.20.30.40", "officer", PASSWORD) == 302


def test_throttled_per_address(app: Flask, auth: AuthActions) -> None:
    app.config["LOGIN_MAX_FAILURES"] = 2  # per account and address 2, per address 4 * 2
    for i in range(8):
        assert auth.login(f"guess{i}", "wrong").status_code == 200
    # A real account, never failed itself, from the same address: throttled.
    assert auth.login("admin", PASSWORD).status_code == 429
    assert from_address(app, "10.1.2.3", "admin", PASSWORD) == 302


def test_one_ipv6_host_is_one_address() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.1") == address_key("192.0.2.1") == "192.0.2.1"


def test_successful_sign_in_clears_failures(app: Flask, auth: AuthActions) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit - 1):
        auth.login("crew", "wrong")
    assert auth.login("crew").status_code == 302
    auth.logout()
    for _ in range(limit - 1):
        auth.login("crew", "wrong")
    assert auth.login("crew").status_code == 302


def test_a_password_typed_as_username_is_not_kept(app: Flask, auth: AuthActions) -> None:
    typed = "MySecretPassw0rd!"
    auth.login(typed, "x")
    auth.login("officer", "wrong")
    with app.app_context():
        rows = [dict(r) for r in get_db().execute("SELECT * FROM login_failure ORDER BY id")]
        assert [r["account"] for r in rows] == [account_key(typed), account_key("officer")]
        assert account_key("OFFICER") == account_key("officer")
    assert all(typed not in str(v) and "officer" not in str(v) for r in rows for v in r.values())
    assert typed.encode() not in store_bytes(app)


def test_the_keyed_hash_depends_on_the_instance_secret(app: Flask) -> None:
    with app.app_context():
        here = account_key("officer")
        app.config["SECRET_KEY"] = "another instance"
        assert account_key("officer") != here


def test_failures_older_than_the_window_are_purged(app: Flask, auth: AuthActions) -> None:
    with app.app_context():
        db = get_db()
        db.execute("INSERT INTO login_failure (account, address, at)"
                   " VALUES ('old', '10.0.0.1', '2020-01-01T00:00:00Z')")
    auth.login("officer", "wrong")
    with app.app_context():
        left = [r["account"] for r in get_db().execute("SELECT account FROM login_failure")]
        assert left == [account_key("officer")]
