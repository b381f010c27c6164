"""Switching an account off (and on again): airline security for their own
crew at /review/crew, administrators for staff at /admin/users, operators
with `deactivate-user` / `reactivate-user`. The `user.active` column was
honoured at sign-in but nothing set it, so someone who left could only be
switched off by editing the store."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import lifecycle

from .helpers import (
    DEVICE_ID,
    PASSWORD,
    AuthActions,
    Make,
    active,
    count,
    deliver,
    events,
    raced,
    row,
    signed_in,
    text,
    user_id,
)

# -- airline security and their crew ------------------------------------------------------

def test_security_deactivates_a_crew_account_and_its_sessions_end(client: FlaskClient, app: Flask,
                                                                   auth: AuthActions) -> None:
    """The gap: there was no way to do this but editing the store."""
    tablet = app.test_client()
    assert tablet.post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 302
    auth.login("security")
    crew = user_id(app, "crew")
    page = text(client.get(f"/review/crew/{crew}/deactivate"))
    assert "Deactivate crew?" in page and DEVICE_ID in page and "still delivered" in page
    resp = client.post(f"/review/crew/{crew}/deactivate")
    assert resp.status_code == 303
    assert not active(app, "crew") and not signed_in(tablet)
    assert count(app, "SELECT count(*) FROM user_session WHERE user_id = ?", crew) == 0
    assert [e["subject"] for e in events(app, "user_deactivated")] == ["user:crew"]
    assert events(app, "user_deactivated")[0]["actor"] == "user:security"
    # They cannot sign in again, and the list says so.
    assert tablet.post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 200
    crew_row = text(client.get("/review/crew")).split(f'data-user-id="{crew}"')[1].split("</tr>")[0]
    assert "Deactivated" in crew_row and "by security" in crew_row and "Reactivate" in crew_row


def test_a_deactivated_crew_members_tablet_still_delivers(client: FlaskClient, app: Flask, auth: AuthActions,
                                                          make_envelope: Make) -> None:
    """A tablet may fly for days with notes queued: switching its crew member
    off must not lose them. Only revoking the tablet stops it."""
    auth.login("security")
    assert client.post(f"/review/crew/{user_id(app, 'crew')}/deactivate").status_code == 303
    report_id = deliver(app.test_client(), make_envelope)
    assert row(app, report_id) is not None
    assert app.test_client().get(f"/api/v1/devices/{DEVICE_ID}").get_json()["state"] == "active"


def test_a_double_submitted_deactivation_is_one_event_and_a_409(client: FlaskClient, app: Flask,
                                                                auth: AuthActions,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    auth.login("security")
    crew = user_id(app, "crew")
    raced(app, monkeypatch, lifecycle, "UPDATE user SET active = 0 WHERE id = ?", crew)
    resp = client.post(f"/review/crew/{crew}/deactivate")
    assert resp.status_code == 409 and "crew was already deactivated" in text(resp)
    assert events(app, "user_deactivated") == []
    monkeypatch.undo()
    assert client.post(f"/review/crew/{crew}/deactivate").status_code == 409


def test_reactivating_lets_them_sign_in_again_once(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    auth.login("security")
    crew = user_id(app, "crew")
    assert client.post(f"/review/crew/{crew}/deactivate").status_code == 303
    assert "Reactivate crew?" in text(client.get(f"/review/crew/{crew}/reactivate"))
    assert client.post(f"/review/crew/{crew}/reactivate").status_code == 303
    assert client.post(f"/review/crew/{crew}/reactivate").status_code == 409
    assert len(events(app, "user_reactivated")) == 1
    assert app.test_client().post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 302


def test_an_account_the_operators_switched_off_stays_off_for_airline_security(
        client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    """Switched off by the service operators (the command: an investigation,
    an account taken over), a crew account is not for the airline to switch
    back on: the crew page says whom to ask, and a POST changes nothing."""
    assert app.test_cli_runner().invoke(args=["deactivate-user", "crew"]).exit_code == 0
    auth.login("security")
    crew = user_id(app, "crew")
    page = text(client.get("/review/crew"))
    assert f"/review/crew/{crew}/reactivate" not in page and "by the service operators" in page
    assert "by the service operators" in text(client.get(f"/review/crew/{crew}/reactivate"))
    resp = client.post(f"/review/crew/{crew}/reactivate")
    assert resp.status_code == 403 and "ask the service operators" in text(resp)
    assert not active(app, "crew") and events(app, "user_reactivated") == []
    assert app.test_cli_runner().invoke(args=["reactivate-user", "crew"]).exit_code == 0 and active(app, "crew")


def test_the_operators_can_keep_off_an_account_airline_security_switched_off(
        client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    """Switched off by airline security first, an account the operators then
    switch off is theirs: airline security can no longer switch it back on."""
    auth.login("security")
    crew = user_id(app, "crew")
    assert client.post(f"/review/crew/{crew}/deactivate").status_code == 303
    result = app.test_cli_runner().invoke(args=["deactivate-user", "crew"])
    assert result.exit_code == 0, result.output
    assert "now the service operators' to switch on again" in result.output
    assert client.post(f"/review/crew/{crew}/reactivate").status_code == 403
    assert not active(app, "crew") and len(events(app, "user_deactivated")) == 2


@pytest.mark.parametrize("username", ["crew-yy", "security", "officer"])
def test_security_never_reaches_another_airlines_or_a_staff_account(client: FlaskClient, app: Flask,
                                                                    auth: AuthActions, username: str) -> None:
    """Another airline's crew, and anyone not crew, is "not found", never
    "forbidden" (which would confirm the account exists)."""
    auth.login("security")
    other = user_id(app, username)
    for action in ("deactivate", "reactivate"):
        assert client.get(f"/review/crew/{other}/{action}").status_code == 404
        assert client.post(f"/review/crew/{other}/{action}").status_code == 404
    assert active(app, username) and events(app, "user_deactivated") == []


def test_deactivation_needs_the_csrf_token(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    AuthActions(client).login("security")
    resp = client.post(f"/review/crew/{user_id(csrf_app, 'crew')}/deactivate")
    assert resp.status_code == 400 and active(csrf_app, "crew")


# -- the commands ---------------------------------------------------------------------------------

def test_the_commands_switch_an_account_off_and_on(app: Flask) -> None:
    runner = app.test_cli_runner()
    tablet = app.test_client()
    assert tablet.post("/auth/login", data={"username": "crew", "password": PASSWORD}).status_code == 302
    result = runner.invoke(args=["deactivate-user", "crew"])
    assert result.exit_code == 0, result.output
    assert "Deactivated crew" in result.output and DEVICE_ID in result.output
    assert not active(app, "crew") and not signed_in(tablet)
    again = runner.invoke(args=["deactivate-user", "crew"])
    assert again.exit_code == 1 and "already deactivated" in again.output
    assert [e["actor"] for e in events(app, "user_deactivated")] == ["system"]
    assert runner.invoke(args=["reactivate-user", "crew"]).exit_code == 0 and active(app, "crew")
    assert runner.invoke(args=["reactivate-user", "crew"]).exit_code == 1
    missing = runner.invoke(args=["deactivate-user", "nobody"])
    assert missing.exit_code == 1 and "no user nobody" in missing.output


def test_the_command_may_switch_off_the_last_admin_and_says_how_to_undo_it(app: Flask) -> None:
    """The command line is where an administrator is brought back from, so it
    does not refuse (a compromised sole admin account is switched off at
    once), but it says so."""
    result = app.test_cli_runner().invoke(args=["deactivate-user", "admin"])
    assert result.exit_code == 0 and "no active administrator is left" in result.output
    assert not active(app, "admin")


def test_a_tablet_set_up_while_its_crew_member_is_deactivated_is_refused(
        app: Flask, auth: AuthActions, monkeypatch: pytest.MonkeyPatch) -> None:
    """The set-up request read its session before the write lock; the
    deactivation (its sessions gone) landed meanwhile. The new tablet was
    enrolled all the same: a tablet of an account switched off, set up after
    airline security was shown "no tablet that still delivers"."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from crewreport import api, envelope

    tablet = app.test_client()
    assert AuthActions(tablet).login("crew").status_code == 302
    crew = user_id(app, "crew")
    raced(app, monkeypatch, api, "DELETE FROM user_session WHERE user_id = ?", crew)
    raced(app, monkeypatch, api, "UPDATE user SET active = 0 WHERE id = ?", crew)
    key = ec.generate_private_key(ec.SECP256R1())
    resp = tablet.post("/api/v1/devices", json={"public_key": envelope.jwk_from_public_key(key.public_key()),
                                                "label": "Galley tablet"})
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unauthenticated"
    assert count(app, "SELECT count(*) FROM device WHERE user_id = ?", crew) == 1  # the one it had
    assert events(app, "device_enrolled") == []


@pytest.mark.parametrize(("username", "ask"), [("crew", "security team"), ("officer", "an administrator")])
def test_a_deactivated_account_is_told_so_at_sign_in_but_only_with_its_password(
        app: Flask, username: str, ask: str) -> None:
    """"Username or password is not right" sent a crew member switched off
    (by mistake, or before a reactivation) to typing their password again
    until throttled, and their security team to resetting a password that
    was right. Only the right password learns the account is switched off."""
    assert app.test_cli_runner().invoke(args=["deactivate-user", username]).exit_code == 0
    tablet = app.test_client()
    right = tablet.post("/auth/login", data={"username": username, "password": PASSWORD})
    assert right.status_code == 200 and "This account is deactivated" in text(right) and ask in text(right)
    assert "not right" not in text(right) and not signed_in(tablet)
    wrong = tablet.post("/auth/login", data={"username": username, "password": PASSWORD + "x"})
    assert "Username or password is not right" in text(wrong) and "deactivated" not in text(wrong)
    assert [e["actor"] for e in events(app, "sign_in_failed")] == [f"user:{username}"] * 2
