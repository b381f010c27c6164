"""times.js: one duration rule for every page (the same table as the server's),
and the UTC formats the crew app and the officers' pages show."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e

DURATIONS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "durations.json").read_text("utf-8"))


def test_durations_follow_the_shared_table(js_page: Any) -> None:
    cases = DURATIONS["cases"]
    got = js_page.evaluate("""async (cases) => {
      const { duration } = await import('/static/js/times.js');
      return cases.map((c) => duration(c.ms));
    }""", cases)
    assert dict(zip([c["name"] for c in cases], got, strict=False)) == {c["name"]: c["text"] for c in cases}


def test_utc_formats(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const t = await import('/static/js/times.js');
      return {rfc: t.rfc3339(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 999))), clock: t.utcClock('2026-01-02T23:59:30Z'),
              hhmm: t.utcHhmm('2026-01-02T03:04:05.123Z'), bad: t.utcClock('not a time'), badHhmm: t.utcHhmm('')};
    }""")
    assert out == {"rfc": "2026-01-02T03:04:05Z", "clock": "23:59 UTC", "hhmm": "03:04", "bad": "", "badHhmm": ""}


def test_the_officers_countdown_uses_the_same_words(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      window.__TRIAGE_CONFIG = {tickMs: 3600000, refreshMs: 3600000};
      const { countdown } = await import('/static/js/triage.js');
      const now = Date.parse('2026-01-01T10:00:00Z');
      return [countdown('2026-01-01T12:05:59Z', now), countdown('2026-01-01T10:30:00Z', now),
              countdown('2025-12-29T06:00:00Z', now), countdown('nonsense', now)];
    }""")
    assert out == [{"text": "lands in 2 h 05 min", "state": "later"}, {"text": "lands in 30 min", "state": "soon"},
                   {"text": "landed 3 d 4 h ago", "state": "landed"}, {"text": "", "state": ""}]
