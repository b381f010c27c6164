"""A writer's whole wait, for its turn among writers (the lock file beside
the store) and then for SQLite's write lock, ends at one deadline
(db.WRITE_WAIT); past it the write fails as a busy store's does, a 503 or a
command's one line (crewreport.unavailable). Before, a writer queued on the
lock file without a bound behind one that held it (an operator's `sqlite3`
shell in a transaction, a hung command), then waited its own 30 s in turn.

The deadline is cut short here; the bounds asserted only tell "gave up"
from "hung", never how fast anything was.
"""
from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import gevent
import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import db as store
from crewreport.group_commit import GroupCommit, NotStored
from crewreport.unavailable import RETRY_AFTER, store_condition

from .helpers import AuthActions, Make, count, deliver, header_of, text

HUNG = 20.0  # seconds: far past any deadline here; a writer still waiting then is hung
SHORT = 0.5  # seconds: the deadline writers get in these tests


@pytest.fixture
def short_wait(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(store, "WRITE_WAIT", SHORT)
    return SHORT


@pytest.fixture
def path(tmp_path: Path) -> str:
    """A store with one table, for writers that need no app."""
    where = str(tmp_path / "store.sqlite")
    conn = store.connect(where)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.close()
    return where


@contextmanager
def held(path: str, queue: bool = True, sqlite: bool = True) -> Iterator[Callable[[], None]]:
    """Another writer holds the store: its place in the writers' queue (the
    lock file, a descriptor of its own) and SQLite's write lock, as a command
    hung in a transaction does; `queue=False` is an operator's `sqlite3`
    shell, which knows nothing of the queue. Yields a function that lets go.

    A watchdog thread lets go some time after HUNG seconds whatever happens, so that a
    writer that does wait without a bound (blocking its whole thread, under
    gevent the test's too) is freed and the test fails instead of hanging."""
    fd = os.open(path + "-writer", os.O_RDWR | os.O_CREAT, 0o600) if queue else None
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False) if sqlite else None
    if fd is not None:
        fcntl.flock(fd, fcntl.LOCK_EX)
    if conn is not None:
        conn.execute("BEGIN IMMEDIATE")
    once = threading.Lock()

    def let_go() -> None:
        if not once.acquire(blocking=False):
            return
        if conn is not None:
            conn.rollback()
            conn.close()
        if fd is not None:
            os.close(fd)

    watchdog = threading.Timer(HUNG + 10, let_go)  # after `finished` has given up on a writer
    watchdog.daemon = True
    watchdog.start()
    try:
        yield let_go
    finally:
        watchdog.cancel()
        let_go()


