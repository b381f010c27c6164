"""The store's one time format and the one way durations are said (the same
rule as static/js/times.js), and the display filters every staff page uses."""
from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string

from crewreport import display
from crewreport.times import TIME_FORMAT, now, parse_utc, span, stamp

MIN, HOUR, DAY = 60, 3600, 86400

DURATIONS = json.loads((Path(__file__).parent / "vectors" / "durations.json").read_text("utf-8"))["cases"]


@pytest.mark.parametrize("case", DURATIONS, ids=[c["name"] for c in DURATIONS])
def test_span_says_a_duration_as_the_shared_table_does(case: dict[str, Any]) -> None:
    """The same table holds static/js/times.js to the same words."""
    assert span(case["ms"] / 1000) == case["text"]


@pytest.mark.parametrize(("seconds", "said"), [
    (2 * HOUR + 5 * MIN + 59.9, "2 h 05 min"),  # floored, never rounded up
    (47 * HOUR + 59 * MIN + 59, "47 h 59 min"),
    (-60, "1 min"),                             # the sign is the caller's ("ago" / "in")
    (-(3 * DAY + 4 * HOUR), "3 d 4 h"),
])
def test_span_floors_fractions_and_drops_the_sign(seconds: float, said: str) -> None:
    assert span(seconds) == said


def test_stamp_is_utc_with_a_z_whatever_the_zone_and_parses_back() -> None:
    local = datetime(2026, 12, 1, 16, 35, 7, 900000, tzinfo=timezone(timedelta(hours=2)))
    assert stamp(local) == "2026-12-01T14:35:07Z"
    assert parse_utc("2026-12-01T14:35:07Z") == datetime(2026, 12, 1, 14, 35, 7, tzinfo=UTC)
    assert datetime.strptime(stamp(local), TIME_FORMAT).replace(tzinfo=UTC) == parse_utc(stamp(local))


@pytest.mark.parametrize(("when", "stamped"), [
    (datetime(657, 12, 18, 0, 8, 49, tzinfo=UTC), "0657-12-18T00:08:49Z"),
    (datetime(1, 1, 1, tzinfo=UTC), "0001-01-01T00:00:00Z"),
    (datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), "9999-12-31T23:59:59Z"),
])
def test_stamp_writes_four_digits_of_year_so_every_stamp_sorts_as_text(when: datetime, stamped: str) -> None:
    """strftime's %Y gives "657" on glibc, which sorts after "2026" as text."""
    assert stamp(when) == stamped and parse_utc(stamped) == when
    assert (stamp(when) < "2026-01-01T00:00:00Z") == (when.year < 2026)


@pytest.mark.parametrize("value", ["2026-12-01T14:35:07", "2026-12-01T14:35:07+00:00",
                                   "2026-12-01T14:35:07.5Z", "yesterday"])
def test_parse_utc_refuses_what_the_store_never_writes(value: str) -> None:
    with pytest.raises(ValueError, match="isoformat|not a stored UTC time"):
        parse_utc(value)


def test_now_is_the_current_time_in_the_stores_format() -> None:
    before = stamp(datetime.now(UTC))
    taken = now()
    after = stamp(datetime.now(UTC))
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
