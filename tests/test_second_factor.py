"""Staff give a TOTP code after their password; crew do not. Enrolment with a
QR code drawn on the server, one-time recovery codes, codes good once,
throttled like passwords, and reset by an administrator."""
from __future__ import annotations

import json
import re
import time
from types import SimpleNamespace
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import auth as auth_module
from crewreport.auth import PENDING, PENDING_SECONDS, create_user
from crewreport.db import get_db

from .helpers import (
    PASSWORD,
    TOTP_SECRET,
    AuthActions,
    code_due,
    csrf_login,
    enrolment_secret,
    events,
    said,
    signed_in,
    store_bytes,
    text,
    totp_code,
    wrong_code,
)


def password_step(client: FlaskClient, username: str = "officer", password: str = PASSWORD, **kwargs: Any) -> Any:
    return client.post("/auth/login", data={"username": username, "password": password}, **kwargs)


def send_code(client: FlaskClient, code: str, **kwargs: Any) -> Any:
    return client.post("/auth/login", data={"code": code}, **kwargs)


@pytest.mark.parametrize("username", ["officer", "security", "admin"])
def test_staff_password_step_asks_for_a_code(csrf_app: Flask, username: str) -> None:
    client = csrf_app.test_client()
    login_page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', login_page)
    assert token
    resp = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and code_due(resp)
    form = re.search(r'<form[^>]*id="totp-form"[^>]*>', html)
    assert form and 'action="/auth/login"' in form.group(0) and 'method="post"' in form.group(0)
    assert 'name="code"' in html and 'name="csrf_token"' in html
    assert not signed_in(client)
    assert AuthActions(client).code_step(resp).status_code == 302
    assert signed_in(client)


def test_crew_sign_in_stays_one_factor(client: FlaskClient) -> None:
    resp = password_step(client, "crew")
    assert resp.status_code == 302 and resp.headers["Location"] == "/"


def test_a_wrong_code_does_not_sign_in(app: Flask, client: FlaskClient) -> None:
    password_step(client)
    resp = send_code(client, wrong_code())
    assert code_due(resp) and said(text(resp)) == [
        "That code is not right, or it was used already: wait for the next one."]
    assert not signed_in(client)
    assert [e["actor"] for e in events(app, "second_factor_failed")] == ["user:officer"]


def test_a_code_is_good_once(app: Flask) -> None:
    first, second = app.test_client(), app.test_client()
    code = totp_code()
    password_step(first)
    assert send_code(first, code).status_code == 302
    # Seen over a shoulder and typed elsewhere within its 30 s: refused.
    password_step(second)
    assert code_due(send_code(second, code)) and not signed_in(second)


def test_no_code_step_without_the_password_step(client: FlaskClient) -> None:
    resp = send_code(client, totp_code())
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    assert not signed_in(client)


def test_the_code_step_expires(client: FlaskClient) -> None:
    password_step(client)
    with client.session_transaction() as sess:
        sess[PENDING] = {**sess[PENDING], "at": sess[PENDING]["at"] - 301}
    assert send_code(client, totp_code()).status_code == 303
    assert not signed_in(client)


