"""A store that cannot take writes (disk full, read-only, locked past the
wait) is answered 503 with Retry-After, nothing stored and nothing lost:
never a 500 with a traceback a request (crewreport.unavailable). Seen in CI
on a machine whose disk filled up: reports and sign-ins answered 500."""
from __future__ import annotations

import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import db as store
from crewreport.group_commit import NotStored
from crewreport.unavailable import RETRY_AFTER, store_condition

from .helpers import (
    PASSWORD,
    AuthActions,
    Make,
    code_due,
    count,
    deliver,
    header_of,
    signed_in,
    store_opened_with,
    store_refusing_writes,
    text,
    totp_code,
    update_report,
    valid_body,
)

FULL = "max_page_count = 1"
READ_ONLY = "query_only = 1"


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "crewreport.unavailable"]


def test_a_report_on_a_full_store_is_503_and_accepted_once_there_is_room(
        client: FlaskClient, app: Flask, make_envelope: Make, caplog: pytest.LogCaptureFixture) -> None:
    env = make_envelope(body=valid_body(narrative="A long note. " * 300))  # more than the free room of a page
    before = count(app, "SELECT count(*) FROM report")
    with store_refusing_writes(FULL):
        resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code == 503, resp.get_json()
    assert resp.get_json()["error"]["code"] == "service_unavailable"
    assert resp.headers["Retry-After"] == str(RETRY_AFTER)
    assert count(app, "SELECT count(*) FROM report") == before
    [line] = refusals(caplog)
    assert "SQLITE_FULL" in line.getMessage() and line.levelno == logging.ERROR and line.exc_info is None
    assert not any(r.exc_info for r in caplog.records)  # no traceback for want of disk
    again = client.post("/api/v1/reports", json=env)  # the tablet kept it and sends it again
    assert again.status_code == 201, again.get_json()
    assert count(app, "SELECT count(*) FROM report WHERE id = ?", header_of(env)["id"]) == 1


