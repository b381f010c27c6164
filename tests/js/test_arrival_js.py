"""arrival.js: the arrival as crew know it. "Lands in" (H:MM from now) is read
strictly, with a message for the field for everything it refuses; a UK local
landing time is the next such moment; the result is said in UTC and UK time.
form.js turns "lands in" into the header's sta when no exact time is given."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

PARSE = """async (values) => {
  const { parseLandsIn } = await import('/static/js/arrival.js');
  return values.map((v) => parseLandsIn(v));
}"""

ACCEPTED = {"0:05": 5, "2:10": 130, "12:00": 720, "02:10": 130, " 2:10 ": 130, "2h10": 130, "2 h 10": 130,
            "2h 10min": 130, "2h": 120, "45 min": 45, "45m": 45, "90 min": 90, "47:59": 2879}


def test_lands_in_accepts_hours_and_minutes(js_page: Any) -> None:
    out = js_page.evaluate(PARSE, list(ACCEPTED))
    assert [r.get("minutes") for r in out] == list(ACCEPTED.values()), out
    assert all(r["ok"] for r in out)


@pytest.mark.parametrize(("value", "words"), [
    ("", "Enter the time to landing as hours:minutes, for example 2:10"),
    ("   ", "Enter the time to landing as hours:minutes"),
    ("130", "Is that hours or minutes? Write hours:minutes, for example 1:30"),
    ("45", "Is that hours or minutes?"),
    ("soon", "Write the time to landing as hours:minutes, for example 2:10"),
    ("2:1", "Write the time to landing as hours:minutes"),
    ("2.10", "Write the time to landing as hours:minutes"),
    ("h", "Write the time to landing as hours:minutes"),
    ("2:10pm", "Write the time to landing as hours:minutes"),
    ("-0:30", "cannot be negative"),
    ("\u22121:00", "cannot be negative"),
    ("2:75", "Minutes go from 00 to 59"),
    ("2h75", "Minutes go from 00 to 59"),
    ("48:00", "must be under 48 hours"),
    ("99:00", "must be under 48 hours"),
])
def test_lands_in_refuses_with_a_message_for_the_field(js_page: Any, value: str, words: str) -> None:
    [out] = js_page.evaluate(PARSE, [value])
    assert out["ok"] is False and words in out["error"], out


def test_lands_in_sets_sta_to_the_minute_from_now(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const a = await import('/static/js/arrival.js');
      const now = new Date(Date.UTC(2026, 6, 1, 19, 10, 40));
      return [a.staFromLandsIn(130, now).toISOString(), a.staFromLandsIn(0, now).toISOString()];
    }""")
    assert out == ["2026-07-01T21:21:00.000Z", "2026-07-01T19:11:00.000Z"]


def test_uk_local_time_in_summer_and_winter_and_across_midnight(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const a = await import('/static/js/arrival.js');
      const at = (iso, value) => { const r = a.parseUkTime(value, new Date(iso)); return r.ok ? r.date.toISOString() : r.error; };
      return {
        summer: at('2026-07-01T19:00:00Z', '22:20'),          // BST: 21:20 UTC
        winter: at('2026-12-01T19:00:00Z', '22:20'),          // GMT: same as UTC
        tomorrow: at('2026-12-01T23:30:00Z', '06:05'),        // after midnight: the next morning
        justLate: at('2026-12-01T19:00:00Z', '18:30'),        // half an hour ago: a late arrival, still today
        digits: at('2026-12-01T19:00:00Z', '2220'),
        clockChange: at('2026-10-24T22:00:00Z', '01:30'),     // the night BST ends: 01:30 BST is 00:30 UTC
        bad: at('2026-12-01T19:00:00Z', '25:00'),
        empty: at('2026-12-01T19:00:00Z', ''),
        text: [a.arrivalText(new Date('2026-07-01T21:20:00Z'), new Date('2026-07-01T19:00:00Z')),
               a.arrivalText(new Date('2026-12-02T06:05:00Z'), new Date('2026-12-01T23:30:00Z'))],
      };
    }""")
    assert out["summer"] == "2026-07-01T21:20:00.000Z"
    assert out["winter"] == "2026-12-01T22:20:00.000Z"
    assert out["tomorrow"] == "2026-12-02T06:05:00.000Z"
    assert out["justLate"] == "2026-12-01T18:30:00.000Z"
    assert out["digits"] == "2026-12-01T22:20:00.000Z"
    assert out["clockChange"] == "2026-10-25T00:30:00.000Z"
    assert "24-hour clock" in out["bad"] and "Enter the landing time in UK local time" in out["empty"]
    assert out["text"] == ["Lands 21:20 UTC, 22:20 UK time (BST).", "Lands 06:05 UTC, 06:05 UK time (GMT) tomorrow."]


def test_form_turns_lands_in_into_sta_and_names_the_field_it_refuses(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const f = await import('/static/js/form.js');
      const base = {flight: 'ZZ202', dep: 'ACC', arr: 'LGW', urgency: 'immediate', narrative: 'x', crew_id: 'C1',
                    indicators: [], people: [], captain_informed: false, share_identity_with_airline: false};
      const now = new Date(Date.UTC(2026, 11, 1, 20, 10, 0));
      const ok = f.validateReport({...base, lands_in: '1:10', sta: ''}, {now});
      const exact = f.validateReport({...base, lands_in: '', sta: '2026-12-01T23:00'}, {now});
      const bad = f.validateReport({...base, lands_in: '130', sta: ''}, {now});
      const none = f.validateReport({...base, lands_in: '', sta: ''}, {now});
      const child = f.validateReport({...base, lands_in: '1:10', sta: '', child_involved: true}, {now});
      return {ok: [ok.ok, ok.flight.sta, 'child_involved' in ok.body], exact: exact.flight.sta, bad: bad.errors,
              none: Object.keys(none.errors), child: child.body.child_involved};
    }""")
    assert out["ok"] == [True, "2026-12-01T21:20:00Z", False]  # unticked: not said
    assert out["exact"] == "2026-12-01T23:00:00Z"
    assert list(out["bad"]) == ["lands_in"] and "hours or minutes" in out["bad"]["lands_in"]
    assert out["none"] == ["lands_in"]
    assert out["child"] is True
