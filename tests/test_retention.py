"""Retention: `purge` removes only reports closed more than --days ago
(default RETENTION_DAYS), with their notes and history, leaves no copy in the
database files, and writes one content-free audit event per report."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import audit, report
from crewreport.db import get_db, transaction
from crewreport.times import stamp

from .helpers import AuthActions, Make, count, deliver, events, header_of, row, store_bytes, update_report

NOW = datetime.now(UTC)


def stored_envelope(app: Flask, rid: str) -> dict[str, Any]:
    return json.loads(row(app, rid)["envelope"])  # type: ignore[index]


def test_purge_removes_only_old_closed_reports(client: FlaskClient, app: Flask, make_envelope: Make,
                                               runner: FlaskCliRunner, auth: AuthActions) -> None:
    old_closed = deliver(client, make_envelope)
    old_referred = deliver(client, make_envelope)
    recent_closed = deliver(client, make_envelope)
    old_open = deliver(client, make_envelope)
    old_meet = deliver(client, make_envelope)
    auth.login("officer")
    # history and a note on the one to purge, through the real workflow
    client.post(f"/triage/reports/{old_closed}/status", data={"status": "assessing", "reason": "PURGE-REASON"})
    client.post(f"/triage/reports/{old_closed}/status", data={"status": "no_further_action",
                                                              "reason": "PURGE-REASON-2"})
    client.post(f"/triage/reports/{old_closed}/notes", data={"text": "PURGE-NOTE"})
    sealed = stored_envelope(app, old_closed)["sealed"][0]
    signature = stored_envelope(app, old_closed)["signature"]
    with app.app_context():
        note_blob = get_db().execute("SELECT sealed FROM report_note").fetchone()[0]
    update_report(app, old_closed, closed_at=stamp(NOW - timedelta(days=400)), lock_user_id=None, lock_expires_at=None)
    with app.app_context():
        with transaction(get_db()):  # a year on, the note is old too
            get_db().execute("UPDATE report_note SET at = ?", (stamp(NOW - timedelta(days=400)),))
    update_report(app, old_referred, status="referred", closed_at=stamp(NOW - timedelta(days=366)))
    update_report(app, recent_closed, status="referred", closed_at=stamp(NOW - timedelta(days=30)))
    update_report(app, old_open, status="assessing", received_at=stamp(NOW - timedelta(days=500)))
    update_report(app, old_meet, status="meet_aircraft", received_at=stamp(NOW - timedelta(days=500)))

    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0, result.output
    assert "Purged 2 reports closed more than 365 days ago." in result.output
    assert row(app, old_closed) is None and row(app, old_referred) is None
    for kept in (recent_closed, old_open, old_meet):
        assert row(app, kept) is not None
    assert count(app, "SELECT count(*) FROM report_note") == 0
    assert count(app, "SELECT count(*) FROM report_status_history WHERE report_id = ?", old_closed) == 0

    purged = events(app, "report_purged")
    assert sorted(e["subject"] for e in purged) == sorted([f"report:{old_closed}", f"report:{old_referred}"])
    detail = json.loads(next(e for e in purged if e["subject"] == f"report:{old_closed}")["detail"])
    assert detail["notes"] == 1 and detail["status_steps"] == 2 and detail["retention_days"] == 365
    assert set(detail) == {"reference", "closed_at", "retention_days", "notes", "status_steps"}
    with app.app_context():
        assert audit.verify_chain(get_db()).ok

    raw = store_bytes(app)
    for gone in (sealed[:60], signature, note_blob[:60]):
        assert gone.encode() not in raw
    assert stored_envelope(app, recent_closed)["signature"].encode() in raw  # the scan can see a kept one


def test_purge_days_option_and_config_default(client: FlaskClient, app: Flask, make_envelope: Make,
                                              runner: FlaskCliRunner) -> None:
    rid = deliver(client, make_envelope)
    update_report(app, rid, status="no_further_action", closed_at=stamp(NOW - timedelta(days=10)))
    assert "Purged 0 reports" in runner.invoke(args=["purge"]).output
    app.config["RETENTION_DAYS"] = 20
    assert "Purged 0 reports closed more than 20 days" in runner.invoke(args=["purge"]).output
    dry = runner.invoke(args=["purge", "--days", "7", "--dry-run"])
    assert "Would purge 1 report closed more than 7 days ago." in dry.output and rid in dry.output
    assert row(app, rid) is not None and events(app, "report_purged") == []
    assert runner.invoke(args=["purge", "--days", "-1"]).exit_code != 0
    assert row(app, rid) is not None
    result = runner.invoke(args=["purge", "--days", "7"])
    assert result.exit_code == 0 and "Purged 1 report closed" in result.output
    assert row(app, rid) is None


@pytest.mark.parametrize("days", ["380000", "500000", "730000"])
def test_a_cutoff_before_year_1000_purges_only_what_was_closed_before_it(
        client: FlaskClient, app: Flask, make_envelope: Make, runner: FlaskCliRunner, days: str) -> None:
    """--days 500000 reaches back to year 657: the cutoff is written with four
    digits ("0657-..."), as every stored time is, and compares before them as
    text; written "657-..." it sorted after "2026-...", and purge removed
    every closed report, the one closed ten days ago too."""
    rid = deliver(client, make_envelope)
    update_report(app, rid, status="no_further_action", closed_at=stamp(NOW - timedelta(days=10)))
    dry = runner.invoke(args=["purge", "--days", days, "--dry-run"])
    assert dry.exit_code == 0 and "Would purge 0 reports" in dry.output
    assert "Purged 0 reports" in runner.invoke(args=["purge", "--days", days]).output
    assert row(app, rid) is not None and events(app, "report_purged") == []


@pytest.mark.parametrize("days", ["800000", "999999999", "99999999999999999999"])
def test_more_days_than_the_calendar_holds_purge_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                                         runner: FlaskCliRunner, days: str) -> None:
    """No report was closed before year 1: a --days (or RETENTION_DAYS) that
    reaches past it selects nothing, and says so, rather than overflow."""
    rid = deliver(client, make_envelope)
    update_report(app, rid, status="no_further_action", closed_at=stamp(NOW - timedelta(days=400)))
    for args in (["purge", "--days", days, "--dry-run"], ["purge", "--days", days]):
        result = runner.invoke(args=args)
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code == 0 and f"0 reports closed more than {days} days ago." in result.output
    app.config["RETENTION_DAYS"] = int(days)
    assert runner.invoke(args=["purge"]).exit_code == 0
    assert row(app, rid) is not None and events(app, "report_purged") == []


def test_purge_says_so_when_a_reader_keeps_the_wal_busy(client: FlaskClient, app: Flask, make_envelope: Make,
                                                        runner: FlaskCliRunner, monkeypatch: Any) -> None:
    """A purge must not claim to have left nothing behind when it could not."""
    import sqlite3

    from crewreport import retention
    rid = deliver(client, make_envelope)
    update_report(app, rid, status="referred", closed_at=stamp(NOW - timedelta(days=400)))
    reader = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM report").fetchone()  # holds a snapshot
    import functools
    monkeypatch.setattr(retention, "fold_wal", functools.partial(retention.fold_wal, wait_ms=50))
    try:
        result = runner.invoke(args=["purge"])
    finally:
        reader.execute("COMMIT")
        reader.close()
    assert result.exit_code != 0
    assert "kept the WAL busy" in result.output
    assert count(app, "SELECT count(*) FROM report WHERE id = ?", rid) == 0


def test_a_report_an_officer_holds_or_has_just_noted_is_left_for_a_later_run(
        client: FlaskClient, app: Flask, make_envelope: Make, runner: FlaskCliRunner, auth: AuthActions) -> None:
    """Retention counts from the last work on a report, and never removes one from under an officer."""
    held, noted, due = (deliver(client, make_envelope) for _ in range(3))
    for rid in (held, noted, due):
        update_report(app, rid, status="referred", closed_at=stamp(NOW - timedelta(days=400)))
    auth.login("officer")
    assert client.post(f"/triage/reports/{held}/lock").status_code == 303
    note = {"text": "Asked the NRM for an update"}
    assert client.post(f"/triage/reports/{noted}/notes", data=note).status_code == 303
    update_report(app, noted, lock_user_id=None, lock_expires_at=None)  # the note alone keeps it
    dry = runner.invoke(args=["purge", "--dry-run"])
    assert "Would purge 1 report" in dry.output and due in dry.output
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0 and "Purged 1 report closed" in result.output
    assert row(app, due) is None and row(app, held) is not None and row(app, noted) is not None
    # once the lock has run out, and a year after the note, they go too
    update_report(app, held, lock_expires_at=stamp(NOW - timedelta(minutes=1)))
    assert "Purged 1 report" in runner.invoke(args=["purge"]).output and row(app, held) is None
    with app.app_context():
        with transaction(get_db()):
            get_db().execute("UPDATE report_note SET at = ? WHERE report_id = ?",
                             (stamp(NOW - timedelta(days=366)), noted))
    assert "Purged 1 report" in runner.invoke(args=["purge"]).output and row(app, noted) is None


def test_running_purge_again_after_a_busy_wal_folds_it(client: FlaskClient, app: Flask, make_envelope: Make,
                                                       runner: FlaskCliRunner, monkeypatch: Any) -> None:
    """The busy-WAL error says to run purge again: that run, with nothing left to delete, must still fold the WAL."""
    import functools
    import sqlite3

    from crewreport import retention
    rid = deliver(client, make_envelope)
    signature = stored_envelope(app, rid)["signature"]
    update_report(app, rid, status="referred", closed_at=stamp(NOW - timedelta(days=400)))
    reader = sqlite3.connect(app.config["DATABASE"], isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM report").fetchone()
    short = functools.partial(retention.fold_wal, wait_ms=50)
    monkeypatch.setattr(retention, "fold_wal", short)
    try:
        assert runner.invoke(args=["purge"]).exit_code != 0
    finally:
        reader.execute("COMMIT")
        reader.close()
    again = runner.invoke(args=["purge"])
    assert again.exit_code == 0 and "Purged 0 reports" in again.output
    assert signature.encode() not in store_bytes(app)


def test_a_resend_of_a_purged_report_is_never_stored_again(client: FlaskClient, app: Flask, make_envelope: Make,
                                                           runner: FlaskCliRunner,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A tablet that never verified its receipt may send a note again for as
    long as it may stay offline (a year), longer than a short retention keeps
    it, and a clock a day ahead stretches that: the audit trail's purged ids
    refuse it, whatever --days was."""
    now = NOW.replace(microsecond=0)
    env = make_envelope(created=stamp(now + timedelta(hours=20)), sta=stamp(now + timedelta(hours=21)))
    assert client.post("/api/v1/reports", json=env).status_code == 201
    rid = header_of(env)["id"]
    update_report(app, rid, status="no_further_action", closed_at=stamp(now - timedelta(days=10)))
    assert "Purged 1 report" in runner.invoke(args=["purge", "--days", "7"]).output
    monkeypatch.setattr(report, "server_now", lambda: now + timedelta(days=300))
    resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "conflict"
    assert "deleted under the retention policy" in resp.get_json()["error"]["message"]
    assert row(app, rid) is None
