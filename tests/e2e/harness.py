"""Shared machinery for the browser tests (tests/e2e and tests/js).

- `LiveServer`: the real app under gunicorn (`tests.served.ServedApp`) on a
  free 127.0.0.1 port with its own instance folder, seeded with `demo`;
  it can be killed (whole process group) and started again on the same port.
- `launch_browser`: Debian's Chromium through Playwright.
- helpers to sign in, wait for enrollment and the service worker, fill the
  form and poll with `page.evaluate` (wait_for_function does not await promises).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path
from typing import Any

import pyotp

from tests.served import ServedApp

# Service-worker requests appear in context.on("request") only with this set,
# and it must be set before Playwright starts its driver.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")

CHROMIUM = os.environ.get("CREWREPORT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "e2e-password-not-secret"
# The demo staff users' known second factor (RFC 6238; `demo --totp-secret`).
TOTP_SECRET = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"
# Short back-off in tests; the real one (5 s doubling to 60 s) is unit-tested.
INIT_SCRIPT = "window.__CABIN_NOTES_CONFIG = {backoffBase: 500, backoffMax: 1500};"


class LiveServer(ServedApp):
    """The browser tests' server: failing CLI commands raise, and `seed` adds
    the `demo` data signed in with `PASSWORD`."""

    def __init__(self, instance: str | os.PathLike[str], port: int | None = None) -> None:
        super().__init__(instance, port, check=True)

    def seed(self) -> None:
        """`init-db`, then `demo` with `PASSWORD` and `TOTP_SECRET`."""
        self.flask("init-db")
        self.flask("demo", "--password", PASSWORD, "--totp-secret", TOTP_SECRET)

    def db_change(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        """Run one change on the store and commit it; how many rows it changed."""
        conn = self.connect()
        try:
            with conn:
                return conn.execute(sql, params).rowcount
        finally:
            conn.close()


def make_server() -> LiveServer:
    instance = tempfile.mkdtemp(prefix="crewreport-e2e-")
    server = LiveServer(instance)
    server.seed()
    server.start()
    return server


def launch_browser(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class _Shared:
    """One Playwright driver and one browser for the whole pytest session, even
    when fixtures in tests/e2e and tests/js each ask for them (the sync API
    cannot run two drivers at once). Reference-counted: the last user closes."""

    users = 0
    manager: Any = None
    playwright: Any = None
    browser: Any = None

    @classmethod
    def acquire(cls) -> tuple[Any, Any]:
        if cls.playwright is None:
            from playwright.sync_api import sync_playwright

            cls.manager = sync_playwright()
            cls.playwright = cls.manager.start()
            cls.browser = launch_browser(cls.playwright)
        cls.users += 1
        return cls.playwright, cls.browser

    @classmethod
    def release(cls) -> None:
        cls.users -= 1
        if cls.users == 0 and cls.playwright is not None:
            try:
                cls.browser.close()
            finally:
                cls.manager.__exit__(None, None, None)
                cls.playwright = cls.browser = cls.manager = None


def shared_playwright() -> Iterator[tuple[Any, Any]]:
    """Generator for a session fixture: yields (playwright, browser)."""
    pair = _Shared.acquire()
    try:
        yield pair
    finally:
        _Shared.release()


def poll(page: Any, script: str, predicate: Callable[[Any], bool] = bool, timeout: float = 20.0,
         interval: float = 0.1, arg: Any = None, message: str = "") -> Any:
    """Evaluate `script` (may be async) until predicate(result) holds."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while True:
        try:
            value = page.evaluate(script, arg)
        except Exception as exc:  # navigation in progress: retried, anything else re-raised
            if "Execution context was destroyed" not in str(exc) and "navigation" not in str(exc).lower():
                raise
            value = None
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message or script}; last value: {value!r}")
        time.sleep(interval)


OUTBOX_STATES = "() => [...document.querySelectorAll('#outbox [data-report-id]')].map(li => [li.dataset.reportId, li.dataset.state, li.textContent])"


def outbox(page: Any) -> list[list[str]]:
    return poll(page, OUTBOX_STATES, lambda v: v is not None)


def wait_states(page: Any, want: str, count: int, timeout: float = 30.0) -> list[list[str]]:
    return poll(
        page, OUTBOX_STATES,
        lambda v: v is not None and len([x for x in v if x[1] == want]) >= count,
        timeout=timeout, message=f"{count} report(s) {want}",
    )


