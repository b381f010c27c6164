"""The administrator's commands (DESIGN.md section 7), through Flask's CLI runner."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskCliRunner

from crewreport import create_app
from crewreport.auth import create_user
from crewreport.db import get_db

from .helpers import PASSWORD, AuthActions


@pytest.fixture
def bare_app(tmp_path: Path) -> Flask:
    """An instance with nothing in it: the state a new deployment starts from."""
    return create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                       "WTF_CSRF_ENABLED": False,
                       "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys")})


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(args=list(args))


def query(app: Flask, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with app.app_context():
        return [tuple(r) for r in get_db().execute(sql, params)]


def failed(result: Result, text: str) -> None:
    assert result.exit_code != 0, result.output
    assert text in result.output, result.output
    assert "Traceback" not in result.output


def test_init_db(bare_app: Flask) -> None:
    result = run(bare_app, "init-db")
    assert result.exit_code == 0 and "Applied" in result.output
    assert run(bare_app, "init-db").exit_code == 0


def test_create_airline(bare_app: Flask) -> None:
    result = run(bare_app, "create-airline", "qq", "Quiet Air")  # a fresh store: no init-db first
    assert result.exit_code == 0, result.output
    assert query(bare_app, "SELECT code, name FROM airline") == [("QQ", "Quiet Air")]
    owners = query(bare_app, "SELECT owner, suite FROM service_key WHERE retired_at IS NULL ORDER BY owner, suite")
    assert owners == [("airline:QQ", "v1"), ("airline:QQ", "v2"), ("border_force", "v1"), ("border_force", "v2"),
                      ("receipt", "v1")]
    failed(run(bare_app, "create-airline", "QQ", "Again"), "exists")
    assert run(bare_app, "create-airline", "Q2", "No Key Air", "--no-key").exit_code == 0
    assert query(bare_app, "SELECT count(*) FROM service_key WHERE owner = 'airline:Q2'") == [(0,)]


@pytest.mark.parametrize("code", ["B", "BAA", "B!", "", "ÅÅ"])
def test_create_airline_bad_code(bare_app: Flask, code: str) -> None:
    run(bare_app, "init-db")
    failed(run(bare_app, "create-airline", code, "Bad Air"), "two-character")
    assert query(bare_app, "SELECT count(*) FROM airline") == [(0,)]


def test_create_airline_bad_name(bare_app: Flask) -> None:
    run(bare_app, "init-db")
    for name in ("", "x" * 101):
        failed(run(bare_app, "create-airline", "QQ", name), "NAME")
    assert query(bare_app, "SELECT count(*) FROM airline") == [(0,)]


def test_create_user(bare_app: Flask) -> None:
    assert run(bare_app, "create-airline", "QQ", "Quiet Air").exit_code == 0
    for username, role, airline in (("c", "crew", "QQ"), ("s", "airline_security", "qq"),
                                    ("o", "border_force", None), ("a", "admin", None)):
        args = ["create-user", username, "--role", role, "--password", PASSWORD]
        if airline:
            args += ["--airline", airline]
        result = run(bare_app, *args)
        assert result.exit_code == 0, result.output
    assert query(bare_app, "SELECT username, role, airline FROM user ORDER BY id") == [
        ("c", "crew", "QQ"), ("s", "airline_security", "QQ"), ("o", "border_force", None), ("a", "admin", None)]
    assert AuthActions(bare_app.test_client()).login("c", PASSWORD).status_code == 302


def test_create_user_refusals(bare_app: Flask) -> None:
    assert run(bare_app, "create-airline", "QQ", "Quiet Air").exit_code == 0
    pw = ["--password", PASSWORD]
    failed(run(bare_app, "create-user", "c", "--role", "crew", *pw), "need --airline")
    failed(run(bare_app, "create-user", "s", "--role", "airline_security", *pw), "need --airline")
    failed(run(bare_app, "create-user", "o", "--role", "border_force", "--airline", "QQ", *pw), "must not")
    failed(run(bare_app, "create-user", "a", "--role", "admin", "--airline", "QQ", *pw), "must not")
    failed(run(bare_app, "create-user", "c", "--role", "crew", "--airline", "XX", *pw), "no airline XX")
    assert run(bare_app, "create-user", "dup", "--role", "admin", *pw).exit_code == 0
    failed(run(bare_app, "create-user", "DUP", "--role", "admin", *pw), "exists")
    result = run(bare_app, "create-user", "r", "--role", "root", *pw)
    assert result.exit_code == 2 and "root" in result.output
    failed(run(bare_app, "create-user", "x" * 65, "--role", "admin", *pw), "username")
    # The same minimum as the web forms: no one-character officer passwords.
    failed(run(bare_app, "create-user", "short", "--role", "border_force", "--password", "a"), "at least 12")
    failed(run(bare_app, "create-user", "", "--role", "admin", *pw), "username")
    failed(run(bare_app, "create-user", "short", "--role", "admin", "--password", ""), "password")
    assert query(bare_app, "SELECT username FROM user") == [("dup",)]


def test_create_user_rules_at_their_edges(bare_app: Flask) -> None:
    """Each rule at its limit, with the whole message the administrator reads."""
    assert run(bare_app, "create-airline", "QQ", "Quiet Air").exit_code == 0
    pw = ["--password", PASSWORD]
    assert run(bare_app, "create-user", "x" * 64, "--role", "admin", *pw).exit_code == 0
    assert run(bare_app, "create-user", "twelve", "--role", "admin", "--password", "p" * 12).exit_code == 0
    failed(run(bare_app, "create-user", "eleven", "--role", "admin", "--password", "p" * 11),
           "Error: the password must be at least 12 characters")
    failed(run(bare_app, "create-user", " padded", "--role", "admin", *pw),
           "Error: the username must be 1 to 64 characters, without surrounding spaces")
    failed(run(bare_app, "create-user", "o", "--role", "border_force", "--airline", "QQ", *pw),
           "Error: crew and airline_security users need --airline; others must not have one")
    failed(run(bare_app, "create-user", "c2", "--role", "crew", "--airline", "QQ", *pw, "--totp-secret", "A" * 32),
           "Error: crew sign in with a password only; --totp-secret is for staff")
    failed(run(bare_app, "create-user", "QQ/boss", "--role", "admin", *pw),
           "Error: a username with '/' is CODE/name, for crew of airline CODE only")
    # The namespace is the part before the first slash, in any case.
    assert run(bare_app, "create-user", "qq/cabin/anna", "--role", "crew", "--airline", "QQ", *pw).exit_code == 0
    failed(run(bare_app, "create-user", "ZZ/QQ/anna", "--role", "crew", "--airline", "QQ", *pw), "CODE/name")
    with bare_app.app_context(), pytest.raises(  # the CLI's own choice list comes first
            ValueError, match="^role must be one of crew, airline_security, border_force, admin$"):
        create_user("root", "root", PASSWORD)
    assert query(bare_app, "SELECT username FROM user ORDER BY id") == [("x" * 64,), ("twelve",), ("qq/cabin/anna",)]
    assert query(bare_app, "SELECT actor, subject, detail FROM audit_event WHERE action = 'user_created'"
                           " ORDER BY id") == [
        ("system", f"user:{'x' * 64}", '{"airline":null,"role":"admin"}'),
        ("system", "user:twelve", '{"airline":null,"role":"admin"}'),
        ("system", "user:qq/cabin/anna", '{"airline":"QQ","role":"crew"}'),
    ]


def demo_passwords(output: str) -> dict[str, str]:
    return dict(re.findall(r"(demo-\w+)\s+\(\w+\) password: (.+)$", output, re.M))


def demo_totp_secrets(output: str) -> dict[str, str]:
    return dict(re.findall(r"(demo-\w+)\s+\(\w+\) password: .+\n\s+TOTP secret: ([A-Z2-7]+)", output))


def test_demo(bare_app: Flask) -> None:
    result = run(bare_app, "demo", "--password", "demo pass phrase")
    assert result.exit_code == 0, result.output
    assert demo_passwords(result.output) == {u: "demo pass phrase" for u in
                                             ("demo-crew", "demo-security", "demo-officer", "demo-admin")}
    assert query(bare_app, "SELECT code FROM airline") == [("ZZ",)]
    assert query(bare_app, "SELECT username, role, airline FROM user ORDER BY username") == [
        ("demo-admin", "admin", None), ("demo-crew", "crew", "ZZ"),
        ("demo-officer", "border_force", None), ("demo-security", "airline_security", "ZZ")]
    owners = query(bare_app, "SELECT owner, suite FROM service_key WHERE retired_at IS NULL ORDER BY owner, suite")
    assert owners == [("airline:ZZ", "v1"), ("airline:ZZ", "v2"), ("border_force", "v1"), ("border_force", "v2"),
                      ("receipt", "v1")]
    client = bare_app.test_client()
    assert AuthActions(client).login("demo-crew", "demo pass phrase").status_code == 302


def test_demo_says_plainly_which_keys_it_made(bare_app: Flask) -> None:
    """The first run names the keys it made and where, not bare key ids."""
    result = run(bare_app, "demo", "--password", "demo pass phrase")
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith("New service keys"))
    assert "(border_force, receipt)" in line and bare_app.config["KEY_DIR"] in line
    for (kid,) in query(bare_app, "SELECT kid FROM service_key"):
        assert kid not in result.output


def test_demo_twice_keeps_data(bare_app: Flask) -> None:
    assert run(bare_app, "demo", "--password", "first password").exit_code == 0
    assert run(bare_app, "create-user", "kept", "--role", "admin", "--password", PASSWORD).exit_code == 0
    keys_before = query(bare_app, "SELECT kid, owner, retired_at FROM service_key ORDER BY kid")
    users_before = query(bare_app, "SELECT id, username FROM user ORDER BY id")
    second = run(bare_app, "demo")
    assert second.exit_code == 0, second.output
    passwords = demo_passwords(second.output)
    assert len(passwords) == 4 and len(set(passwords.values())) == 4  # random, one each
    assert query(bare_app, "SELECT kid, owner, retired_at FROM service_key ORDER BY kid") == keys_before
    assert query(bare_app, "SELECT id, username FROM user ORDER BY id") == users_before
    assert "New service keys" not in second.output  # nothing new to tell about keys
    secrets = demo_totp_secrets(second.output)
    assert len(secrets) == 3 and len(set(secrets.values())) == 3  # staff only, random, one each
    assert AuthActions(bare_app.test_client()).login("demo-officer", passwords["demo-officer"],
                                                     secret=secrets["demo-officer"]).status_code == 302
    # An admin made without --totp-secret sets one up at first sign-in (recovery codes shown).
    resp = AuthActions(bare_app.test_client()).login("kept", PASSWORD)
    assert resp.status_code == 200 and 'id="recovery-codes"' in resp.get_data(as_text=True)


def test_demo_refuses_a_short_password_before_changing_anything(bare_app: Flask) -> None:
    """--password is held to the sign-in's rule up front: a short one was a
    traceback on a new instance (after its keys and airline were made), and
    on a demo store it became every demo user's password."""
    failed(run(bare_app, "demo", "--password", "short"), "at least 12 characters")
    assert not Path(bare_app.config["KEY_DIR"]).exists()  # no keys made, no store set up
    assert run(bare_app, "demo", "--password", "first password").exit_code == 0
    hashes = query(bare_app, "SELECT username, password_hash FROM user ORDER BY id")
    failed(run(bare_app, "demo", "--password", "short"), "at least 12 characters")
    assert query(bare_app, "SELECT username, password_hash FROM user ORDER BY id") == hashes
    assert AuthActions(bare_app.test_client()).login("demo-crew", "short").status_code == 200  # refused


