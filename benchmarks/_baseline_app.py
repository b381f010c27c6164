"""The no-crypto baseline for the served intake benchmark: a minimal Flask +
SQLite app that stores the same JSON bytes with the same durability as the
intake (WAL, `synchronous=FULL`, one committed transaction per envelope) but
verifies, decrypts and signs nothing.

Written as a careful minimal app would be: one connection per worker
process, opened once with its pragmas, and one `INSERT` per envelope (a batch
in one transaction). `BASELINE_DATABASE` names the SQLite file.

    gunicorn -w 2 'benchmarks._baseline_app:create_app()'

`served_app()` is the same app behind crewreport's `BufferedBody`, for
running it exactly as `flask --app crewreport serve` runs crewreport (gevent
workers, the access log): the benchmark's second baseline.
"""
from __future__ import annotations

import json
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, jsonify, request

# One connection a process: the sync worker has one thread, and a gevent
# worker's greenlets never yield inside a SQLite call (threading.local would be
# a connection per greenlet there, that is per request).
_connections: dict[int, sqlite3.Connection] = {}


def prepare(path: str) -> None:
    """The store, made once before the workers start: two workers switching a
    new file to WAL at the same moment can refuse one with "database is locked"."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")  # kept by the file from now on
        conn.execute("CREATE TABLE IF NOT EXISTS stored (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    finally:
        conn.close()


def connection(path: str) -> sqlite3.Connection:
    """This process's connection, opened once."""
    conn = _connections.get(os.getpid())
    if conn is None:
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA busy_timeout = 30000")
        _connections[os.getpid()] = conn
    return conn


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK: the connection is the
    process's own, so a failed request must not leave it inside a transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def create_app() -> Flask:
    """The baseline app over the file named by BASELINE_DATABASE."""
    app = Flask(__name__)
    path = os.environ["BASELINE_DATABASE"]

    def store(conn: sqlite3.Connection, env: Any) -> str:
        key = str(uuid.uuid4())
        conn.execute("INSERT INTO stored (id, body) VALUES (?, ?)",
                     (key, json.dumps(env, sort_keys=True, separators=(",", ":"))))
        return key

    @app.post("/reports")
    def single() -> Any:
        env = request.get_json()
        with transaction(connection(path)) as conn:
            key = store(conn, env)
        return jsonify(id=key), 201

    @app.post("/reports/batch")
    def batch() -> Any:
        envs = request.get_json()["envelopes"]
        with transaction(connection(path)) as conn:
            keys = [store(conn, env) for env in envs]
        return jsonify(results=[{"id": k} for k in keys])

    return app


def served_app() -> Flask:
    """The baseline behind crewreport's BufferedBody, as `serve` wraps crewreport."""
    from crewreport.serving import BufferedBody

    app = create_app()
    app.wsgi_app = BufferedBody(app.wsgi_app, 16 * 1024 * 1024)  # type: ignore[method-assign]
    return app
