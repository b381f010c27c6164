"""Limits that must not lose a note or stall delivery: a note too large for the
server stays in the form; a batch request that never answers times out and
back-off sends it again."""
from __future__ import annotations

import time
from typing import Any

import pytest

from tests.e2e.harness import LiveServer, fill_minimal, poll, sign_in, submit, wait_enrolled, wait_states

pytestmark = pytest.mark.e2e

# Test-only settings on top of the harness's short back-off (the real values are unit-tested).
SHORT_TIMEOUT = "window.__CABIN_NOTES_CONFIG = Object.assign({}, window.__CABIN_NOTES_CONFIG, {requestTimeout: 1500});"
SMALL_LIMIT = "window.__CABIN_NOTES_CONFIG = Object.assign({}, window.__CABIN_NOTES_CONFIG, {maxEnvelopeBytes: 20000});"
STORED = "async () => (await (await import('/static/js/outbox/store.js')).listReports()).length"


def test_a_note_too_large_to_send_stays_in_the_form(context: Any, page: Any, server: LiveServer) -> None:
    context.add_init_script(SMALL_LIMIT)  # the real limit (320 KiB) covers the schema's worst case
    batches: list[str] = []
    context.on("request", lambda r: r.url.endswith("/api/v1/reports/batch") and batches.append(r.url))  # type: ignore[func-returns-value]
    sign_in(page, server)
    wait_enrolled(page)
    narrative = "乗" * 5000  # passes the form (5000 characters), but seals to about 40 KB
    fill_minimal(page, narrative)
    page.click("#submit-button")
    poll(page, "() => document.querySelector('#form-status').textContent", lambda t: "check the marked fields" in (t or ""))
    error = page.inner_text(".field:has(#f-narrative) .field-error")
    assert "too long to send; shorten the text or the descriptions" in error
    assert page.evaluate("() => document.activeElement.name") == "narrative"
    assert page.input_value('[name="narrative"]') == narrative  # not cleared
    assert page.input_value('[name="flight"]') == "ZZ101"
    assert page.evaluate(STORED) == 0 and batches == []  # not queued, nothing sent

    # shortened, it is queued
    page.fill('[name="narrative"]', "乗" * 1000)
    submit(page, 1)


def test_a_batch_request_that_never_answers_times_out_and_is_retried(context: Any, page: Any, server: LiveServer) -> None:
    context.add_init_script(SHORT_TIMEOUT)
    sent: list[float] = []
    hung: list = []

    def hang(route: Any) -> None:  # the request reaches nothing and is never answered
        sent.append(time.monotonic())
        hung.append(route)

    sign_in(page, server)
    wait_enrolled(page)
    context.route("**/api/v1/reports/batch", hang)
    fill_minimal(page, "Sent while the server hangs.")
    submit(page, 1)
    # the first request times out (1.5 s here, 30 s for real), back-off sends it again
    poll(page, "() => 0", lambda _: len(sent) >= 2, timeout=10, message="a retry after the timeout")
    assert sent[1] - sent[0] >= 1.4
    status = page.inner_text("#delivery-status")
    assert "No connection" in status and "Trying again" in status
    assert page.evaluate("() => document.querySelector('[data-report-id]').dataset.state") in ("queued", "sending")

    # released: the next try gets through (the one still hanging is cut, so as not to wait out its deadline)
    context.unroute("**/api/v1/reports/batch")
    for route in hung:
        try:
            route.abort()
        except Exception:  # noqa: BLE001 - the page gave up on it already
            pass
    report_id = wait_states(page, "delivered", 1, timeout=15)[0][0]
    assert len(server.db_rows("SELECT id FROM report WHERE id = ?", (report_id,))) == 1


def test_a_set_up_refused_as_too_busy_is_tried_again_after_the_named_wait(page: Any, server: LiveServer) -> None:
    """Many tablets set up with one crew account at once meet the enrollment
    limit (429, Retry-After): the tablet says so and tries again by itself."""
    refused: list[float] = []
    passed: list[float] = []

    def busy_once(route: Any) -> None:
        if route.request.method == "POST" and not refused:
            refused.append(time.monotonic())
            route.fulfill(status=429, headers={"Retry-After": "2", "Content-Type": "application/json"},
                          body='{"error": {"code": "rate_limited", "message": "Too many requests; try again in 2 s."}}')
            return
        passed.append(time.monotonic())
        route.continue_()

    page.route("**/api/v1/devices", busy_once)
    sign_in(page, server)
    poll(page, "() => document.querySelector('#device-status')?.textContent || ''",
         lambda t: "Many tablets are being set up right now; trying again in 2 s" in t, message="the wait said")
    wait_enrolled(page)
    # (the real server may itself ask for one more wait: its limits are on here)
    assert len(refused) == 1 and passed
    assert passed[0] - refused[0] >= 1.9  # after the wait the server named, not at once
