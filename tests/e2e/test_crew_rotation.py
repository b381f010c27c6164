"""Key rotation: an enrolled tablet picks up the new Border Force and receipt
keys when it starts online, and its next report is sealed to the new key and
its receipt verifies."""
from __future__ import annotations

import pytest

from tests.e2e.harness import fill_minimal, open_report, poll, sign_in, submit, wait_enrolled, wait_ready, wait_states

pytestmark = pytest.mark.e2e

DEVICE = "async () => { const d = await (await import('/static/js/device.js')).getDevice(); return d && {rcpt: d.recipients.map(r => r.kid), receipt: d.receipt_key.kid, previous: (d.previous_receipt_keys || []).map(k => k.kid)}; }"


def test_rotated_keys_are_picked_up(page, server):
    sign_in(page, server)
    wait_enrolled(page)
    before = page.evaluate(DEVICE)
    server.flask("rotate-key", "border_force")
    server.flask("rotate-key", "receipt")
    page.reload()
    wait_ready(page)
    after = poll(page, DEVICE, lambda d: d and d["rcpt"][0] != before["rcpt"][0] and d["receipt"] != before["receipt"],
                 message="new keys cached")
    assert after["rcpt"][1:] == before["rcpt"][1:]  # the airline's key did not change
    assert after["previous"] == [before["receipt"]]

    fill_minimal(page, "Sealed to the rotated key.")
    submit(page, 1)
    report_id = wait_states(page, "delivered", 1)[0][0]
    header, body = open_report(server, report_id)  # opens with the current Border Force key
    assert header["rcpt"][0] == after["rcpt"][0]
    assert body["narrative"] == "Sealed to the rotated key."