def sign_in(page: Any, server: LiveServer, username: str = "demo-crew", landing: str = "/") -> None:
    """Through the sign-in form; staff then through `#totp-form` with a code
    from `TOTP_SECRET`: this step's, else the next step's; when both were used
    already (a code is good once), the step after, once its time has come."""
    page.goto(server.url + "/auth/login?next=" + landing)
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_load_state()
    for attempt in range(3):
        if page.locator("#totp-form").count() == 0:
            break
        ahead = min(attempt, 1)
        if attempt == 2:  # the server takes this step's code and the next's: wait for a fresh one
            time.sleep(30 - time.time() % 30 + 0.5)
        page.fill('#totp-form input[name="code"]', pyotp.TOTP(TOTP_SECRET).at(time.time() + 30 * ahead))
        page.click('#totp-form button[type="submit"]')
        page.wait_for_load_state()
    page.wait_for_url(server.url + landing)


def sign_in_ready(page: Any, server: LiveServer) -> None:
    """Sign in as demo crew, and wait until the tablet is set up and the app has started."""
    sign_in(page, server)
    wait_enrolled(page)
    wait_ready(page)


def another_window(context: Any, server: LiveServer) -> Any:
    """Another window (tab) of the crew app in the same browser, once the app has started in it."""
    window = context.new_page()
    window.goto(server.url + "/")
    wait_ready(window)
    return window


def wait_enrolled(page: Any, timeout: float = 20.0) -> None:
    """Until the status box says enrolled; on timeout, the error names what it said instead."""
    try:
        poll(page, "() => document.querySelector('#device-status')?.dataset.enrolled === 'true'",
             timeout=timeout, message="device enrolled")
    except AssertionError as exc:
        said = page.evaluate("() => document.querySelector('#device-status')?.textContent?.trim()")
        raise AssertionError(f"{exc}; the device status said: {said!r}") from None


def wait_service_worker(page: Any, timeout: float = 20.0) -> None:
    poll(page, "async () => { const r = await navigator.serviceWorker.getRegistration('/');"
               " return !!(r && r.active && r.active.state === 'activated' && navigator.serviceWorker.controller); }",
         timeout=timeout, message="service worker active and controlling")


@contextmanager
def set_up_then_cut_off(page: Any, server: LiveServer) -> Iterator[None]:
    """A tablet set up, its app served by the service worker, then the server
    gone (back at the end, for the next test)."""
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    server.stop()
    try:
        yield
    finally:
        server.start()


def wait_ready(page: Any, timeout: float = 20.0) -> None:
    poll(page, "() => document.querySelector('#crew-app')?.dataset.ready === 'true'", timeout=timeout,
         message="app started")


def device_id(page: Any) -> str:
    return page.evaluate(
        """async () => { const m = await import('/static/js/device.js'); return (await m.getDevice()).device_id; }"""
    )


