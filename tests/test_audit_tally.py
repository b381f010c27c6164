"""A tablet that sends the same refused envelopes over and over, or anyone
repeating a throttled sign-in, adds one chained row per actor, code and
minute, and a counted summary once the minute is over; the chain stays
verifiable throughout."""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import audit
from crewreport.db import get_db

from .helpers import AuthActions, events, header_of, valid_body

Make = Callable[..., dict[str, Any]]


def rejected_rows(app: Flask) -> list[dict[str, Any]]:
    with app.app_context():
        rows = get_db().execute("SELECT * FROM audit_event WHERE action = 'intake_rejected' ORDER BY id").fetchall()
    return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]


def tallies(app: Flask) -> list[tuple[str, str, int]]:
    with app.app_context():
        return [(r["actor"], r["code"], r["count"])
                for r in get_db().execute("SELECT * FROM audit_tally ORDER BY code")]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The audit module's clock, set by the test (RFC 3339, as db.now gives)."""
    now = ["2026-11-29T10:15:07Z"]
    monkeypatch.setattr(audit, "now", lambda: now[0])
    return now


def test_a_revoked_tablet_resending_a_batch_adds_two_rows_a_minute(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, make_envelope: Make, clock: list[str]) -> None:
    app.config["RATELIMIT_ENABLED"] = False
    assert runner.invoke(args=["revoke-device", "dev-0001"]).exit_code == 0
    batch = {"envelopes": [make_envelope() for _ in range(100)]}
    for _ in range(5):
        results = client.post("/api/v1/reports/batch", json=batch).get_json()["results"]
        assert {r["error"]["code"] for r in results} == {"revoked_device"}
    rows = rejected_rows(app)
    assert len(rows) == 1
    assert rows[0]["actor"] == "device:dev-0001" and rows[0]["detail"]["code"] == "revoked_device"
    assert tallies(app) == [("device:dev-0001", "revoked_device", 500)]
    # The minute is over: the next audit event of any kind chains the count.
    clock[0] = "2026-11-29T10:16:00Z"
    assert client.post("/api/v1/reports/batch", json=batch).status_code == 200
    rows = rejected_rows(app)
    assert len(rows) == 3
    summary, next_minute = rows[1], rows[2]
    assert summary["detail"] == {"code": "revoked_device", "count": 500, "minute": "2026-11-29T10:15",
                                 "first": rows[0]["hash"]}
    assert next_minute["detail"]["code"] == "revoked_device" and "count" not in next_minute["detail"]
    assert tallies(app) == [("device:dev-0001", "revoked_device", 100)]
    assert runner.invoke(args=["verify-audit"]).exit_code == 0


def test_each_code_is_counted_on_its_own_and_a_single_refusal_needs_no_summary(
        app: Flask, client: FlaskClient, runner: FlaskCliRunner, make_envelope: Make, clock: list[str]) -> None:
    bad_body = [make_envelope(body=valid_body(narrative="")) for _ in range(3)]
    bad_flight = make_envelope(flight="nonsense")
    other = make_envelope()
    assert client.post("/api/v1/reports", json=other).status_code == 201
    conflict = make_envelope(body=valid_body(narrative="Other words."),
                             id=header_of(other)["id"])
    resp = client.post("/api/v1/reports/batch", json={"envelopes": [*bad_body, bad_flight, conflict, conflict]})
    assert [r["error"]["code"] for r in resp.get_json()["results"]] == ["invalid_report"] * 4 + ["conflict"] * 2
    rows = rejected_rows(app)
    assert sorted(r["detail"]["code"] for r in rows) == ["conflict", "invalid_report"]
    assert [r["subject"] for r in rows if r["detail"]["code"] == "conflict"][0].startswith("report:")
    assert tallies(app) == [("device:dev-0001", "conflict", 2), ("device:dev-0001", "invalid_report", 4)]
    clock[0] = "2026-11-29T10:20:00Z"
    with app.app_context():
        audit.record("key_added", actor="system")
    rows = rejected_rows(app)
    assert sorted((r["detail"]["code"], r["detail"].get("count")) for r in rows[2:]) == [
        ("conflict", 2), ("invalid_report", 4)]
    assert tallies(app) == []
    # One refusal in a minute: its own row is the whole record.
    assert client.post("/api/v1/reports", json=make_envelope(flight="bad")).status_code == 422
    clock[0] = "2026-11-29T10:21:00Z"
    with app.app_context():
        audit.record("key_added", actor="system")
    assert [r["detail"].get("count") for r in rejected_rows(app)[4:]] == [None]
    assert runner.invoke(args=["verify-audit"]).exit_code == 0


def test_refusals_in_a_batch_share_one_commit_with_the_reports(app: Flask, client: FlaskClient,
                                                               make_envelope: Make) -> None:
    """A mixed batch: good ones stored and receipted, bad ones refused and
    audited, all in the order sent."""
    envs = [make_envelope(), make_envelope(flight="x"), make_envelope(), make_envelope(flight="y")]
    results = client.post("/api/v1/reports/batch", json={"envelopes": envs}).get_json()["results"]
    assert ["receipt" in r for r in results] == [True, False, True, False]
    with app.app_context():
        db = get_db()
        actions = [r[0] for r in db.execute("SELECT action FROM audit_event ORDER BY id DESC LIMIT 3")]
        assert sorted(actions) == ["intake_rejected", "report_received", "report_received"]
        assert db.execute("SELECT count(*) FROM report").fetchone()[0] == 2


def test_throttled_sign_ins_add_one_row_a_minute(app: Flask, auth: AuthActions, runner: FlaskCliRunner,
                                                 clock: list[str]) -> None:
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert auth.login("officer", "wrong password").status_code == 200
    for _ in range(60):
        assert auth.login("officer", "wrong password").status_code == 429
    rows = events(app, "sign_in_throttled")
    assert [(r["actor"], json.loads(r["detail"])) for r in rows] == [
        ("user:officer", {"code": "throttled", "address": "127.0.0.1"})]
    assert tallies(app) == [("user:officer", "throttled", 60)]
    clock[0] = "2026-11-29T10:16:00Z"
    assert auth.login("officer", "wrong password").status_code == 429
    summary = json.loads(events(app, "sign_in_throttled")[1]["detail"])
    assert (summary["count"], summary["minute"]) == (60, "2026-11-29T10:15")
    assert runner.invoke(args=["verify-audit"]).exit_code == 0
