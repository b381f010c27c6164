"""Wrong second-factor codes are counted until the next right one, and at
second_factor.MAX_WRONG_CODES in a row (NIST SP 800-63B 5.2.2) the account's
authenticator codes are no longer taken: the sign-in throttle only slows
guessing within a window, and forgets (migration 0011)."""
from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import second_factor
from crewreport.account import CODES_STOPPED_RENEWING
from crewreport.auth import CODES_STOPPED
from crewreport.db import get_db, transaction

from .helpers import PASSWORD, TOTP_SECRET, AuthActions, code_due, events, said, signed_in, text, totp_code, wrong_code


@pytest.fixture
def unthrottled(app: Flask) -> Flask:
    """The window's throttle out of the way: what is tested here is the count that does not expire."""
    app.config["LOGIN_MAX_FAILURES"] = 10_000
    return app


def wrong_codes(app: Flask, username: str = "officer") -> int:
    with app.app_context():
        return int(get_db().execute("SELECT t.wrong_codes FROM user_totp t JOIN user u ON u.id = t.user_id"
                                    " WHERE u.username = ?", (username,)).fetchone()[0])


def set_wrong_codes(app: Flask, count: int, username: str = "officer") -> None:
    with app.app_context():
        db = get_db()
        with transaction(db):
            db.execute("UPDATE user_totp SET wrong_codes = ? WHERE user_id = (SELECT id FROM user WHERE username = ?)",
                       (count, username))


def recovery_codes(app: Flask, username: str = "officer") -> list[str]:
    with app.app_context():
        db = get_db()
        with transaction(db):
            user_id = db.execute("SELECT id FROM user WHERE username = ?", (username,)).fetchone()[0]
            return second_factor.new_recovery_codes(db, user_id)


def code_step(app: Flask, code: str, address: str = "127.0.0.1") -> tuple[FlaskClient, Any]:
    """A fresh browser gives the password, then `code`."""
    client = app.test_client()
    at = {"REMOTE_ADDR": address}
    client.post("/auth/login", data={"username": "officer", "password": PASSWORD}, environ_base=at)
    return client, client.post("/auth/login", data={"code": code}, environ_base=at)


def test_wrong_codes_count_from_any_address_until_a_right_one(unthrottled: Flask) -> None:
    for n in range(3):
        client, resp = code_step(unthrottled, wrong_code(), f"10.0.0.{n}")
        assert code_due(resp) and not signed_in(client)
    assert wrong_codes(unthrottled) == 3
    client, resp = code_step(unthrottled, totp_code())
    assert resp.status_code == 302 and signed_in(client)
    assert wrong_codes(unthrottled) == 0


def test_at_the_cap_the_right_code_is_refused_and_said_so(unthrottled: Flask) -> None:
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES - 1)
    client, resp = code_step(unthrottled, wrong_code(), "10.9.9.9")
    assert code_due(resp) and CODES_STOPPED in said(text(resp))
    stopped = events(unthrottled, "second_factor_stopped")
    assert [(e["actor"], e["subject"], json.loads(e["detail"])) for e in stopped] == [
        ("user:officer", "user:officer", {"address": "10.9.9.9", "wrong_codes": second_factor.MAX_WRONG_CODES})]
    # The right code, from anywhere, is now one more wrong one.
    client, resp = code_step(unthrottled, totp_code(), "10.1.2.3")
    assert code_due(resp) and not signed_in(client) and CODES_STOPPED in said(text(resp))
    assert wrong_codes(unthrottled) == second_factor.MAX_WRONG_CODES + 1
    assert len(events(unthrottled, "second_factor_stopped")) == 1  # said once, when they stopped


def test_a_recovery_code_signs_in_and_starts_the_codes_again(unthrottled: Flask) -> None:
    codes = recovery_codes(unthrottled)
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES)
    client, resp = code_step(unthrottled, codes[0])
    assert resp.status_code == 302 and signed_in(client)
    assert wrong_codes(unthrottled) == 0
    client, resp = code_step(unthrottled, totp_code())
    assert resp.status_code == 302 and signed_in(client)


