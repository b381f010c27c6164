"""The Border Force flight board at scale, over the Flask test client in a
temporary instance holding many reports.

The reports are inserted directly with SQL (no crypto: the queue, its refresh
and the CSV export read only the cleartext header columns, never the sealed
envelope, so the envelope column holds a small placeholder). Landing times
spread over now ± 3 days on about one flight per three reports (a few
flights carry many), with a realistic mix of urgencies, statuses, arrival
airports, assignees, children and a few locks.

Each endpoint is requested `--repeat` times by one signed-in Border Force
officer (round-robin over the endpoints, after one warm-up each), and its
median and p95 in milliseconds are set against a baseline measured in the
same run, on the same client: `GET /auth/session`, which costs Flask, the
signed session cookie and the user lookup, and nothing of the queue.

The store is measured as production leaves it: nothing in crewreport runs
ANALYZE, so the query planner has no statistics (`--analyze` measures after
ANALYZE instead, for comparison). The plan of the default queue query is
printed both without and with statistics, with the export's query.

    python -m benchmarks.queue [--reports 10000] [--repeat 20] [--analyze]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
from flask import Flask

from crewreport import create_app, flights, report
from crewreport.auth import create_user
from crewreport.cli import create_airline
from crewreport.db import get_db, init_db, transaction
from crewreport.times import now, stamp
from crewreport.triage import queue, workflow

# The sizes `python -m benchmarks.run --tiny` uses (a smoke run).
TINY_ARGS = ["--reports", "200", "--repeat", "2"]
PASSWORD = "bench password"
TOTP_SECRET = pyotp.random_base32()  # the benchmark officer's second factor
OFFICER = "bench-officer"
OTHER_OFFICERS = ("officer-b", "officer-c", "officer-d")
AIRLINES = {"ZZ": "Bench Air", "YY": "Other Air", "XX": "Third Air"}
# Arrival airports, weighted roughly by traffic.
ARRIVALS = {"LHR": 40, "LGW": 18, "MAN": 14, "STN": 7, "BHX": 6, "EDI": 5, "GLA": 4, "BRS": 3, "LTN": 3}
DEPARTURES = ("ACC", "LOS", "BKK", "DXB", "IST", "TIA", "HAN", "DEL", "LAD", "BOG", "SIN", "CAI")
URGENCY_WEIGHTS = {"immediate": 10, "priority": 30, "routine": 60}
# The deep page: with `status=any` and 10 000 reports on about 3 300 flights
# there are some 130 pages of 25 flights.
DEEP_PAGE = 100
ENDPOINTS = {
    "queue_default": "/triage/",
    "filter_arr": "/triage/?arr=MAN",
    "filter_status": "/triage/?status=assessing",
    "filter_urgency": "/triage/?urgency=immediate",
    "filter_mine": "/triage/?mine=1",
    "filter_window": "/triage/?window=6h",
    "filter_child": "/triage/?child=1",
    "deep_page": f"/triage/?status=any&page={DEEP_PAGE}",
    "queue_json": "/triage/queue.json?status=board&urgency=any&window=all",
    "export_csv": "/triage/export.csv",
}
BASELINE = ("baseline_session", "/auth/session")


def status_for(rng: random.Random, sta: datetime, at: datetime) -> str:
    """Flights that landed a while ago are mostly closed; upcoming ones open."""
    if sta < at - timedelta(hours=6):
        weights = {"received": 5, "assessing": 10, "meet_aircraft": 5, "no_further_action": 55, "referred": 25}
    elif sta < at:
        weights = {"received": 15, "assessing": 30, "meet_aircraft": 30, "no_further_action": 15, "referred": 10}
    else:
        weights = {"received": 55, "assessing": 30, "meet_aircraft": 12, "no_further_action": 2, "referred": 1}
    return rng.choices(list(weights), weights=list(weights.values()))[0]


class Bench:
    """A temporary instance: three airlines each with a crew device, four
    Border Force officers (one of them signed in), and `n` reports."""

    def __init__(self, folder: str, n: int, seed: int = 1) -> None:
        self.app: Flask = create_app({
            "TESTING": True, "SECRET_KEY": "bench", "PASSWORD_HASH_FAST": True,
            "WTF_CSRF_ENABLED": False,
            "DATABASE": os.path.join(folder, "crewreport.sqlite"), "KEY_DIR": os.path.join(folder, "keys"),
        })
        self.at = datetime.now(UTC)
        with self.app.app_context():
            init_db()
            db = get_db()
            devices = []
            for code, name in AIRLINES.items():
                create_airline(code, name, with_key=False)
                crew_id = create_user(f"crew-{code.lower()}", "crew", PASSWORD, code)
                device = f"dev-{code.lower()}"
                with transaction(db):
                    db.execute("INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                               " VALUES (?, ?, ?, 'bench', '{}', ?, ?)", (device, crew_id, code, device, now()))
                devices.append((code, device))
            self.officer_id = create_user(OFFICER, "border_force", PASSWORD, totp_secret=TOTP_SECRET)
            officers = [self.officer_id] + [create_user(u, "border_force", PASSWORD) for u in OTHER_OFFICERS]
            self.insert_reports(db, n, devices, officers, random.Random(seed))
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.client = self.app.test_client()
        resp = self.client.post("/auth/login", data={"username": OFFICER, "password": PASSWORD})
        assert b'id="totp-form"' in resp.data, resp.status_code
        resp = self.client.post("/auth/login", data={"code": pyotp.TOTP(TOTP_SECRET).now()})
        assert resp.status_code == 302, resp.status_code
        assert self.client.get("/auth/session").get_json()["role"] == "border_force"

    def insert_reports(self, db: sqlite3.Connection, n: int, devices: list[tuple[str, str]],
                       officers: list[int], rng: random.Random) -> None:
        at = self.at
        arrivals, arrival_weights = list(ARRIVALS), list(ARRIVALS.values())
        urgencies, urgency_weights = list(URGENCY_WEIGHTS), list(URGENCY_WEIGHTS.values())
        # Flights: (airline, device, number, arrival airport, sta); the weights
        # make most flights carry one to three reports and a few many more.
        arriving = []
        for _ in range(max(1, n // 3)):
            airline, device = devices[rng.randrange(len(devices))]
            arriving.append((airline, device, f"{airline}{rng.randint(1, 9999)}",
                            rng.choices(arrivals, weights=arrival_weights)[0],
                            at + timedelta(seconds=rng.uniform(-3 * 86400, 3 * 86400))))
        flight_weights = [rng.paretovariate(1.5) for _ in arriving]
        rows = []
        for i in range(n):
            airline, device, number, arrival, sta = rng.choices(arriving, weights=flight_weights)[0]
            # Each crew's own estimate of the landing, minutes apart.
            sta += timedelta(minutes=rng.uniform(-10, 10))
            # Filed in flight, 30 min to 12 h before landing; one in ten only
            # reached the intake after landing. Never in the future.
            if rng.random() < 0.1:
                received = sta + timedelta(minutes=rng.uniform(1, 120))
            else:
                received = sta - timedelta(minutes=rng.uniform(30, 720))
            received = min(received, at - timedelta(seconds=rng.uniform(1, 600)))
            created = received - timedelta(minutes=rng.uniform(0, 30))
            urgency = rng.choices(urgencies, weights=urgency_weights)[0]
            status = status_for(rng, sta, at)
            changed = received if status == "received" else min(at, received + timedelta(minutes=rng.uniform(5, 240)))
            assignee = rng.choice(officers) if status != "received" and rng.random() < 0.6 else None
            locked = status in workflow.OPEN and rng.random() < 0.03
            rid = str(uuid.uuid4())
            rows.append((
                rid, f"{i:07d}"[:3] + "-" + f"{i:07d}"[3:], device, airline,
                number, rng.choice(DEPARTURES), arrival, stamp(sta), urgency,
                report.URGENCY_RANK[urgency], stamp(created), "[]",
                json.dumps({"v": 1, "placeholder": "benchmarks.queue: the queue never opens envelopes"}),
                uuid.uuid4().hex * 2, stamp(received), "bench-receipt", "bench-signature", status,
                stamp(changed), assignee, rng.choice(officers) if locked else None,
                stamp(at + timedelta(minutes=rng.uniform(-30, 30))) if locked else None,
                stamp(changed) if status in workflow.CLOSED else None,
                int(rng.random() < 0.15),
            ))
        with transaction(db):
            # Each report on its arriving flight, as the intake places it.
            placed = [(*r, flights.place(db, r[3], r[4], r[6], r[7], flights.estimated(r[10], r[14]))) for r in rows]
            db.executemany(
                "INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
                " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
                " receipt_signature, status, status_changed_at, assignee_id, lock_user_id,"
                " lock_expires_at, closed_at, child, flight_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", placed)

    def get_ms(self, path: str) -> float:
        start = time.perf_counter()
        resp = self.client.get(path)
        body = resp.get_data()
        elapsed = (time.perf_counter() - start) * 1000
        assert resp.status_code == 200 and body, (path, resp.status_code)
        return elapsed

    def plan(self, analyzed: bool) -> dict[str, Any]:
        """EXPLAIN QUERY PLAN of the default board page (its flights) and of
        the export's query."""
        with self.app.app_context():
            db = get_db()
            if analyzed:
                db.execute("ANALYZE")
            filters = queue.Filters()
            sql, params = queue.queue_sql(filters, self.officer_id, self.at)
            where, where_params = filters.where(self.officer_id, self.at)
            out: dict[str, Any] = {}
            for name, query, args in (
                    ("board_flights", flights.group_sql(where, child_first=True),
                     flights.group_args(self.at, where_params, page=1, per_page=queue.PER_PAGE)),
                    ("export", sql + " LIMIT ?", params + [queue.CSV_MAX_ROWS])):
                detail = [r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + query, args)]
                indexes = sorted({d.split(" INDEX ")[1].split(" ")[0]
                                  for d in detail if d.startswith(("SCAN r ", "SEARCH r ")) and " INDEX " in d})
                out[name] = {"detail": detail, "report_index": indexes,
                             "temp_btree": any("TEMP B-TREE" in d for d in detail)}
            return out


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reports", type=int, default=10000, help="reports in the store")
    parser.add_argument("--repeat", type=int, default=20, help="requests per endpoint")
    parser.add_argument("--analyze", action="store_true",
                        help="run ANALYZE before measuring (production never does)")
    args = parser.parse_args()

    paths = dict([BASELINE, *ENDPOINTS.items()])
    samples: dict[str, list[float]] = {k: [] for k in paths}
    with tempfile.TemporaryDirectory(prefix="crewreport-bench-") as folder:
        setup_start = time.perf_counter()
        bench = Bench(folder, args.reports)
        setup_s = time.perf_counter() - setup_start
        plans = {"without_stats": bench.plan(analyzed=False)}
        if args.analyze:
            plans["after_analyze"] = bench.plan(analyzed=True)
        for path in paths.values():  # warm-up: templates compiled, pages cached
            bench.get_ms(path)
        for _ in range(args.repeat):
            for name, path in paths.items():
                samples[name].append(bench.get_ms(path))
        json_page = bench.client.get(ENDPOINTS["queue_json"]).get_json()
        deep = bench.client.get(ENDPOINTS["deep_page"].replace("/triage/", "/triage/queue.json"))
        csv_rows = bench.client.get(ENDPOINTS["export_csv"]).get_data(as_text=True).count("\n") - 1
        if not args.analyze:
            plans["after_analyze"] = bench.plan(analyzed=True)
    med = {k: statistics.median(v) for k, v in samples.items()}
    base = med[BASELINE[0]]
    result = {
        "benchmark": "queue",
        "reports": args.reports,
        "repeat": args.repeat,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "setup_seconds": round(setup_s, 2),
        "analyzed": args.analyze,
        "paths": paths,
        "baseline": f"{BASELINE[1]} (Flask, session cookie, user lookup; no queue)",
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "p95_ms": {k: round(p95(v), 3) for k, v in samples.items()},
        "ratio_to_baseline": {k: round(med[k] / base, 2) for k in ENDPOINTS},
        "queue": {"board_flights": json_page["total"], "board_reports": json_page["reports"],
                  "board_pages": json_page["pages"],
                  "deep_page_served": deep.get_json()["page"], "csv_rows": csv_rows},
        "default_query_plan": plans,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
