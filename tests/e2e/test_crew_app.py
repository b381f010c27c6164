"""More of the crew app: the landing banner, a storage failure that must not
lose the report, a deploy that offers a reload without losing the draft, and a
draft restored in a second window that is never sent as a second report (a
note's id is fixed when it is begun)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    poll,
    sign_in,
    submit,
    upcoming_sta,
    wait_enrolled,
    wait_ready,
    wait_service_worker,
    wait_states,
)

pytestmark = pytest.mark.e2e


IN_VIEW = """(sel) => { const r = document.querySelector(sel).getBoundingClientRect();
    return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight; }"""


def test_landing_banner_when_undelivered_and_landing_is_near(context: Any, page: Any, server: LiveServer) -> None:
    page.set_viewport_size({"width": 810, "height": 1080})  # an iPad, upright
    sign_in(page, server)
    wait_enrolled(page)
    context.set_offline(True)
    fill_minimal(page, "Landing soon, not sent.", sta=upcoming_sta(hours=0.3), urgency="immediate")
    page.check('[name="captain_informed"]')
    submit(page, 1)
    wait_states(page, "queued", 1)
    banner = page.locator("#landing-banner")
    banner.wait_for(state="visible")
    # after "Save and send" the crew are taken to the notice, far above the button, and it is focused
    poll(page, "() => document.activeElement?.id", lambda i: i == "landing-banner", message="banner focused")
    assert page.evaluate(IN_VIEW, "#landing-banner")
    text = banner.inner_text()
    # worded to be right although this crew member ticked "I have told the captain"
    assert "1 note for ZZ101 not yet delivered and landing in" in text
    assert "If the captain does not know yet, tell them now" in text and "Tell the captain now" not in text
    hotline = page.evaluate("() => document.querySelector('#crew-app').dataset.hotline")
    assert hotline and hotline in text and "24-hour line" in text
    assert "Not delivered yet and landing soon: see the notice at the top." in page.inner_text("#form-status")
    assert "Lands in" in page.inner_text("#outbox [data-report-id]")
    # urgency is a flight detail: kept for the next note like the others
    assert page.input_value('[name="urgency"]') == "immediate"
    assert page.input_value('[name="flight"]') == "ZZ101" and page.input_value('[name="narrative"]') == ""
    context.set_offline(False)
    wait_states(page, "delivered", 1)
    banner.wait_for(state="hidden")
    poll(page, "() => document.querySelector('#form-status').textContent", lambda t: t == "Saved, sealed and delivered.")


def test_storage_failure_says_not_queued_and_keeps_the_form(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    fill_minimal(page, "This must stay in the form.")
    page.evaluate("""() => { IDBObjectStore.prototype.add = function () {
        throw new DOMException('The quota has been exceeded.', 'QuotaExceededError'); }; }""")
    page.click("#submit-button")
    poll(page, "() => document.querySelector('#form-status').textContent", lambda t: "NOT queued" in (t or ""))
    assert "storage is full" in page.inner_text("#form-status")
    assert page.input_value('[name="narrative"]') == "This must stay in the form."
    assert page.evaluate("() => document.querySelectorAll('#outbox [data-report-id]').length") == 0


DRAFT_ID = "async () => ((await (await import('/static/js/drafts.js')).loadDraft()) || {}).report_id || null"


def test_a_draft_restored_in_a_second_window_is_not_sent_twice(context: Any, page: Any, server: LiveServer) -> None:
    def stored() -> int:  # the live server is shared: count what this test adds
        return len(server.db_rows("SELECT id FROM report"))

    before = stored()
    sign_in(page, server)
    wait_enrolled(page)
    wait_ready(page)
    fill_minimal(page, "Two windows, one note: passenger in 23C held by a companion.")
    draft_id = poll(page, DRAFT_ID, message="draft saved with its id")
    second = context.new_page()
    second.goto(server.url + "/")
    wait_ready(second)
    poll(second, "() => document.querySelector('#form-status').textContent",
         lambda t: t == "Your unfinished note was restored.", message="restored in the second window")
    submit(page, 1)
    wait_states(page, "delivered", 1)
    assert page.evaluate("async () => (await (await import('/static/js/outbox/store.js')).listReports())[0].id") == draft_id

    # the other window hears of it at once, and keeps its text
    status = poll(second, "() => document.querySelector('#form-status').textContent",
                  lambda t: "already saved from another window" in (t or ""), message="told it was sent already")
    assert "nothing more was sent" in status
    assert second.input_value('[name="narrative"]') == "Two windows, one note: passenger in 23C held by a companion."
    assert second.evaluate("async () => (await (await import('/static/js/outbox/store.js')).listReports()).length") == 1
    assert stored() == before + 1
    # a send from there now is a new note, on purpose
    second.click("#submit-button")
    wait_states(second, "delivered", 2)
    assert stored() == before + 2
    second.close()


def test_a_note_begun_again_on_an_emptied_form_gets_a_new_id(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    wait_ready(page)
    page.fill('[name="narrative"]', "First words, then thought better of.")
    first = poll(page, DRAFT_ID, message="draft saved with its id")
    page.fill('[name="narrative"]', "")
    poll(page, DRAFT_ID, lambda v: v is None, message="draft wiped")
    page.fill('[name="narrative"]', "Another note altogether.")
    second = poll(page, DRAFT_ID, message="the new draft saved")
    assert second != first


def test_new_version_offers_reload_and_keeps_the_draft(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    old = page.evaluate("async () => (await caches.keys()).filter(k => k.startsWith('cabin-notes-shell-'))")
    assert len(old) == 1
    page.fill('[name="narrative"]', "Half-written note that must survive the update.")
    poll(page, "async () => !!(await (await import('/static/js/drafts.js')).loadDraft())", message="draft saved")

    # "deploy": the shell's content changes (here the hotline setting), so does CACHE_VERSION
    server.stop()
    server.env["CREWREPORT_HOTLINE"] = "0300 000 0001"
    try:
        server.start()
        page.evaluate("async () => (await navigator.serviceWorker.getRegistration('/')).update()")
        page.locator("#update-banner").wait_for(state="visible")
        page.click("#reload-button")
        poll(page, "() => document.querySelector('#crew-app')?.dataset.hotline", lambda h: h == "0300 000 0001",
             message="the new shell")
        wait_ready(page)
        assert page.input_value('[name="narrative"]') == "Half-written note that must survive the update."
        new = poll(page, "async () => (await caches.keys()).filter(k => k.startsWith('cabin-notes-shell-'))",
                   lambda keys: keys and keys != old)
        assert len(new) == 1  # the old cache is gone
    finally:
        server.stop()
        server.env.pop("CREWREPORT_HOTLINE", None)
        server.start()
