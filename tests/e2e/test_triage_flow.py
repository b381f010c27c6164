"""Issue 4, browser test: a report typed in the crew app and delivered appears
in an officer's open queue without a reload, and the officer opens it and
reads exactly the text typed."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    officer_page,
    outbox,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_states,
)

pytestmark = pytest.mark.e2e

def test_delivered_report_appears_in_the_open_queue_and_opens_to_the_typed_text(
        browser: Any, server: LiveServer, page: Any) -> None:
    officer = officer_page(browser, server)
    try:
        # A marker that only survives if the page is never reloaded.
        officer.evaluate("() => { window.__sameDocument = 'yes'; }")
        known = officer.evaluate("() => [...document.querySelectorAll('#queue [data-report-id]')]"
                                 ".map(el => el.dataset.reportId)")

        narrative = "Triage e2e: man in 14C holds her passport — « je ne sais pas » <b>42</b> & 乗客"
        sign_in(page, server)
        wait_enrolled(page)
        fill_minimal(page, narrative, flight="ZZ4242", arr="MAN", urgency="immediate")
        submit(page, 1)
        wait_states(page, "delivered", 1)
        report_id = outbox(page)[0][0]
        assert report_id not in known

        selector = f'#queue [data-report-id="{report_id}"]'
        poll(officer, "(sel) => !!document.querySelector(sel)", arg=selector, timeout=20,
             message="the delivered report in the officer's queue")
        assert officer.evaluate("() => window.__sameDocument") == "yes"  # no reload happened
        row = officer.locator(selector)
        flight = officer.locator('#queue [data-flight="ZZ4242"]')
        assert "just-arrived" in (row.get_attribute("class") or "")
        assert "ZZ4242" in flight.inner_text() and "Immediate" in row.inner_text()
        assert "lands in" in flight.locator("time[data-countdown]").first.inner_text()
        assert "new report" in officer.locator("#queue-status").inner_text()

        row.locator("a.ref").click()
        officer.wait_for_url(f"{server.url}/triage/reports/{report_id}")
        assert officer.locator("#narrative").text_content() == narrative
        assert server.db_rows("SELECT count(*) AS n FROM audit_event WHERE action = 'report_opened'"
                              " AND subject = ?", (f"report:{report_id}",))[0]["n"] == 1
    finally:
        officer.context.close()


def test_a_refresh_that_never_answers_does_not_stop_the_queue(browser: Any, server: LiveServer) -> None:
    """Officers watch this page for hours: one hung request must not freeze it."""
    officer = officer_page(browser, server)
    ctx = officer.context
    try:
        hung: list[Any] = []
        ctx.route("**/triage/queue.json*", lambda route: hung.append(route))  # never answered
        ctx.add_init_script("window.__TRIAGE_CONFIG = {refreshMs: 300, timeoutMs: 700};")
        officer.reload()
        poll(officer, "() => document.getElementById('queue-status').textContent.includes('Could not refresh')",
             timeout=10, message="the hung refresh given up")
        ctx.unroute("**/triage/queue.json*")
        poll(officer, "() => document.getElementById('queue-status').dataset.state !== 'error'",
             timeout=10, message="the queue refreshing again")
        assert len(hung) >= 1
    finally:
        ctx.close()