def test_a_batch_on_a_read_only_store_is_503_with_nothing_stored(
        client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    envelopes = [make_envelope() for _ in range(3)]
    before = count(app, "SELECT count(*) FROM report")
    with store_refusing_writes(READ_ONLY):
        resp = client.post("/api/v1/reports/batch", json={"envelopes": envelopes})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "service_unavailable"
    assert resp.headers["Retry-After"] == str(RETRY_AFTER)
    assert count(app, "SELECT count(*) FROM report") == before
    results = client.post("/api/v1/reports/batch", json={"envelopes": envelopes}).get_json()["results"]
    assert all("receipt" in r for r in results), results


def test_sign_in_on_a_read_only_store_is_a_page_that_says_try_again(
        client: FlaskClient, auth: AuthActions, caplog: pytest.LogCaptureFixture) -> None:
    with store_refusing_writes(READ_ONLY):
        resp = auth.login("crew")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == str(RETRY_AFTER)
    page = text(resp)
    assert 'data-error="503"' in page and "Not available just now" in page
    assert "try again in a minute" in page
    assert not signed_in(client)
    assert "SQLITE_READONLY" in refusals(caplog)[0].getMessage()
    auth.login("crew")
    assert signed_in(client)


def real_error(sql: str, pragma: str = "") -> sqlite3.Error:
    """What SQLite itself raises for `sql` on a small table."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (x UNIQUE)")
    conn.execute("INSERT INTO t VALUES (1)")
    if pragma:
        conn.execute(f"PRAGMA {pragma}")
    try:
        conn.execute(sql)
    except sqlite3.Error as exc:
        return exc
    finally:
        conn.close()
    raise AssertionError(f"{sql} did not fail")


def test_only_a_store_that_cannot_write_is_unavailable() -> None:
    read_only = real_error("INSERT INTO t VALUES (2)", READ_ONLY)
    assert store_condition(read_only) == "SQLITE_READONLY"
    cause = NotStored("the group's transaction did not commit")
    cause.__cause__ = read_only
    assert store_condition(cause) == "SQLITE_READONLY"  # under `serve`, the group's commit failed
    # A mistake in the SQL or a broken constraint is a bug: still a 500.
    assert store_condition(real_error("SELECT * FROM no_such_table")) is None
    assert store_condition(real_error("INSERT INTO t VALUES (1)")) is None
    assert store_condition(NotStored("no cause")) is None
    assert store_condition(ValueError("not the store's")) is None


def test_another_store_error_is_still_raised_as_a_bug(app: Flask, client: FlaskClient) -> None:
    def broken() -> str:
        store.get_db().execute("SELECT * FROM no_such_table")
        return "unreachable"

    app.add_url_rule("/triage/broken-for-test", "broken_for_test", broken)
    with pytest.raises(sqlite3.OperationalError, match="no such table"):  # testing: raised, not answered
        client.get("/triage/broken-for-test")


class CommitFails(sqlite3.Connection):
    """A connection whose disk fills at COMMIT: SQLite rolls the transaction
    back itself and reports SQLITE_FULL (what a real full disk did in CI)."""

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:  # type: ignore[override]
        if sql == "COMMIT":
            super().execute("ROLLBACK")
            raise sqlite3.OperationalError("database or disk is full")
        return super().execute(sql, parameters)


def test_a_migration_whose_commit_fails_says_why(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "store.sqlite", isolation_level=None, factory=CommitFails)
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        store.migrate(conn)  # not "cannot rollback - no transaction is active"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    assert not conn.in_transaction


def test_a_store_refusing_writes_does_not_tell_a_right_password_from_a_wrong_one(
        app: Flask, client: FlaskClient) -> None:
    """A wrong password is counted (throttle.record_failure) before it is
    answered; when the store cannot count it, a right one must get the same
    answer, or anyone could try passwords without limit while the store
    refuses writes (before: a right staff password got the code page, 200)."""
    with store_refusing_writes(READ_ONLY):
        wrong = client.post("/auth/login", data={"username": "officer", "password": "not the password at all"})
        right = client.post("/auth/login", data={"username": "officer", "password": PASSWORD})
    assert (wrong.status_code, right.status_code) == (503, 503)
    assert 'id="totp-form"' not in text(right)
    assert count(app, "SELECT count(*) FROM login_failure") == 0


def test_a_right_staff_password_leaves_no_failure_counted(app: Flask, client: FlaskClient) -> None:
    """Counted before it is checked, a right password is no failure once it is
    (the code step, not the password, is what is left to do)."""
    resp = client.post("/auth/login", data={"username": "officer", "password": PASSWORD})
    assert 'id="totp-form"' in text(resp)
    assert count(app, "SELECT count(*) FROM login_failure") == 0
    client.post("/auth/login", data={"username": "officer", "password": "not the password at all"})
    assert count(app, "SELECT count(*) FROM login_failure WHERE step = 'password'") == 1


def test_the_board_is_shown_when_the_store_refuses_writes(
        app: Flask, client: FlaskClient, auth: AuthActions, make_envelope: Make,
        caplog: pytest.LogCaptureFixture) -> None:
    """The officers' board only reads, but remembered the look (officer_seen,
    for what is 'new' next time) before it answered: on a full disk the one
    page that shows incoming reports answered 503. The mark is convenience,
    not a promise: it is skipped, with a log line."""
    report_id = deliver(client, make_envelope)
    auth.login("officer")
    with store_refusing_writes(READ_ONLY):
        resp = client.get("/triage/")
    assert resp.status_code == 200, resp.status_code
    assert report_id in text(resp)
    assert count(app, "SELECT count(*) FROM officer_seen") == 0
    assert any("SQLITE_READONLY" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    client.get("/triage/")
    assert count(app, "SELECT count(*) FROM officer_seen") == 1


def test_the_audit_pages_are_shown_when_the_store_refuses_writes(
        app: Flask, client: FlaskClient, auth: AuthActions, make_envelope: Make, runner: FlaskCliRunner) -> None:
    """Viewing the audit chain moves its checkpoint (audit.save_checkpoint), a
    write: on a full disk an administrator could not see whether the chain
    holds, nor could `verify-audit` say it. Not moving it only means the next
    look walks further; the chain is checked and shown all the same."""
    report_id = deliver(client, make_envelope)
    auth.login("admin")
    with store_refusing_writes(READ_ONLY):
        index = client.get("/admin/")
        trail = client.get(f"/admin/reports/{report_id}")
        verified = runner.invoke(args=["verify-audit"])
    assert (index.status_code, trail.status_code) == (200, 200)
    assert "report_received" in text(trail)
    assert verified.exit_code == 0, verified.output
    assert "Audit chain intact" in verified.output
    assert count(app, "SELECT count(*) FROM audit_checkpoint") == 0
    assert client.get("/admin/").status_code == 200
    assert count(app, "SELECT count(*) FROM audit_checkpoint") == 1


@pytest.mark.parametrize("args", [["demo", "--password", "a demo password"], ["purge", "--days", "0"],
                                  ["revoke-device", "dev-yy"], ["reset-second-factor", "officer"],
                                  ["create-user", "crew2", "--role", "crew", "--airline", "ZZ",
                                   "--password", "a long enough password"]])
def test_a_command_on_a_store_refusing_writes_says_so_in_one_line(
        app: Flask, client: FlaskClient, make_envelope: Make, runner: FlaskCliRunner, args: list[str]) -> None:
    """An administrator's command was a traceback when the store could not
    take its writes; it now ends with one line naming the condition, and
    exit status 1."""
    update_report(app, deliver(client, make_envelope), status="no_further_action",
                  closed_at="2000-01-01T00:00:00Z")  # for purge to do
    with store_refusing_writes(READ_ONLY):
        result = runner.invoke(args=args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "cannot take writes (SQLITE_READONLY)" in result.output
    assert "Traceback" not in result.output


def test_signing_out_on_a_read_only_store_still_signs_out(client: FlaskClient, auth: AuthActions,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """On a shared tablet or desk the next person must not find the last one
    signed in because the store could not record the sign-out."""
    auth.login("crew")
    assert signed_in(client)
    with store_refusing_writes(READ_ONLY):
        resp = auth.logout()
        assert resp.status_code == 302 and resp.headers["Location"].endswith("/auth/login")
        assert not signed_in(client)
    assert "the sign-out's record was not written" in caplog.text


# Refuses a new session as a full disk would have: after the code was checked.
NO_SESSION = ("CREATE TEMP TRIGGER no_session BEFORE INSERT ON user_session"
              " BEGIN SELECT RAISE(ABORT, 'no room for the session'); END")


def test_a_code_is_not_used_up_by_a_sign_in_that_was_not_stored(client: FlaskClient, app: Flask) -> None:
    """The code step and the session it opens are one transaction: a session
    the store cannot take leaves the code (a recovery code, this step's
    authenticator code) unused, to be typed again."""
    assert code_due(client.post("/auth/login", data={"username": "officer", "password": PASSWORD}))
    code = totp_code()
    with store_opened_with(NO_SESSION), pytest.raises(sqlite3.IntegrityError, match="no room"):
        client.post("/auth/login", data={"code": code})
    assert not signed_in(client)
    assert count(app, "SELECT count(*) FROM audit_event WHERE action = 'sign_in'") == 0
    again = client.post("/auth/login", data={"code": code})
    assert again.status_code == 302 and signed_in(client)
