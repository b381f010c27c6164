"""Key rotation: an enrolled tablet picks up the new Border Force keys (both
suites) and receipt key when it starts online, and its next report is sealed
to the new X-Wing key and its receipt verifies."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    open_report,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_ready,
    wait_states,
)

pytestmark = pytest.mark.e2e

DEVICE = "async () => { const d = await (await import('/static/js/device.js')).getDevice(); return d && {keys: Object.fromEntries(d.recipients.map(r => [(r.suite || 'v1') + ' ' + r.owner, r.kid])), receipt: d.receipt_key.kid, previous: (d.previous_receipt_keys || []).map(k => k.kid)}; }"
BF1, BF2, ZZ1, ZZ2 = "v1 border_force", "v2 border_force", "v1 airline:ZZ", "v2 airline:ZZ"


def test_rotated_keys_are_picked_up(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    before = page.evaluate(DEVICE)
    assert set(before["keys"]) == {BF1, BF2, ZZ1, ZZ2}
    server.flask("rotate-key", "border_force", "--suite", "v2")
    server.flask("rotate-key", "border_force")
    server.flask("rotate-key", "receipt")
    page.reload()
    wait_ready(page)
    after = poll(page, DEVICE, lambda d: d and d["keys"][BF1] != before["keys"][BF1]
                 and d["keys"][BF2] != before["keys"][BF2] and d["receipt"] != before["receipt"],
                 message="new keys cached")
    assert (after["keys"][ZZ1], after["keys"][ZZ2]) == (before["keys"][ZZ1], before["keys"][ZZ2])  # the airline's keys did not change
    assert after["previous"] == [before["receipt"]]

    fill_minimal(page, "Sealed to the rotated key.")
    submit(page, 1)
    report_id = wait_states(page, "delivered", 1)[0][0]
    header, body = open_report(server, report_id)  # opens with the current Border Force key
    assert header["v"] == 2 and header["rcpt"] == [after["keys"][BF2], after["keys"][ZZ2]]
    assert body["narrative"] == "Sealed to the rotated key."


STATUS = "() => document.querySelector('#delivery-status').textContent"


def test_receipt_key_rotated_while_a_report_is_queued(context: Any, page: Any, server: LiveServer) -> None:
    """The receipt key rotates while a report waits offline; back online, with
    no reload, the tablet fetches the new key, verifies the receipt and the
    report is delivered. The status line names the kind of trouble honestly."""
    sign_in(page, server)
    wait_enrolled(page)
    before = page.evaluate(DEVICE)

    context.set_offline(True)
    fill_minimal(page, "Queued across a receipt key rotation.")
    submit(page, 1)
    wait_states(page, "queued", 1)
    poll(page, STATUS, lambda t: t and "No connection" in t, message="offline: no connection")

    server.flask("rotate-key", "receipt")
    # the server answers, but 503: that is "not available", not "no connection"
    unavailable = '{"error": {"code": "service_unavailable", "message": "Try again later."}}'
    context.route("**/api/v1/reports/batch",
                  lambda route: route.fulfill(status=503, content_type="application/json", body=unavailable))
    context.set_offline(False)
    status = poll(page, STATUS, lambda t: t and "not available" in t, message="server unavailable")
    assert "No connection" not in status
    context.unroute("**/api/v1/reports/batch")

    report_id = wait_states(page, "delivered", 1, timeout=15)[0][0]
    after = page.evaluate(DEVICE)
    assert after["receipt"] != before["receipt"] and after["previous"] == [before["receipt"]]
    status = poll(page, STATUS, lambda t: t and "Checked" in t, message="status after delivery")
    assert "No connection" not in status
    rows = server.db_rows("SELECT reference FROM report WHERE id = ?", (report_id,))
    assert len(rows) == 1 and rows[0]["reference"] in page.inner_text(f'[data-report-id="{report_id}"]')
