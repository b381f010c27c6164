"""Requests reuse their thread's store connection instead of opening (and, at
the end, checkpointing and closing) one each; a reused connection is always
clean, keeps its pragmas, and follows the file if the store is replaced."""
from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
from flask import Flask

from crewreport import db as db_module
from crewreport.db import get_db


def connection_in_new_context(app: Flask) -> sqlite3.Connection:
    with app.app_context():
        return get_db()


def test_requests_on_one_thread_reuse_one_connection(app: Flask) -> None:
    first = connection_in_new_context(app)
    second = connection_in_new_context(app)
    assert first is second
    assert first.execute("SELECT 1").fetchone()[0] == 1  # still open


def test_a_reused_connection_keeps_its_pragmas(app: Flask) -> None:
    connection_in_new_context(app)
    with app.app_context():
        db = get_db()
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: receipts stay durable
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_unfinished_transaction_is_rolled_back_before_reuse(app: Flask) -> None:
    with app.app_context():
        db = get_db()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO airline (code, name, created_at) VALUES ('QQ', 'Left open', 'now')")
    with app.app_context():
        db = get_db()
        assert not db.in_transaction
        assert db.execute("SELECT count(*) FROM airline WHERE code = 'QQ'").fetchone()[0] == 0
        # And the write lock was released: another connection can write.
    other = sqlite3.connect(app.config["DATABASE"], timeout=1)
    other.execute("INSERT INTO airline (code, name, created_at) VALUES ('QQ', 'Other', 'now')")
    other.commit()
    other.close()


def test_a_replaced_store_is_opened_afresh(app: Flask, tmp_path: Path) -> None:
    """A restore puts another file at the same path: no request may keep
    reading the old one."""
    path = Path(app.config["DATABASE"])
    with app.app_context():
        get_db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "restored.sqlite"
    shutil.copy2(path, copy)
    with app.app_context():
        get_db().execute("INSERT INTO airline (code, name, created_at) VALUES ('QQ', 'Added', 'now')")
    copy.replace(path)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    with app.app_context():
        assert get_db().execute("SELECT count(*) FROM airline WHERE code = 'QQ'").fetchone()[0] == 0


def test_two_requests_at_once_never_share_a_connection(app: Flask) -> None:
    with app.app_context():
        outer = get_db()
        with app.app_context():
            inner = get_db()
            assert inner is not outer
            assert inner.execute("SELECT 1").fetchone()[0] == 1
        assert outer.execute("SELECT 1").fetchone()[0] == 1


def test_as_many_connections_as_requests_at_once_are_kept(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """24 requests at once (a busy gevent worker's, waiting on one group
    commit), and then 24 more: the second time no connection is opened."""
    opened: list[str] = []
    real_connect = db_module.connect

    def counting_connect(path: str) -> sqlite3.Connection:
        opened.append(path)
        return real_connect(path)

    monkeypatch.setattr(db_module, "connect", counting_connect)

    def at_once() -> set[int]:
        with ExitStack() as requests:
            held = []
            for _ in range(24):
                requests.enter_context(app.app_context())
                held.append(get_db())
            return {id(conn) for conn in held}

    first = at_once()
    assert len(first) == 24 and len(opened) >= 23  # one may have been idle already
    opened.clear()
    assert at_once() == first
    assert opened == []


def test_a_connection_given_back_by_one_thread_serves_the_next_on_another(app: Flask) -> None:
    """The idle connections are the process's, not a thread's."""
    here = connection_in_new_context(app)
    there: list[sqlite3.Connection] = []
    errors: list[BaseException] = []

    def request_on_another_thread() -> None:
        try:
            with app.app_context():
                db = get_db()
                db.execute("SELECT count(*) FROM airline").fetchone()
                there.append(db)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    thread = threading.Thread(target=request_on_another_thread)
    thread.start()
    thread.join()
    assert not errors and there == [here]
    with app.app_context():
        assert get_db() is here  # and back on this thread


GREENLET_REQUESTS = """
from gevent import monkey
monkey.patch_all()  # as gunicorn's gevent worker does: threading.local is per greenlet
import json, sqlite3, sys, gevent
from crewreport import create_app
opened = []
real_connect = sqlite3.connect
def counting_connect(path, *args, **kwargs):
    opened.append(str(path))
    return real_connect(path, *args, **kwargs)
sqlite3.connect = counting_connect
app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE": sys.argv[1],
                  "KEY_DIR": sys.argv[2], "RATELIMIT_ENABLED": True})
client = app.test_client()
codes = []
def one():  # each HTTP connection is a greenlet of its own
    codes.append(client.get("/api/v1/devices/dev-0000000000000000").status_code)
for _ in range(20):
    gevent.spawn(one).join()
print(json.dumps({"store": opened.count(sys.argv[1]), "counters": len(opened) - opened.count(sys.argv[1]),
                  "codes": sorted(set(codes))}))
"""


def test_requests_in_greenlets_reuse_the_store_connection(app: Flask, tmp_path: Path) -> None:
    """Under gevent (what `serve` runs) a per-thread cache would be per HTTP
    connection: a store connection opened, set up and closed per request."""
    script = tmp_path / "greenlets.py"
    script.write_text(GREENLET_REQUESTS)
    done = subprocess.run([sys.executable, str(script), app.config["DATABASE"], app.config["KEY_DIR"]],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["codes"] == [404]  # each request used the store: no such device
    assert answer["store"] == 1 and answer["counters"] == 1  # the rate-limit counters' file too


def test_writers_queue_on_an_owner_only_lock_file_and_a_nested_writer_cannot_hang(app: Flask) -> None:
    """Writers wait for each other on a lock file beside the store; a
    transaction opened inside another on the same thread fails as SQLite
    makes it fail, instead of waiting for itself for ever."""
    from crewreport.db import connect, transaction

    with app.app_context():
        db = get_db()
        with transaction(db):
            lock = Path(app.config["DATABASE"] + "-writer")
            assert lock.exists() and oct(lock.stat().st_mode & 0o777) == "0o600"
            other = connect(app.config["DATABASE"])
            other.execute("PRAGMA busy_timeout = 50")
            try:
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    with transaction(other):
                        pass
            finally:
                other.close()
        # Released: the next writer gets in at once.
        again = connect(app.config["DATABASE"])
        with transaction(again):
            again.execute("INSERT INTO airline (code, name, created_at) VALUES ('QQ', 'Queued', 'now')")
        again.close()
