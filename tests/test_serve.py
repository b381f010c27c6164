"""The production server for real: `flask --app crewreport serve` (gunicorn) on a
free loopback port, a report over HTTP with a verified receipt, the
`send-test-report` command, and the server SIGKILLed mid-burst (DESIGN.md
section 8: every receipted report present exactly once after a restart)."""
from __future__ import annotations

import http.client
import json
import random
import re
import socket
import sqlite3
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from crewreport import envelope
from crewreport.client import Client
from tests.helpers import header_of
from tests.served import (
    DEMO_PASSWORD,
    FIELDS,
    ServedApp,
    SlowClients,
    body,
    enrolled_client,
    kill_mid_burst,
    make_served,
    raw_request,
    sta,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    served = make_served(tmp_path_factory.mktemp("served"))
    served.start()
    try:
        yield served
    finally:
        served.kill()


@pytest.mark.parametrize("version", [1, 2])
def test_report_over_real_http(server: ServedApp, version: int) -> None:
    client = enrolled_client(server.url)
    assert client.airline == "ZZ"
    env = client.envelope({**FIELDS, "sta": sta()}, body(), version=version)
    assert header_of(env)["v"] == version
    status, answer = client.post_report(env)
    assert status == 201, answer
    # The receipt verifies with the key published to anyone, fetched separately.
    with urllib.request.urlopen(server.url + "/api/v1/keys", timeout=10) as resp:
        published = json.load(resp)
    receipt = envelope.verify_receipt(answer, envelope.public_key_from_jwk(published["receipt_key"]["jwk"]))
    assert receipt["id"] == header_of(env)["id"]
    assert receipt["envelope_sha256"] == envelope.envelope_sha256(env)
    assert client.post_report(env) == (200, answer)
    status, batch = client.post_batch([client.envelope({**FIELDS, "sta": sta()}, body()), env])
    assert status == 200 and batch["results"][1] == answer
    client.verify_receipt(batch["results"][0])
    with server.connect() as conn:
        row = conn.execute("SELECT envelope FROM report WHERE id = ?", (receipt["id"],)).fetchone()
    assert json.loads(row["envelope"]) == env


def test_tablet_asks_its_reports_states_over_real_http(server: ServedApp) -> None:
    client = enrolled_client(server.url)
    env = client.envelope({**FIELDS, "sta": sta()}, body())
    assert client.post_report(env)[0] == 201
    report_id = header_of(env)["id"]
    assert client.report_states([report_id, "someone-elses"]) == (200, {"results": [
        {"id": report_id, "state": "received"}, {"id": "someone-elses", "state": "unknown"}]})
    status, answer = client.report_states([report_id], at="2020-01-01T00:00:00Z")
    assert status == 400 and answer["error"]["code"] == "malformed"


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
    served = make_served(tmp_path_factory.mktemp("burst"))
    served.start()
    try:
        client = enrolled_client(served.url)
        envelopes = [client.envelope({**FIELDS, "sta": sta()}, body(f"Burst report {i}.")) for i in range(120)]
        ids = [header_of(e)["id"] for e in envelopes]
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

        kill_mid_burst(served, send, [list(range(n, len(envelopes), 6)) for n in range(6)], lambda: len(receipts),
                       25, stop, timeout=30)
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


def test_concurrent_reports_each_end_on_their_own(server: ServedApp) -> None:
    """Under `serve` the reports a worker holds at one moment share one
    durable commit (crewreport.group_commit); sent by 16 clients at once,
    each still gets its own answer: one row per id, the same receipt for a
    resend, a conflict for another report under a taken id, a refusal for a
    bad signature, and the audit chain intact."""
    client = enrolled_client(server.url)
    originals = [client.envelope({**FIELDS, "sta": sta()}, body(f"Concurrent report {i}.")) for i in range(24)]
    ids = [header_of(e)["id"] for e in originals]
    rival = client.envelope({**FIELDS, "sta": sta()}, body("Another report, the same id."), report_id=ids[0])
    forged = dict(originals[2], signature=originals[3]["signature"])
    sends = [*originals, *originals, rival, forged]
    random.Random(7).shuffle(sends)
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(client.post_report, sends))

    def key(env: dict[str, Any]) -> str:
        return json.dumps(env, sort_keys=True)

    by_envelope: dict[str, list[tuple[int, Any]]] = {}
    for env, answer in zip(sends, answers, strict=True):
        by_envelope.setdefault(key(env), []).append(answer)
    statuses = sorted(status for status, _ in answers)
    # 24 stored (201), 23 resends (200) and one conflict or two (the rival and
    # the resend of the report it lost to, in either order), the forgery (401).
    assert statuses in ([200] * 23 + [201] * 24 + [401] + [409] * 2, [200] * 24 + [201] * 24 + [401] + [409]), (
        [(status, answer) for status, answer in answers if status not in (200, 201)], server.log_tail())
    [(status, answer)] = by_envelope.pop(key(forged))
    assert (status, answer["error"]["code"]) == (401, "bad_signature")
    assert len(by_envelope) == 25  # 24 reports and the rival
    with server.connect() as conn:
        rows = {row["id"]: row for row in conn.execute(
            f"SELECT id, reference, envelope_sha256 FROM report WHERE id IN ({', '.join('?' * len(ids))})",
            ids)}
    assert set(rows) == set(ids)
    for sent, got in by_envelope.items():
        env = json.loads(sent)
        row = rows[header_of(env)["id"]]
        if row["envelope_sha256"] != envelope.envelope_sha256(env):  # the other report under id 0 was stored
            assert [(status, answer["error"]["code"]) for status, answer in got] == [(409, "conflict")] * len(got)
            continue
        assert sorted(status for status, _ in got) == ([201] if sent == key(rival) else [200, 201])
        assert all(answer == got[0][1] for _, answer in got)  # the very same receipt
        receipt = client.verify_receipt(got[0][1])
        assert (receipt["reference"], receipt["envelope_sha256"]) == (row["reference"], row["envelope_sha256"])
    verify = server.flask("verify-audit")
    assert verify.returncode == 0, verify.stderr


