"""A tablet whose storage is full: the crew can still clear delivered notes
to make room, in Chromium with a real quota (set through the DevTools
protocol), not a stub."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import FILL_TO_THE_BYTE, NOISE, limit_storage, open_app_on_full_storage, poll

pytestmark = pytest.mark.e2e


# Queued notes of about 20 KB, every other one then delivered (its envelope
# dropped, its receipt kept), until the storage refuses a note.
FILL = """async ({receiptBytes}) => {
  const store = await import('/static/js/outbox/store.js');
  """ + NOISE + """
  const header = (id) => ({id, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'});
  const envelope = () => ({protected: 'p', sealed: [noise(15000)], signature: 'g'});
  let refused = null;
  for (let i = 0; i < 200 && !refused; i++) {
    try {
      const r = await store.enqueue(header(`note-${i}`), envelope());
      if (i % 2 === 0) {
        const { envelope: _, ...rest } = r;
        await store.putAll([{...rest, state: 'delivered', delivered_at: new Date().toISOString(),
                             receipt: {reference: `CR-${i}`, raw: noise(receiptBytes)}}]);
      }
    } catch (err) {
      refused = err.name;
    }
  }
  return {refused, delivered: (await store.listReports()).filter(r => r.state === 'delivered').length};
}"""


@pytest.fixture
def full_page(js_browser: Any, static_server: str) -> Iterator[Any]:
    """A page of a fresh context whose origin may store harness.QUOTA_BYTES."""
    ctx = js_browser.new_context(service_workers="block")
    page = ctx.new_page()
    limit_storage(ctx, page, static_server)
    yield page
    ctx.close()


def test_clearing_delivered_notes_makes_room_when_the_storage_is_full(full_page: Any) -> None:
    filled = full_page.evaluate(FILL, {"receiptBytes": 6000})
    assert filled["refused"] == "QuotaExceededError" and filled["delivered"] > 3
    assert full_page.evaluate(FILL_TO_THE_BYTE) > 3  # not even the list of cleared ids fits with them
    out = full_page.evaluate("""async () => {
      const store = await import('/static/js/outbox/store.js');
      """ + NOISE + """
      const cleared = await store.clearDelivered();
      const left = await store.listReports();
      const envelope = {protected: 'p', sealed: [noise(15000)], signature: 'g'};
      let fresh = null, again = null;
      try { fresh = (await store.enqueue({id: 'after-clearing', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, envelope)).state; }
      catch (err) { fresh = err.name; }
      // a cleared note's id is still remembered: a stale window cannot send it again
      try { await store.enqueue({id: 'note-0', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, envelope); again = 'queued'; }
      catch (err) { again = err.name; }
      return {cleared, states: [...new Set(left.map(r => r.state))], fresh, again};
    }""")
    assert out == {"cleared": filled["delivered"], "states": ["queued"], "fresh": "queued", "again": "AlreadyQueued"}


def test_clearing_works_when_not_even_a_small_write_fits(full_page: Any) -> None:
    """Filled to the last byte (smaller and smaller notes until none fits),
    with delivered entries too small to free much: they are removed all the
    same, and every queued note is kept."""
    filled = full_page.evaluate(FILL, {"receiptBytes": 0})
    assert filled["refused"] == "QuotaExceededError" and filled["delivered"] > 3
    out = full_page.evaluate("""async () => {
      const store = await import('/static/js/outbox/store.js');
      let refused = 0;
      for (let i = 0, size = 8000; size >= 1 && i < 500; i++) {
        try {
          await store.enqueue({id: `small-${i}`, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'},
                              {protected: 'p', sealed: [crypto.randomUUID().repeat(Math.ceil(size / 36))], signature: 'g'});
        } catch (err) {
          if (err.name !== 'QuotaExceededError') throw err;
          refused += 1;
          size = Math.floor(size / 4);
        }
      }
      const before = (await store.listReports()).filter(r => r.state === 'queued').length;
      const cleared = await store.clearDelivered();
      const left = await store.listReports();
      return {refused, cleared, before, states: [...new Set(left.map(r => r.state))], queued: left.length};
    }""")
    assert out["refused"] > 3
    assert out["cleared"] == filled["delivered"]
    assert out["states"] == ["queued"] and out["queued"] == out["before"]




def test_a_note_that_cannot_be_kept_as_a_draft_says_so(full_page: Any, static_server: str) -> None:
    """The autosave of the note being written fails on a full storage: the
    crew must be told at once, not find out after "Hide" and a relaunch that
    the words were never kept (the autosave used to fail without a word)."""
    page = full_page
    open_app_on_full_storage(page, static_server, "dev-full-0001")

    page.click("#f-narrative")
    page.keyboard.type("Words the tablet has no room to keep.")
    status = page.locator("#form-status")
    status.wait_for(state="attached")
    page.wait_for_function("() => /not saved on this tablet/.test(document.querySelector('#form-status').textContent)",
                           timeout=5000)
    assert "storage is full" in status.inner_text()
    assert "free space on it, or clear delivered notes" in status.inner_text()
    assert page.get_attribute("#form-status", "class") == "form-status form-status-error"
    drafts = page.evaluate("async () => (await import('/static/js/store.js')).withDb((d) => d.count('drafts'))")
    assert drafts == 0

    # Room made: the next save goes through and the warning goes.
    page.evaluate("async () => { const { withDb } = await import('/static/js/store.js'); await withDb((d) => d.clear('outbox')); }")
    page.keyboard.type(" Now kept.")
    page.wait_for_function("() => !/not saved on this tablet/.test(document.querySelector('#form-status').textContent)",
                           timeout=5000)
    assert page.evaluate("async () => (await import('/static/js/store.js')).withDb((d) => d.count('drafts'))") == 1
    page.unroute("**/api/v1/**")


def test_a_save_the_full_storage_refused_is_tried_again_once_there_is_room(full_page: Any, static_server: str) -> None:
    """The crew does as the warning says (makes room), then taps Hide without
    typing more: the words are saved then. A refused save used to count as
    done, so nothing saved them until the next change, and Hide lost them."""
    page = full_page
    open_app_on_full_storage(page, static_server, "dev-full-0002")
    page.click("#f-narrative")
    page.keyboard.type("Words kept once there is room.")
    page.locator("#f-narrative").blur()  # as a tap elsewhere (on Clear delivered, say): its save is refused too
    page.wait_for_function("() => /not saved on this tablet/.test(document.querySelector('#form-status').textContent)",
                           timeout=5000)

    page.evaluate("async () => { const { withDb } = await import('/static/js/store.js'); await withDb((d) => d.clear('outbox')); }")
    page.click("#hide-button")  # nothing typed since the refused save
    drafts = "async () => (await import('/static/js/store.js')).withDb((d) => d.count('drafts'))"
    poll(page, drafts, lambda n: n == 1, timeout=5, message="the draft saved at Hide")
    assert "not saved on this tablet" not in page.evaluate("document.querySelector('#form-status').textContent")
