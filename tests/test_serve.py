"""The production server for real: `flask --app crewreport serve` (gunicorn) on a
free loopback port, a report over HTTP with a verified receipt, the
`send-test-report` command, and the server SIGKILLed mid-burst (DESIGN.md
section 8: every receipted report present exactly once after a restart)."""
from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator

import pytest

from crewreport import envelope
from crewreport.client import Client
from crewreport.times import now, stamp
from tests.served import ServedApp

DEMO_PASSWORD = "demo-password-for-tests"
# Cheap password hashing and no intake rate limit: the test is about serving,
# not about those (tested elsewhere).
FAST_ENV = {"CREWREPORT_PASSWORD_HASH_FAST": "true", "CREWREPORT_INTAKE_RATE_PER_MINUTE": "1000000"}


def make_served(tmp_path_factory: pytest.TempPathFactory, name: str) -> ServedApp:
    """A fresh instance folder with the demo data; not started yet."""
    served = ServedApp(tmp_path_factory.mktemp(name), env=FAST_ENV, unset=("CREWREPORT_KEY_PASSPHRASE",))
    demo = served.flask("demo", "--password", DEMO_PASSWORD)
    assert demo.returncode == 0, demo.stderr
    assert f"demo-crew       (crew) password: {DEMO_PASSWORD}" in demo.stdout
    return served


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = make_served(tmp_path_factory, "served")
    served.start()
    try:
        yield served
    finally:
        served.kill()


def sta() -> str:
    return stamp(datetime.now(timezone.utc) + timedelta(hours=4))


FIELDS = {"flight": "ZZ75", "dep": "ACC", "arr": "LHR", "urgency": "priority"}


def body(narrative: str = "Over real HTTP.") -> dict[str, Any]:
    return {"observed_at": now(), "indicators": [],
            "people": [], "narrative": narrative, "captain_informed": False, "reporter": {"crew_id": "T1"}}


def enrolled_client(url: str) -> Client:
    client = Client(url)
    client.sign_in("demo-crew", DEMO_PASSWORD)
    client.enroll("served test")
    return client


@pytest.mark.parametrize("version", [1, 2])
def test_report_over_real_http(server: ServedApp, version: int) -> None:
    client = enrolled_client(server.url)
    assert client.airline == "ZZ"
    env = client.envelope({**FIELDS, "sta": sta()}, body(), version=version)
    assert json.loads(envelope.b64u_decode(env["protected"]))["v"] == version
    status, answer = client.post_report(env)
    assert status == 201, answer
    # The receipt verifies with the key published to anyone, fetched separately.
    with urllib.request.urlopen(server.url + "/api/v1/keys", timeout=10) as resp:
        published = json.load(resp)
    receipt = envelope.verify_receipt(answer, envelope.public_key_from_jwk(published["receipt_key"]["jwk"]))
    assert receipt["id"] == json.loads(envelope.b64u_decode(env["protected"]))["id"]
    assert receipt["envelope_sha256"] == envelope.envelope_sha256(env)
    assert client.post_report(env) == (200, answer)
    status, batch = client.post_batch([client.envelope({**FIELDS, "sta": sta()}, body()), env])
    assert status == 200 and batch["results"][1] == answer
    client.verify_receipt(batch["results"][0])
    with server.connect() as conn:
        row = conn.execute("SELECT envelope FROM report WHERE id = ?", (receipt["id"],)).fetchone()
    assert json.loads(row["envelope"]) == env


def test_served_headers_and_errors(server: ServedApp) -> None:
    client = Client(server.url)
    status, answer = client.request("POST", "/api/v1/reports", {"not": "an envelope"})
    assert status == 400 and answer["error"]["code"] == "malformed"
    req = urllib.request.Request(server.url + "/auth/login")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert "Strict-Transport-Security" not in resp.headers
        assert "HttpOnly" in resp.headers.get("Set-Cookie", "HttpOnly")


def test_send_test_report_command(server: ServedApp) -> None:
    result = server.flask("send-test-report", "--url", server.url, "--password", DEMO_PASSWORD)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "Delivered" in result.stdout and "reference" in result.stdout
    assert "(envelope version 2)" in result.stdout
    report_id = re.search(r"Delivered (\S+) ", result.stdout).group(1)  # type: ignore[union-attr]
    with server.connect() as conn:
        row = conn.execute("SELECT envelope FROM report WHERE id = ?", (report_id,)).fetchone()
    assert json.loads(envelope.b64u_decode(json.loads(row["envelope"])["protected"]))["v"] == 2
    bad = server.flask("send-test-report", "--url", server.url, "--password", "wrong")
    assert bad.returncode != 0


def test_killed_mid_burst_every_receipted_report_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    served = make_served(tmp_path_factory, "burst")
    served.start()
    try:
        client = enrolled_client(served.url)
        envelopes = [client.envelope({**FIELDS, "sta": sta()}, body(f"Burst report {i}.")) for i in range(120)]
        ids = [json.loads(envelope.b64u_decode(e["protected"]))["id"] for e in envelopes]
        receipts: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def send(share: list[int]) -> None:
            for i in share:
                if stop.is_set():
                    return
                try:
                    status, answer = client.post_report(envelopes[i])
                except Exception:  # noqa: BLE001 - the server was killed under us
                    continue
                if status in (200, 201):
                    with lock:
                        receipts[ids[i]] = client.verify_receipt(answer)

        threads = [threading.Thread(target=send, args=(list(range(n, len(envelopes), 6)),)) for n in range(6)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 30
        while len(receipts) < 25 and time.monotonic() < deadline:
            time.sleep(0.005)
        served.kill()
        stop.set()
        for t in threads:
            t.join(timeout=60)
        before_restart = dict(receipts)
        assert 25 <= len(before_restart) < len(envelopes), "the kill should land mid-burst"

        served.start()
        for i, report_id in enumerate(ids):
            if report_id in receipts:
                continue
            status, answer = client.post_report(envelopes[i])
            assert status in (200, 201), answer
            receipts[report_id] = client.verify_receipt(answer)

        with served.connect() as conn:
            rows = conn.execute("SELECT id, reference, envelope_sha256, receipt FROM report").fetchall()
        by_id: dict[str, list[sqlite3.Row]] = {}
        for row in rows:
            by_id.setdefault(row["id"], []).append(row)
        assert all(len(v) == 1 for v in by_id.values())
        assert set(by_id) == set(ids)  # everything, resent or not, is there exactly once
        for report_id, receipt in before_restart.items():
            row = by_id[report_id][0]
            assert (row["reference"], row["envelope_sha256"]) == (receipt["reference"], receipt["envelope_sha256"])
        for i, report_id in enumerate(ids):
            assert receipts[report_id]["envelope_sha256"] == envelope.envelope_sha256(envelopes[i])
            assert by_id[report_id][0]["reference"] == receipts[report_id]["reference"]
        verify = served.flask("verify-audit")
        assert verify.returncode == 0, verify.stderr
    finally:
        served.kill()
