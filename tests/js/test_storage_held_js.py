"""The next release with a database migration opens the database one version
up; a window of the app still open at the older version is asked to let go
(store.js: it saves its note and closes within 2 s). A window that cannot
answer (suspended in the background, its script stuck) holds the upgrade up
for as long as it stays open: the app must say what to do, not wait in silence
with its notes undelivered."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import SET_UP_TABLET, poll, serve_next_schema

pytestmark = pytest.mark.e2e

HELD_TEXT = "Close the other windows and tabs of this app: one of them is holding its storage. It starts once they are closed."

# A connection at the current version that never answers `versionchange`.
HOLD_WITHOUT_ANSWERING = """async () => {
  const { DB_VERSION } = await import('/static/js/store.js');
  window.__held = await new Promise((resolve, reject) => {
    const req = indexedDB.open('cabin-notes', DB_VERSION);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return window.__held.version;
}"""

DEVICE_MESSAGE = "() => document.querySelector('#device-message').innerText"


def test_a_window_that_does_not_let_the_database_go_is_named_and_the_app_starts_once_it_is_closed(
        js_browser: Any, static_server: str) -> None:
    ctx = js_browser.new_context(service_workers="block")
    try:
        old = ctx.new_page()
        old.goto(static_server + "/static/css/crew.css")
        old.evaluate(SET_UP_TABLET, "dev-held-0001")
        old.reload()  # the set-up's own connection goes
        version = old.evaluate(HOLD_WITHOUT_ANSWERING)

        newer = ctx.new_page()
        patched = serve_next_schema(newer)
        newer.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
        newer.goto(static_server + "/")
        # (Before, the device box said "Checking this tablet…" for ever, and nothing was delivered.)
        poll(newer, DEVICE_MESSAGE, lambda t: t == HELD_TEXT, timeout=10, message="told what to do")
        assert patched, "the page was not served as the next release"
        assert newer.evaluate("() => document.querySelector('#crew-app').dataset.ready") is None

        old.evaluate("() => window.__held.close()")  # the crew close it
        newer.wait_for_selector("#crew-app[data-ready=true]", state="attached")
        assert newer.evaluate(DEVICE_MESSAGE) != HELD_TEXT
        assert newer.evaluate("async () => (await indexedDB.databases()).find((d) => d.name === 'cabin-notes').version") \
            == version + 1
    finally:
        ctx.close()


# Every text the device box shows, as it shows it.
RECORD_DEVICE_MESSAGES = """window.__said = [];
new MutationObserver(() => { const m = document.querySelector('#device-message');
  if (m) window.__said.push(m.textContent); }).observe(document, {subtree: true, childList: true, characterData: true});"""


def test_an_older_window_that_lets_go_in_time_is_not_named(js_browser: Any, static_server: str) -> None:
    ctx = js_browser.new_context(service_workers="block")
    try:
        old = ctx.new_page()
        old.goto(static_server + "/static/css/crew.css")
        old.evaluate(SET_UP_TABLET, "dev-held-0002")
        old.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
        old.goto(static_server + "/")  # the app, at the current version: it saves its note and lets go
        old.wait_for_selector("#crew-app[data-ready=true]", state="attached")
        old.fill('[name="narrative"]', "Being written as the new version opens.")

        newer = ctx.new_page()
        newer.add_init_script(RECORD_DEVICE_MESSAGES)
        patched = serve_next_schema(newer)
        newer.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
        newer.goto(static_server + "/")
        newer.wait_for_selector("#crew-app[data-ready=true]", state="attached", timeout=10000)
        assert patched
        old.wait_for_selector("#update-banner", state="visible")
        newer.wait_for_timeout(3500)  # past the time the notice would have come
        said = newer.evaluate("() => window.__said")
        assert said and HELD_TEXT not in said
    finally:
        ctx.close()
