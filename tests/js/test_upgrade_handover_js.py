"""A newer version of the app, in another window, upgrades the database
while this window shows a note being written: this window saves the note,
lets the database go and offers a reload ("Your unfinished note is kept").
Its code can no longer store anything, so whatever the crew could type after
that would be lost on the reload: the note must be kept as it stands."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import SET_UP_TABLET, limit_storage, open_app_on_full_storage, poll

pytestmark = pytest.mark.e2e

# The newer version's window: opens the database one version up (a new step
# that changes nothing), as the next release with a migration would.
UPGRADE = """async () => {
  window.__newer = await new Promise((resolve, reject) => {
    const req = indexedDB.open('cabin-notes', 2);
    req.onupgradeneeded = () => {};
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return window.__newer.version;
}"""

# What the newer window finds of the draft: its words, opened with its key.
READ_DRAFTS = """async () => {
  const d = window.__newer;
  const get = (store, key) => new Promise((resolve, reject) => {
    const req = d.transaction(store).objectStore(store).get(key);
    req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error);
  });
  const ids = await new Promise((resolve, reject) => {
    const req = d.transaction('drafts').objectStore('drafts').getAllKeys();
    req.onsuccess = () => resolve(req.result); req.onerror = () => reject(req.error);
  });
  const out = [];
  for (const id of ids) {
    const rec = await get('drafts', id);
    const key = await get('keys', `draft-key:${id}`);
    const pt = await crypto.subtle.decrypt({name: 'AES-GCM', iv: rec.iv}, key, rec.ct);
    out.push(JSON.parse(new TextDecoder().decode(pt)).narrative);
  }
  return out;
}"""


# The banner offers the newer version (a page whose worker is blocked says
# first that it cannot open offline: these words replace that).
OFFERED = "() => document.querySelector('#update-banner p').textContent.startsWith('A new version is ready')"


def open_set_up_app(ctx: Any, origin: str, device_id: str) -> Any:
    """The crew app in a new window of `ctx`, on a tablet set up as `device_id`,
    offline (every API call fails), once it has started."""
    app = ctx.new_page()
    app.goto(origin + "/static/css/crew.css")
    app.evaluate(SET_UP_TABLET, device_id)
    app.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
    app.goto(origin + "/")
    app.wait_for_selector("#crew-app[data-ready=true]", state="attached")
    return app


def newer_version_opens(ctx: Any, origin: str) -> None:
    """A newer version of the app, in another window, takes the storage."""
    newer = ctx.new_page()
    newer.goto(origin + "/static/css/crew.css")
    assert newer.evaluate(UPGRADE) == 2


@pytest.fixture
def two_windows(js_browser: Any, static_server: str) -> Iterator[tuple[Any, Any]]:
    ctx = js_browser.new_context(service_workers="block")
    app = open_set_up_app(ctx, static_server, "dev-upgrade-0001")
    app.wait_for_selector("#form-body:not([disabled])", state="attached")
    newer = ctx.new_page()
    newer.goto(static_server + "/static/css/crew.css")
    yield app, newer
    ctx.close()


def test_nothing_typed_after_a_newer_version_took_the_database_is_lost(two_windows: tuple[Any, Any]) -> None:
    app, newer = two_windows
    app.click("#f-narrative")
    app.keyboard.type("First words.")
    app.wait_for_timeout(1000)  # autosaved
    app.keyboard.type(" Words typed as the newer version opens.")  # not autosaved yet
    assert newer.evaluate(UPGRADE) == 2
    app.wait_for_function(OFFERED)  # over the page's own words: service workers are blocked here
    assert "Your unfinished note is kept: tap Reload" in app.inner_text("#update-banner")  # not the default words

    # This window can keep nothing more: the form is closed, with every word still shown.
    # (Before, it stayed open: words typed now were never saved, and the reload lost them.)
    assert not app.locator("#f-narrative").is_editable()
    assert app.locator("#submit-button").is_disabled()
    typed = app.input_value("#f-narrative")
    assert typed == "First words. Words typed as the newer version opens."

    # What the newer version will restore is every word this window shows.
    assert newer.evaluate(READ_DRAFTS) == [typed]


def test_the_banner_says_so_when_the_note_could_not_be_kept(js_browser: Any, static_server: str) -> None:
    """A full storage refuses the last save: the banner must not say the note is kept."""
    ctx = js_browser.new_context(service_workers="block")
    try:
        app = ctx.new_page()
        limit_storage(ctx, app, static_server)
        open_app_on_full_storage(app, static_server, "dev-upgrade-0002")
        app.click("#f-narrative")
        app.keyboard.type("Words with no room.")
        newer = ctx.new_page()
        newer.goto(static_server + "/static/css/crew.css")
        newer.evaluate("""() => { indexedDB.open('cabin-notes', 2); }""")
        app.wait_for_function(OFFERED)  # over the page's own words: service workers are blocked here
        banner = app.inner_text("#update-banner")
        assert "could not be saved" in banner and "is kept" not in banner
        assert not app.locator("#f-narrative").is_editable()
    finally:
        ctx.close()


def test_reload_reloads_in_a_browser_without_service_workers(js_browser: Any, static_server: str) -> None:
    """Where there are no service workers (an in-app browser on an iPad, say),
    a newer version in another window still offers the reload, and its Reload
    must reload: this window's code can keep nothing more."""
    ctx = js_browser.new_context(service_workers="block")
    ctx.add_init_script("delete Navigator.prototype.serviceWorker;")
    try:
        app = open_set_up_app(ctx, static_server, "dev-upgrade-0003")
        assert app.evaluate("() => !('serviceWorker' in navigator)")
        newer_version_opens(ctx, static_server)
        app.wait_for_selector("#update-banner", state="visible")
        with app.expect_navigation(timeout=5000):
            app.click("#reload-button")
    finally:
        ctx.close()


def test_a_newer_version_is_offered_over_a_page_that_cannot_open_offline(js_browser: Any, static_server: str) -> None:
    """A page whose service worker could not be installed says it cannot open
    offline, and its Reload installs the worker again; once a newer version in
    another window takes the storage, the banner says that instead, and its
    Reload reloads: this window's code can keep nothing more."""
    ctx = js_browser.new_context(service_workers="block")  # register() refused
    try:
        app = open_set_up_app(ctx, static_server, "dev-upgrade-0004")
        app.wait_for_selector("#update-banner", state="visible")
        assert app.inner_text("#update-banner p") == "This app cannot open offline yet: tap Reload while connected."
        newer_version_opens(ctx, static_server)
        poll(app, "() => document.querySelector('#update-banner p').textContent",
             lambda t: t.startswith("A new version is ready"), message="the newer version offered")
        with app.expect_navigation(timeout=5000):
            app.click("#reload-button")
    finally:
        ctx.close()