def upcoming_sta(hours: float = 3.0) -> str:
    """A datetime-local value (UTC) `hours` from now."""
    from datetime import datetime, timedelta

    return (datetime.now(UTC) + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M")


def open_flight_fields(page: Any) -> None:
    """After a first note the flight is one line: "Change" opens its fields again."""
    if page.is_visible("#flight-change"):
        page.click("#flight-change")


def fill_minimal(page: Any, narrative: str, *, flight: str = "ZZ101", dep: str = "LOS", arr: str = "LHR",
                 sta: str | None = None, lands_in: str = "3:00", urgency: str = "priority") -> None:
    """The flight (its arrival as "lands in", or the exact `sta` when given), urgency and narrative.
    Filling a folded flight field unfolds the flight, as focusing it does."""
    page.fill('#report-form [name="flight"]', flight)
    page.fill('#report-form [name="dep"]', dep)
    page.fill('#report-form [name="arr"]', arr)
    if sta is None:
        page.fill('#report-form [name="lands_in"]', lands_in)
    else:
        page.fill('#report-form [name="sta"]', sta)
    page.select_option('#report-form [name="urgency"]', urgency)
    page.fill('#report-form [name="narrative"]', narrative)


# A tablet set up as far as the crew app can tell, named `deviceId`: its
# registration and a signing key (a registration without one is set up again).
SET_UP_TABLET = """async (deviceId) => {
  const { withDb } = await import('/static/js/store.js');
  const pair = await crypto.subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign', 'verify']);
  await withDb(async (d) => {
    await d.put('keys', pair, 'signing');
    await d.put('meta', {device_id: deviceId, airline: 'ZZ', recipients: [], receipt_key: null,
                         enrolled_at: new Date().toISOString()}, 'device');
  });
}"""


# A storage that fills up in a test: what limit_storage lets an origin keep.
QUOTA_BYTES = 300_000

# Random text, as sealed notes are (Chromium compresses what it stores).
NOISE = "const noise = (n) => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(n))));"

# Fill a page's storage to the last byte: ~20 KB notes, then smaller and smaller ones until none fits.
FILL_TO_THE_BYTE = """async () => {
  const store = await import('/static/js/outbox/store.js');
  """ + NOISE + """
  let refused = 0;
  for (let i = 0, size = 15000; size >= 1 && i < 800; i++) {
    try {
      await store.enqueue({id: `fill-${i}`, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'},
                          {protected: 'p', sealed: [noise(size)], signature: 'g'});
    } catch (err) {
      if (err.name !== 'QuotaExceededError') throw err;
      refused += 1;
      size = Math.floor(size / 4);
    }
  }
  return refused;
}"""


def limit_storage(context: Any, page: Any, origin: str) -> None:
    """Let `origin` store QUOTA_BYTES only (a real quota, through the DevTools
    protocol); `page` is left on a same-origin document."""
    page.goto(origin + "/static/css/crew.css")
    context.new_cdp_session(page).send("Storage.overrideQuotaForOrigin", {"origin": origin, "quotaSize": QUOTA_BYTES})


def open_app_on_full_storage(page: Any, origin: str, device: str) -> None:
    """The crew app, set up as tablet `device`, offline, its storage (limited
    by limit_storage) then filled to the last byte."""
    page.evaluate(SET_UP_TABLET, device)
    page.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
    page.goto(origin + "/")
    page.wait_for_selector("#form-body:not([disabled])", state="attached")
    assert page.evaluate(FILL_TO_THE_BYTE) > 3


# The drafts stored on the tablet, {slot: what it holds} (drafts.js opens each).
SAVED_DRAFTS = """async () => {
  const { db } = await import('/static/js/store.js');
  const { loadDraft } = await import('/static/js/drafts.js');
  const out = {};
  for (const id of await (await db()).getAllKeys('drafts')) out[id] = await loadDraft(id);
  return out;
}"""


def saved_draft_id(page: Any, predicate: Callable[[str | None], bool] = bool) -> str | None:
    """Wait until the tablet holds one draft, saved under its own note's id, or none
    (`predicate` says which is awaited); returns that id."""
    script = f"""async () => {{ const drafts = await ({SAVED_DRAFTS})(); const ids = Object.keys(drafts);
      if (ids.length > 1) return 'more than one';
      return ids.length && drafts[ids[0]].report_id !== ids[0] ? 'under another id' : (ids[0] || null); }}"""
    found: str | None = poll(page, script, predicate, message="the draft saved")
    return found


def queued_offline(context: Any, page: Any, server: LiveServer, narrative: str, *, lands_in: str,
                   size: dict[str, int] | None = None) -> None:
    """A tablet set up, then offline (the cabin), with one note queued. The
    caller puts the context online again (in a `finally`)."""
    if size:
        page.set_viewport_size(size)
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    context.set_offline(True)
    fill_minimal(page, narrative, lands_in=lands_in)
    submit(page, 1)


def submit(page: Any, expect_count: int) -> None:
    page.click("#submit-button")
    poll(page, "() => document.querySelectorAll('#outbox [data-report-id]').length",
         lambda n: n is not None and n >= expect_count, message=f"{expect_count} report(s) in the outbox")


def open_report(server: LiveServer, report_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Open the stored envelope with the Border Force key it names (P-256 for
    version 1, X-Wing for version 2) from the instance folder."""
    from crewreport import envelope as env_mod
    from crewreport import keys

    rows = server.db_rows("SELECT envelope FROM report WHERE id = ?", (report_id,))
    assert len(rows) == 1, f"report {report_id} stored {len(rows)} times"
    env = json.loads(rows[0]["envelope"])
    parsed = env_mod.parse(env)
    bf = parsed.header["rcpt"][0]
    known = server.db_rows("SELECT suite FROM service_key WHERE owner = 'border_force' AND kid = ?", (bf,))
    assert len(known) == 1 and known[0]["suite"] == f"v{parsed.version}", "sealed to a Border Force key of its suite"
    key = keys.read_private_key(bf, str(Path(server.instance, "keys")), None, known[0]["suite"])
    body = env_mod.open_body(parsed, 0, key)
    return parsed.header, body


# The outbox's records as the page keeps them in IndexedDB, read without
# importing a module: offline, only the bundles the page runs are precached,
# not the modules in them. An async function, for any driver to call.
STORED_OUTBOX = """async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open('cabin-notes'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  try {
    return await new Promise((res, rej) => { const r = db.transaction('outbox').objectStore('outbox').getAll(); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  } finally {
    db.close();
  }
}"""


def stored_outbox(page: Any) -> list[dict[str, Any]]:
    """The outbox's records as stored (STORED_OUTBOX), from a Playwright page."""
    return page.evaluate(STORED_OUTBOX)


def dump_indexeddb(page: Any) -> str:
    """Every record of every store of every IndexedDB database, as text."""
    return page.evaluate(
        """async () => {
          const out = [];
          const show = (v) => {
            if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) {
              return 'bytes:' + btoa(String.fromCharCode(...new Uint8Array(v.buffer ? v.buffer : v)));
            }
            if (typeof CryptoKey !== 'undefined' && v instanceof CryptoKey) return 'CryptoKey:' + v.type + ':' + v.extractable;
            if (v && typeof v === 'object') {
              if (Array.isArray(v)) return v.map(show);
              const o = {}; for (const k of Object.keys(v)) o[k] = show(v[k]); return o;
            }
            return v;
          };
          for (const info of await indexedDB.databases()) {
            const db = await new Promise((res, rej) => { const r = indexedDB.open(info.name); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
            for (const store of db.objectStoreNames) {
              const rows = await new Promise((res, rej) => { const r = db.transaction(store).objectStore(store).getAll(); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
              out.push({db: info.name, store, rows: show(rows)});
            }
            db.close();
          }
          return JSON.stringify(out);
        }"""
    )


# Refresh the officers' board every half second in tests (15 s in service).
TRIAGE_INIT = "window.__TRIAGE_CONFIG = {refreshMs: 500};"


def officer_page(browser: Any, server: LiveServer, username: str = "demo-officer", next_path: str = "/triage/",
                 **context_args: Any) -> Any:
    """A separate browser context (its own cookies) signed in as a demo staff user."""
    ctx = browser.new_context(base_url=server.url, **context_args)
    ctx.add_init_script(TRIAGE_INIT)
    ctx.set_default_timeout(20000)
    page = ctx.new_page()
    page.on("pageerror", lambda exc: print(f"{username} pageerror:", exc))
    sign_in(page, server, username, next_path)
    return page


def server_answers_at(page: Any, when: Any) -> None:
    """Every API call of `page` is answered (503, "try later") by a server whose
    clock says `when` (a datetime, UTC), or fails as offline when `when` is None:
    what the app learns of the time (clock.js) is then this test's to choose."""
    from email.utils import format_datetime

    page.unroute("**/api/v1/**")
    if when is None:
        page.route("**/api/v1/**", lambda route: route.abort("internetdisconnected"))
        return
    headers = {"Date": format_datetime(when.astimezone(UTC), usegmt=True), "Content-Type": "application/json",
               "Retry-After": "60"}
    body = json.dumps({"error": {"code": "service_unavailable", "message": "Try later."}})
    page.route("**/api/v1/**", lambda route: route.fulfill(status=503, headers=headers, body=body))


# The last step of the database's schema (store.js MIGRATIONS), as written and as bundled.
_LAST_STEP = ('database.createObjectStore("drafts");\n  },\n];', 'createObjectStore("drafts")}]')


def serve_next_schema(page: Any) -> list[str]:
    """`page` gets the app as the next release with a migration would be: one
    more step (that changes nothing), so it opens the database one version up.
    Returns the list of files patched so (the caller asserts it is not empty)."""
    patched: list[str] = []

    def handle(route: Any) -> None:
        response = route.fetch()
        body = response.text()
        for written in _LAST_STEP:
            if written in body:
                body = body.replace(written, written[:-1] + ("(d) => d,\n];" if written.endswith("\n];") else ",d=>d]"))
                patched.append(route.request.url)
        route.fulfill(status=response.status, body=body, headers={"Content-Type": "text/javascript"})

    page.route("**/static/bundles/*.js", handle)
    page.route("**/static/js/store.js", handle)
    return patched
