"""The crew app's page (the real shell, with a device record but no keys, and
the server's device check unanswered): the landing banner counts rejected
notes and is not rebuilt needlessly; errors inside closed sections are shown
and named; the top bar with "Hide" stays in view without covering the field
in focus; long text is not cut by maxlength; an unusual arrival is questioned
once."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from typing import Any

import pytest

from tests.e2e.harness import SET_UP_TABLET

pytestmark = pytest.mark.e2e

PUT = """async (records) => {
  const { withDb } = await import('/static/js/store.js');
  const at = (min) => new Date(Date.now() + min * 60000).toISOString().slice(0, 19) + 'Z';
  await withDb(async (d) => {
    const tx = d.transaction('outbox', 'readwrite');
    await tx.store.clear();
    for (const [id, state, staMin] of records) {
      const r = {id, state, header: {id, flight: 'ZZ7', dep: 'LOS', arr: 'LHR', sta: at(staMin), urgency: 'routine', created: at(-60)},
                 queued_at: at(-60), attempts: 1, last_error: null, envelope: {protected: 'p', sealed: ['s'], signature: 'g'}};
      if (state === 'rejected') r.error = id.startsWith('rev')
        ? {code: 'revoked_device', message: 'This device was revoked by the airline. Tell the captain or call the 24-hour line.'}
        : {code: 'invalid_report', message: 'Not a valid report.'};
      await tx.store.put(r);
    }
    await tx.done;
  });
}"""




@pytest.fixture
def shell(js_page: Any, static_server: str) -> Iterator[Any]:
    page = js_page
    page.set_viewport_size({"width": 768, "height": 640})
    page.goto(static_server + "/static/css/crew.css")
    page.evaluate(SET_UP_TABLET, "dev-shell-0001")  # the form opens only then
    page.route("**/api/v1/devices/*", lambda route: route.abort("internetdisconnected"))
    page.goto(static_server + "/")
    page.wait_for_selector("#crew-app[data-ready=true]", state="attached")
    page.wait_for_selector("#form-body:not([disabled])", state="attached")
    yield page
    page.unroute("**/api/v1/devices/*")


def test_banner_counts_rejected_notes_and_is_not_rebuilt_when_unchanged(shell: Any) -> None:
    page = shell
    page.evaluate(PUT, [["rej-1", "rejected", 10.5]])  # not accepted; lands in 10 minutes and a half (floored: "10 min")
    page.evaluate("() => window.__cabinNotes.renderOutbox()")
    banner = page.locator("#landing-banner")
    banner.wait_for(state="visible")
    hotline = page.evaluate("() => document.querySelector('#crew-app').dataset.hotline")
    text = banner.inner_text()
    # right whether or not the captain was told already; no order in large type
    assert "1 note for ZZ7 not yet delivered (1 not accepted, cannot be re-sent) and landing in 10 min." in text
    assert "If the captain does not know yet, tell them now; or call the 24-hour line: " + hotline in text
    assert "Tell the captain now" not in text
    item = page.locator('[data-report-id="rej-1"]')
    # the banner says what to do, so the note does not say it again; no internal code in the words
    assert "Not delivered and cannot be re-sent. See the notice at the top." in item.inner_text()
    assert page.inner_text("#app-view").count("24-hour line") == 1
    assert "Reason: Not a valid report." in item.inner_text() and "invalid_report" not in item.inner_text()
    assert item.locator(".report-reason").get_attribute("data-code") == "invalid_report"

    # role="alert": re-rendering with the same words leaves its DOM alone (no re-announcement)
    mutations = page.evaluate("""async () => {
      const banner = document.querySelector('#landing-banner');
      let n = 0;
      const obs = new MutationObserver((list) => { n += list.length; });
      obs.observe(banner, {subtree: true, childList: true, characterData: true, attributes: true});
      for (let i = 0; i < 3; i++) await window.__cabinNotes.renderOutbox();
      await new Promise(r => setTimeout(r, 50));
      obs.disconnect();
      return n;
    }""")
    assert mutations == 0

    # a queued note as well: the words change, so the banner does
    page.evaluate(PUT, [["rej-1", "rejected", 10], ["q-1", "queued", 10]])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")
    text = banner.inner_text()
    assert "2 notes for ZZ7 not yet delivered (1 not accepted, cannot be re-sent)" in text

    # dismissed: nothing undelivered is left, the banner goes
    page.evaluate(PUT, [["q-1", "queued", 300]])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")
    banner.wait_for(state="hidden")
    page.evaluate(PUT, [])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")


def test_errors_in_closed_sections_are_opened_named_and_focused_below_the_sticky_bar(shell: Any) -> None:
    page = shell
    assert page.get_attribute("#f-narrative", "maxlength") is None
    page.click("#add-person")
    assert page.get_attribute('[data-person] [name="description"]', "maxlength") is None
    page.click('[data-person] .remove-person')

    # keyboard: a control that sits under the bar is scrolled out from under it when focused
    page.focus("details.more > summary")
    page.evaluate("() => window.scrollBy(0, document.querySelector('#add-person').getBoundingClientRect().top - 20)")
    page.keyboard.press("Shift+Tab")
    focused = page.evaluate("""() => ({id: document.activeElement.id, top: document.activeElement.getBoundingClientRect().top,
        bar: document.querySelector('#app-view .appbar').getBoundingClientRect().bottom})""")
    assert focused["id"] == "add-person" and focused["top"] >= focused["bar"], focused

    page.fill('[name="flight"]', "ZZ101")
    page.fill('[name="dep"]', "LOS")
    page.fill('[name="arr"]', "LHR")
    page.fill('[name="lands_in"]', "3:00")
    page.fill('[name="narrative"]', "Languages error.")
    page.click("details.more > summary")
    page.fill('[name="crew_id"]', "C1")
    page.fill('[name="languages"]', ",".join(["en"] * 11))
    page.click("details.more > summary")  # closed again
    assert page.evaluate("() => document.querySelector('details.more').open") is False

    # scrolled to the end of the page: "Hide" is still on screen and on top
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    assert page.evaluate("() => scrollY") > 500
    hide = page.evaluate("""() => { const r = document.querySelector('#hide-button').getBoundingClientRect();
        return {top: r.top, bottom: r.bottom, onTop: document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2)?.id}; }""")
    assert hide["top"] >= 0 and hide["bottom"] <= 640 and hide["onTop"] == "hide-button"

    page.click("#submit-button")
    page.wait_for_selector(".field-error")
    assert page.evaluate("() => document.querySelector('details.more').open") is True
    assert page.evaluate("() => document.activeElement.name") == "languages"
    assert page.is_visible(".field-error")
    assert "Languages spoken" in page.inner_text("#form-status")

    # the first error far above (a person with no role): focus scrolls up to it, and the bar does not cover it
    page.fill('[name="languages"]', "English")
    page.click("#add-person")
    page.evaluate("() => window.scrollTo(0, document.documentElement.scrollHeight)")
    before = page.evaluate("() => scrollY")
    page.click("#submit-button")
    page.wait_for_function("() => document.activeElement.name === 'role'")
    assert 'starting with "Person 1: Who is this?"' in page.inner_text("#form-status")
    geometry = page.evaluate("""() => ({bar: document.querySelector('#app-view .appbar').getBoundingClientRect().bottom,
        field: document.activeElement.getBoundingClientRect().top, scrollY})""")
    assert 0 < geometry["scrollY"] < before, geometry  # scrolled up to it, not to the very top
    assert geometry["field"] >= geometry["bar"], geometry
    page.click('[data-person] .remove-person')

    # long pasted text is kept whole (no maxlength), and validation says how long it is
    page.fill('[name="narrative"]', "x" * 5001)
    assert len(page.input_value('[name="narrative"]')) == 5001
    page.click("#submit-button")
    page.wait_for_function("() => document.activeElement.name === 'narrative'")
    assert "now 5001" in page.inner_text("#f-narrative ~ .field-error, .field:has(#f-narrative) .field-error")


def test_rejected_note_far_from_landing_says_what_to_do_once_in_plain_words(shell: Any) -> None:
    page = shell
    # the server's own message also says "Tell the captain…": the app says it once, with the number
    page.evaluate(PUT, [["rev-1", "rejected", 300]])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")
    item = page.locator('[data-report-id="rev-1"]')
    item.wait_for()
    assert page.is_hidden("#landing-banner")
    hotline = page.evaluate("() => document.querySelector('#crew-app').dataset.hotline")
    text = item.inner_text()
    assert "Reason: This device was revoked by the airline.\n" in text + "\n"
    assert "revoked_device" not in text
    assert item.locator(".report-reason").get_attribute("data-code") == "revoked_device"
    assert "If the captain does not know yet, tell them; or call the 24-hour line: " + hotline in text
    assert page.inner_text("#app-view").lower().count("tell the captain") == 0
    assert page.inner_text("#app-view").count("24-hour line") == 1
    page.evaluate(PUT, [])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")


def test_arrival_far_from_now_is_questioned_once_then_accepted(shell: Any) -> None:
    from datetime import datetime, timedelta

    def sta(hours: float) -> str:
        return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")

    page = shell
    page.fill('[name="flight"]', "ZZ101")
    page.fill('[name="dep"]', "LOS")
    page.fill('[name="arr"]', "LHR")
    page.click("details.more > summary")
    page.fill('[name="crew_id"]', "C123")
    page.fill('[name="narrative"]', "Arrival typed in a hurry.")
    sta_error = "() => document.querySelector('#f-sta').closest('.field').querySelector('.field-error')?.textContent || ''"

    def submit_and_read() -> tuple[str, str]:
        page.click("#submit-button")
        page.wait_for_function("() => !document.querySelector('#submit-button').disabled && document.querySelector('#form-status').textContent")
        return page.evaluate(sta_error), page.inner_text("#form-status")

    page.fill('[name="sta"]', sta(-3))
    err, status = submit_and_read()
    assert err == "This arrival time is 3 h ago (UTC). Check the date and time, then tap Save and send again to confirm."
    assert "Save and send again" in status
    assert page.evaluate("() => document.activeElement.name") == "sta"

    # the second tap, same time: accepted (this shell's device has no key, so it stops there)
    page.evaluate("() => document.querySelector('#form-status').textContent = ''")
    err, status = submit_and_read()
    assert err == "" and "NOT queued" in status

    # a changed time is questioned again, even if changed back
    page.fill('[name="sta"]', sta(22))
    err, _ = submit_and_read()
    assert err.startswith("This arrival time is in 22 h (UTC).")
    page.fill('[name="sta"]', sta(-3))
    err, _ = submit_and_read()
    assert err.startswith("This arrival time is 3 h ago (UTC).")

    # within the usual range (a delayed flight, 50 minutes late): no question
    page.evaluate("() => document.querySelector('#form-status').textContent = ''")
    page.fill('[name="sta"]', sta(-50 / 60))
    err, status = submit_and_read()
    assert err == "" and "NOT queued" in status

    # "lands in" far ahead: asked in its own words, at that field, once
    lands_in_error = "() => document.querySelector('#f-lands-in').closest('.field').querySelector('.field-error')?.textContent || ''"
    page.fill('[name="lands_in"]', "23:00")
    page.click("#submit-button")
    page.wait_for_function(lands_in_error)
    assert page.evaluate(lands_in_error) == "Landing in 23 h? Check the time to landing, then tap Save and send again to confirm."
    assert page.evaluate("() => document.activeElement.name") == "lands_in"
    assert "Check the time to landing" in page.inner_text("#form-status")
    page.evaluate("() => document.querySelector('#form-status').textContent = ''")
    page.click("#submit-button")
    page.wait_for_function("() => document.querySelector('#form-status').textContent")
    assert page.evaluate(lands_in_error) == "" and "NOT queued" in page.inner_text("#form-status")