# A byte that is not UTF-8 on the command line (a Latin-1 terminal's "é"), as
# Python hands it over: a lone surrogate, which the store cannot encode.
NOT_UTF8 = "caf\udce9"


@pytest.mark.parametrize("args", [
    ["create-user", NOT_UTF8, "--role", "crew", "--airline", "ZZ", "--password", PASSWORD],
    ["create-user", "new-crew", "--role", "crew", "--airline", "ZZ", "--password", PASSWORD + NOT_UTF8],
    ["create-airline", "AB", NOT_UTF8, "--no-key"],
    ["reset-second-factor", NOT_UTF8],
    ["revoke-device", NOT_UTF8],
    ["verify-audit", "--report", NOT_UTF8],
    ["verify-audit", "--anchor", NOT_UTF8],
    ["rotate-key", f"airline:{NOT_UTF8}"],
    ["demo", "--password", NOT_UTF8 * 4],
], ids=lambda args: "-".join(a for a in args[:2] if a.isascii()))
def test_an_argument_that_is_not_utf8_is_a_usage_error(app: Flask, runner: FlaskCliRunner, args: list[str]) -> None:
    """Not a UnicodeEncodeError traceback from SQLite or argon2, sometimes
    after part of the work: refused before the command runs."""
    users = query(app, "SELECT id, username, password_hash FROM user ORDER BY id")
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and "is not UTF-8 text" in result.output, (result.output, result.exception)
    assert query(app, "SELECT id, username, password_hash FROM user ORDER BY id") == users
    assert query(app, "SELECT code FROM airline ORDER BY code") == [("YY",), ("ZZ",)]


