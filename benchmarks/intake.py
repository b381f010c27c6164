"""Intake throughput, one report per request against a batch, over the Flask
test client in a temporary instance.

Each figure is microseconds per report (median over rounds), and each is set
against two baselines measured in the same run, on the same machine:

* `crypto_only`: envelope.parse + verify_signature + open_body + validation on
  the same envelopes, no Flask, no store: the work the intake cannot avoid.
* `noop_post`: a POST of the same envelope JSON to a route that parses it and
  answers `{}`: the cost of Flask and the test client alone.

What is left over (store, durable commit, receipt signature, audit event,
rate-limit window) is the intake's own overhead.

Envelope version 2 (X-Wing) is measured beside version 1 on the same reports:
its crypto-only, single and batch cost per report (`v2_us_per_report`), each
as a ratio to version 1's (`v2_over_v1`), and the envelope size in bytes of
both (`envelope_bytes`: compact JSON, as the intake's size limit counts it).

    python -m benchmarks.intake [--n 200] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, jsonify, request

from crewreport import create_app, csrf, envelope, keys, report
from crewreport.auth import create_user
from crewreport.cli import create_airline
from crewreport.db import get_db, init_db, transaction
from crewreport.times import now, stamp

# The sizes `python -m benchmarks.run --tiny` uses (a smoke run).
TINY_ARGS = ["--n", "3", "--rounds", "1"]


class Bench:
    """A temporary instance with keys, airline ZZ, one crew user and one device."""

    def __init__(self, folder: str) -> None:
        self.app: Flask = create_app({
            "TESTING": True, "SECRET_KEY": "bench", "PASSWORD_HASH_FAST": True,
            "DATABASE": os.path.join(folder, "crewreport.sqlite"), "KEY_DIR": os.path.join(folder, "keys"),
            "RATELIMIT_ENABLED": False,
        })
        self.device_key = ec.generate_private_key(ec.SECP256R1())
        with self.app.app_context():
            init_db()
            db = get_db()
            keys.ensure_keys(db)
            create_airline("ZZ", "Bench Air")
            create_user("bench-crew", "crew", "bench password", "ZZ")
            jwk = envelope.jwk_from_public_key(self.device_key.public_key())
            user_id = db.execute("SELECT id FROM user WHERE username = 'bench-crew'").fetchone()[0]
            with transaction(db):
                db.execute("INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                           " VALUES ('dev-bench', ?, 'ZZ', 'bench', ?, ?, ?)",
                           (user_id, json.dumps(jwk), envelope.thumbprint(jwk), now()))
            self.ring = keys.keyring()
            self.recipients = keys.recipients_for(db, "ZZ")  # both suites

        def noop() -> Any:
            request.get_json()
            return jsonify({})

        self.app.add_url_rule("/bench/noop", view_func=csrf.exempt(noop), methods=["POST"])

        self.client = self.app.test_client()

    def envelopes(self, n: int, version: int = 1) -> list[dict[str, Any]]:
        created = datetime.now(UTC)
        recipients = [r for r in self.recipients if r["suite"] == f"v{version}"]
        public = [envelope.recipient_key_from_jwk(r["jwk"]) for r in recipients]
        body = {"observed_at": stamp(created), "indicators": ["docs_held_by_other", "scripted_answers"],
                "people": [{"role": "possible_victim", "seat": "32B", "age_range": "18_24"}],
                "narrative": "Benchmark narrative. " * 20, "captain_informed": True,
                "reporter": {"crew_id": "B1"}}
        out = []
        for _ in range(n):
            header = {"v": version, "id": str(uuid.uuid4()), "device": "dev-bench", "created": stamp(created),
                      "rcpt": [r["kid"] for r in recipients], "airline": "ZZ", "flight": "ZZ75",
                      "dep": "ACC", "arr": "LHR", "sta": stamp(created + timedelta(hours=5)), "urgency": "routine"}
            out.append(envelope.build(header, body, public, self.device_key))
        return out

    # -- what is measured ------------------------------------------------------------

    def crypto_only(self, envs: list[dict[str, Any]]) -> None:
        device = self.device_key.public_key()
        for env in envs:
            parsed = envelope.parse(env)
            envelope.verify_signature(parsed, device)
            body = envelope.open_body(parsed, 0, self.ring.recipient_key(parsed.header["rcpt"][0]))
            report.validate_header(parsed.header, "ZZ")
            report.validate_body(body)

    def noop_post(self, envs: list[dict[str, Any]]) -> None:
        for env in envs:
            assert self.client.post("/bench/noop", json=env).status_code == 200

    def single(self, envs: list[dict[str, Any]]) -> None:
        for env in envs:
            resp = self.client.post("/api/v1/reports", json=env)
            assert resp.status_code == 201, resp.get_json()

    def repeat(self, envs: list[dict[str, Any]]) -> None:
        """Identical resends (a tablet that lost the receipt): the 200 path."""
        for env in envs:
            assert self.client.post("/api/v1/reports", json=env).status_code == 200

    def batch(self, envs: list[dict[str, Any]]) -> None:
        size = self.app.config["MAX_BATCH"]
        for start in range(0, len(envs), size):
            resp = self.client.post("/api/v1/reports/batch", json={"envelopes": envs[start:start + size]})
            results = resp.get_json()["results"]
            assert all("receipt" in r for r in results), results[:1]


def per_report_us(fn: Callable[[list[dict[str, Any]]], None], envs: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    fn(envs)
    return (time.perf_counter() - start) / len(envs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="reports per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    samples: dict[str, list[float]] = {k: [] for k in ("crypto_only", "noop_post", "single", "repeat", "batch")}
    v2_samples: dict[str, list[float]] = {k: [] for k in ("crypto_only", "single", "batch")}
    with tempfile.TemporaryDirectory(prefix="crewreport-bench-") as folder:
        bench = Bench(folder)
        # No app context around the requests: each must open and close its own
        # connection, as in production.
        for _ in range(args.rounds):
            singles, batched = bench.envelopes(args.n), bench.envelopes(args.n)
            samples["crypto_only"].append(per_report_us(bench.crypto_only, singles))
            samples["noop_post"].append(per_report_us(bench.noop_post, singles))
            samples["single"].append(per_report_us(bench.single, singles))
            samples["repeat"].append(per_report_us(bench.repeat, singles))
            samples["batch"].append(per_report_us(bench.batch, batched))
            singles, batched = bench.envelopes(args.n, 2), bench.envelopes(args.n, 2)
            v2_samples["crypto_only"].append(per_report_us(bench.crypto_only, singles))
            v2_samples["single"].append(per_report_us(bench.single, singles))
            v2_samples["batch"].append(per_report_us(bench.batch, batched))
        sizes = {f"v{v}": len(envelope.canonical_json(bench.envelopes(1, v)[0]).encode()) for v in (1, 2)}
        with bench.app.app_context():
            stored = get_db().execute("SELECT count(*) FROM report").fetchone()[0]
    med = {k: statistics.median(v) for k, v in samples.items()}
    med2 = {k: statistics.median(v) for k, v in v2_samples.items()}
    result = {
        "benchmark": "intake",
        "reports_per_measurement": args.n,
        "rounds": args.rounds,
        "reports_stored": stored,
        "python": platform.python_version(),
        "us_per_report": {k: round(v, 1) for k, v in med.items()},
        "baseline": "crypto_only (parse + verify + open + validate, no Flask, no store)",
        "ratio_to_crypto_only": {k: round(med[k] / med["crypto_only"], 2)
                                 for k in ("noop_post", "single", "repeat", "batch")},
        "ratio_to_noop_post": {k: round(med[k] / med["noop_post"], 2) for k in ("single", "repeat", "batch")},
        "batch_speedup_over_single": round(med["single"] / med["batch"], 2),
        "reports_per_second": {k: round(1e6 / med[k]) for k in ("single", "batch")},
        "samples_us": {k: [round(x, 1) for x in v] for k, v in samples.items()},
        "v2_us_per_report": {k: round(v, 1) for k, v in med2.items()},
        "v2_over_v1": {k: round(med2[k] / med[k], 2) for k in med2},
        "envelope_bytes": {**sizes, "v2_over_v1": round(sizes["v2"] / sizes["v1"], 2)},
        "v2_samples_us": {k: [round(x, 1) for x in v] for k, v in v2_samples.items()},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
