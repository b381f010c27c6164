"""Batches under gunicorn, the server SIGKILLed while they arrive: every
receipted report is on disk exactly once after a restart, and a resent batch
gets the very same receipts."""
from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crewreport.client import Client
from crewreport.times import stamp

from .helpers import header_of
from .served import ServedApp, kill_mid_burst

PASSWORD = "batch-kill-password"
BATCH = 10


def note(client: Client, i: int) -> dict[str, Any]:
    now = datetime.now(UTC)
    return client.envelope(
        {"flight": "ZZ75", "dep": "ACC", "arr": "LHR", "urgency": "routine",
         "sta": stamp(now + timedelta(hours=4))},
        {"observed_at": stamp(now), "indicators": [], "people": [],
         "narrative": f"Batch note {i}.", "captain_informed": False, "reporter": {"crew_id": "K1"}})


def test_killed_mid_batches_every_receipted_report_once(tmp_path: Path) -> None:
    served = ServedApp(tmp_path, env={"CREWREPORT_PASSWORD_HASH_FAST": "true",
                                      "CREWREPORT_RATELIMIT_ENABLED": "false"},
                       unset=("CREWREPORT_KEY_PASSPHRASE",))
    assert served.flask("demo", "--password", PASSWORD).returncode == 0
    served.start()
    try:
        client = Client(served.url)
        client.sign_in("demo-crew", PASSWORD)
        client.enroll("batch kill test")
        envelopes = [note(client, i) for i in range(400)]
        ids = [header_of(e)["id"] for e in envelopes]
        batches = [list(range(n, n + BATCH)) for n in range(0, len(envelopes), BATCH)]
        receipts: dict[str, dict[str, Any]] = {}
        answers: dict[str, dict[str, Any]] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def send(mine: list[list[int]]) -> None:
            for batch in mine:
                if stop.is_set():
                    return
                try:
                    status, body = client.post_batch([envelopes[i] for i in batch])
                except Exception:  # noqa: BLE001 - the server was killed under us
                    continue
                if status != 200:
                    continue
                for i, result in zip(batch, body["results"], strict=False):
                    if "receipt" in result:
                        with lock:
                            receipts[ids[i]] = client.verify_receipt(result)
                            answers[ids[i]] = result

        kill_mid_burst(served, send, [batches[n::4] for n in range(4)], lambda: len(receipts), 60, stop)
        before_restart = dict(answers)
        assert 60 <= len(before_restart) < len(envelopes), "the kill should land mid-burst"

        served.start()
        for batch in batches:  # the tablet sends its whole outbox again
            status, body = client.post_batch([envelopes[i] for i in batch])
            assert status == 200
            for i, result in zip(batch, body["results"], strict=False):
                assert "receipt" in result, result
                if ids[i] in before_restart:
                    assert result == before_restart[ids[i]]  # the same receipt, not a second report
                receipts[ids[i]] = client.verify_receipt(result)

        with served.connect() as conn:
            rows: list[sqlite3.Row] = conn.execute("SELECT id, reference FROM report").fetchall()
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert {r["id"]: r["reference"] for r in rows} == {k: v["reference"] for k, v in receipts.items()}
        verify = served.flask("verify-audit")
        assert verify.returncode == 0, verify.stderr
    finally:
        served.kill()
