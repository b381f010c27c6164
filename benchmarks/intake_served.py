"""Served intake throughput: crewreport under gunicorn against a no-crypto
baseline app under gunicorn, measured in the same run on the same machine.

Both run with `-w 2` on loopback. Clients are threads, each opening a
connection per request and saying `Connection: close` (gunicorn's sync
workers close it after each answer anyway). The load generator shares the
cores with the servers, so it is kept light: every request's bytes are built
before the clock starts (envelopes included, so the clients' own crypto does
not compete), sent with one `sendall` on a plain socket, and the answer read
to its end and checked for its status alone. (`http.client` cost 0.3 ms of
CPU a request, and limited the baseline: measured side by side, the baseline
went from about 1 100 to 1 450 reports/s with this client, crewreport from
about 800 to 850.) Rounds alternate between the two apps so that noise from
other work on the machine falls on both, and each figure is the median of the
rounds: five by default, since one round of singles lasts about a second on
a shared machine whose speed moves from minute to minute.

* `single`: `--clients` (16) concurrent clients posting one envelope (about
  1 KB of narrative) per request to `/api/v1/reports`, or `/reports` on the
  baseline.
* `batch`: `--batch-clients` (4) concurrent clients posting batches of 100
  to `/api/v1/reports/batch`, or `/reports/batch` on the baseline (one
  transaction per batch there too).

The baseline runs under gunicorn's default (sync) workers with no access log,
as the issue that set the goals measured it. A second baseline,
`baseline_as_served` (single envelopes only), is the same app run exactly as
`serve` runs crewreport: gevent workers (so that slow clients cost no worker),
the escaped access log, the whole body read before the app. The gap between
the two baselines is the price of that serving; the gap between the second one
and crewreport is the app's own work.

Rates are reports per second; p50/p99 are milliseconds per request;
`server_cpu_ms_per_report` is the CPU time the server's processes spent per
report (read from /proc), which other work on a shared machine disturbs far
less than rates and latencies do; `client_cpu_ms_per_report` is the load
generator's, on the same cores; `machine_busy` is the share of all the
cores' time that was busy during the run (1.0: the rate was bound by CPU). Rate
limits are off (`CREWREPORT_RATELIMIT_ENABLED=false`), as for any load test.

    python -m benchmarks.intake_served [--single 1200] [--batches 30] [--rounds 5]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks import _baseline_app as baseline_app
from crewreport import serving
from crewreport.client import Client
from crewreport.times import stamp

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password"
NARRATIVE = ("Passenger in 32C answers every question put to the woman beside him and holds "
             "both passports; she looks at him before she speaks. ") * 7  # about 1 KB


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited before it answered")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not answer")


class Server:
    """One gunicorn process group, started in its own session and killed as a group."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, port: int) -> None:
        self.port = port
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        wait_for_port(port, self.proc)

    def cpu_seconds(self) -> float:
        """CPU time used so far by the gunicorn master and its workers, every
        thread of them (the store's writer thread too): the sum of
        /proc/PID/task/TID/schedstat, nanoseconds."""
        total = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                    parent = int(f.read().rsplit(")", 1)[1].split()[1])
                if int(entry) != self.proc.pid and parent != self.proc.pid:
                    continue
                for task in os.listdir(f"/proc/{entry}/task"):
                    with open(f"/proc/{entry}/task/{task}/schedstat", encoding="ascii") as f:
                        total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return total / 1e9

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat;
    idle and waiting for I/O are not busy."""
    with open("/proc/stat", encoding="ascii") as f:
        ticks = [int(t) for t in f.readline().split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def measure(server: Server, path: str, bodies: list[bytes], clients: int,
            reports_per_body: int) -> dict[str, float]:
    """One run of `drive`, with what it cost: the server's CPU milliseconds
    per report (a figure that other work on the machine does not change
    much), the clients' own (this process: the load generator shares the
    cores), and how busy the machine's cores were, all of them counted
    (1.0: every core busy the whole run, so the rate is bound by CPU)."""
    reports = len(bodies) * reports_per_body
    before, client_before, (busy_before, total_before) = server.cpu_seconds(), time.process_time(), machine_ticks()
    figures = drive(server.port, path, bodies, clients, reports_per_body)
    busy, total = machine_ticks()
    figures["server_cpu_ms_per_report"] = (server.cpu_seconds() - before) * 1000 / reports
    figures["client_cpu_ms_per_report"] = (time.process_time() - client_before) * 1000 / reports
    figures["machine_busy"] = (busy - busy_before) / max(total - total_before, 1)
    return figures


def drive(port: int, path: str, bodies: list[bytes], clients: int,
          reports_per_body: int) -> dict[str, float]:
    """POST every body with `clients` threads; rate, p50 and p99 of one run."""
    requests = [(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode("ascii") + body
                for body in bodies]
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    next_index = iter(range(len(requests)))

    def worker() -> None:
        mine: list[float] = []
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            start = time.perf_counter()
            answer = post(port, requests[i])
            mine.append(time.perf_counter() - start)
            status = answer[9:12]  # "HTTP/1.1 201 Created"
            if status not in (b"200", b"201") or b'"error"' in answer:
                with lock:
                    failures.append(repr(answer[:300]))
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    latencies.sort()
    return {
        "reports_per_s": len(bodies) * reports_per_body / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
    }


def post(port: int, request: bytes) -> bytes:
    """One whole request sent, and the whole answer (status line, headers,
    body) read until the server closes the connection."""
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=120) as conn:
        conn.sendall(request)
        while chunk := conn.recv(256 * 1024):
            chunks.append(chunk)
    return b"".join(chunks)


def iso(dt: datetime) -> str:
    return stamp(dt)


def build_envelopes(client: Client, n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    fields = {"flight": "ZZ75", "dep": "ACC", "arr": "LHR", "sta": iso(now + timedelta(hours=5)),
              "urgency": "routine"}
    body = {"observed_at": iso(now), "indicators": ["docs_held_by_other"],
            "people": [{"role": "possible_victim", "seat": "32B"}], "narrative": NARRATIVE,
            "captain_informed": True, "reporter": {"crew_id": "B1"}}
    return [client.envelope(fields, body) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--single", type=int, default=1200, help="single-envelope requests per app per round")
    parser.add_argument("--batches", type=int, default=30, help="batches of --batch-size per app per round")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--batch-clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    runs: dict[str, dict[str, list[dict[str, float]]]] = {
        app: {"single": [], "batch": []} for app in ("baseline", "crewreport")}
    runs["baseline_as_served"] = {"single": []}
    with tempfile.TemporaryDirectory(prefix="crewreport-served-bench-") as folder:
        base = dict(os.environ)
        base.pop("FLASK_APP", None)
        crew_env = dict(base, CREWREPORT_INSTANCE=os.path.join(folder, "instance"),
                        CREWREPORT_PASSWORD_HASH_FAST="true", CREWREPORT_RATELIMIT_ENABLED="false")
        crew_env.pop("CREWREPORT_KEY_PASSPHRASE", None)
        flask = [sys.executable, "-m", "flask", "--app", "crewreport"]
        subprocess.run([*flask, "demo", "--password", PASSWORD], cwd=ROOT, env=crew_env, check=True,
                       capture_output=True)
        crew_port, base_port = free_port(), free_port()
        log = Path(folder) / "servers.log"
        crew = Server([*flask, "serve", "--host", "127.0.0.1", "--port", str(crew_port),
                       "--workers", str(args.workers)], crew_env, log, crew_port)
        baseline_store = os.path.join(folder, "baseline.sqlite")
        baseline_app.prepare(baseline_store)
        baseline = Server([sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{base_port}",
                           "--workers", str(args.workers), "--no-control-socket",
                           "benchmarks._baseline_app:create_app()"],
                          dict(base, BASELINE_DATABASE=baseline_store), log, base_port)
        alike_port = free_port()
        alike_argv = serving.gunicorn_argv("127.0.0.1", alike_port, args.workers)
        alike_argv[-1] = "benchmarks._baseline_app:served_app()"
        alike = Server(alike_argv, dict(base, BASELINE_DATABASE=baseline_store), log, alike_port)
        try:
            client = Client(f"http://127.0.0.1:{crew_port}")
            client.sign_in("demo-crew", PASSWORD)
            client.enroll("benchmark")
            per_round = args.single + args.batches * args.batch_size
            for _ in range(args.rounds):
                envs = build_envelopes(client, per_round)
                singles = [json.dumps(e).encode() for e in envs[:args.single]]
                rest = envs[args.single:]
                batches = [json.dumps({"envelopes": rest[i:i + args.batch_size]}).encode()
                           for i in range(0, len(rest), args.batch_size)]
                runs["baseline"]["single"].append(measure(baseline, "/reports", singles, args.clients, 1))
                runs["baseline_as_served"]["single"].append(measure(alike, "/reports", singles, args.clients, 1))
                runs["crewreport"]["single"].append(
                    measure(crew, "/api/v1/reports", singles, args.clients, 1))
                runs["baseline"]["batch"].append(
                    measure(baseline, "/reports/batch", batches, args.batch_clients, args.batch_size))
                runs["crewreport"]["batch"].append(
                    measure(crew, "/api/v1/reports/batch", batches, args.batch_clients, args.batch_size))
            with crew_conn(crew_env) as stored:
                reports_stored = stored
        finally:
            crew.stop()
            baseline.stop()
            alike.stop()

    def median(app: str, mode: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs[app][mode]), 1 if key.endswith(("_s", "_ms")) else 3)

    keys = ("reports_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_report", "client_cpu_ms_per_report",
            "machine_busy")
    figures = {app: {mode: {k: median(app, mode, k) for k in keys} for mode in runs[app]} for app in runs}
    base_single = figures["baseline"]["single"]
    result = {
        "benchmark": "intake_served",
        "setup": {"workers": args.workers, "clients": args.clients, "batch_clients": args.batch_clients,
                  "batch_size": args.batch_size, "single_requests_per_round": args.single,
                  "batches_per_round": args.batches, "rounds": args.rounds,
                  "narrative_bytes": len(NARRATIVE.encode()), "rate_limits": "off"},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(), "load_average_at_end": os.getloadavg()},
        "reports_stored": reports_stored,
        "figures": figures,
        "ratio_single_rate_to_baseline": round(figures["crewreport"]["single"]["reports_per_s"]
                                               / base_single["reports_per_s"], 2),
        "ratio_single_p99_to_baseline": round(figures["crewreport"]["single"]["p99_ms"]
                                              / base_single["p99_ms"], 2),
        "ratio_batch_rate_to_baseline_single": round(figures["crewreport"]["batch"]["reports_per_s"]
                                                     / base_single["reports_per_s"], 2),
        "ratio_single_server_cpu_to_baseline": round(figures["crewreport"]["single"]["server_cpu_ms_per_report"]
                                                     / base_single["server_cpu_ms_per_report"], 2),
        "ratio_single_rate_to_baseline_as_served": round(figures["crewreport"]["single"]["reports_per_s"]
                                                         / figures["baseline_as_served"]["single"]["reports_per_s"], 2),
        "goals": {"single_rate_ratio": ">= 0.7", "single_p99_ratio": "<= 1.5",
                  "batch_rate_to_baseline_single": ">= 2.5"},
        "runs": runs,
    }
    print(json.dumps(result, indent=2))


class crew_conn:
    """Count the reports crewreport stored (a read-only look at its store)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.path = os.path.join(env["CREWREPORT_INSTANCE"], "crewreport.sqlite")

    def __enter__(self) -> int:
        import sqlite3
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            return int(conn.execute("SELECT count(*) FROM report").fetchone()[0])
        finally:
            conn.close()

    def __exit__(self, *exc: Any) -> None:
        return None


if __name__ == "__main__":
    main()
