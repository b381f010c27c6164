"""Issue 3, test 3: Chromium finds the app installable (a persistent context
of its own: an ordinary one always reports `in-incognito`)."""
from __future__ import annotations

import shutil
import tempfile
import time
from typing import Any

import pytest

from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, LiveServer, poll, wait_ready, wait_service_worker

pytestmark = pytest.mark.e2e


def test_installable(playwright_instance: Any, server: LiveServer) -> None:
    profile = tempfile.mkdtemp(prefix="crewreport-profile-")
    ctx = playwright_instance.chromium.launch_persistent_context(
        profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    try:
        page = ctx.pages[0] if ctx.pages else ctx.new_page()
        page.goto(server.url + "/")
        wait_ready(page)
        wait_service_worker(page)
        cdp = ctx.new_cdp_session(page)
        deadline = time.monotonic() + 15
        while True:
            errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
            if errors == [] or time.monotonic() > deadline:
                break
            page.wait_for_timeout(200)
        assert errors == []
        manifest = cdp.send("Page.getAppManifest")
        assert not manifest.get("errors"), manifest.get("errors")
        cdp.detach()
    finally:
        ctx.close()
        shutil.rmtree(profile, ignore_errors=True)


def test_manifest_and_service_worker_are_served_as_specified(server: LiveServer) -> None:
    import json
    import urllib.request

    with urllib.request.urlopen(server.url + "/manifest.webmanifest") as r:
        assert r.headers["Content-Type"].startswith("application/manifest+json")
        m = json.loads(r.read())
    assert m["start_url"] == "/" and m["scope"] == "/" and m["display"] == "standalone"
    assert m["name"] and m["short_name"] and m["theme_color"] and m["background_color"]
    sizes = {(i["sizes"], i.get("purpose", "any")) for i in m["icons"]}
    assert ("192x192", "any") in sizes and ("512x512", "any") in sizes and ("512x512", "maskable") in sizes
    with urllib.request.urlopen(server.url + "/sw.js") as r:
        assert r.headers["Content-Type"].startswith("text/javascript")
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["Service-Worker-Allowed"] == "/"
        body = r.read().decode()
    assert 'const CACHE_VERSION = "' in body
    for url in ("/", "/static/bundles/app.js", "/static/bundles/worker.js", "/static/vendor/hpke.js",
                "/static/css/crew.css", "/manifest.webmanifest"):
        assert f'"{url}"' in body
    assert "axe.min.js" not in body and "/static/js/" not in body  # the modules are in the bundles
    # every module the page and the worker import, however deep, is precached (or it cannot start offline)
    precached = set(json.loads(body.split("const PRECACHE = ", 1)[1].split(";\n", 1)[0]))
    with urllib.request.urlopen(server.url + "/") as r:
        page = r.read().decode()
    needed = shell_modules(server.url, page, body)
    assert {"/static/bundles/app.js", "/static/bundles/worker.js", "/static/vendor/hpke.js"} <= needed
    missing = sorted(url for url in needed if url not in precached)
    assert missing == []


def shell_modules(base: str, page: str, worker_source: str) -> set[str]:
    """The URLs of every module reachable by static imports from the page's
    module scripts and the service worker."""
    import re
    import urllib.parse
    import urllib.request

    imports = re.compile(r'(?:from|import)\s*"([^"]+\.js)"')
    entries = re.findall(r'<script type="module" src="([^"]+)"', page)
    assert entries == ["/static/bundles/app.js"]
    seen: set[str] = set()
    todo = [urllib.parse.urljoin("/sw.js", u) for u in imports.findall(worker_source)] + entries
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        with urllib.request.urlopen(base + url) as r:
            source = r.read().decode()
        todo.extend(urllib.parse.urljoin(url, u) for u in imports.findall(source))
    return seen


FAILING_FILE = "**/static/css/crew.css*"


def open_after_a_failed_install(context: Any, page: Any, server: LiveServer) -> None:
    """Open the app with one of the shell's files failing for the service
    worker only (its first install fails), until the page says so."""
    def fail_for_the_worker(route: Any) -> None:
        if route.request.service_worker is not None:
            route.abort("internetdisconnected")
        else:
            route.continue_()

    context.route(FAILING_FILE, fail_for_the_worker)
    page.goto(server.url + "/")
    wait_ready(page)
    poll(page, "() => !document.querySelector('#update-banner').hidden", message="the banner")


def test_a_first_install_that_fails_is_said_and_tried_again(context: Any, page: Any, server: LiveServer) -> None:
    """A tablet whose first install fails (the connection lost half-way) would
    open on the ground and then not at all in the air: the page says it cannot
    open offline yet, and its Reload, while connected, installs it."""
    open_after_a_failed_install(context, page, server)
    assert page.inner_text("#update-banner p") == "This app cannot open offline yet: tap Reload while connected."
    assert not page.evaluate("() => !!navigator.serviceWorker.controller")

    context.unroute(FAILING_FILE)
    page.click("#reload-button")
    wait_service_worker(page)
    wait_ready(page)
    assert page.is_hidden("#update-banner")


def test_reload_without_a_connection_keeps_a_page_that_cannot_open_offline(context: Any, page: Any,
                                                                             server: LiveServer) -> None:
    """The page of a failed first install is all the crew have in the air: it
    can still seal and queue notes, but could not open again offline. Reload
    tapped without a connection tries the install again and, that failing,
    keeps the page (and says why), rather than leaving a Home Screen app on an
    error page it has no way back from."""
    open_after_a_failed_install(context, page, server)
    page.evaluate("() => { window.__thisPage = true; }")
    context.set_offline(True)
    try:
        page.click("#reload-button")
        page.wait_for_timeout(3000)
        assert page.evaluate("() => window.__thisPage === true && !!document.querySelector('#crew-app')"), \
            "the page was left for one that cannot load offline"
        assert page.inner_text("#update-banner p") == "This app cannot open offline yet: tap Reload while connected."
    finally:
        context.set_offline(False)
