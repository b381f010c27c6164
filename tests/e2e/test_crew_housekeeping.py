"""What stays on the tablet: delivered notes (flight header and reference in
clear) go by themselves 12 hours after their arrival time (or after their
delivery, when that came later), at app start and on each delivery pass, or
at once with "Clear delivered" (two taps). Queued, sending and rejected notes
are never removed by themselves; a rejected one goes only when the crew
dismisses it."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import LiveServer, outbox, poll, wait_ready

pytestmark = pytest.mark.e2e

PUT = """async (records) => {
  const { withDb } = await import('/static/js/store.js');
  const hours = (h) => new Date(Date.now() + h * 3600 * 1000).toISOString().slice(0, 19) + 'Z';
  await withDb(async (d) => {
    const tx = d.transaction('outbox', 'readwrite');
    for (const [id, state, staHours, deliveredHours] of records) {
      const r = {id, state, header: {id, flight: 'ZZ9', dep: 'LOS', arr: 'LHR', sta: hours(staHours), urgency: 'routine',
                                     created: hours(staHours - 6)},
                 queued_at: hours(staHours - 6), attempts: 0, last_error: null};
      if (state === 'delivered') {
        const at = hours(deliveredHours ?? staHours - 5);
        r.delivered_at = at;
        r.receipt = {reference: 'REF-' + id, received_at: at, envelope_sha256: 'x'};
      }
      else r.envelope = {protected: 'p', sealed: ['s'], signature: 'g'};
      if (state === 'rejected') r.error = {code: 'invalid_report', message: 'Not a valid report.'};
      await tx.store.put(r);
    }
    await tx.done;
  });
}"""
STORED = "async () => (await (await import('/static/js/outbox/store.js')).listReports()).map(r => r.id).sort()"


def shown(page: Any) -> list[str]:
    return sorted(r[0] for r in outbox(page))


def test_delivered_notes_are_pruned_and_cleared_but_nothing_else(page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_ready(page)
    page.evaluate(PUT, [
        ["old-delivered", "delivered", -13],    # landed 13 h ago: goes
        ["recent-delivered", "delivered", -11],  # landed 11 h ago: stays for now
        ["future-delivered", "delivered", 2],
        ["late-delivered", "delivered", -13, 0],          # landed 13 h ago, delivered now: stays
        ["late-old-delivered", "delivered", -30, -12.5],  # delivered 12.5 h ago, after landing: goes
        ["old-queued", "queued", -30],           # never removed by itself
        ["old-sending", "sending", -30],
        ["old-rejected", "rejected", -30],
    ])
    page.reload()  # app start prunes
    wait_ready(page)
    kept = ["future-delivered", "late-delivered", "old-queued", "old-rejected", "old-sending", "recent-delivered"]
    assert page.evaluate(STORED) == kept
    assert shown(page) == kept
    assert "REF-recent-delivered" in page.inner_text("#outbox")
    assert "REF-late-delivered" in page.inner_text("#outbox")

    # each delivery pass prunes too (here: "Send now", on a tablet not set up, sends nothing)
    page.evaluate(PUT, [["later-old-delivered", "delivered", -12.5]])
    page.click("#send-now")
    poll(page, STORED, lambda ids: ids == kept, message="pruned on the delivery pass")

    # "Clear delivered": the first tap only asks for a second one
    button = page.locator("#clear-delivered")
    assert button.is_visible() and button.inner_text() == "Clear delivered"
    button.click()
    assert button.inner_text() == "Tap again to clear"
    assert page.evaluate(STORED) == kept
    button.click()
    left = ["old-queued", "old-rejected", "old-sending"]
    poll(page, STORED, lambda ids: ids == left, message="delivered cleared")
    poll(page, "() => [...document.querySelectorAll('#outbox [data-report-id]')].map(li => li.dataset.reportId).sort()",
         lambda ids: ids == left, message="outbox view updated")
    assert not button.is_visible()  # nothing delivered left to clear
    assert "removed from this tablet" in page.inner_text("#delivery-status")

    # a rejected note goes only when dismissed, after its reason was shown
    rejected = page.locator('[data-report-id="old-rejected"]')
    assert "Reason: Not a valid report." in rejected.inner_text()
    assert page.locator('[data-report-id="old-queued"] [data-dismiss]').count() == 0
    rejected.locator("[data-dismiss]").click()
    poll(page, STORED, lambda ids: ids == ["old-queued", "old-sending"], message="rejected note dismissed")
