"""Rate limits for everything a stranger or a tablet can call repeatedly.

One limiter for every surface: a rule is a name like `intake_per_address`
whose limit, in units per `RATELIMIT_PERIOD_SECONDS`, is the setting
`RATELIMIT_INTAKE_PER_ADDRESS` (so `CREWREPORT_RATELIMIT_INTAKE_PER_ADDRESS`
in the environment). `CREWREPORT_RATELIMIT_ENABLED=false` turns every limit
off, for load tests.

The algorithm is GCRA (a token bucket kept as one "theoretical arrival time"
per key): a burst of the whole limit is allowed at once, then one unit every
period/limit seconds, and the answer says exactly when to retry.

Counters are not a promise to anyone, so they stay out of the durable store:
they live in their own small SQLite file (`RATELIMIT_DATABASE`, by default
`ratelimit.sqlite` beside the store) with `synchronous=OFF`, shared by every
gunicorn worker, so a limit holds across workers. A crash may forget the
last counts; if the file is unreadable it is started afresh. If the counters
cannot be read at all, requests are let through (and logged): a limiter must
never be the reason a report is lost.
"""
from __future__ import annotations

import logging
import math
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, jsonify

from .db import roll_back
from .pool import Identity, IdlePool

log = logging.getLogger(__name__)

# Every limit, per period (a minute by default). Generous for real tablets:
# one sends a batch of up to 100 queued notes, then waits for its receipts.
DEFAULTS: dict[str, Any] = {
    "RATELIMIT_ENABLED": True,
    "RATELIMIT_PERIOD_SECONDS": 60,
    "RATELIMIT_DATABASE": None,  # None: ratelimit.sqlite beside DATABASE
    # Envelopes from one address (checked before any crypto work).
    "RATELIMIT_INTAKE_PER_ADDRESS": 1200,
    # Envelopes signed by one device (checked once its signature verifies).
    "RATELIMIT_INTAKE_PER_DEVICE": 600,
    # Enrollments from one address and by one crew account.
    "RATELIMIT_ENROLL_PER_ADDRESS": 30,
    "RATELIMIT_ENROLL_PER_USER": 10,
    # GET /api/v1/devices/<id>: a tablet asks on start.
    "RATELIMIT_DEVICE_STATE_PER_ADDRESS": 120,
    "RATELIMIT_DEVICE_STATE_PER_DEVICE": 30,
    # POST /api/v1/reports/status (DESIGN.md 4a): requests, each asking for
    # up to 100 reports; a tablet asks every few minutes while it waits.
    "RATELIMIT_STATUS_PER_ADDRESS": 600,
    "RATELIMIT_STATUS_PER_DEVICE": 60,
}

SCHEMA = "CREATE TABLE IF NOT EXISTS bucket (key TEXT PRIMARY KEY, tat REAL NOT NULL) WITHOUT ROWID"
SWEEP_SECONDS = 60.0

@dataclass(frozen=True)
class Decision:
    """How many of the units asked for were granted, and when to ask again."""

    asked: int
    granted: int
    retry_after: int = 0  # whole seconds; 0 when everything was granted

    @property
    def allowed(self) -> bool:
        return self.granted == self.asked


def enabled() -> bool:
    return bool(current_app.config["RATELIMIT_ENABLED"])


def database_path() -> str:
    path = current_app.config.get("RATELIMIT_DATABASE")
    return path or os.path.join(os.path.dirname(current_app.config["DATABASE"]), "ratelimit.sqlite")


def _open(path: str) -> sqlite3.Connection:
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    # check_same_thread off: pooled (crewreport.pool), one user at a time.
    conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")  # counters: no disk sync, ever
    conn.execute(SCHEMA)
    return conn


_pool = IdlePool(_open, size=4)
_swept: dict[str, float] = {}  # path: when expired buckets were last deleted


def _forget(path: str) -> None:
    """Drop a counters file that cannot be read; it holds nothing that matters."""
    _pool.clear()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass


def take(rule: str, key: str, cost: int = 1) -> Decision:
    """Charge `cost` units to `key` under `rule`; grant as many as the limit allows.

    `rule` names the setting: `take("intake_per_device", device_id, 100)`
    reads RATELIMIT_INTAKE_PER_DEVICE.
    """
    if cost <= 0 or not enabled():
        return Decision(cost, cost)
    limit = int(current_app.config[f"RATELIMIT_{rule.upper()}"])
    period = float(current_app.config["RATELIMIT_PERIOD_SECONDS"])
    if limit <= 0:
        return Decision(cost, 0, max(1, math.ceil(period)))
    path = database_path()
    for fresh in (False, True):
        conn: sqlite3.Connection | None = None
        identity: Identity = None
        try:
            conn, identity = _pool.borrow(path)
            decision = _take(conn, path, f"{rule}:{key}", cost, limit, period)
        except sqlite3.OperationalError as exc:  # busy past the timeout, disk full, ...
            log.error("rate-limit counters unavailable (%s); letting the request through", exc)
            break
        except sqlite3.DatabaseError as exc:  # not a database (any more)
            log.error("rate-limit counters unreadable (%s); starting them afresh", exc)
            if conn is not None:
                conn.close()
                conn = None
            _forget(path)
            if fresh:
                break
        else:
            return decision
        finally:
            if conn is not None:
                _pool.give_back(conn, path, identity)  # rolled back first if it failed mid-way
    return Decision(cost, cost)


def _take(conn: sqlite3.Connection, path: str, key: str, cost: int, limit: int, period: float) -> Decision:
    interval = period / limit
    now = time.time()
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT tat FROM bucket WHERE key = ?", (key,)).fetchone()
        tat = max(row[0], now) if row else now
        # Units that fit before the bucket is a whole period ahead of now.
        room = math.floor((now + period - tat) / interval + 1e-9)
        granted = max(0, min(cost, room))
        if granted:
            tat += granted * interval
            conn.execute("INSERT INTO bucket (key, tat) VALUES (?, ?)"
                         " ON CONFLICT (key) DO UPDATE SET tat = excluded.tat", (key, tat))
        if now - _swept.get(path, 0.0) > SWEEP_SECONDS:
            # A key whose time is past has its whole burst back: same as absent.
            conn.execute("DELETE FROM bucket WHERE tat < ?", (now,))
            _swept[path] = now
        conn.execute("COMMIT")
    except BaseException:
        roll_back(conn)
        raise
    retry = 0 if granted == cost else max(1, math.ceil(tat + interval - period - now))
    return Decision(cost, granted, retry)


def refusal(decision: Decision) -> Any:
    """The 429 answer, in the API's error shape, with Retry-After."""
    response = jsonify(error={"code": "rate_limited",
                              "message": f"Too many requests; try again in {decision.retry_after} s."})
    response.status_code = 429
    response.headers["Retry-After"] = str(decision.retry_after)
    return response


def first_refusal(*charges: tuple[str, str]) -> Any | None:
    """Charge one unit to each (rule, key); the 429 answer if any is over."""
    for rule, key in charges:
        decision = take(rule, key)
        if not decision.allowed:
            return refusal(decision)
    return None


def init_app(app: Flask) -> None:
    """Defaults for every limit, unless the settings already name one."""
    for name, value in DEFAULTS.items():
        app.config.setdefault(name, value)
