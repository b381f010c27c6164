"""The audit chain: events for sign-in, enrollment, revocation and intake;
`verify-audit` catching edits, deletions and (with an anchor) truncation;
triggers; concurrent writers."""
from __future__ import annotations

import json
import re
import sqlite3
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import audit, envelope
from crewreport.db import connect, get_db

from .helpers import AuthActions, Make, header_of, valid_body


def events(app: Flask) -> list[sqlite3.Row]:
    with app.app_context():
        return get_db().execute("SELECT * FROM audit_event ORDER BY id").fetchall()


def raw(app: Flask) -> sqlite3.Connection:
    """A connection as an attacker with the file would have one."""
    return connect(app.config["DATABASE"])


def test_actions_are_recorded(app: Flask, client: FlaskClient, runner: FlaskCliRunner, make_envelope: Make) -> None:
    start = len(events(app))
    AuthActions(client).login("crew")
    key = ec.generate_private_key(ec.SECP256R1())
    device_id = client.post("/api/v1/devices", json={
        "public_key": envelope.jwk_from_public_key(key.public_key()), "label": "t"}).get_json()["device_id"]
    accepted = make_envelope()
    assert client.post("/api/v1/reports", json=accepted).status_code == 201
    assert client.post("/api/v1/reports", json=make_envelope(body=valid_body(narrative=""))).status_code == 422
    assert client.post("/api/v1/reports", json={"nonsense": 1}).status_code == 400
    assert runner.invoke(args=["revoke-device", device_id]).exit_code == 0
    new = [(r["action"], r["actor"], r["subject"]) for r in events(app)[start:]]
    report_id = header_of(accepted)["id"]
    assert new == [
        ("sign_in", "user:crew", None),
        ("device_enrolled", "user:crew", f"device:{device_id}"),
        ("report_received", "device:dev-0001", f"report:{report_id}"),
        ("intake_rejected", "device:dev-0001", None),
        # The unsigned {"nonsense": 1} is logged, not audited: anyone can
        # send junk, and audit rows can never be deleted.
        ("device_revoked", "system", f"device:{device_id}"),
    ]
    details = [json.loads(r["detail"]) for r in events(app)[start:]]
    assert details[3]["code"] == "invalid_report"


def test_verify_audit_intact(app: Flask, runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 0, result.output
    assert f"intact: {len(events(app))} events" in result.output


def test_edited_row_is_found(app: Flask, runner: FlaskCliRunner) -> None:
    target = events(app)[3]["id"]
    conn = raw(app)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_event SET actor = 'someone-else' WHERE id = ?", (target,))
    conn.execute("DROP TRIGGER audit_event_no_update")
    conn.execute("UPDATE audit_event SET actor = 'someone-else' WHERE id = ?", (target,))
    conn.close()
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert f"event {target} was altered" in result.output


def test_rehashed_row_breaks_the_next_link(app: Flask, runner: FlaskCliRunner) -> None:
    """An attacker who also recomputes the edited row's own hash is caught at the next row."""
    row = events(app)[2]
    conn = raw(app)
    conn.execute("DROP TRIGGER audit_event_no_update")
    forged = audit.row_hash(row["prev_hash"], row["at"], "someone-else", row["action"], row["subject"], row["detail"])
    conn.execute("UPDATE audit_event SET actor = 'someone-else', hash = ? WHERE id = ?", (forged, row["id"]))
    conn.close()
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert f"event {row['id'] + 1} does not follow" in result.output


def test_deleted_middle_row_is_found(app: Flask, runner: FlaskCliRunner) -> None:
    rows = events(app)
    target = rows[len(rows) // 2]["id"]
    conn = raw(app)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_event WHERE id = ?", (target,))
    conn.execute("DROP TRIGGER audit_event_no_delete")
    conn.execute("DELETE FROM audit_event WHERE id = ?", (target,))
    conn.close()
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1
    assert f"event {target} is missing" in result.output


def test_deleted_first_row_is_found(app: Flask, runner: FlaskCliRunner) -> None:
    conn = raw(app)
    conn.execute("DROP TRIGGER audit_event_no_delete")
    conn.execute("DELETE FROM audit_event WHERE id = (SELECT min(id) FROM audit_event)")
    conn.close()
    assert runner.invoke(args=["verify-audit"]).exit_code == 1


def test_truncation_is_found_with_an_anchor(app: Flask, runner: FlaskCliRunner) -> None:
    """A chain alone cannot show its newest rows were cut; a head hash kept elsewhere can."""
    first = runner.invoke(args=["verify-audit"])
    head = re.search(r"Head: ([0-9a-f]{64})", first.output).group(1)  # type: ignore[union-attr]
    assert head == events(app)[-1]["hash"]
    assert runner.invoke(args=["verify-audit", "--anchor", head]).exit_code == 0
    conn = raw(app)
    conn.execute("DROP TRIGGER audit_event_no_delete")
    conn.execute("DELETE FROM audit_event WHERE id = (SELECT max(id) FROM audit_event)")
    cut = conn.execute("SELECT max(id) FROM audit_event").fetchone()[0] + 1
    conn.close()
    # The last verified event (the checkpoint the first run saved) is gone: found, and found again.
    for _ in range(2):
        result = runner.invoke(args=["verify-audit"])
        assert result.exit_code == 1
        assert f"event {cut}, verified before, was altered or removed; events were cut from its end" in result.output
    # Who can cut events can cut the checkpoint too: then the shorter chain looks fine, the limit of a chain
    conn = raw(app)
    conn.execute("DELETE FROM audit_checkpoint")
    conn.close()
    assert runner.invoke(args=["verify-audit"]).exit_code == 0
    result = runner.invoke(args=["verify-audit", "--anchor", head])
    assert result.exit_code == 1
    assert f"anchor {head} is not in the chain" in result.output


def test_triggers_block_changes(app: Flask) -> None:
    conn = raw(app)
    for sql in ("UPDATE audit_event SET detail = '{}'", "DELETE FROM audit_event"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    assert len(events(app)) > 0


def test_concurrent_writers_keep_the_chain(app: Flask, runner: FlaskCliRunner) -> None:
    threads_n, per_thread = 8, 25
    start = len(events(app))
    barrier = threading.Barrier(threads_n)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        conn = connect(app.config["DATABASE"])
        try:
            barrier.wait()
            for i in range(per_thread):
                audit.record("test_event", actor=f"thread:{n}", db=conn, i=i)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            conn.close()

    workers = [threading.Thread(target=write, args=(n,)) for n in range(threads_n)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    assert not errors
    assert len(events(app)) == start + threads_n * per_thread
    with app.app_context():
        result = audit.verify_chain(get_db())
    assert result.ok, result.problem
    assert runner.invoke(args=["verify-audit"]).exit_code == 0


def test_events_hold_no_report_content(app: Flask, client: FlaskClient, make_envelope: Make) -> None:
    client.post("/api/v1/reports", json=make_envelope(body=valid_body(narrative="words of the narrative")))
    client.post("/api/v1/reports", json=make_envelope(body=valid_body(narrative="other words", indicators=["x"])))
    text = json.dumps([dict(r) for r in events(app)])
    assert "narrative" not in text and "words" not in text and "C1234" not in text
