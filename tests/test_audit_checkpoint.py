"""The admin page verifies the audit chain from a stored checkpoint (the last
event it verified), not from the first event on every view; `verify-audit`
still checks everything, and the page says when that last passed."""
from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import audit
from crewreport.db import connect, get_db

from .helpers import AuthActions

Make = Callable[..., dict[str, Any]]


def page(client: FlaskClient) -> str:
    resp = client.get("/admin/")
    assert resp.status_code == 200
    return resp.get_data(as_text=True)


def checkpoint(app: Flask) -> sqlite3.Row | None:
    with app.app_context():
        row: sqlite3.Row | None = get_db().execute("SELECT * FROM audit_checkpoint").fetchone()
        return row


def last_event_id(app: Flask) -> int:
    with app.app_context():
        return int(get_db().execute("SELECT max(id) FROM audit_event").fetchone()[0])


def tamper(app: Flask, event_id: int) -> None:
    """Edit one event as someone with the file would, around the trigger."""
    conn = connect(app.config["DATABASE"])
    conn.execute("DROP TRIGGER audit_event_no_update")
    conn.execute("UPDATE audit_event SET detail = '{\"forged\":true}' WHERE id = ?", (event_id,))
    conn.close()


def full_verified_at(html: str) -> str:
    found = re.search(r'data-full-verified-at="([^"]*)"', html)
    assert found
    return found.group(1)


def test_views_walk_only_new_events(app: Flask, client: FlaskClient, auth: AuthActions,
                                    make_envelope: Make) -> None:
    auth.login("admin")
    first = page(client)
    assert 'data-ok="true"' in first and full_verified_at(first)  # no checkpoint yet: a full walk
    point = checkpoint(app)
    assert point is not None and point["event_id"] == last_event_id(app)
    for _ in range(3):
        assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    second = page(client)
    assert 'data-ok="true"' in second
    assert f"checked the events after event {point['event_id']}" in second
    moved = checkpoint(app)
    assert moved is not None and moved["event_id"] == last_event_id(app) > point["event_id"]
    assert moved["count"] == point["count"] + (moved["event_id"] - point["event_id"])
    with app.app_context():
        assert audit.verify_since_checkpoint(get_db()).count == audit.verify_chain(get_db()).count


def test_an_edit_after_the_checkpoint_is_found_by_the_page(app: Flask, client: FlaskClient, auth: AuthActions,
                                                           make_envelope: Make) -> None:
    auth.login("admin")
    page(client)
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    tamper(app, last_event_id(app))
    html = page(client)
    assert 'data-ok="false"' in html and "was altered" in html


def test_an_edit_of_the_checkpointed_event_is_found_by_the_page(app: Flask, client: FlaskClient,
                                                                auth: AuthActions) -> None:
    auth.login("admin")
    page(client)
    point = checkpoint(app)
    assert point is not None
    tamper(app, point["event_id"])
    html = page(client)
    assert 'data-ok="false"' in html and f"event {point['event_id']}" in html


def test_an_edit_before_the_checkpoint_is_found_by_verify_audit(app: Flask, client: FlaskClient, auth: AuthActions,
                                                                runner: FlaskCliRunner, make_envelope: Make) -> None:
    """The page cannot see it (that is the price of not re-reading everything);
    the full check can, and from then on the page walks from the start again."""
    auth.login("admin")
    page(client)
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    tamper(app, 2)
    assert 'data-ok="true"' in page(client)
    result = runner.invoke(args=["verify-audit"])
    assert result.exit_code == 1 and "event 2 was altered" in result.output
    assert checkpoint(app) is None
    html = page(client)
    assert 'data-ok="false"' in html and "event 2 was altered" in html


def test_verify_audit_records_when_it_last_passed(app: Flask, client: FlaskClient, auth: AuthActions,
                                                  runner: FlaskCliRunner, make_envelope: Make) -> None:
    auth.login("admin")
    page(client)
    with app.app_context():  # as if the page had been verified in full long ago
        get_db().execute("UPDATE audit_checkpoint SET full_verified_at = '2000-01-01T00:00:00Z'")
    assert full_verified_at(page(client)) == "2000-01-01T00:00:00Z"
    assert client.post("/api/v1/reports", json=make_envelope()).status_code == 201
    assert runner.invoke(args=["verify-audit"]).exit_code == 0
    html = page(client)
    assert full_verified_at(html) > "2000-01-01T00:00:00Z" and "Last verified in full at" in html
    point = checkpoint(app)
    assert point is not None and point["event_id"] == last_event_id(app)