def finished(work: Callable[[], Any], within: float = HUNG) -> tuple[Any, BaseException | None]:
    """Run `work` in a thread of its own and wait for it at most `within`
    seconds: (its result, None) or (None, what it raised). A thread still
    waiting then fails the test (it is freed when the store is let go)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test, which asserts on it
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(within)
    assert not thread.is_alive(), f"still waiting after {within} s: the wait is not bounded"
    return outcome.get("result"), outcome.get("error")


def write(path: str, value: str = "x") -> Callable[[], None]:
    """One writer, on a connection of its own."""
    def run() -> None:
        conn = store.connect(path)
        try:
            with store.transaction(conn):
                conn.execute("INSERT INTO t (x) VALUES (?)", (value,))
        finally:
            conn.close()
    return run


def insert(value: str) -> Callable[[sqlite3.Connection], None]:
    """A request's writes in a group commit."""
    def run(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO t (x) VALUES (?)", (value,))
    return run


def stored(path: str) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [r[0] for r in conn.execute("SELECT x FROM t ORDER BY rowid")]
    finally:
        conn.close()


def test_a_writer_behind_a_hung_one_gives_up_at_the_deadline_as_a_busy_store(path: str, short_wait: float) -> None:
    with held(path):
        _, error = finished(write(path))
    assert isinstance(error, sqlite3.OperationalError), error
    assert "database is locked" in str(error)
    assert store_condition(error) == "SQLITE_BUSY"  # answered 503, said in one line by a command
    assert stored(path) == []


def test_a_waiting_writer_gets_in_once_the_holder_lets_go(path: str) -> None:
    """The deadline (30 s as shipped) is far off: the holder lets go first,
    and the writer waiting behind it is stored."""
    with held(path) as let_go:
        threading.Timer(0.3, let_go).start()
        _, error = finished(write(path, "after the wait"))
    assert error is None, error
    assert stored(path) == ["after the wait"]


def test_writers_queued_behind_one_another_each_get_in(path: str) -> None:
    """Several writers waiting at once all get their turn when the holder lets go."""
    with held(path) as let_go:
        threading.Timer(0.2, let_go).start()
        writers = [threading.Thread(target=write(path, str(i)), daemon=True) for i in range(4)]
        for w in writers:
            w.start()
        for w in writers:
            w.join(HUNG)
        assert not any(w.is_alive() for w in writers)
    assert sorted(stored(path)) == ["0", "1", "2", "3"]


class Traced(store.StoreConnection):
    """A store connection that keeps every statement it runs."""

    statements: list[str]

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:  # type: ignore[override]
        self.statements.append(sql)
        return super().execute(sql, parameters)


def test_only_what_is_left_of_the_deadline_is_left_for_sqlites_busy_wait(path: str,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The queue is let go while SQLite's lock is still held (an operator's
    shell): the writer's busy wait is the rest of its deadline, not a whole
    one more, and the connection's own busy wait is put back afterwards."""
    monkeypatch.setattr(store, "WRITE_WAIT", 2.0)
    conn = sqlite3.connect(path, isolation_level=None, factory=Traced, check_same_thread=False)
    conn.statements, conn.path = [], path
    conn.execute("PRAGMA busy_timeout = 2000")
    with held(path, sqlite=False) as let_go, held(path, queue=False):
        def writer() -> None:
            threading.Timer(0.5, let_go).start()  # the queue only: SQLite's lock stays held
            with store.transaction(conn):
                conn.execute("INSERT INTO t (x) VALUES ('never')")

        _, error = finished(writer)
    assert store_condition(error) == "SQLITE_BUSY", error
    [cut] = [int(s.split("=")[1]) for s in conn.statements if s.startswith("PRAGMA busy_timeout =")][1:2]
    assert cut <= 1600  # the half second spent in the queue was taken off (give or take)
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2000
    conn.close()


def test_a_queue_held_past_the_deadline_by_a_writer_without_the_store_does_not_stop_writes(
        path: str, short_wait: float) -> None:
    """SQLite's lock is the guarantee, the queue only makes waiting cheap: one
    stuck holding the queue without SQLite's lock (stopped between the two)
    holds a writer back only until its deadline, which then asks SQLite once."""
    with held(path, sqlite=False):
        _, error = finished(write(path, "past the queue"))
    assert error is None, error
    assert stored(path) == ["past the queue"]


def test_a_writer_waiting_its_turn_lets_the_other_greenlets_of_its_worker_run(
        path: str, short_wait: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under `serve`'s gevent worker `time.sleep` is gevent's (monkey-patched):
    a request waiting for its turn must not stop the worker's other requests
    (read-only pages), as a blocking lock wait did. Safe with `_queued` shared
    by all the worker's greenlets: it is set only once the lock is taken, and
    nothing in a transaction yields."""
    monkeypatch.setattr(time, "sleep", gevent.sleep)
    ticks: list[float] = []

    def reader() -> None:
        for _ in range(1000):
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    with held(path):
        other = gevent.spawn(reader)
        waiting = gevent.spawn(write(path))
        waiting.join(HUNG)
        other.kill()
    assert waiting.ready() and store_condition(waiting.exception) == "SQLITE_BUSY", waiting.exception
    assert len(ticks) >= 5  # the reader went on meanwhile (a blocked worker would give it one tick)


def test_a_writer_waits_out_a_burst_blocking_then_lets_the_worker_run(
        path: str, short_wait: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind a commit in a burst a writer pauses without yielding, as prompt
    as the kernel's lock was (a turn of gevent's is a millisecond at least);
    once it has waited HOLD_OFF it yields, and so does every other writer of
    the process from its first pause, until one takes the lock again."""
    real_sleep, pauses = time.sleep, []

    def blocking(seconds: float) -> None:
        pauses.append("blocking")
        real_sleep(seconds)

    def yielding(seconds: float) -> None:
        pauses.append("yielding")
        gevent.sleep(seconds)

    monkeypatch.setattr(store, "_blocking_sleep", lambda: blocking)
    monkeypatch.setattr(time, "sleep", yielding)
    monkeypatch.setattr(store, "HOLD_OFF", SHORT / 5)
    with held(path):
        first = gevent.spawn(write(path))
        first.join(HUNG)
        assert store_condition(first.exception) == "SQLITE_BUSY", first.exception
        assert pauses[0] == "blocking" and pauses[-1] == "yielding"
        assert pauses == sorted(pauses)  # all the blocking ones first
        pauses.clear()
        second = gevent.spawn(write(path))
        second.join(HUNG)
        assert store_condition(second.exception) == "SQLITE_BUSY", second.exception
        assert set(pauses) == {"yielding"}
    write(path, "once let go")()
    assert path not in store._held_long
    assert stored(path) == ["once let go"]


PATCHED = """
import time
from crewreport import db  # as under gunicorn: before gevent patches
from gevent import monkey, sleep
monkey.patch_all()
assert time.sleep is sleep, "not patched"
assert db._blocking_sleep() is monkey.get_original("time", "sleep") is not sleep
print("ok")
"""


def test_under_gevents_patching_a_burst_pause_blocks_and_a_long_one_yields() -> None:
    """`time.sleep` is gevent's once patched (a long wait yields); the pause
    in a burst is the sleep from before the patching."""
    done = subprocess.run([sys.executable, "-c", PATCHED], capture_output=True, text=True, timeout=60,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_greenlets_waiting_together_each_get_in_and_share_one_group(
        path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under gevent, greenlets that wait for the queue at the same time take
    it in turn (none takes another's turn for its own), and the intake's
    group commit goes on while its leader waits."""
    monkeypatch.setattr(time, "sleep", gevent.sleep)
    conn = store.connect(path)
    group = GroupCommit(lambda: True)

    def grouped(value: str) -> Callable[[], None]:
        return lambda: group.run(conn, insert(value))

    with held(path) as let_go:
        greenlets = [gevent.spawn(write(path, f"own {i}")) for i in range(3)]
        greenlets += [gevent.spawn(grouped(f"grouped {i}")) for i in range(3)]
        gevent.sleep(0.2)
        let_go()
        gevent.joinall(greenlets, timeout=HUNG, raise_error=True)
    conn.close()
    assert sorted(stored(path)) == [*(f"grouped {i}" for i in range(3)), *(f"own {i}" for i in range(3))]


def test_a_group_behind_a_hung_writer_is_not_stored_for_a_busy_store(path: str, short_wait: float) -> None:
    conn = store.connect(path)
    group = GroupCommit(lambda: True)
    with held(path):
        parts = [gevent.spawn(group.run, conn, insert("x")) for _ in range(2)]
        gevent.joinall(parts, timeout=HUNG)
    conn.close()
    assert all(isinstance(p.exception, NotStored) for p in parts), [p.exception for p in parts]
    assert {store_condition(p.exception) for p in parts} == {"SQLITE_BUSY"}  # 503 under `serve`
    assert stored(path) == []


def test_a_report_behind_a_hung_writer_is_503_and_accepted_later(
        app: Flask, client: FlaskClient, make_envelope: Make, short_wait: float) -> None:
    env = make_envelope()
    with held(app.config["DATABASE"]):
        resp, error = finished(lambda: client.post("/api/v1/reports", json=env))
    assert error is None, error
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "service_unavailable"
    assert resp.headers["Retry-After"] == str(RETRY_AFTER)
    again = client.post("/api/v1/reports", json=env)
    assert again.status_code == 201, again.get_json()
    assert count(app, "SELECT count(*) FROM report WHERE id = ?", header_of(env)["id"]) == 1


def test_a_staff_form_behind_a_hung_writer_is_a_page_that_says_try_again(
        app: Flask, client: FlaskClient, auth: AuthActions, make_envelope: Make, short_wait: float) -> None:
    rid = deliver(client, make_envelope)
    auth.login("officer")
    with held(app.config["DATABASE"]):
        resp, error = finished(lambda: client.post(f"/triage/reports/{rid}/status",
                                                   data={"status": "assessing", "reason": "Looking"}))
    assert error is None, error
    assert resp.status_code == 503 and resp.headers["Retry-After"] == str(RETRY_AFTER)
    assert "try again in a minute" in text(resp)
    assert count(app, "SELECT count(*) FROM report WHERE id = ? AND status = 'assessing'", rid) == 0


def test_a_command_behind_a_hung_writer_says_so_in_one_line(
        app: Flask, runner: FlaskCliRunner, short_wait: float) -> None:
    with held(app.config["DATABASE"]):
        result, error = finished(lambda: runner.invoke(args=["create-user", "crew9", "--role", "crew",
                                                             "--airline", "ZZ", "--password",
                                                             "a long enough password"]))
    assert error is None, error
    assert result.exit_code == 1, (result.output, result.exception)
    assert "cannot take writes (SQLITE_BUSY)" in result.output
    assert "Traceback" not in result.output
    assert count(app, "SELECT count(*) FROM user WHERE username = 'crew9'") == 0


def test_the_board_does_not_wait_a_writers_whole_wait(
        app: Flask, client: FlaskClient, auth: AuthActions, make_envelope: Make) -> None:
    """What the board writes on the side (its last look) can be done without:
    behind a store held for long, the officer sees the board after a short
    wait, not the writers' whole 30 s (HUNG, the bound asserted, is shorter).
    Signing out is not such a write: it ends the session's row, and waits."""
    deliver(client, make_envelope)
    auth.login("officer")
    with held(app.config["DATABASE"]):
        board, error = finished(lambda: client.get("/triage/"))
    assert error is None, error
    assert board.status_code == 200


def test_a_tablets_question_does_not_wait_a_writers_whole_wait_for_its_last_use(
        app: Flask, client: FlaskClient) -> None:
    """The tablet asks on start whether it is still enrolled; its last use is
    written on the side, and only if the store can take it (api.mark_used).
    Behind a store held for long the answer came after the writers' whole
    30 s (HUNG, the bound asserted, is shorter), later than the app waits."""
    with held(app.config["DATABASE"]):
        resp, error = finished(lambda: client.get("/api/v1/devices/dev-0001"))
    assert error is None, error
    assert resp.get_json() == {"device_id": "dev-0001", "state": "active"}
    assert count(app, "SELECT count(*) FROM device WHERE last_seen_at IS NOT NULL") == 0
    assert client.get("/api/v1/devices/dev-0001").status_code == 200  # written once the store can
    assert count(app, "SELECT count(*) FROM device WHERE last_seen_at IS NOT NULL") == 1
