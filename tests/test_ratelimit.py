"""Rate limits per address and per device on the intake, per address and per
account on enrollment, per address and per device on the device-state check;
`429 rate_limited` with Retry-After; a switch that turns them all off; the
counters kept out of the durable store and shared by gunicorn's workers."""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope, ratelimit
from crewreport.db import get_db

from .helpers import AuthActions, KeySet
from .served import ServedApp

Make = Callable[..., dict[str, Any]]


def codes(resp: Any) -> list[str | None]:
    return [r.get("error", {}).get("code") for r in resp.get_json()["results"]]


def yy_envelope(make_envelope: Make, keyset: KeySet) -> dict[str, Any]:
    """A valid envelope from the other enrolled tablet (airline YY)."""
    return make_envelope(device="dev-yy", device_key=keyset.device_yy, airline="YY",
                         recipients=[keyset.border_force, keyset.airline_yy])


def stored(app: Flask) -> int:
    with app.app_context():
        return int(get_db().execute("SELECT count(*) FROM report").fetchone()[0])


def test_single_envelopes_over_the_address_limit_get_429_with_retry_after(
        client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 2
    assert [client.post("/api/v1/reports", json=make_envelope()).status_code for _ in range(2)] == [201, 201]
    resp = client.post("/api/v1/reports", json=make_envelope())
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "rate_limited"
    # Two a minute: the next one is due in about 30 s.
    assert 1 <= int(resp.headers["Retry-After"]) <= 30
    assert stored(app) == 2


def test_a_batch_over_the_address_limit_is_answered_in_part(client: FlaskClient, app: Flask,
                                                            make_envelope: Make) -> None:
    """Each envelope counts; those within the limit are stored, the rest told to retry."""
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 5
    resp = client.post("/api/v1/reports/batch", json={"envelopes": [make_envelope() for _ in range(8)]})
    assert resp.status_code == 200
    assert codes(resp) == [None] * 5 + ["rate_limited"] * 3
    assert int(resp.headers["Retry-After"]) >= 1
    assert stored(app) == 5
    resp = client.post("/api/v1/reports/batch", json={"envelopes": [make_envelope()]})
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
    assert stored(app) == 5


def test_one_device_over_its_limit_does_not_hold_up_another(client: FlaskClient, app: Flask, make_envelope: Make,
                                                            keyset: KeySet) -> None:
    app.config["RATELIMIT_INTAKE_PER_DEVICE"] = 2
    envs = [make_envelope() for _ in range(3)] + [yy_envelope(make_envelope, keyset)]
    resp = client.post("/api/v1/reports/batch", json={"envelopes": envs})
    assert codes(resp) == [None, None, "rate_limited", None]
    assert "Retry-After" in resp.headers
    single = client.post("/api/v1/reports", json=make_envelope())
    assert single.status_code == 429 and single.get_json()["error"]["code"] == "rate_limited"
    wait = int(single.headers["Retry-After"])
    assert wait >= 1 and single.get_json()["error"]["message"] == (
        f"Too many reports from this device; it will retry in {wait} s.")
    assert stored(app) == 3


def test_a_device_is_charged_only_for_what_it_signed(client: FlaskClient, app: Flask, make_envelope: Make,
                                                     keyset: KeySet) -> None:
    """Envelopes that merely name a device cannot use up that device's limit."""
    app.config["RATELIMIT_INTAKE_PER_DEVICE"] = 2
    forged = [make_envelope(device_key=keyset.device_yy) for _ in range(5)]  # names dev-0001, wrong key
    resp = client.post("/api/v1/reports/batch", json={"envelopes": forged})
    assert codes(resp) == ["bad_signature"] * 5
    resp = client.post("/api/v1/reports/batch", json={"envelopes": [make_envelope(), make_envelope()]})
    assert codes(resp) == [None, None]


def enroll(client: FlaskClient) -> Any:
    key = ec.generate_private_key(ec.SECP256R1())
    return client.post("/api/v1/devices", json={"public_key": envelope.jwk_from_public_key(key.public_key()),
                                                "label": "tablet"})


def test_enrollment_is_limited_per_account(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    app.config["RATELIMIT_ENROLL_PER_USER"] = 2
    auth.login("crew")
    assert [enroll(client).status_code for _ in range(2)] == [201, 201]
    resp = enroll(client)
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    other = app.test_client()
    AuthActions(other).login("crew-yy")
    assert enroll(other).status_code == 201


def test_enrollment_is_limited_per_address(app: Flask, client: FlaskClient, auth: AuthActions) -> None:
    app.config["RATELIMIT_ENROLL_PER_ADDRESS"] = 1
    auth.login("crew")
    assert enroll(client).status_code == 201
    other = app.test_client()
    AuthActions(other).login("crew-yy")
    assert enroll(other).status_code == 429


def test_device_state_is_limited_per_device_and_per_address(app: Flask, client: FlaskClient) -> None:
    app.config["RATELIMIT_DEVICE_STATE_PER_DEVICE"] = 2
    app.config["RATELIMIT_DEVICE_STATE_PER_ADDRESS"] = 4
    assert [client.get("/api/v1/devices/dev-0001").status_code for _ in range(3)] == [200, 200, 429]
    assert client.get("/api/v1/devices/dev-yy").status_code == 200  # the address's fourth
    resp = client.get("/api/v1/devices/dev-nobody")
    assert resp.status_code == 429 and resp.get_json()["error"]["code"] == "rate_limited"


def test_the_switch_turns_every_limit_off(app: Flask, client: FlaskClient, make_envelope: Make) -> None:
    for name in ratelimit.DEFAULTS:
        if name.endswith(("_PER_ADDRESS", "_PER_DEVICE", "_PER_USER")):
            app.config[name] = 0
    app.config["RATELIMIT_ENABLED"] = False
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    assert client.get("/api/v1/devices/dev-0001").status_code == 200
    assert not os.path.exists(Path(app.config["DATABASE"]).parent / "ratelimit.sqlite")


def test_the_limit_comes_back_with_time(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst of the whole limit, then one unit every period/limit seconds."""
    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    app.config["RATELIMIT_INTAKE_PER_DEVICE"] = 6  # one every 10 s
    with app.test_request_context():
        first = ratelimit.take("intake_per_device", "dev-t", 4)
        second = ratelimit.take("intake_per_device", "dev-t", 4)
        assert (first.granted, second.granted) == (4, 2)
        assert first.allowed and first.retry_after == 0  # nothing to wait for: no Retry-After
        assert not second.allowed and second.retry_after == 10
        clock[0] += 9
        assert ratelimit.take("intake_per_device", "dev-t").granted == 0
        clock[0] += 1
        assert ratelimit.take("intake_per_device", "dev-t").allowed
        clock[0] += 60
        assert ratelimit.take("intake_per_device", "dev-t", 6).allowed
        assert ratelimit.take("intake_per_device", "other", 6).allowed  # keys are separate


def test_retry_after_is_whole_seconds_and_at_least_one(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(ratelimit.time, "time", lambda: clock[0])
    app.config["RATELIMIT_INTAKE_PER_DEVICE"] = 60  # one a second
    with app.test_request_context():
        assert ratelimit.take("intake_per_device", "dev-t", 61) == ratelimit.Decision(61, 60, 1)
        clock[0] += 0.5
        assert ratelimit.take("intake_per_device", "dev-t") == ratelimit.Decision(1, 0, 1)  # 0.5 s, rounded up


def test_a_limit_of_zero_refuses_everything_for_a_period(app: Flask) -> None:
    app.config["RATELIMIT_ENROLL_PER_USER"] = 0
    with app.test_request_context():
        assert ratelimit.take("enroll_per_user", "7", 3) == ratelimit.Decision(3, 0, 60)
        app.config["RATELIMIT_PERIOD_SECONDS"] = 0.5
        assert ratelimit.take("enroll_per_user", "7") == ratelimit.Decision(1, 0, 1)


def test_the_counters_file_can_be_put_elsewhere(app: Flask, tmp_path: Path) -> None:
    """RATELIMIT_DATABASE, e.g. on a RAM disk: nothing of it need survive."""
    elsewhere = tmp_path / "elsewhere" / "counters.sqlite"
    elsewhere.parent.mkdir()
    app.config["RATELIMIT_DATABASE"] = str(elsewhere)
    with app.test_request_context():
        assert ratelimit.take("enroll_per_user", "7").allowed
    assert elsewhere.exists() and not (Path(app.config["DATABASE"]).parent / "ratelimit.sqlite").exists()


def test_counters_stay_out_of_the_store(app: Flask, client: FlaskClient, make_envelope: Make) -> None:
    """Refused requests write nothing durable; the counts live in their own
    file that is never synced, and a request needs one store transaction."""
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 1
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    with app.app_context():
        db = get_db()
        before = db.execute("SELECT (SELECT count(*) FROM report), (SELECT count(*) FROM audit_event),"
                            " (SELECT count(*) FROM intake_window)").fetchone()
    for _ in range(3):
        assert client.post("/api/v1/reports", json=make_envelope()).status_code == 429
    with app.app_context():
        after = get_db().execute("SELECT (SELECT count(*) FROM report), (SELECT count(*) FROM audit_event),"
                                 " (SELECT count(*) FROM intake_window)").fetchone()
    assert tuple(after) == tuple(before) and before[2] == 0
    counters = Path(app.config["DATABASE"]).parent / "ratelimit.sqlite"
    assert counters.exists() and oct(counters.stat().st_mode & 0o777) == "0o600"


def test_an_unreadable_counters_file_is_started_afresh(app: Flask, client: FlaskClient,
                                                       make_envelope: Make) -> None:
    counters = Path(app.config["DATABASE"]).parent / "ratelimit.sqlite"
    counters.write_bytes(b"this is not a database" * 100)
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 1
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    # Counted in the new file: letting everything through would answer 201 here.
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 429


@pytest.mark.parametrize(("error", "said"), [
    (sqlite3.OperationalError("disk I/O error"),
     ["rate-limit counters unavailable (disk I/O error); letting the request through"]),
    (sqlite3.DatabaseError("file is not a database"),  # afresh, then the same again: give up
     ["rate-limit counters unreadable (file is not a database); starting them afresh"] * 2),
])
def test_counters_that_cannot_be_used_let_the_request_through(app: Flask, monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture,
                                                              error: sqlite3.Error, said: list[str]) -> None:
    """A limiter must never be the reason a report is lost: everything is
    granted, and the operator is told why."""
    def broken(*args: Any) -> ratelimit.Decision:
        raise error

    monkeypatch.setattr(ratelimit, "_take", broken)
    with app.test_request_context():
        assert ratelimit.take("enroll_per_user", "7", 3) == ratelimit.Decision(3, 3)
    assert [r.getMessage() for r in caplog.records if r.name == "crewreport.ratelimit"] == said


def test_limits_hold_across_gunicorn_workers(tmp_path: Path) -> None:
    """Two workers share one set of counters: ten a minute is ten, not twenty."""
    served = ServedApp(tmp_path, env={"CREWREPORT_RATELIMIT_DEVICE_STATE_PER_ADDRESS": "10",
                                      "CREWREPORT_PASSWORD_HASH_FAST": "true"},
                       unset=("CREWREPORT_KEY_PASSPHRASE", "CREWREPORT_RATELIMIT_ENABLED"))
    served.start()
    statuses: list[int] = []
    refusals: list[tuple[str, int]] = []  # (code, Retry-After) of each 429
    lock = threading.Lock()

    def ask() -> None:
        try:
            with urllib.request.urlopen(served.url + "/api/v1/devices/dev-nobody", timeout=30) as resp:
                status = resp.status
        except urllib.error.HTTPError as exc:
            status = exc.code
            if exc.code == 429:
                refusals.append((json.loads(exc.read())["error"]["code"], int(exc.headers["Retry-After"])))
        with lock:
            statuses.append(status)

    try:
        threads = [threading.Thread(target=ask) for _ in range(16)]  # concurrent: both workers answer
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        served.kill()
    assert sorted(statuses) == [404] * 10 + [429] * 6, statuses
    assert len(refusals) == 6 and all(code == "rate_limited" and wait >= 1 for code, wait in refusals), refusals
