"""More of the crew app: the landing banner, a storage failure that must not
lose the report, a deploy that offers a reload without losing the draft, and a
draft restored in a second window that is never sent as a second report (a
note's id is fixed when it is begun)."""
from __future__ import annotations

import urllib.request
from typing import Any

import pytest

from tests.e2e.harness import (
    SAVED_DRAFTS,
    LiveServer,
    another_window,
    fill_minimal,
    poll,
    saved_draft_id,
    sign_in,
    sign_in_ready,
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


# A browser without Web Locks (Safari before iOS 15.4): every draft slot is free to every window.
NO_WEB_LOCKS = "Object.defineProperty(Navigator.prototype, 'locks', {configurable: true, get: () => undefined});"


def stored_reports(server: LiveServer) -> int:
    """The live server is shared: tests count what they add."""
    return len(server.db_rows("SELECT id FROM report"))


def test_a_draft_restored_in_a_second_window_is_not_sent_twice(context: Any, page: Any, server: LiveServer) -> None:
    context.add_init_script(NO_WEB_LOCKS)  # with them, the second window would not restore this draft at all
    before = stored_reports(server)
    sign_in_ready(page, server)
    assert page.evaluate("() => navigator.locks") is None
    fill_minimal(page, "Two windows, one note: passenger in 23C held by a companion.")
    draft_id = saved_draft_id(page)
    second = another_window(context, server)
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
    assert stored_reports(server) == before + 1
    # no copy of the sent note is left as a draft that another window would offer as unsent
    saved_draft_id(second, lambda i: i is None)
    third = another_window(context, server)
    assert third.input_value('[name="narrative"]') == "" and "restored" not in third.inner_text("#form-status")
    third.close()
    # changed there, it is a new note, kept under a new id, and sent as one on purpose
    second.fill('[name="narrative"]', "Two windows, one note: and the companion holds both passports.")
    kept = saved_draft_id(second, lambda i: bool(i) and i != draft_id)
    second.click("#submit-button")
    wait_states(second, "delivered", 2)
    assert stored_reports(server) == before + 2
    assert kept in [r["id"] for r in server.db_rows("SELECT id FROM report")]
    second.close()


def test_a_reload_shows_the_note_this_window_showed(context: Any, page: Any, server: LiveServer) -> None:
    sign_in_ready(page, server)
    fill_minimal(page, "Shown here: the note this window is writing.")
    mine = saved_draft_id(page)
    other = another_window(context, server)
    fill_minimal(other, "Written later in another window, then left.")
    poll(page, SAVED_DRAFTS, lambda d: len(d) == 2, message="two drafts")
    other.close()  # its draft is now the last saved one no window shows
    page.reload()
    wait_ready(page)
    assert page.input_value('[name="narrative"]') == "Shown here: the note this window is writing."
    assert page.inner_text("#form-status") == ("Your unfinished note was restored. "
                                               "1 more unfinished note is kept; it opens here when this one is sent.")
    assert saved_draft_id(page, lambda i: True) == "more than one" and mine in poll(page, SAVED_DRAFTS)


def test_a_draft_still_being_sealed_when_its_note_is_sent_neither_holds_the_send_nor_leaves_a_copy(page: Any, server: LiveServer) -> None:
    sign_in_ready(page, server)
    # the next AES-GCM sealing (the draft's autosave) waits until the test lets it go
    page.evaluate("""() => {
      const encrypt = crypto.subtle.encrypt.bind(crypto.subtle);
      let gated = false;
      window.sealing = new Promise((entered) => { window.letSealGo = null;
        crypto.subtle.encrypt = async (alg, key, data) => {
          if (!gated && alg.name === 'AES-GCM' && key.usages.includes('encrypt') && !key.extractable) {
            gated = true;
            const gate = new Promise((go) => { window.letSealGo = go; });
            entered(true);
            await gate;
          }
          return encrypt(alg, key, data);
        };
      });
    }""")
    fill_minimal(page, "Sent while its draft was still being sealed.")
    assert page.evaluate("() => window.sealing") is True
    submit(page, 1)
    # the send does not wait for that save: the note goes, and the form says so, while it hangs
    wait_states(page, "delivered", 1)
    poll(page, "() => document.querySelector('#form-status').textContent", lambda t: t == "Saved, sealed and delivered.")
    assert page.evaluate("() => document.querySelector('#submit-button').disabled") is False
    page.evaluate("() => window.letSealGo()")
    # the draft's wipe waited for that save: nothing of the sent note is left
    assert poll(page, SAVED_DRAFTS, lambda d: d == {}, message="no draft left") == {}
    page.wait_for_timeout(200)
    assert page.evaluate(SAVED_DRAFTS) == {}


def test_two_windows_keep_two_notes_and_each_is_restored_in_turn(context: Any, page: Any, server: LiveServer) -> None:
    before = stored_reports(server)
    sign_in_ready(page, server)
    fill_minimal(page, "First window: woman in 14A does not know where she is staying.")
    first_id = saved_draft_id(page)
    second = another_window(context, server)
    # the first window holds its note: the second starts empty and writes another
    assert second.input_value('[name="narrative"]') == ""
    assert "restored" not in second.inner_text("#form-status")
    fill_minimal(second, "Second window: man in 30F answers for the boy beside him.", flight="ZZ102")
    drafts = poll(page, SAVED_DRAFTS, lambda d: len(d) == 2, message="two drafts, one a window")
    assert drafts[first_id]["narrative"].startswith("First window") and drafts[first_id]["flight"] == "ZZ101"
    other = next(i for i in drafts if i != first_id)
    assert drafts[other]["narrative"].startswith("Second window") and drafts[other]["report_id"] == other
    page.close()
    second.close()

    # reopened: the last saved note comes back, and the crew are told of the other
    third = another_window(context, server)
    assert third.input_value('[name="narrative"]').startswith("Second window")
    assert third.inner_text("#form-status") == ("Your unfinished note was restored. "
                                                "1 more unfinished note is kept; it opens here when this one is sent.")
    assert third.inner_text("#flight-summary-text").startswith("ZZ102")  # the note's own flight
    submit(third, 1)
    # once it is sent, the other note is in the form, with its own flight
    poll(third, "() => document.querySelector('[name=narrative]').value", lambda v: v.startswith("First window"),
         message="the other note restored")
    assert "Your other unfinished note is now in the form." in third.inner_text("#form-status")
    assert third.input_value('[name="flight"]') == "ZZ101"
    submit(third, 2)
    wait_states(third, "delivered", 2)
    ids = {r["id"] for r in server.db_rows("SELECT id FROM report")}
    assert first_id in ids and other in ids and stored_reports(server) == before + 2
    assert poll(third, SAVED_DRAFTS, lambda d: d == {}, message="no drafts left") == {}
    third.close()


# What a newer version of the app does on start: opens the storage at the next version
# (here an upgrade that changes nothing), then reads the drafts it finds, opened with their keys.
NEWER_VERSION_OPENS_STORAGE = """async () => {
  const request = (r) => new Promise((ok, fail) => { r.onsuccess = () => ok(r.result); r.onerror = () => fail(r.error); });
  const current = await request(indexedDB.open('cabin-notes'));
  const version = current.version;
  current.close();
  const opening = indexedDB.open('cabin-notes', version + 1);
  opening.onupgradeneeded = () => {};
  const d = await request(opening);
  const tx = d.transaction(['drafts', 'keys'], 'readonly');
  const ids = await request(tx.objectStore('drafts').getAllKeys());
  const out = {};
  for (const id of ids) {
    const rec = await request(d.transaction('drafts').objectStore('drafts').get(id));
    const key = await request(d.transaction('keys').objectStore('keys').get('draft-key:' + id));
    const plain = await crypto.subtle.decrypt({name: 'AES-GCM', iv: rec.iv}, key, rec.ct);
    out[id] = JSON.parse(new TextDecoder().decode(plain)).narrative;
  }
  d.close();
  return out;
}"""


def test_an_upgrade_by_a_newer_version_saves_what_is_typed_here_first(context: Any, page: Any,
                                                                       server: LiveServer) -> None:
    sign_in_ready(page, server)
    page.fill('[name="narrative"]', "Typed just before another window brought a new version.")
    # at once: the autosave's delay has not run out, so only the upgrade's wait saves it
    newer = context.new_page()
    newer.goto(server.url + "/manifest.webmanifest")  # same origin, no app running
    drafts = newer.evaluate(NEWER_VERSION_OPENS_STORAGE)
    assert list(drafts.values()) == ["Typed just before another window brought a new version."]
    page.locator("#update-banner").wait_for(state="visible")  # this page's code is now out of date: reload offered
    newer.close()


def test_crew_are_told_when_an_abandoned_draft_was_deleted(page: Any, server: LiveServer) -> None:
    sign_in_ready(page, server)
    page.fill('[name="narrative"]', "Written before a long rest, then left.")
    slot = saved_draft_id(page)
    page.evaluate("""async (slot) => {
      const { db } = await import('/static/js/store.js');
      const d = await db();
      const rec = await d.get('drafts', slot);
      await d.put('drafts', {...rec, saved_at: new Date(Date.now() - 13 * 3600 * 1000).toISOString()}, slot);
    }""", slot)
    page.close()  # its window goes, so nothing saves it again
    again = another_window(page.context, server)
    # once the server has told the time (drafts.js): the tablet's clock alone deletes nothing
    poll(again, "() => document.querySelector('#form-status').innerText",
         lambda t: t == "An unfinished note left unchanged for 12 hours was deleted.", message="told")
    assert again.input_value('[name="narrative"]') == ""
    assert again.evaluate(SAVED_DRAFTS) == {}
    again.close()


def storage_answers(kept: bool) -> str:
    """An init script: the browser keeps (or will not keep) the app's storage, and says when it was asked."""
    js = "true" if kept else "false"
    return f"""Object.defineProperty(Navigator.prototype, 'storage', {{configurable: true, get: () => ({{
      persisted: async () => {{ window.storageAsked = true; return {js}; }}, persist: async () => {js},
      estimate: async () => ({{usage: 0, quota: 1e9}}) }}) }});"""


def test_the_device_box_says_when_the_browser_will_not_keep_waiting_notes(context: Any, page: Any,
                                                                          server: LiveServer) -> None:
    page.add_init_script(storage_answers(kept=False))
    sign_in(page, server)
    wait_enrolled(page)
    text = poll(page, "() => document.querySelector('#device-status').innerText",
                lambda t: "may clear notes" in (t or ""), message="told storage is not kept")
    assert "This tablet is set up for airline ZZ." in text
    assert "open it once there is a connection. On an iPad, use the Home Screen icon." in text
    # where the browser keeps it, nothing more is said
    kept = context.new_page()
    kept.add_init_script(storage_answers(kept=True))
    kept.goto(server.url + "/")
    wait_ready(kept)
    poll(kept, "() => window.storageAsked === true", message="the browser asked")
    kept.wait_for_timeout(100)
    assert "may clear notes" not in kept.inner_text("#device-status")
    assert "This tablet is set up for airline ZZ." in kept.inner_text("#device-status")
    kept.close()


def test_a_safari_tab_not_set_up_is_pointed_to_the_home_screen_first(context: Any, server: LiveServer) -> None:
    tab, icon = context.new_page(), context.new_page()
    tab.add_init_script("Object.defineProperty(Navigator.prototype, 'standalone', {get: () => false});")
    icon.add_init_script("Object.defineProperty(Navigator.prototype, 'standalone', {get: () => true});")
    for page in (tab, icon):
        page.goto(server.url + "/")
        poll(page, "() => document.querySelector('#device-status').dataset.state", lambda s: s == "signed-out",
             message="not set up, signed out")
    assert tab.inner_text("#device-message") == ("This tablet is not set up yet. Sign in once, while online, to set it up. "
                                                 "On an iPad, first add this app to the Home Screen (Share, Add to Home "
                                                 "Screen) and set it up from there.")
    assert icon.inner_text("#device-message") == "This tablet is not set up yet. Sign in once, while online, to set it up."
    tab.close()
    icon.close()


def test_a_note_begun_again_on_an_emptied_form_gets_a_new_id(page: Any, server: LiveServer) -> None:
    sign_in_ready(page, server)
    page.fill('[name="narrative"]', "First words, then thought better of.")
    first = saved_draft_id(page)
    page.fill('[name="narrative"]', "")
    saved_draft_id(page, lambda v: v is None)
    page.fill('[name="narrative"]', "Another note altogether.")
    second = saved_draft_id(page)
    assert second != first


def test_new_version_offers_reload_and_keeps_the_draft(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    old = page.evaluate("async () => (await caches.keys()).filter(k => k.startsWith('cabin-notes-shell-'))")
    assert len(old) == 1
    page.fill('[name="narrative"]', "Half-written note that must survive the update.")
    saved_draft_id(page)

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


CACHED_CSS = """async () => { const out = [];
    for (const k of await caches.keys()) { const r = await (await caches.open(k)).match('/static/css/crew.css');
      if (r) out.push([k, await r.text()]); } return out; }"""


def test_a_file_changed_under_an_update_is_not_installed_as_that_version(context: Any, page: Any,
                                                                        server: LiveServer) -> None:
    """A deploy that lands between /sw.js and the precache fetches (or a file
    replaced under a running process) answers bytes the version does not name:
    installed, they would make a mixed shell (a bundle importing a chunk not
    precached: no offline start). The update must fail and be tried again."""
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    server.stop()
    server.env["CREWREPORT_HOTLINE"] = "0300 000 0002"
    try:
        server.start()
        context.route("**/static/css/crew.css*",
                      lambda route: route.fulfill(status=200, content_type="text/css", body="/* a later deploy */"))
        page.evaluate("async () => { try { await (await navigator.serviceWorker.getRegistration('/')).update(); }"
                      " catch { /* an install that fails */ } }")
        poll(page, "async () => !(await navigator.serviceWorker.getRegistration('/')).installing",
             message="the install to end")
        assert not page.evaluate("async () => !!(await navigator.serviceWorker.getRegistration('/')).waiting")
        assert all("a later deploy" not in text for _, text in page.evaluate(CACHED_CSS))
    finally:
        context.unroute("**/static/css/crew.css*")
        server.stop()
        server.env.pop("CREWREPORT_HOTLINE", None)
        server.start()


def test_a_shell_page_of_another_version_is_not_installed(context: Any, page: Any, server: LiveServer) -> None:
    """`/` has no digest (its CSRF token differs each time), but it is as much
    a part of the shell as the bundle: a deploy landing between /sw.js and
    the precache fetch of `/` must not make a version whose page is another
    version's (markup the bundle does not know: no offline start)."""
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    old_page = urllib.request.urlopen(server.url + "/").read().decode()
    server.stop()
    server.env["CREWREPORT_HOTLINE"] = "0300 000 0003"
    try:
        server.start()
        context.route(server.url + "/", lambda route: route.fulfill(status=200, content_type="text/html",
                                                                     body=old_page))
        page.evaluate("async () => { try { await (await navigator.serviceWorker.getRegistration('/')).update(); }"
                      " catch { /* an install that fails */ } }")
        poll(page, "async () => !(await navigator.serviceWorker.getRegistration('/')).installing",
             message="the install to end")
        assert not page.evaluate("async () => !!(await navigator.serviceWorker.getRegistration('/')).waiting")
    finally:
        context.unroute(server.url + "/")
        server.stop()
        server.env.pop("CREWREPORT_HOTLINE", None)
        server.start()
