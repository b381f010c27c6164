"""Setting a revoked tablet up again keeps the receipt keys it had: a note
the intake took before the revocation, whose answer was lost on the way, is
answered when sent again with the receipt signed back then, by a receipt key
rotated since; the new registration must still be able to check it."""
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

RECEIPT_KIDS = """async () => { const d = await (await import('/static/js/device.js')).getDevice();
  return d && {receipt: d.receipt_key.kid, previous: (d.previous_receipt_keys || []).map(k => k.kid)}; }"""


def test_a_note_answered_before_revocation_is_delivered_after_setting_up_again(context: Any, page: Any,
                                                                               server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    first = page.evaluate(RECEIPT_KIDS)["receipt"]
    dev = device_id(page)

    # The intake takes the note, but its answer is lost on the way back.
    taken: list[int] = []

    def lose_answer(route: Any) -> None:
        taken.append(route.fetch().status)
        route.abort("connectionreset")

    context.route("**/api/v1/reports/batch", lose_answer)
    fill_minimal(page, "Taken by the intake, its answer lost.")
    submit(page, 1)
    poll(page, "() => true", lambda _: bool(taken), message="the intake took the note")
    context.unroute("**/api/v1/reports/batch")
    # No way through for the notes until the tablet is set up again (a link too poor for them, say).
    context.route("**/api/v1/reports/batch", lambda route: route.abort("internetdisconnected"))
    report_id = wait_states(page, "queued", 1)[0][0]
    assert taken[0] == 200 and server.db_rows("SELECT id FROM report WHERE id = ?", (report_id,))

    # Meanwhile the receipt key is rotated and the airline revokes the tablet.
    server.flask("rotate-key", "receipt")
    server.flask("revoke-device", dev)
    page.reload()
    poll(page, "() => document.querySelector('#device-status')?.dataset.state", lambda s: s == "revoked",
         message="shown as revoked")

    # Set up again (sign in, a new registration by itself).
    page.click("#reenroll-button")
    page.wait_for_url(server.url + "/auth/login?next=/")
    page.fill('input[name="username"]', "demo-crew")
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(server.url + "/")
    poll(page, "() => document.querySelector('#device-status')?.dataset.enrolled", lambda s: s == "true",
         message="enrolled again")
    assert device_id(page) != dev
    assert first in page.evaluate(RECEIPT_KIDS)["previous"]
    context.unroute("**/api/v1/reports/batch")

    # Sent again: the intake answers the receipt it signed the first time; it verifies.
    page.click("#send-now")
    wait_states(page, "delivered", 1, timeout=15)
    reference = server.db_rows("SELECT reference FROM report WHERE id = ?", (report_id,))[0]["reference"]
    assert reference in page.inner_text(f'[data-report-id="{report_id}"]')
