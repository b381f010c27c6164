"""Group commit (crewreport.group_commit): requests of one gevent worker
share one durable commit, and each still ends on its own.

Greenlets stand in for the worker's requests here; gevent needs no patching
for that. The whole app under `serve`'s gevent worker is tested in
tests/test_serve.py.
"""
from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import gevent
import pytest
from flask import Flask

from crewreport import envelope, group_commit
from crewreport.db import connect, get_db
from crewreport.group_commit import GroupCommit, NotStored
from crewreport.unavailable import store_condition

from .helpers import Make, header_of


@pytest.fixture
def db(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = connect(str(tmp_path / "group.sqlite"))
    conn.executescript("""
        CREATE TABLE part (name TEXT PRIMARY KEY);
        CREATE TABLE parent (id INTEGER PRIMARY KEY);
        CREATE TABLE child (parent_id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);
    """)
    yield conn
    conn.close()


def insert(name: str) -> Callable[[sqlite3.Connection], None]:
    """A request's writes: one row named `name`."""
    def write(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO part (name) VALUES (?)", (name,))
    return write


def orphan(db: sqlite3.Connection) -> None:
    """A row whose deferred foreign key fails only at COMMIT."""
    db.execute("INSERT INTO child (parent_id) VALUES (99)")


def fails(db: sqlite3.Connection) -> None:
    db.execute("INSERT INTO part (name) VALUES ('written, then undone')")
    raise ValueError("this request's own error")


def stored(db: sqlite3.Connection) -> set[str]:
    return {row[0] for row in db.execute("SELECT name FROM part")}


def commits(db: sqlite3.Connection) -> list[str]:
    """The statements the connection runs from now on (filled as it runs them)."""
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    return statements


def test_requests_waiting_together_share_one_commit(db: sqlite3.Connection,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    group = GroupCommit(grouped=lambda: True)
    statements = commits(db)
    waits_for_idle: list[None] = []
    real_idle = gevent.idle

    def idle() -> None:
        waits_for_idle.append(None)
        real_idle()

    monkeypatch.setattr(gevent, "idle", idle)
    requests = [gevent.spawn(group.run, db, insert(name)) for name in ("a", "b", "c")]
    gevent.joinall(requests, timeout=10, raise_error=True)
    assert len(waits_for_idle) == 1  # the leader's; the others wait for the leader
    assert statements.count("COMMIT") == 1
    assert statements.count("BEGIN IMMEDIATE") == 1
    assert stored(db) == {"a", "b", "c"}
    assert not db.in_transaction and not group.leading and group.waiting == []


def test_a_part_that_fails_is_its_own_requests_error(db: sqlite3.Connection) -> None:
    group = GroupCommit(grouped=lambda: True)
    requests = [gevent.spawn(group.run, db, write) for write in (insert("a"), fails, insert("c"))]
    gevent.joinall(requests, timeout=10)
    assert requests[0].successful() and requests[2].successful()
    assert isinstance(requests[1].exception, ValueError)
    assert str(requests[1].exception) == "this request's own error"
    assert stored(db) == {"a", "c"}


def test_a_commit_refused_stores_nothing_and_fails_every_request(db: sqlite3.Connection) -> None:
    """A deferred foreign key is checked at COMMIT: the whole group is refused there."""
    group = GroupCommit(grouped=lambda: True)
    requests = [gevent.spawn(group.run, db, write) for write in (insert("a"), orphan, insert("c"))]
    gevent.joinall(requests, timeout=10)
    errors = [request.exception for request in requests]
    assert all(isinstance(e, NotStored) for e in errors), errors
    assert len({id(e) for e in errors}) == 3  # one each: no two requests' tracebacks in one
    assert {type(e.__cause__) for e in errors} == {sqlite3.IntegrityError}
    assert "FOREIGN KEY" in str(errors[0].__cause__)
    assert not db.in_transaction  # rolled back, not left open for the next borrower
    assert stored(db) == set()
    assert db.execute("SELECT count(*) FROM child").fetchone()[0] == 0


def test_a_full_disk_mid_group_is_the_groups_failure_for_the_right_reason(db: sqlite3.Connection) -> None:
    """SQLite rolls the whole transaction back when the disk fills mid-write:
    no part is then its own error (there is no savepoint left to roll back
    to), each request is NotStored because of SQLITE_FULL, which the app
    answers 503 (crewreport.unavailable), and the next group commits."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: a full disk

    def big(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO part (name) VALUES (?)", ("x" * 100_000,))

    group = GroupCommit(grouped=lambda: True)
    requests = [gevent.spawn(group.run, db, write) for write in (insert("a"), big, insert("c"))]
    gevent.joinall(requests, timeout=10)
    errors = [request.exception for request in requests]
    assert all(isinstance(e, NotStored) for e in errors), errors
    assert {store_condition(e) for e in errors} == {"SQLITE_FULL"}
    assert not db.in_transaction and stored(db) == set()
    db.execute("PRAGMA max_page_count = 1000000")  # room again
    gevent.spawn(group.run, db, insert("next")).get(timeout=5)
    assert stored(db) == {"next"}


class WorkerExit(BaseException):
    """What is not an Exception: a worker told to exit in the middle of a write."""


def test_a_group_stopped_mid_write_wakes_no_one_as_stored(db: sqlite3.Connection) -> None:
    group = GroupCommit(grouped=lambda: True)

    def stopped(db: sqlite3.Connection) -> None:
        db.execute("INSERT INTO part (name) VALUES ('stopped')")
        raise WorkerExit

    requests = [gevent.spawn(group.run, db, write) for write in (insert("a"), stopped, insert("c"))]
    gevent.joinall(requests, timeout=10)
    assert all(request.dead for request in requests)
    assert isinstance(requests[0].exception, WorkerExit)  # the leader's greenlet, where it was raised
    for follower in requests[1:]:
        assert isinstance(follower.exception, NotStored)
        assert str(follower.exception) == "the group's transaction did not commit"
    assert stored(db) == set()
    assert not db.in_transaction
    assert not group.leading  # the next request leads a group of its own
    gevent.spawn(group.run, db, insert("next")).get(timeout=5)
    assert stored(db) == {"next"}


def test_a_leader_interrupted_while_waiting_still_commits_the_group(db: sqlite3.Connection) -> None:
    group = GroupCommit(grouped=lambda: True)
    statements = commits(db)
    leader = gevent.spawn(group.run, db, insert("leader's"))
    follower = gevent.spawn(group.run, db, insert("follower's"))
    # Runs after both have joined the group, while the leader waits for idle.
    gevent.spawn(leader.kill, KeyError("the leader's request was cancelled"), block=False)
    gevent.joinall([leader, follower], timeout=10)
    assert isinstance(leader.exception, KeyError)
    assert follower.successful()
    assert stored(db) == {"leader's", "follower's"}
    assert statements.count("COMMIT") == 1
    assert not group.leading
    # and the next request leads a group of its own
    gevent.spawn(group.run, db, insert("next")).get(timeout=5)
    assert "next" in stored(db)


def test_a_request_cancelled_while_it_waits_still_has_its_report_stored(db: sqlite3.Connection) -> None:
    """Stored without an answer is safe (the resend gets the stored receipt);
    answered without being stored never happens."""
    group = GroupCommit(grouped=lambda: True)
    leader = gevent.spawn(group.run, db, insert("leader's"))
    follower = gevent.spawn(group.run, db, insert("cancelled follower's"))
    gevent.spawn(follower.kill, block=False)
    gevent.joinall([leader, follower], timeout=10)
    assert leader.successful() and follower.dead
    assert isinstance(follower.value, gevent.GreenletExit)
    assert stored(db) == {"leader's", "cancelled follower's"}


def test_each_store_has_its_own_group(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every part is written through the leader's connection: a part for
    another file must never join that group."""
    monkeypatch.setattr(group_commit, "under_gevent", lambda: True)
    monkeypatch.setattr(group_commit, "_groups", {})
    stores = [connect(str(tmp_path / name)) for name in ("one.sqlite", "two.sqlite")]
    try:
        for store in stores:
            store.execute("CREATE TABLE part (name TEXT PRIMARY KEY)")
        requests = [gevent.spawn(group_commit.run, store, insert(f"{i} in {n}"))
                    for i in range(3) for n, store in enumerate(stores)]
        gevent.joinall(requests, timeout=10, raise_error=True)
        assert [stored(store) for store in stores] == [{"0 in 0", "1 in 0", "2 in 0"}, {"0 in 1", "1 in 1", "2 in 1"}]
        assert len(group_commit._groups) == 2
    finally:
        for store in stores:
            store.close()


def test_intake_requests_in_one_group_each_get_their_own_answer(app: Flask, make_envelope: Make,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The real intake, each request on its own connection as under `serve`,
    all in one group: a report, its resend, another report under its id, and
    a batch holding a new report and the first again."""
    monkeypatch.setattr(group_commit, "under_gevent", lambda: True)
    monkeypatch.setattr(group_commit, "_groups", {})
    sizes: list[int] = []
    real_commit = group_commit.commit

    def counting_commit(db: sqlite3.Connection, group: list[group_commit.Part]) -> None:
        sizes.append(len(group))
        real_commit(db, group)

    monkeypatch.setattr(group_commit, "commit", counting_commit)
    first, second = make_envelope(), make_envelope()
    rival = make_envelope(id=header_of(first)["id"], flight="ZZ202")
    sends = [("/api/v1/reports", first), ("/api/v1/reports", first), ("/api/v1/reports", rival),
             ("/api/v1/reports/batch", {"envelopes": [second, first]})]
    requests = [gevent.spawn(lambda path, body: app.test_client().post(path, json=body), path, body)
                for path, body in sends]
    gevent.joinall(requests, timeout=30, raise_error=True)
    answers = [(request.value.status_code, request.value.get_json()) for request in requests]
    assert sizes == [4]  # one group, one commit
    assert [status for status, _ in answers] == [201, 200, 409, 200]
    assert answers[1][1] == answers[0][1]  # the very same receipt
    assert answers[2][1]["error"]["code"] == "conflict"
    new, again = answers[3][1]["results"]
    assert again == answers[0][1] and "receipt" in new and new != again
    with app.app_context():
        rows = dict(get_db().execute("SELECT id, envelope_sha256 FROM report").fetchall())
    assert rows == {header_of(first)["id"]: envelope.envelope_sha256(first),
                    header_of(second)["id"]: envelope.envelope_sha256(second)}


def test_a_worker_that_is_never_idle_still_commits(db: sqlite3.Connection,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The wait for idle is capped: a busy worker cannot hold receipts back."""
    monkeypatch.setattr(gevent, "idle", lambda: gevent.sleep(3600))
    monkeypatch.setattr(group_commit, "MAX_WAIT", 0.01)
    group = GroupCommit(grouped=lambda: True)
    request = gevent.spawn(group.run, db, insert("a"))
    request.join(timeout=10)
    assert request.dead and request.successful()
    assert stored(db) == {"a"}


def test_outside_gevent_each_request_commits_on_its_own(db: sqlite3.Connection) -> None:
    assert not group_commit.under_gevent()  # the test process is not patched
    group = GroupCommit()
    statements = commits(db)
    group.run(db, insert("a"))
    group.run(db, insert("b"))
    assert statements.count("COMMIT") == 2
    assert stored(db) == {"a", "b"}
    with pytest.raises(ValueError, match="own error"):
        group.run(db, fails)
    assert not db.in_transaction
    assert stored(db) == {"a", "b"}


class Monkey:
    """gevent.monkey as far as `under_gevent` asks it."""

    def __init__(self, *patched: str) -> None:
        self.patched = patched

    def is_module_patched(self, name: str) -> bool:
        return name in self.patched


def test_only_patched_sockets_mean_a_gevent_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gevent.monkey", Monkey("socket", "threading"))
    assert group_commit.under_gevent() is True
    monkeypatch.setitem(sys.modules, "gevent.monkey", Monkey("threading"))
    assert group_commit.under_gevent() is False
    monkeypatch.delitem(sys.modules, "gevent.monkey")
    assert group_commit.under_gevent() is False


def test_a_patched_gevent_worker_groups() -> None:
    """What gunicorn's gevent worker does first, then the check."""
    code = ("from gevent import monkey; monkey.patch_all()\n"
            "from crewreport import group_commit\n"
            "print(group_commit.under_gevent())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "True"
