"""The store's one time format and the one way durations are said (the same
rule as static/js/times.js), and the display filters every staff page uses."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from flask import Flask, render_template_string

from crewreport import display
from crewreport.times import TIME_FORMAT, now, parse_utc, span, stamp

MIN, HOUR, DAY = 60, 3600, 86400


@pytest.mark.parametrize("seconds,said", [
    (0, "0 min"),
    (59, "0 min"),                              # a minute that has not begun is not shown
    (60, "1 min"),
    (59 * MIN + 59, "59 min"),
    (HOUR, "1 h 00 min"),
    (2 * HOUR + 5 * MIN, "2 h 05 min"),
    (2 * HOUR + 5 * MIN + 59.9, "2 h 05 min"),  # floored, never rounded up
    (47 * HOUR + 59 * MIN, "47 h 59 min"),
    (47 * HOUR + 59 * MIN + 59, "47 h 59 min"),
    (48 * HOUR, "2 d 0 h"),
    (3 * DAY + 4 * HOUR, "3 d 4 h"),
    (3 * DAY + 4 * HOUR + 59 * MIN, "3 d 4 h"),
    (-59, "0 min"),                             # the sign is the caller's ("ago" / "in")
    (-60, "1 min"),
    (-(2 * HOUR + 5 * MIN), "2 h 05 min"),
    (-(3 * DAY + 4 * HOUR), "3 d 4 h"),
])
def test_span_says_a_duration_in_floored_minutes_hours_or_days(seconds: float, said: str) -> None:
    assert span(seconds) == said


def test_stamp_is_utc_with_a_z_whatever_the_zone_and_parses_back() -> None:
    local = datetime(2026, 12, 1, 16, 35, 7, 900000, tzinfo=timezone(timedelta(hours=2)))
    assert stamp(local) == "2026-12-01T14:35:07Z"
    assert parse_utc("2026-12-01T14:35:07Z") == datetime(2026, 12, 1, 14, 35, 7, tzinfo=timezone.utc)
    assert datetime.strptime(stamp(local), TIME_FORMAT).replace(tzinfo=timezone.utc) == parse_utc(stamp(local))


@pytest.mark.parametrize("value", ["2026-12-01T14:35:07", "2026-12-01T14:35:07+00:00",
                                   "2026-12-01T14:35:07.5Z", "yesterday"])
def test_parse_utc_refuses_what_the_store_never_writes(value: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(value)


def test_now_is_the_current_time_in_the_stores_format() -> None:
    before = stamp(datetime.now(timezone.utc))
    taken = now()
    after = stamp(datetime.now(timezone.utc))
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", taken)
    assert before <= taken <= after


def test_lead_time_and_countdown_say_which_side_of_landing() -> None:
    assert display.lead_time("2026-12-01T12:00:00Z", "2026-12-01T14:05:00Z") == (
        7500.0, "2 h 05 min before landing", False)
    assert display.lead_time("2026-12-01T14:30:00Z", "2026-12-01T14:00:00Z") == (
        -1800.0, "30 min after landing", True)
    at = parse_utc("2026-12-01T12:00:00Z")
    assert display.countdown_text("2026-12-01T12:45:30Z", at) == "lands in 45 min"
    assert display.countdown_text("2026-11-28T08:00:00Z", at) == "landed 3 d 4 h ago"


def test_when_and_span_filters_are_registered_app_wide(app: Flask) -> None:
    with app.test_request_context():
        shown = render_template_string("{{ t|when }} | {{ s|span }} | {{ none|when }}",
                                       t="2026-12-01T14:35:00Z", s=7500, none=None)
    assert shown == "Tue 01 Dec 14:35Z | 2 h 05 min | —"