def test_slow_and_idle_clients_do_not_starve_the_service(server: ServedApp) -> None:
    """200 connections that never finish their headers and 50 that trickle a
    1 MB body hold no worker: meanwhile a report is accepted and the sign-in
    page loads, each within 2 s (the client's timeout fails it)."""
    client = enrolled_client(server.url)
    client.timeout = 2
    with SlowClients(server.port, idle=200, trickling=50) as slow:
        time.sleep(1)  # the server has read what they sent and waits for more
        for _ in range(3):
            status, answer = client.post_report(client.envelope({**FIELDS, "sta": sta()}, body()))
            assert status == 201, answer
            client.verify_receipt(answer)
            with urllib.request.urlopen(server.url + "/auth/login", timeout=2) as resp:
                assert resp.status == 200 and b'name="password"' in resp.read()
        assert slow.held() > 0, "the attack should still be under way"


def test_kept_alive_and_spare_connections_do_not_time_workers_out(server: ServedApp) -> None:
    """Browsers keep connections open after a response and open spare ones
    they send nothing on; neither may cost a worker (gunicorn's WORKER TIMEOUT
    kill) or delay another request."""
    kept, spare = [], []
    for _ in range(6):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        conn.request("GET", "/auth/login")
        assert conn.getresponse().read()
        kept.append(conn)
        spare.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
    try:
        time.sleep(2)
        for _ in range(3):
            with urllib.request.urlopen(server.url + "/auth/login", timeout=3) as resp:
                assert resp.status == 200
    finally:
        for conn in kept:
            conn.close()
        for sock in spare:
            sock.close()
    assert "WORKER TIMEOUT" not in server.log_path.read_text(errors="replace")


