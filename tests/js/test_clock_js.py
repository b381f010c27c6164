"""clock.js: the offset from the server's Date header corrects the tablet's
clock; it is kept for an offline start; an answer too slow, or with no usable
Date, teaches nothing."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_offset_from_the_date_header_and_round_trip(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const c = await import('/static/js/clock.js');
      const t0 = Date.parse('2026-12-01T15:00:00Z');
      return [
        c.offsetFrom('Tue, 01 Dec 2026 20:00:00 GMT', t0, t0 + 200),   // the tablet is 5 h slow
        c.offsetFrom('Tue, 01 Dec 2026 14:59:30 GMT', t0, t0 + 1000),  // 30 s fast
        c.offsetFrom('Tue, 01 Dec 2026 20:00:00 GMT', t0, t0 + 20000), // too slow an answer
        c.offsetFrom(null, t0, t0 + 10), c.offsetFrom('yesterday-ish', t0, t0 + 10),
        c.offsetFrom('Tue, 01 Dec 2026 20:00:00 GMT', t0, t0 - 5),
      ];
    }""")
    assert out[0] == 5 * 3600000 + 500 - 100
    assert out[1] == -30000 + 500 - 500
    assert out[2:] == [None, None, None, None]


def test_now_is_corrected_kept_and_learnt_through_fetch(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const c = await import('/static/js/clock.js');
      localStorage.removeItem('cabin-notes-clock');
      c.setOffset(0);
      const fake = async () => new Response('{}', {headers: {Date: new Date(Date.now() + 3 * 3600000).toUTCString()}});
      const learnt = await c.observing(fake)('/api/v1/keys');
      const skew = c.now().getTime() - Date.now();
      const kept = JSON.parse(localStorage.getItem('cabin-notes-clock'));
      const noDate = await c.observing(async () => new Response('{}'))('/x');
      const after = c.offset();
      c.setOffset(0);
      return {status: learnt.status, skew, kept: kept.offset_ms, noDate: noDate.status, after};
    }""")
    assert out["status"] == 200 and out["noDate"] == 200
    assert abs(out["skew"] - 3 * 3600000) < 2000
    assert abs(out["kept"] - 3 * 3600000) < 2000
    assert abs(out["after"] - 3 * 3600000) < 2000  # an answer with no Date leaves it as it was
