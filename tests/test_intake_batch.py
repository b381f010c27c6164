"""One durable commit per request: a batch is verified envelope by envelope,
then stored in one transaction; receipts exist only once it committed; and
concurrent duplicates still end as one row with one receipt."""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from crewreport import db as store
from crewreport import envelope
from crewreport.db import get_db

from .helpers import KeySet, header_of

Make = Callable[..., dict[str, Any]]


def traced_statements(monkeypatch: pytest.MonkeyPatch, keep: Callable[[str], bool]) -> list[str]:
    """The statements (whitespace folded, values bound) that the store's
    connections run from now on and `keep` accepts."""
    seen: list[str] = []
    connect = store.connect

    def note(sql: str) -> None:
        folded = " ".join(sql.split())
        if keep(folded):
            seen.append(folded)

    def traced(path: str) -> sqlite3.Connection:
        conn = connect(path)
        conn.set_trace_callback(note)
        return conn

    monkeypatch.setattr(store, "connect", traced)
    return seen


@pytest.fixture
def commits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every COMMIT the store's connections run from now on."""
    return traced_statements(monkeypatch, lambda sql: sql.upper() == "COMMIT")


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement the store's connections run from now on."""
    return traced_statements(monkeypatch, lambda sql: True)


def report_ids(app: Flask) -> list[str]:
    with app.app_context():
        return [r[0] for r in get_db().execute("SELECT id FROM report")]


def header_id(env: dict[str, Any]) -> str:
    return str(header_of(env)["id"])


def test_a_batch_of_100_commits_once(app: Flask, make_envelope: Make, commits: list[str]) -> None:
    app.config["RATELIMIT_ENABLED"] = False  # the counters are another file; this counts the store's commits
    envs = [make_envelope() for _ in range(97)] + [make_envelope(flight="bad"), {"junk": 1},
                                                   make_envelope(arr="nowhere")]
    client = app.test_client()
    results = client.post("/api/v1/reports/batch", json={"envelopes": envs}).get_json()["results"]
    assert sum("receipt" in r for r in results) == 97
    assert [r["error"]["code"] for r in results[97:]] == ["invalid_report", "malformed", "invalid_report"]
    assert len(commits) == 1
    assert len(report_ids(app)) == 97


def test_a_single_report_commits_once_and_a_repeat_not_at_all(app: Flask, make_envelope: Make,
                                                               commits: list[str]) -> None:
    app.config["RATELIMIT_ENABLED"] = False
    client = app.test_client()
    env = make_envelope()
    assert client.post("/api/v1/reports", json=env).status_code == 201
    assert len(commits) == 1
    assert client.post("/api/v1/reports", json=env).status_code == 200
    assert client.post("/api/v1/reports/batch", json={"envelopes": [env, env]}).status_code == 200
    assert client.post("/api/v1/reports", json={"junk": True}).status_code == 400
    assert len(commits) == 1


def test_no_receipt_when_the_commit_fails(app: Flask, make_envelope: Make) -> None:
    """A receipt promises the report is on disk: if the batch's transaction
    fails, no envelope of it is receipted and none is stored."""
    conn = store.connect(app.config["DATABASE"])
    conn.execute("CREATE TRIGGER fail_store BEFORE INSERT ON report WHEN NEW.flight = 'ZZ999'"
                 " BEGIN SELECT RAISE(ABORT, 'disk trouble'); END")
    conn.close()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    client = app.test_client()
    resp = client.post("/api/v1/reports/batch",
                       json={"envelopes": [make_envelope(), make_envelope(flight="ZZ999"), make_envelope()]})
    assert resp.status_code >= 500 and b"receipt" not in resp.data
    assert report_ids(app) == []
    # The connection went back clean: the next request stores normally.
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201