def test_every_text_argument_of_every_command_is_checked_for_utf8(app: Flask) -> None:
    from crewreport.cli_text import TEXT

    unchecked = [f"{name} {p.name}" for name, command in app.cli.commands.items() for p in command.params
                 if isinstance(p.type, click.types.StringParamType)]
    assert unchecked == [] and TEXT.name == "text"


def test_revoke_device(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["revoke-device", "dev-0001"])
    assert result.exit_code == 0 and "Revoked dev-0001" in result.output
    assert query(app, "SELECT revoked_at IS NOT NULL FROM device WHERE id = 'dev-0001'") == [(1,)]
    failed(runner.invoke(args=["revoke-device", "dev-0001"]), "already revoked")
    failed(runner.invoke(args=["revoke-device", "dev-nope"]), "no device dev-nope")


def test_rotate_key(app: Flask, runner: FlaskCliRunner) -> None:
    before = query(app, "SELECT kid FROM service_key WHERE owner = 'receipt' AND retired_at IS NULL")
    result = runner.invoke(args=["rotate-key", "receipt"])
    assert result.exit_code == 0, result.output
    after = query(app, "SELECT kid FROM service_key WHERE owner = 'receipt' AND retired_at IS NULL")
    assert after != before and after[0][0] in result.output
    assert query(app, "SELECT retired_at IS NOT NULL FROM service_key WHERE kid = ?", before[0][0]) == [(1,)]
    failed(runner.invoke(args=["rotate-key", "airline:QQ"]), "no airline QQ")


def test_verify_audit_command(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 0 and "intact" in result.output
