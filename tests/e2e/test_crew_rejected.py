"""Issue 3, test 5: a report from a device revoked while it was offline is
shown `rejected` with the server's reason, and is not sent again."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    PASSWORD,
    LiveServer,
    device_id,
    fill_minimal,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_states,
)

pytestmark = pytest.mark.e2e


def test_rejected_report_shows_reason_and_stops_retrying(context: Any, page: Any, server: LiveServer) -> None:
    batches: list[str] = []
    context.on("request", lambda r: r.url.endswith("/api/v1/reports/batch") and batches.append(r.url))  # type: ignore[func-returns-value]
    sign_in(page, server)
    wait_enrolled(page)
    dev = device_id(page)

    page.set_viewport_size({"width": 810, "height": 1080})  # an iPad, upright
    context.set_offline(True)
    fill_minimal(page, "Written while the device was being revoked.")
    submit(page, 1)
    wait_states(page, "queued", 1)
    # no landing notice (arrival in 3 h): the new note is brought into view instead
    assert page.is_hidden("#landing-banner")
    poll(page, """() => { const li = document.querySelector('#outbox [data-report-id]'); const r = li.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight; }""", message="new note scrolled into view")
    assert page.inner_text("#form-status").startswith("Saved and sealed.")
    server.flask("revoke-device", dev)
    context.set_offline(False)  # `online` fires: delivery at once

    rejected = wait_states(page, "rejected", 1)
    report_id, _, text = rejected[0]
    # the server's plain words, not its code (kept for tests in data-code); what to do, said once
    assert "Reason: This device was revoked by the airline." in text and "revoked_device" not in text
    assert page.get_attribute(f'[data-report-id="{report_id}"] .report-reason', "data-code") == "revoked_device"
    assert page.inner_text("#app-view").count("24-hour line") == 1
    # the status line no longer says it will be sent
    status = poll(page, "() => document.querySelector('#form-status').textContent", lambda t: "not accepted" in (t or ""))
    assert "Saved and sealed" not in status and "will be sent" not in status
    poll(page, "() => document.querySelector('#device-status').dataset.state", lambda s: s == "revoked",
         message="device shown as revoked")
    assert page.is_visible("#reenroll-button")
    assert server.db_rows("SELECT id FROM report WHERE id = ?", (report_id,)) == []

    sent = len(batches)
    page.click("#send-now")  # even asked to, nothing rejected is sent again
    page.wait_for_timeout(3000)  # back-off in tests is 0.5 s to 1.5 s: several timer periods
    assert len(batches) == sent
    assert page.evaluate("() => document.querySelector('[data-report-id]').dataset.state") == "rejected"

    # the tablet signed its web session out after enrolling, so setting it up
    # again starts with a clear sign-in step, then enrolls a new device by itself
    assert "sign in" in page.inner_text("#reenroll-button").lower()
    page.click("#reenroll-button")
    page.wait_for_url(server.url + "/auth/login?next=/")
    page.fill('input[name="username"]', "demo-crew")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(server.url + "/")
    poll(page, "() => document.querySelector('#device-status')?.dataset.enrolled", lambda s: s == "true",
         message="enrolled again")
    assert device_id(page) != dev
    assert page.evaluate("() => document.querySelector('[data-report-id]').dataset.state") == "rejected"

    # the rejected note goes only when the crew dismisses it, after reading the reason
    page.click(f'[data-report-id="{report_id}"] [data-dismiss]')
    poll(page, "() => document.querySelectorAll('#outbox [data-report-id]').length", lambda n: n == 0,
         message="rejected note dismissed")
    assert page.evaluate("async () => (await (await import('/static/js/outbox/store.js')).listReports()).length") == 0


def test_revoked_tablet_says_so_on_start_before_a_note_is_written(context: Any, page: Any, server: LiveServer) -> None:
    """Revoked while nobody was writing: opened online, the app asks the server
    (GET /api/v1/devices/<id>) and says so before anyone types; what is typed
    then is not queued and stays in the form."""
    batches: list[str] = []
    context.on("request", lambda r: r.url.endswith("/api/v1/reports/batch") and batches.append(r.url))  # type: ignore[func-returns-value]
    sign_in(page, server)
    wait_enrolled(page)
    assert page.is_hidden("#form-device-notice")
    dev = device_id(page)
    server.flask("revoke-device", dev)

    page.reload()
    poll(page, "() => document.querySelector('#device-status')?.dataset.state", lambda s: s == "revoked",
         message="device shown as revoked on start")
    assert page.get_attribute("#device-status", "data-enrolled") != "true"
    message = page.inner_text("#device-message")
    assert "revoked by the airline" in message and "sign in to set it up again" in message.lower()
    assert "Notes can be written offline" not in message
    assert page.is_visible("#reenroll-button")
    notice = page.inner_text("#form-device-notice")
    assert page.is_visible("#form-device-notice")
    assert "cannot be sent from this tablet until it is set up again" in notice
    assert page.evaluate("async () => (await (await import('/static/js/device.js')).getDevice()).revoked.code") == "revoked_device"

    # writing anyway: refused at once, the text kept in the form, nothing queued or sent
    fill_minimal(page, "Typed after the revocation.")
    page.click("#submit-button")
    poll(page, "() => document.querySelector('#form-status').textContent", lambda t: "NOT queued" in (t or ""))
    assert page.input_value('#report-form [name="narrative"]') == "Typed after the revocation."
    assert page.evaluate("async () => (await (await import('/static/js/outbox/store.js')).listReports()).length") == 0
    assert batches == []
