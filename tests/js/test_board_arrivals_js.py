"""board-arrivals.js: which reports of a refreshed board just arrived (and so
may alert), by the server's times, not by what the page happened to list."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

AFTER = "2026-03-01T09:58:00Z"  # the previous look (10:00:00Z) less the slack


def arrived(page: Any, rows: list[dict[str, str]], listed: list[str], after: str = AFTER) -> list[str]:
    return page.evaluate("""async ([rows, listed, after]) => {
      const { arrivedIds } = await import('/static/js/board-arrivals.js');
      return arrivedIds(rows, new Set(listed), after);
    }""", [rows, listed, after])


def test_old_reports_new_to_the_page_do_not_arrive(js_page: Any) -> None:
    rows = [{"id": "reopened", "received": "2026-03-01T05:00:00Z"},  # reopened, landed hours ago
            {"id": "moved-up", "received": "2026-03-01T09:57:59Z"},  # its flight moved onto this page
            {"id": "new", "received": "2026-03-01T10:00:04Z"}]
    assert arrived(js_page, rows, []) == ["new"]


def test_a_report_stored_after_the_look_it_was_received_before_still_arrives(js_page: Any) -> None:
    # Received (its receipt signed) before the previous look, stored after it.
    rows = [{"id": "late-stored", "received": "2026-03-01T09:59:50Z"},
            {"id": "same-second", "received": AFTER}]
    assert arrived(js_page, rows, []) == ["late-stored", "same-second"]


def test_a_report_listed_before_never_arrives_again(js_page: Any) -> None:
    rows = [{"id": "shown", "received": "2026-03-01T10:00:01Z"}, {"id": "new", "received": "2026-03-01T10:00:02Z"}]
    assert arrived(js_page, rows, ["shown", "gone"]) == ["new"]


def test_without_a_time_to_go_by_a_new_line_arrives(js_page: Any) -> None:
    rows = [{"id": "a", "received": "2026-03-01T05:00:00Z"}, {"id": "b", "received": ""}]
    assert arrived(js_page, rows, [], after="") == ["a", "b"]
    assert arrived(js_page, rows, []) == ["b"]