def test_concurrent_identical_batches_store_each_report_once(app: Flask, make_envelope: Make,
                                                             keyset: KeySet) -> None:
    envs = [make_envelope() for _ in range(12)]
    barrier = threading.Barrier(4)
    answers: list[list[dict[str, Any]]] = []
    lock = threading.Lock()

    def send(offset: int) -> None:
        client = app.test_client()
        mine = envs[offset:] + envs[:offset]  # the same reports, in another order
        barrier.wait()
        results = client.post("/api/v1/reports/batch", json={"envelopes": mine}).get_json()["results"]
        by_id = {header_id(e): r for e, r in zip(mine, results, strict=False)}
        with lock:
            answers.append([by_id[header_id(e)] for e in envs])

    threads = [threading.Thread(target=send, args=(n * 3,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 4 and all(a == answers[0] for a in answers)
    receipts = [envelope.verify_receipt(r, keyset.receipt.public_key()) for r in answers[0]]
    assert [r["id"] for r in receipts] == [header_id(e) for e in envs]
    assert sorted(report_ids(app)) == sorted(header_id(e) for e in envs)


def test_a_batch_looks_up_its_device_and_its_ids_once_a_step(app: Flask, make_envelope: Make,
                                                               statements: list[str]) -> None:
    """A batch's work on the store does not grow a query per envelope: one
    device lookup, one look for repeats before the checks and one under the
    write lock, closed audit tallies flushed once."""
    app.config["RATELIMIT_ENABLED"] = False
    envs = [make_envelope() for _ in range(20)]
    results = app.test_client().post("/api/v1/reports/batch", json={"envelopes": envs}).get_json()["results"]
    assert all("receipt" in r for r in results)

    def runs(fragment: str) -> int:
        return sum(fragment in sql for sql in statements)

    assert runs("SELECT * FROM device WHERE id = ") == 1  # the trace shows values bound
    assert runs("FROM report WHERE id IN (") == 2
    assert runs("FROM audit_tally WHERE minute <") == 1
    assert runs("INSERT INTO report ") == 20 and runs("INSERT INTO audit_event ") == 20


@pytest.mark.parametrize("bad", [
    '{"protected":"AA","protected":"AA","sealed":["AA"],"signature":"AA"}',
    '{"protected":' + "1" * 5000 + ',"sealed":["AA"],"signature":"AA"}',
], ids=["a field named twice", "a 5000-digit number"])
def test_an_envelope_the_parser_cannot_take_spoils_only_itself(app: Flask, make_envelope: Make, bad: str) -> None:
    """A key twice in one envelope, or a number longer than Python converts,
    is that envelope's `malformed`; the others of the batch are received
    (docs/api.md). Sent alone, it is the request's `malformed` as before."""
    good = make_envelope()
    client = app.test_client()
    resp = client.post("/api/v1/reports/batch", content_type="application/json",
                       data='{"envelopes": [' + json.dumps(good) + ", " + bad + "]}")
    assert resp.status_code == 200, resp.get_json()
    results = resp.get_json()["results"]
    assert "receipt" in results[0] and results[1]["error"]["code"] == "malformed"
    assert report_ids(app) == [header_id(good)]
    resp = client.post("/api/v1/reports", data=bad, content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "malformed"


def test_one_id_twice_in_a_batch_with_other_content_is_a_conflict(app: Flask, make_envelope: Make,
                                                                  keyset: KeySet) -> None:
    """The second envelope meets the first one stored in the same
    transaction: the same report again is answered with its receipt, another
    under the same id is `conflict`."""
    first = make_envelope()
    again = dict(first)
    other = make_envelope(id=header_id(first), flight="ZZ102")
    results = app.test_client().post("/api/v1/reports/batch",
                                     json={"envelopes": [first, other, again]}).get_json()["results"]
    assert results[1]["error"]["code"] == "conflict"
    assert results[2] == results[0] and "receipt" in results[0]
    assert report_ids(app) == [header_id(first)]
    with app.app_context():
        flight = get_db().execute("SELECT flight FROM report").fetchone()[0]
    assert flight == "ZZ101"


def test_references_drawn_twice_in_one_batch_are_drawn_again(app: Flask, make_envelope: Make, keyset: KeySet,
                                                              runner: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two reports of one batch that drew the same reference: the second is
    drawn again, each receipt names what is stored, and the audit chain holds."""
    from crewreport import intake

    draws = iter(["ACD-EFG", "ACD-EFG", "HJK-MNP", "QRT-UVW"])
    monkeypatch.setattr(intake, "new_reference", lambda: next(draws))
    envs = [make_envelope() for _ in range(3)]
    results = app.test_client().post("/api/v1/reports/batch", json={"envelopes": envs}).get_json()["results"]
    receipts = [envelope.verify_receipt(r, keyset.receipt.public_key()) for r in results]
    with app.app_context():
        stored = dict(get_db().execute("SELECT id, reference FROM report").fetchall())
    assert {r["id"]: r["reference"] for r in receipts} == stored
    assert sorted(stored.values()) == ["ACD-EFG", "HJK-MNP", "QRT-UVW"]
    assert runner.invoke(args=["verify-audit"]).exit_code == 0


def test_another_constraint_naming_the_reference_is_not_taken_for_a_collision(
        app: Flask, make_envelope: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only SQLite's UNIQUE failure on the reference is drawn again; any other
    failure (here a trigger using the same words) fails the request at once,
    storing nothing."""
    from crewreport import intake

    drawn: list[str] = []

    def draw() -> str:
        drawn.append("ACD-EFG")
        return "ACD-EFG"

    monkeypatch.setattr(intake, "new_reference", draw)
    conn = store.connect(app.config["DATABASE"])
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON report"
                 " BEGIN SELECT RAISE(ABORT, 'UNIQUE constraint failed: report.reference'); END")
    conn.close()
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = app.test_client().post("/api/v1/reports", json=make_envelope())
    assert resp.status_code == 500 and b"receipt" not in resp.data
    assert report_ids(app) == [] and len(drawn) == 1  # the first draw only: no retry