def test_control_characters_in_a_path_cannot_forge_log_lines(server: ServedApp) -> None:
    """An encoded CR/LF (or an escape sequence) in the path is written escaped:
    the access log keeps one line per request."""
    forged = "FORGED 127.0.0.1 \"GET /admin/\" 200"
    path = "/x%0D%0A" + urllib.parse.quote(forged) + "%1B[2Jend"
    answer = raw_request(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 404")
    deadline = time.monotonic() + 5
    while "end" not in server.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log_path.read_text(errors="replace")
    lines = log.splitlines()
    assert not any(line.startswith("FORGED") for line in lines)
    assert "\x1b" not in log
    assert any(r"/x\r\nFORGED" in line and r"\x1b[2Jend" in line for line in lines)


def test_forwarded_headers_are_not_trusted_without_proxy_count(server: ServedApp) -> None:
    """With PROXY_COUNT=0, X-Forwarded-Proto from loopback changes nothing:
    no HSTS and no Secure cookie over plain HTTP."""
    req = urllib.request.Request(server.url + "/auth/login", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Ssl": "on", "X-Forwarded-Protocol": "ssl",
        "Forwarded": "for=1.2.3.4;proto=https", "X-Forwarded-For": "1.2.3.4"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert "Strict-Transport-Security" not in resp.headers
        cookie = resp.headers.get("Set-Cookie", "")
        assert cookie and "Secure" not in cookie


@pytest.mark.parametrize("path", ["/api/v1/reports", "/api/v1/reports/batch"])
def test_oversized_chunked_body_is_too_large(server: ServedApp, path: str) -> None:
    """A 17 MiB body sent chunked (no Content-Length) is refused as too large."""
    chunk = b" " * (1024 * 1024)
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(17)) + b"0\r\n\r\n"
    head = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n").encode()
    answer = raw_request(server.port, head + body, timeout=30)
    status, _, rest = answer.partition(b"\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["error"]["code"] == "too_large"


def test_the_access_log_line_has_no_query_string(server: ServedApp) -> None:
    """One line a request: address, method, path, status, bytes, milliseconds;
    a query string (which could carry anything) is never written."""
    with urllib.request.urlopen(server.url + "/auth/session?probe=Q7Z-secret-looking", timeout=10) as resp:
        assert resp.status == 200
    deadline = time.monotonic() + 5
    while '"GET /auth/session" 200' not in server.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [line for line in server.log_path.read_text(errors="replace").splitlines() if "/auth/session" in line]
    assert any(re.fullmatch(r'127\.0\.0\.1 "GET /auth/session" 200 \d+ \d+ms', line) for line in lines), lines[-3:]
    assert "Q7Z-secret-looking" not in server.log_path.read_text(errors="replace")


def test_the_python_client_waits_out_a_busy_enrollment(tmp_path_factory: pytest.TempPathFactory) -> None:
    """One enrollment per user every 4 s here: the second tablet is told to
    wait (429, Retry-After) and the client (`send-test-report`'s) waits and
    tries again instead of failing."""
    served = make_served(tmp_path_factory.mktemp("busy"), env={
        "CREWREPORT_RATELIMIT_ENABLED": "true", "CREWREPORT_RATELIMIT_ENROLL_PER_USER": "1",
        "CREWREPORT_RATELIMIT_PERIOD_SECONDS": "4"})
    served.start()
    try:
        enrolled_client(served.url)
        second = Client(served.url)
        second.sign_in("demo-crew", DEMO_PASSWORD)
        started = time.monotonic()
        second.enroll("second tablet")
        assert second.device_id and time.monotonic() - started >= 0.9  # it waited, then got in
        with served.connect() as conn:
            assert conn.execute("SELECT count(*) FROM device WHERE label = 'second tablet'").fetchone()[0] == 1
        assert '"POST /api/v1/devices" 429' in served.log_tail()
    finally:
        served.kill()


def test_the_client_reads_retry_after_as_seconds_within_a_minute() -> None:
    from crewreport.client import retry_after_seconds

    assert [retry_after_seconds(v) for v in ("6", "0", "3600", None, "", "Wed, 21 Oct 2026 07:28:00 GMT")] == \
        [6, 1, 60, 5, 5, 5]
