"""Times a tablet cannot abuse, notes it cannot lose: `created` is bounded by
the server's clock (at most a day ahead, no older than the longest a tablet
may stay offline, a year), while a clock that is minutes or hours off, a note
that arrives weeks after its flight landed, and a time with a fraction of a
second are still accepted."""
from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope, report
from crewreport.db import get_db
from crewreport.times import stamp as iso

from .helpers import VECTORS

Make = Callable[..., dict[str, Any]]


def header_text(stored_envelope: str) -> str:
    return envelope.b64u_decode(json.loads(stored_envelope)["protected"]).decode("utf-8")


def at(make_envelope: Make, created: datetime, sta_after: timedelta = timedelta(hours=3)) -> dict[str, Any]:
    """An envelope whose tablet clock said `created`, landing `sta_after` later."""
    return make_envelope(created=iso(created), sta=iso(created + sta_after))


@pytest.mark.parametrize("offset", [
    timedelta(minutes=-7), timedelta(minutes=12), timedelta(hours=5), timedelta(hours=23, minutes=59),
    timedelta(hours=-9), timedelta(days=-29, hours=-23), timedelta(days=-45), timedelta(days=-364),
])
def test_clocks_that_are_off_and_late_notes_are_accepted(client: FlaskClient, make_envelope: Make,
                                                         offset: timedelta) -> None:
    created = datetime.now(UTC) + offset
    resp = client.post("/api/v1/reports", json=at(make_envelope, created))
    assert resp.status_code == 201, resp.get_json()


def test_a_note_arriving_days_after_its_flight_landed_is_accepted(client: FlaskClient, make_envelope: Make) -> None:
    created = datetime.now(UTC) - timedelta(days=6)
    resp = client.post("/api/v1/reports", json=at(make_envelope, created, timedelta(hours=2)))
    assert resp.status_code == 201


@pytest.mark.parametrize(("created", "sta"), [
    ("0001-01-01T00:00:00Z", "0001-01-01T03:00:00Z"),
    ("2001-01-01T00:00:00Z", "2001-01-01T03:00:00Z"),
    ("9999-12-31T20:00:00Z", "9999-12-31T23:00:00Z"),
])
def test_absurd_times_are_invalid(client: FlaskClient, app: Flask, make_envelope: Make, created: str,
                                  sta: str) -> None:
    resp = client.post("/api/v1/reports", json=make_envelope(created=created, sta=sta))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_report"


@pytest.mark.parametrize("offset", [timedelta(hours=24, minutes=1), timedelta(days=3),
                                    timedelta(days=-365, minutes=-1), timedelta(days=-400)])
def test_created_beyond_the_bounds_is_invalid(client: FlaskClient, make_envelope: Make, offset: timedelta) -> None:
    created = datetime.now(UTC) + offset
    resp = client.post("/api/v1/reports", json=at(make_envelope, created))
    assert resp.status_code == 422
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_report" and "date and time" in error["message"]


def test_the_longest_offline_time_is_a_setting(app: Flask, client: FlaskClient, make_envelope: Make) -> None:
    app.config["MAX_OFFLINE_DAYS"] = 2
    now = datetime.now(UTC)
    assert client.post("/api/v1/reports", json=at(make_envelope, now - timedelta(days=1))).status_code == 201
    resp = client.post("/api/v1/reports", json=at(make_envelope, now - timedelta(days=3)))
    assert resp.status_code == 422 and "2 days" in resp.get_json()["error"]["message"]


def test_a_receipt_lost_long_ago_is_still_given_again(client: FlaskClient, make_envelope: Make,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The bound applies to new reports, never to a repeat of one we hold."""
    env = make_envelope()
    first = client.post("/api/v1/reports", json=env)
    assert first.status_code == 201
    later = datetime.now(UTC) + timedelta(days=45)
    monkeypatch.setattr(report, "server_now", lambda: later)
    again = client.post("/api/v1/reports", json=env)
    assert again.status_code == 200 and again.get_json() == first.get_json()


def test_a_fraction_of_a_second_is_allowed_and_dropped_in_the_columns(app: Flask, client: FlaskClient,
                                                                       make_envelope: Make) -> None:
    """RFC 3339 allows one, and JavaScript's toISOString() gives milliseconds."""
    created = datetime.now(UTC).replace(microsecond=123456)
    sent = {"created": created.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "sta": (created + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S.%f") + "789Z"}  # nanoseconds
    resp = client.post("/api/v1/reports", json=make_envelope(**sent))
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():
        stored = get_db().execute("SELECT created, sta, envelope FROM report").fetchone()
    assert (stored["created"], stored["sta"]) == (iso(created), iso(created + timedelta(hours=3)))
    assert sent["created"] in header_text(stored["envelope"])  # the envelope is kept as received
    for bad in ("2026-12-01T14:35:00.Z", "2026-12-01T14:35:00.1234567890Z", "2026-12-01T14:35:00,5Z"):
        resp = client.post("/api/v1/reports", json=make_envelope(created=bad))
        assert resp.get_json()["error"]["code"] == "invalid_report", bad


def test_the_fixed_vectors_still_count_weeks_after_they_were_made(client: FlaskClient,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An outside check sends the fixed vectors on whatever day it runs."""
    made = report.parse_time(VECTORS["cases"][0]["header"]["created"])
    monkeypatch.setattr(report, "server_now", lambda: made + timedelta(days=45))
    valid = [case for case in VECTORS["cases"] if case["expect"] == "ok"]
    assert valid
    for case in valid:
        resp = client.post("/api/v1/reports", json=case["envelope"])
        assert resp.status_code == 201, (case["name"], resp.get_json())
