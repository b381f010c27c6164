"""The crew app's page (the real shell, no enrollment needed): the landing
banner counts rejected notes and is not rebuilt needlessly; errors inside
closed sections are shown and named; the top bar with "Hide" stays in view
without covering the field in focus; long text is not cut by maxlength."""
from __future__ import annotations

import pytest

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
      if (state === 'rejected') r.error = {code: 'invalid_report', message: 'Not a valid report.'};
      await tx.store.put(r);
    }
    await tx.done;
  });
}"""


@pytest.fixture()
def shell(js_page, static_server):
    page = js_page
    page.set_viewport_size({"width": 768, "height": 640})
    page.goto(static_server + "/")
    page.wait_for_selector("#crew-app[data-ready=true]", state="attached")
    return page


def test_banner_counts_rejected_notes_and_is_not_rebuilt_when_unchanged(shell):
    page = shell
    page.evaluate(PUT, [["rej-1", "rejected", 10]])  # not accepted; lands in 10 minutes
    page.evaluate("() => window.__cabinNotes.renderOutbox()")
    banner = page.locator("#landing-banner")
    banner.wait_for(state="visible")
    hotline = page.evaluate("() => document.querySelector('#crew-app').dataset.hotline")
    text = banner.inner_text()
    assert "not accepted and cannot be re-sent" in text and "ZZ7 lands soon" in text
    assert "Tell the captain" in text and hotline in text
    item = page.inner_text('[data-report-id="rej-1"]')
    assert "Not delivered and cannot be re-sent. Tell the captain or call the 24-hour line: " + hotline in item
    assert "Reason: Not a valid report." in item

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
    assert "A note has not been sent yet and a note was not accepted" in text

    # dismissed: nothing undelivered is left, the banner goes
    page.evaluate(PUT, [["q-1", "queued", 300]])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")
    banner.wait_for(state="hidden")
    page.evaluate(PUT, [])
    page.evaluate("() => window.__cabinNotes.renderOutbox()")


def test_errors_in_closed_sections_are_opened_named_and_focused_below_the_sticky_bar(shell):
    page = shell
    assert page.get_attribute("#f-narrative", "maxlength") is None
    page.click("#add-person")
    assert page.get_attribute('[data-person] [name="description"]', "maxlength") is None
    page.click('[data-person] .remove-person')

    # keyboard: a control that sits under the bar is scrolled out from under it when focused
    page.focus("#f-narrative")
    page.evaluate("() => window.scrollBy(0, document.querySelector('#add-person').getBoundingClientRect().top - 20)")
    page.keyboard.press("Shift+Tab")
    focused = page.evaluate("""() => ({id: document.activeElement.id, top: document.activeElement.getBoundingClientRect().top,
        bar: document.querySelector('#app-view .appbar').getBoundingClientRect().bottom})""")
    assert focused["id"] == "add-person" and focused["top"] >= focused["bar"], focused

    page.fill('[name="flight"]', "ZZ101")
    page.fill('[name="dep"]', "LOS")
    page.fill('[name="arr"]', "LHR")
    page.fill('[name="sta"]', page.evaluate("() => new Date(Date.now() + 3 * 3600e3).toISOString().slice(0, 16)"))
    page.fill('[name="narrative"]', "Languages error.")
    page.fill('[name="crew_id"]', "C1")
    page.click("details.more > summary")
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