def test_an_admin_sees_stopped_codes_and_a_reset_starts_afresh(unthrottled: Flask, client: FlaskClient,
                                                                auth: AuthActions) -> None:
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES)
    auth.login("admin")
    page = text(client.get("/admin/users"))
    assert page.count("codes stopped") == 1 and f"after {second_factor.MAX_WRONG_CODES} wrong ones" in page
    with unthrottled.app_context():
        officer_id = get_db().execute("SELECT id FROM user WHERE username = 'officer'").fetchone()[0]
    assert client.post(f"/admin/users/{officer_id}/second-factor/reset").status_code == 303
    assert "codes stopped" not in text(client.get("/admin/users"))


def test_wrong_codes_while_setting_up_are_not_counted(unthrottled: Flask) -> None:
    """The one setting up has just been shown the secret: no one is guessing it."""
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES)
    with unthrottled.app_context():
        db = get_db()
        with transaction(db):
            user_id = db.execute("SELECT id FROM user WHERE username = 'officer'").fetchone()[0]
            second_factor.reset(db, user_id)
    client = unthrottled.test_client()
    client.post("/auth/login", data={"username": "officer", "password": PASSWORD})
    assert code_due(client.post("/auth/login", data={"code": wrong_code()}))
    assert wrong_codes(unthrottled) == 0


def renew(client: FlaskClient, code: str) -> Any:
    return client.post("/auth/recovery-codes", data={"current_password": PASSWORD, "code": code})


def let_codes_be_due(app: Flask) -> None:
    """As if a minute had passed since the sign-in's code: this step's is new again."""
    with app.app_context():
        db = get_db()
        with transaction(db):
            db.execute("UPDATE user_totp SET last_step = ? WHERE user_id = (SELECT id FROM user WHERE username = ?)",
                       (int(time.time()) // second_factor.STEP_SECONDS - 2, "officer"))


def test_renewing_recovery_codes_counts_wrong_codes_and_takes_none_while_stopped(
        unthrottled: Flask, client: FlaskClient, auth: AuthActions) -> None:
    """A session left open plus the password must not be a way round the cap:
    wrong codes at /auth/recovery-codes count, and once stopped the right one
    mints no recovery codes (which would sign in and start the codes again)."""
    auth.login("officer")
    let_codes_be_due(unthrottled)
    assert "recovery_codes_renewed" not in text(renew(client, wrong_code()))
    assert wrong_codes(unthrottled) == 1
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES - 1)
    page = text(renew(client, wrong_code()))
    assert CODES_STOPPED_RENEWING in said(page)
    assert len(events(unthrottled, "second_factor_stopped")) == 1
    resp = renew(client, totp_code())
    assert CODES_STOPPED_RENEWING in said(text(resp)) and 'id="recovery-codes"' not in text(resp)
    assert events(unthrottled, "recovery_codes_renewed") == []
    assert wrong_codes(unthrottled) == second_factor.MAX_WRONG_CODES + 1


def test_a_right_code_at_renewal_ends_the_run(unthrottled: Flask, client: FlaskClient, auth: AuthActions) -> None:
    auth.login("officer")
    let_codes_be_due(unthrottled)
    set_wrong_codes(unthrottled, 7)
    assert 'id="recovery-codes"' in text(renew(client, totp_code()))
    assert wrong_codes(unthrottled) == 0


def test_a_new_secret_from_the_cli_starts_the_codes_again(unthrottled: Flask) -> None:
    """`flask demo` gives staff new secrets: guesses at the old one say nothing of it."""
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES)
    with unthrottled.app_context():
        db = get_db()
        with transaction(db):
            user_id = db.execute("SELECT id FROM user WHERE username = 'officer'").fetchone()[0]
            second_factor.set_secret(db, user_id, TOTP_SECRET, confirmed=True)
    assert wrong_codes(unthrottled) == 0
    client, resp = code_step(unthrottled, totp_code())
    assert resp.status_code == 302 and signed_in(client)


def test_the_admin_page_says_when_the_codes_stopped_not_how_many_came_since(unthrottled: Flask, client: FlaskClient,
                                                                            auth: AuthActions) -> None:
    """Once stopped every code counts, the owner's right ones too: the page
    does not call them all wrong ones in a row before the stop."""
    set_wrong_codes(unthrottled, second_factor.MAX_WRONG_CODES + 5)
    auth.login("admin")
    page = text(client.get("/admin/users"))
    assert f"after {second_factor.MAX_WRONG_CODES} wrong ones in a row" in page
    assert f"{second_factor.MAX_WRONG_CODES + 5} refused in all" in page
