"""Times a tablet cannot abuse, notes it cannot lose: `created` is bounded by
the server's clock (at most a day ahead, no older than the longest a tablet
may stay offline), while a clock that is minutes or hours off, and a note that
arrives after its flight landed, are still accepted."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import report
from crewreport.times import stamp as iso

Make = Callable[..., dict[str, Any]]


def at(make_envelope: Make, created: datetime, sta_after: timedelta = timedelta(hours=3)) -> dict[str, Any]:
    """An envelope whose tablet clock said `created`, landing `sta_after` later."""
    return make_envelope(created=iso(created), sta=iso(created + sta_after))


@pytest.mark.parametrize("offset", [
    timedelta(minutes=-7), timedelta(minutes=12), timedelta(hours=5), timedelta(hours=23, minutes=59),
    timedelta(hours=-9), timedelta(days=-29, hours=-23),
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
                                    timedelta(days=-30, minutes=-1), timedelta(days=-400)])
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