def test_the_code_step_lasts_five_minutes_to_the_second(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [float(int(time.time()))]  # the pending sign-in keeps whole seconds
    monkeypatch.setattr(auth_module, "time", SimpleNamespace(time=lambda: clock[0]))
    in_time, late = app.test_client(), app.test_client()
    password_step(in_time)
    password_step(late)
    clock[0] += PENDING_SECONDS
    assert send_code(in_time, totp_code()).status_code == 302 and signed_in(in_time)
    clock[0] += 1
    resp = send_code(late, totp_code(steps_ahead=1))
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    with late.session_transaction() as sess:
        assert PENDING not in sess  # the half-done sign-in is gone, not left to retry
    assert said(text(late.get("/auth/login"))) == [
        "That sign-in took too long or was started again elsewhere. Sign in again."]
    assert not signed_in(late)


def test_a_code_form_that_is_not_valid_is_answered_on_the_code_page(client: FlaskClient) -> None:
    password_step(client)
    resp = send_code(client, "")
    assert resp.status_code == 400 and b'id="totp-form"' in resp.data
    assert "Signing in as officer" in text(resp)
    assert not signed_in(client)


def test_a_code_may_be_typed_with_spaces(client: FlaskClient) -> None:
    password_step(client)
    code = totp_code()
    assert send_code(client, f" {code[:3]} {code[3:]} ").status_code == 302 and signed_in(client)


def test_the_code_step_audits_who_and_from_where(app: Flask) -> None:
    client, at = app.test_client(), {"REMOTE_ADDR": "10.1.2.3"}
    password_step(client, environ_base=at)
    send_code(client, wrong_code(), environ_base=at)
    assert send_code(client, totp_code(), environ_base=at).status_code == 302
    assert [(e["actor"], json.loads(e["detail"])) for e in events(app, "second_factor_failed")] == [
        ("user:officer", {"address": "10.1.2.3"})]
    assert [(e["actor"], json.loads(e["detail"])) for e in events(app, "sign_in")] == [
        ("user:officer", {"address": "10.1.2.3", "second_factor": "totp"})]
    password_step(app.test_client(), "crew", environ_base=at)  # crew: one step, no method
    assert json.loads(events(app, "sign_in")[-1]["detail"]) == {"address": "10.1.2.3"}


def test_a_known_browser_s_wrong_codes_count_against_its_own_cookie(app: Flask) -> None:
    """As for passwords (throttle.py): a browser that signed in as this user
    before is counted on its own, so strangers' guesses never refuse it."""
    known, stranger = app.test_client(), app.test_client()
    assert AuthActions(known).login("officer").status_code == 302
    AuthActions(known).logout()
    for client in (known, stranger):
        password_step(client)
        send_code(client, wrong_code())
    with app.app_context():
        devices = [r[0] for r in get_db().execute("SELECT device FROM login_failure WHERE step = 'code' ORDER BY id")]
    assert len(devices) == 2 and devices[0] is not None and devices[1] is None


def test_a_code_of_the_step_before_is_taken_but_no_older(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A phone's clock a little behind still signs in; a code from a minute ago does not."""
    now = time.time()
    monkeypatch.setattr(auth_module.second_factor, "time", SimpleNamespace(time=lambda: now))
    late, stale = app.test_client(), app.test_client()
    password_step(stale)
    assert code_due(send_code(stale, pyotp.TOTP(TOTP_SECRET).at(now - 60))) and not signed_in(stale)
    password_step(late)
    assert send_code(late, pyotp.TOTP(TOTP_SECRET).at(now - 30)).status_code == 302 and signed_in(late)


def test_a_code_in_other_digits_is_not_right_rather_than_an_error(client: FlaskClient) -> None:
    password_step(client)
    resp = send_code(client, "\u0661\u0662\u0663\u0664\u0665\u0666")  # Arabic-Indic digits: isdigit() says yes
    assert code_due(resp) and said(text(resp)) == [
        "That code is not right, or it was used already: wait for the next one."]


def test_a_sealed_secret_copied_to_another_user_opens_for_no_one(app: Flask) -> None:
    """The user id is the seal's associated data: the admin's sealed secret
    (the same secret as the officer's in the test store) does not open as the officer's."""
    with app.app_context():
        db = get_db()
        db.execute("UPDATE user_totp SET sealed = (SELECT t.sealed FROM user_totp t JOIN user u ON u.id = t.user_id"
                   " WHERE u.username = 'admin') WHERE user_id = (SELECT id FROM user WHERE username = 'officer')")
        db.commit()
    client = app.test_client()
    password_step(client)
    assert code_due(send_code(client, totp_code())) and not signed_in(client)


def test_code_attempts_are_throttled_like_passwords(app: Flask, client: FlaskClient) -> None:
    limit = app.config["LOGIN_MAX_FAILURES"]
    password_step(client)
    for _ in range(limit):
        assert code_due(send_code(client, wrong_code()))
    resp = send_code(client, totp_code())
    assert resp.status_code == 429 and "Too many failed attempts" in resp.get_data(as_text=True)
    assert resp.headers["Retry-After"] == str(app.config["LOGIN_WINDOW_SECONDS"])
    assert not signed_in(client)
    assert [(e["actor"], json.loads(e["detail"])) for e in events(app, "second_factor_throttled")] == [
        ("user:officer", {"code": "throttled", "address": "127.0.0.1"})]
    # Another browser elsewhere, with the password and the code, is not refused.
    desk = app.test_client()
    assert AuthActions(desk).login("officer", environ_base={"REMOTE_ADDR": "10.7.7.7"}).status_code == 302


def enrol(app: Flask, username: str = "new-admin") -> tuple[FlaskClient, str, Any]:
    """A staff user with no secret signs in: (client, the secret shown, the page)."""
    with app.app_context():
        create_user(username, "admin", PASSWORD)
    client = app.test_client()
    page = password_step(client, username)
    secret = enrolment_secret(page)
    assert secret is not None and code_due(page)
    return client, secret, page


def test_enrolment_shows_a_qr_code_drawn_here(app: Flask) -> None:
    _, secret, page = enrol(app)
    html = page.get_data(as_text=True)
    svg = re.search(r"<svg.*?</svg>", html, re.S)
    assert svg and "<path" in svg.group(0)
    assert "<title>QR code for your authenticator app</title>" in svg.group(0)  # its name for a screen reader
    assert not re.search(r"(src|href)=\"https?:", html)  # nothing from a third party
    assert "'self'" in page.headers["Content-Security-Policy"]
    assert len(secret) == 32 and pyotp.TOTP(secret).now().isdigit()
    # The secret is sealed at rest.
    assert secret.encode() not in store_bytes(app)


def test_enrolment_s_qr_code_names_the_user_and_the_service(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """The authenticator app lists the entry by this name: someone with
    several accounts must tell them apart."""
    drawn: list[str] = []
    draw = auth_module.second_factor.qr_svg

    def spy(uri: str) -> Any:
        drawn.append(uri)
        return draw(uri)

    monkeypatch.setattr(auth_module.second_factor, "qr_svg", spy)
    _, secret, _ = enrol(app)
    assert drawn == [pyotp.TOTP(secret).provisioning_uri(name="new-admin", issuer_name="Cabin Notes")]


def test_enrolment_gives_ten_recovery_codes_once(app: Flask) -> None:
    client, secret, _ = enrol(app)
    done = send_code(client, pyotp.TOTP(secret).now())
    html = done.get_data(as_text=True)
    codes = re.findall(r"<li>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})</li>", html)
    assert done.status_code == 200 and len(set(codes)) == 10
    # 16 characters of their own (80 bits) each, not one short run repeated shifted.
    assert not all(c[5:8] == c[1:4] for c in codes)
    assert '<a class="button" href="/admin/">Continue</a>' in html
    assert signed_in(client)
    assert [(e["actor"], e["subject"]) for e in events(app, "second_factor_enrolled")] == [
        ("user:new-admin", "user:new-admin")]
    store = store_bytes(app)
    assert not any(c.encode() in store or c.replace("-", "").encode() in store for c in codes)
    # Next time: a code is asked for, and the secret is never shown again.
    AuthActions(client).logout()
    again = password_step(client, "new-admin")
    assert code_due(again) and enrolment_secret(again) is None and "<svg" not in again.get_data(as_text=True)
    # A recovery code signs in once, and says how many are left.
    used = send_code(client, codes[0].lower())
    assert used.status_code == 302
    assert said(text(client.get(used.headers["Location"]))) == [
        "Recovery code used: 9 left. An administrator can reset your second factor if you lose your authenticator."]
    assert json.loads(events(app, "sign_in")[-1]["detail"])["second_factor"] == "recovery_code"
    AuthActions(client).logout()
    password_step(client, "new-admin")
    assert code_due(send_code(client, codes[0]))
    assert [(e["actor"], e["subject"], json_detail(e)) for e in events(app, "recovery_code_used")] == [
        ("user:new-admin", "user:new-admin", {"left": 9})]


def json_detail(event: dict[str, Any]) -> Any:
    return json.loads(event["detail"])


def test_enrolment_needs_a_right_code(app: Flask) -> None:
    client, secret, _ = enrol(app)
    resp = send_code(client, "12345")
    assert code_due(resp) and enrolment_secret(resp) == secret  # the same secret until confirmed
    assert not signed_in(client)


def test_an_admin_reset_during_enrolment_starts_the_sign_in_again(app: Flask) -> None:
    client, secret, _ = enrol(app)
    with app.app_context():
        db = get_db()
        user_id = db.execute("SELECT id FROM user WHERE username = 'new-admin'").fetchone()[0]
        auth_module.second_factor.reset(db, user_id)
        db.commit()
    resp = send_code(client, pyotp.TOTP(secret).now())
    assert resp.status_code == 303 and resp.headers["Location"] == "/auth/login"
    assert said(text(client.get("/auth/login"))) == [
        "That sign-in took too long or was started again elsewhere. Sign in again."]
    assert not signed_in(client)


def test_enrolment_is_bound_to_the_sign_in_that_showed_the_secret(app: Flask) -> None:
    """Someone else with the password starting a set-up voids the secret shown
    earlier, and the earlier page cannot confirm the new one unseen."""
    first, first_secret, _ = enrol(app)
    second = app.test_client()
    second_secret = enrolment_secret(password_step(second, "new-admin"))
    assert second_secret and second_secret != first_secret
    resp = send_code(first, pyotp.TOTP(second_secret).now())
    assert resp.status_code == 303 and not signed_in(first)
    assert send_code(second, pyotp.TOTP(first_secret).now()).status_code == 200 and not signed_in(second)
    assert send_code(second, pyotp.TOTP(second_secret).now()).status_code == 200  # recovery codes
    assert signed_in(second)


def test_admin_resets_a_second_factor(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    officer = app.test_client()
    assert AuthActions(officer).login("officer").status_code == 302
    with app.app_context():
        officer_id = get_db().execute("SELECT id FROM user WHERE username = 'officer'").fetchone()[0]
    auth.login("admin")
    page = client.get("/admin/users").get_data(as_text=True)
    assert f'data-user-id="{officer_id}"' in page
    resp = client.post(f"/admin/users/{officer_id}/second-factor/reset")
    assert resp.status_code == 303
    assert [e["subject"] for e in events(app, "second_factor_reset")] == ["user:officer"]
    assert events(app, "second_factor_reset")[0]["actor"] == "user:admin"
    assert not signed_in(officer)  # the reset ends their sessions
    # The old secret no longer works: the officer sets up a new one.
    page = password_step(app.test_client(), "officer")
    new_secret = enrolment_secret(page)
    assert new_secret is not None and new_secret != TOTP_SECRET


def test_only_an_admin_resets_and_only_staff(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    with app.app_context():
        ids = dict(get_db().execute("SELECT username, id FROM user").fetchall())
    auth.login("officer")
    assert client.post(f"/admin/users/{ids['admin']}/second-factor/reset").status_code == 403
    auth.logout()
    auth.login("admin")
    assert client.post(f"/admin/users/{ids['crew']}/second-factor/reset").status_code == 404
    assert events(app, "second_factor_reset") == []


def test_cli_sets_a_known_secret_for_staff_only(app: Flask) -> None:
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["create-user", "known", "--role", "border_force", "--password", PASSWORD,
                             "--totp-secret", "kru gsz lni wfz mbh ga5 jqv 5ao 3e"])
    assert ok.exit_code == 0, ok.output
    assert AuthActions(app.test_client()).login("known", secret="KRUGSZLNIWFZMBHGA5JQV5AO3E").status_code == 302
    crew = runner.invoke(args=["create-user", "c2", "--role", "crew", "--airline", "ZZ", "--password", PASSWORD,
                               "--totp-secret", TOTP_SECRET])
    assert crew.exit_code == 1 and "staff" in crew.output
    short = runner.invoke(args=["create-user", "s2", "--role", "admin", "--password", PASSWORD,
                                "--totp-secret", "JBSWY3DP"])
    assert short.exit_code == 1 and "Error: the TOTP secret must be base32 of at least 128 bits: " in short.output
    # 120 bits: enough for pyotp (112), not for us.
    short = runner.invoke(args=["create-user", "s3", "--role", "admin", "--password", PASSWORD,
                                "--totp-secret", "A" * 24])
    assert short.exit_code == 1
    assert "Error: the TOTP secret must be base32 of at least 128 bits (26 characters)\n" == short.output
    assert runner.invoke(args=["create-user", "s4", "--role", "admin", "--password", PASSWORD,
                               "--totp-secret", "A" * 26]).exit_code == 0
    demo = runner.invoke(args=["demo", "--totp-secret", "not base32!"])
    assert demo.exit_code == 2 and "--totp-secret" in demo.output


def test_cli_reset_second_factor(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["reset-second-factor", "officer"])
    assert result.exit_code == 0, result.output
    assert enrolment_secret(password_step(app.test_client(), "officer")) is not None
    assert app.test_cli_runner().invoke(args=["reset-second-factor", "crew"]).exit_code == 1


def renew(client: FlaskClient, password: str = PASSWORD, code: str | None = None) -> Any:
    return client.post("/auth/recovery-codes", data={"current_password": password, "code": code or totp_code()})


def let_codes_be_due(app: Flask, username: str = "officer") -> None:
    """As if a minute had passed since the sign-in's code: this step's is new again."""
    with app.app_context():
        db = get_db()
        db.execute("UPDATE user_totp SET last_step = ? WHERE user_id = (SELECT id FROM user WHERE username = ?)",
                   (int(time.time()) // 30 - 2, username))


def test_staff_renew_their_recovery_codes_with_password_and_a_fresh_code(app: Flask, client: FlaskClient,
                                                                        auth: AuthActions) -> None:
    auth.login("officer")
    page = client.get("/auth/recovery-codes").get_data(as_text=True)
    assert 'id="codes-left"' in page and 'href="/auth/recovery-codes"' in page  # linked from every staff page
    let_codes_be_due(app)
    wrong_password = renew(client, password="not my password")
    assert wrong_password.status_code == 200
    assert "That is not your current password." in wrong_password.get_data(as_text=True)
    wrong = renew(client, code=wrong_code())
    assert "That code is not right or was used already" in wrong.get_data(as_text=True)
    assert events(app, "recovery_codes_renewed") == []
    first = renew(client)
    html = first.get_data(as_text=True)
    codes = re.findall(r"<li>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</li>", html)
    assert first.status_code == 200 and len(set(codes)) == 10 and "Your old recovery codes no longer work." in html
    renewed = events(app, "recovery_codes_renewed")
    assert len(renewed) == 1 and renewed[0]["subject"] == "user:officer" and renewed[0]["actor"] == "user:officer"
    assert not any(c in json.dumps(renewed) for c in codes)
    # the same authenticator code again: refused (a code is good once)
    again = renew(client, code=totp_code())
    assert "That code is not right or was used already" in again.get_data(as_text=True)
    let_codes_be_due(app)
    second = re.findall(r"<li>([A-Z2-7-]{19})</li>", renew(client).get_data(as_text=True))
    assert len(second) == 10 and not set(second) & set(codes)
    # the first set no longer signs in; the second does
    client.post("/auth/logout")
    assert code_due(password_step(client))
    assert code_due(send_code(client, codes[0])) and not signed_in(client)
    assert send_code(client, second[0]).status_code == 302 and signed_in(client)


def test_recovery_codes_are_for_staff_signed_in(client: FlaskClient, auth: AuthActions) -> None:
    assert client.get("/auth/recovery-codes").status_code == 302  # to the sign-in page
    auth.login("crew")
    assert client.get("/auth/recovery-codes").status_code == 403


def test_renewing_recovery_codes_needs_the_csrf_token(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    csrf_login(client, "officer")
    let_codes_be_due(csrf_app)
    resp = renew(client)
    assert resp.status_code == 400 and events(csrf_app, "recovery_codes_renewed") == []


def test_guessing_the_code_for_new_recovery_codes_is_throttled_and_audited(app: Flask, client: FlaskClient,
                                                                          auth: AuthActions) -> None:
    """With the password and an open session, the authenticator code is still
    guessed no faster than at the sign-in's code step."""
    auth.login("officer")
    let_codes_be_due(app)
    limit = app.config["LOGIN_MAX_FAILURES"]
    for guess in range(limit):
        resp = renew(client, code=f"{guess:06d}" if f"{guess:06d}" != totp_code() else "999999")
        assert resp.status_code == 200 and "That code is not right" in resp.get_data(as_text=True)
    refused = renew(client)  # even the right code, now
    assert refused.status_code == 429 and "Too many failed attempts" in refused.get_data(as_text=True)
    assert len(events(app, "second_factor_failed")) == limit
    assert len(events(app, "second_factor_throttled")) == 1
    assert events(app, "recovery_codes_renewed") == []
