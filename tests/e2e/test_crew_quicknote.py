"""The quick note, in Chromium against the live server: a first note in six
inputs with the arrival as "lands in"; after it the flight folds into one
line and the next note on that flight takes two inputs (its words and Save),
both on the first screen at both tablet sizes, and is delivered; the notes
are told apart in the outbox; a tablet clock hours off is corrected from the
server's answers; a tablet not set up says what to do before anything can be
typed; the status line never says "no connection" once all is delivered."""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import (
    INIT_SCRIPT,
    LiveServer,
    another_window,
    fill_minimal,
    open_report,
    poll,
    queued_offline,
    sign_in,
    stored_outbox,
    submit,
    wait_enrolled,
    wait_ready,
    wait_service_worker,
    wait_states,
)

pytestmark = pytest.mark.e2e

SIZES = [{"width": 1024, "height": 768}, {"width": 800, "height": 1280}]

# Where each element is, and whether it is wholly on the first screen.
FIRST_SCREEN = """(sels) => ({scrollY: window.scrollY, boxes: sels.map((s) => {
  const r = document.querySelector(s).getBoundingClientRect();
  return {sel: s, top: Math.round(r.top), bottom: Math.round(r.bottom),
          visible: r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight};
})})"""
QUICK = ["#f-urgency", '[name="child_involved"]', "#f-narrative", "#submit-button"]


class Inputs:
    """The crew's inputs, counted: each field filled or control tapped is one."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.used: list[str] = []

    def fill(self, selector: str, value: str) -> None:
        self.page.fill(selector, value)
        self.used.append(selector)

    def tap(self, selector: str) -> None:
        self.page.click(selector)
        self.used.append(selector)


def _utc(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


@pytest.mark.parametrize("size", SIZES, ids=["landscape-1024x768", "portrait-800x1280"])
def test_first_note_in_six_inputs_the_next_in_two_on_the_first_screen(page: Any, server: LiveServer,
                                                                        size: dict[str, int]) -> None:
    page.set_viewport_size(size)
    sign_in(page, server)
    wait_enrolled(page)

    first = Inputs(page)
    first.fill('[name="flight"]', "ZZ202")
    first.fill('[name="dep"]', "ACC")
    first.fill('[name="arr"]', "LGW")
    first.fill('[name="lands_in"]', "1:10")
    asked_at = datetime.now(UTC)
    shown = page.inner_text("#f-arrival")
    assert re.fullmatch(r"Lands \d\d:\d\d UTC, \d\d:\d\d UK time \((GMT|BST)\)( tomorrow)?\.", shown), shown
    first.fill('[name="narrative"]', "First note on this flight.")
    first.tap("#submit-button")
    assert len(first.used) == 6
    wait_states(page, "delivered", 1)

    # the flight in one line, with its landing time in UTC and the time left
    summary = page.inner_text("#flight-summary-text")
    assert re.fullmatch(r"ZZ202 ACC → LGW · lands \d\d:\d\dZ · in 1 h (0\d|10) min", summary), summary
    assert page.is_visible("#flight-change") and _folded(page)
    where = page.evaluate(FIRST_SCREEN, QUICK)
    print("first screen after a note", size, json.dumps(where))
    assert where["scrollY"] == 0 and all(b["visible"] for b in where["boxes"]), where
    assert page.input_value('[name="narrative"]') == ""

    second = Inputs(page)
    second.fill('[name="narrative"]', "Second note: the man moved to 40C.")
    second.tap("#submit-button")
    assert len(second.used) == 2
    delivered = wait_states(page, "delivered", 2)

    # both accepted for one flight, one arrival, the urgency kept (the default here: routine)
    headers = {}
    for report_id, _, _ in delivered:
        header, body = open_report(server, report_id)
        headers[body["narrative"]] = header
    a, b = headers["First note on this flight."], headers["Second note: the man moved to 40C."]
    assert (a["flight"], a["dep"], a["arr"], a["sta"]) == (b["flight"], b["dep"], b["arr"], b["sta"]) == \
        ("ZZ202", "ACC", "LGW", a["sta"])
    landing = _utc(a["sta"])
    assert abs(landing - (asked_at + timedelta(minutes=70))) < timedelta(minutes=2)

    # told apart: their number on the flight, urgency and when written; nothing typed
    entries = [text for _, _, text in delivered]
    assert any(t.startswith("Note 1 on ZZ202 · Routine · written ") for t in entries), entries
    assert any(t.startswith("Note 2 on ZZ202 · Routine · written ") for t in entries), entries
    assert all("Reference" in t and "moved to 40C" not in t and "First note" not in t for t in entries)

    # a fresh start on the same flight: still folded, still on the first screen
    page.reload()
    wait_ready(page)
    assert page.is_visible("#flight-summary")
    where = page.evaluate(FIRST_SCREEN, QUICK)
    assert where["scrollY"] == 0 and all(b["visible"] for b in where["boxes"]), where

    # "Change" opens the flight again, its number first
    page.click("#flight-change")
    assert not _folded(page) and page.evaluate("() => document.activeElement.name") == "flight"
    assert page.is_hidden("#flight-summary")


def _folded(page: Any) -> bool:
    """The flight fields out of sight (clipped away, taking no room) and out of the tab order."""
    return bool(page.evaluate("""() => { const g = document.querySelector('#flight-group'), css = getComputedStyle(g);
      return g.classList.contains('folded') && g.getBoundingClientRect().width <= 1 && css.position === 'absolute'
        && css.clipPath === 'inset(50%)' && [...g.querySelectorAll('input')].every((el) => el.tabIndex === -1); }"""))


def test_a_note_on_another_flight_unfolds_the_flight_by_filling_or_focusing_it(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    fill_minimal(page, "On the first flight.", flight="ZZ111", sta=(datetime.now(UTC) + timedelta(hours=2))
                 .strftime("%Y-%m-%dT%H:%M"))  # the exact arrival is a field of its own (DESIGN section 7)
    submit(page, 1)
    assert _folded(page)
    # keyboard: Tab from "Change" skips the folded fields
    page.focus("#flight-change")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.closest('#flight-group') === null")
    # a script or a screen reader reaching a folded field: it unfolds
    fill_minimal(page, "On the second flight.", flight="ZZ112", lands_in="4:00")
    assert not _folded(page) and page.is_hidden("#flight-summary")
    submit(page, 2)
    delivered = wait_states(page, "delivered", 2)
    flights = sorted(open_report(server, rid)[0]["flight"] for rid, _, _ in delivered)
    assert flights == ["ZZ111", "ZZ112"]


def test_a_second_note_keeps_the_first_notes_urgency_and_not_the_child_flag(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    fill_minimal(page, "Child travelling with a man who is not her father.", flight="ZZ303", urgency="immediate")
    page.click('[name="child_involved"]')  # one tap
    submit(page, 1)
    assert page.input_value('[name="urgency"]') == "immediate"
    assert not page.is_checked('[name="child_involved"]')
    page.fill('[name="narrative"]', "He took her passport back.")
    submit(page, 2)
    delivered = wait_states(page, "delivered", 2)
    bodies = {}
    for report_id, _, _ in delivered:
        header, body = open_report(server, report_id)
        bodies[body["narrative"]] = (header["urgency"], body.get("child_involved"))
    assert bodies == {"Child travelling with a man who is not her father.": ("immediate", True),
                      "He took her passport back.": ("immediate", None)}


@pytest.fixture
def slow_clock_page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A tablet whose clock is 7 hours slow (Date shifted by an init script)."""
    ctx = browser.new_context(base_url=server.url, service_workers="allow")
    ctx.add_init_script(INIT_SCRIPT)
    ctx.add_init_script("""(() => {
      const OFFSET = -7 * 3600000, Real = Date;
      class Shifted extends Real {
        constructor(...args) { if (args.length === 0) super(Real.now() + OFFSET); else super(...args); }
        static now() { return Real.now() + OFFSET; }
      }
      globalThis.Date = Shifted;
    })();""")
    ctx.set_default_timeout(20000)
    yield ctx.new_page()
    ctx.close()


def test_a_clock_hours_off_is_corrected_from_the_server_and_the_note_still_queued(slow_clock_page: Any,
                                                                                   server: LiveServer) -> None:
    page = slow_clock_page
    sign_in(page, server)
    wait_enrolled(page)
    # One reading of the clock: two calls to Date.now() may be a millisecond apart.
    skew = page.evaluate("() => { const t = Date.now();"
                         " return t - Date.UTC(...new Date(t).toISOString().match(/\\d+/g).map(Number)"
                         ".map((n, i) => i === 1 ? n - 1 : n)); }")
    assert skew == 0  # the shift is in Date itself: the page cannot tell without the server
    behind = datetime.now(UTC).timestamp() * 1000 - page.evaluate("() => Date.now()")
    assert abs(behind - 7 * 3600000) < 60000  # and it is seven hours slow
    # as the page keeps it (the page runs its own bundled clock.js, not one imported here)
    offset = poll(page, "() => JSON.parse(localStorage.getItem('cabin-notes-clock') || 'null')?.offset_ms",
                  lambda o: o is not None and o > 6.9 * 3600000,
                  message="offset learnt from the server's answers")
    assert abs(offset - 7 * 3600000) < 5000

    wait_service_worker(page)
    page.context.set_offline(True)
    page.reload()  # a cold start offline: the offset was kept
    wait_ready(page)
    fill_minimal(page, "Written with the tablet's clock seven hours slow.", flight="ZZ404", lands_in="1:10")
    real_now = datetime.now(UTC)
    summary_hint = page.inner_text("#f-arrival")
    expected = real_now + timedelta(minutes=70)
    assert f"Lands {expected:%H:%M} UTC" in summary_hint or f"Lands {(expected - timedelta(minutes=1)):%H:%M} UTC" in summary_hint \
        or f"Lands {(expected + timedelta(minutes=1)):%H:%M} UTC" in summary_hint, summary_hint
    submit(page, 1)
    [record] = stored_outbox(page)
    assert record["state"] == "queued"
    assert abs(_utc(record["header"]["created"]) - real_now) < timedelta(minutes=2)
    assert abs(_utc(record["header"]["sta"]) - expected) < timedelta(minutes=2)

    page.context.set_offline(False)
    [(report_id, _, text)] = wait_states(page, "delivered", 1)
    header, _ = open_report(server, report_id)
    assert abs(_utc(header["created"]) - real_now) < timedelta(minutes=2)
    assert "Lands in 1 h" in text  # the countdown on the entry uses the corrected clock too
    line = poll(page, "() => document.querySelector('#delivery-status').textContent", lambda t: "UTC" in (t or ""))
    now = datetime.now(UTC)
    assert any(f"{t:%H:%M} UTC" in line for t in (now, now - timedelta(minutes=1))), line  # and the status line


def test_a_tablet_not_set_up_says_what_to_do_before_anything_is_typed(context: Any, page: Any, server: LiveServer) -> None:
    page.goto(server.url + "/")
    wait_ready(page)
    notice = page.inner_text("#form-device-notice")
    hotline = page.evaluate("() => document.querySelector('#crew-app').dataset.hotline")
    assert "This tablet is not set up to send notes, so the form is closed." in notice
    assert "On the ground: sign in with your crew account, while online, to set it up." in notice
    assert f"In the air: tell the captain, who can call the 24-hour line: {hotline}." in notice
    assert page.get_attribute("#report-form", "aria-describedby") == "form-device-notice"
    assert page.is_disabled("#f-narrative") and page.is_disabled("#submit-button") and page.is_disabled("#f-flight")
    assert page.is_visible("#sign-in-link")

    # offline from a cold start, still not set up: the same
    wait_service_worker(page)
    context.set_offline(True)
    page.reload()
    wait_ready(page)
    assert page.is_visible("#form-device-notice") and page.is_disabled("#f-narrative")
    context.set_offline(False)

    sign_in(page, server)
    wait_enrolled(page)
    assert page.is_hidden("#form-device-notice") and page.is_enabled("#f-narrative")


TROUBLE = ("No connection", "not available", "Trying again")
LINE_AND_STATES = """() => ({line: document.querySelector('#delivery-status').textContent,
  states: [...document.querySelectorAll('#outbox [data-report-id]')].map((li) => li.dataset.state)})"""


@pytest.fixture
def patient_page(browser: Any, server: LiveServer) -> Iterator[Any]:
    """The crew app with a back-off as long as the real one's third step
    (20 s), so that only the reconnection itself can deliver within a round."""
    ctx = browser.new_context(base_url=server.url, service_workers="allow")
    ctx.add_init_script("window.__CABIN_NOTES_CONFIG = {backoffBase: 20000, backoffMax: 20000};")
    ctx.set_default_timeout(20000)
    yield ctx.new_page()
    ctx.close()


def _delivered_elsewhere(page: Any, server: LiveServer) -> None:
    """Another tab of the app delivers the outbox (as the service worker's
    Background Sync does after reconnecting): this page's own pass then finds
    the outbox busy and only hears that its notes were delivered."""
    other = page.context.new_page()
    try:
        other.goto(server.url + "/static/css/crew.css")
        result = other.evaluate("async () => (await import('/static/js/outbox/scheduler.js')).deliver()")
        assert result["status"] == "ok" and result["delivered"] >= 1, result
    finally:
        other.close()


def test_the_status_line_tells_the_truth_after_each_reconnection(patient_page: Any, server: LiveServer) -> None:
    page = patient_page
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    rounds = ["server back, Send now", "delivered by another tab", "network back", "delivered by another tab",
              "network back", "server back, Send now"]
    for n, how in enumerate(rounds, start=1):
        if how == "network back":
            page.context.set_offline(True)
        else:
            server.stop()
        fill_minimal(page, f"Note {n} written while the server was away.", flight="ZZ505")
        submit(page, n)
        poll(page, "() => document.querySelector('#delivery-status').textContent",
             lambda t: any(w in (t or "") for w in TROUBLE), message="the line says the server cannot be reached")
        if how == "network back":
            page.context.set_offline(False)  # `online`: this page and the service worker's sync race to deliver
        else:
            server.start()
            if how == "delivered by another tab":
                _delivered_elsewhere(page, server)
            else:
                page.click("#send-now")
        # read together: once every note shows delivered, the line says nothing of trouble
        def all_delivered(v: Any, n: int = n) -> bool:
            return bool(v["states"].count("delivered") == n)

        seen = poll(page, LINE_AND_STATES, all_delivered, timeout=30,
                    message=f"{n} delivered ({how})")
        assert not any(w in seen["line"] for w in TROUBLE), (n, how, seen)
        page.wait_for_timeout(500)  # whatever was still under way has ended: the old words do not come back
        later = page.evaluate(LINE_AND_STATES)
        assert not any(w in later["line"] for w in TROUBLE), (n, how, later)


def test_delivered_notes_show_what_border_force_did_from_the_status_answer(context: Any, page: Any,
                                                                           server: LiveServer) -> None:
    """The app's side of POST /api/v1/reports/status (the server's side is tested
    with the intake): after a delivery it asks, signed by the device key, about
    its delivered notes, and shows each state. The answer here is the
    contract's, given by the test in place of the server."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    from crewreport import envelope as env_mod

    asked: list[dict[str, Any]] = []
    states = {"first": "seen", "second": "acting"}
    ids_by_order: list[str] = []

    def answer(route: Any) -> None:
        body = json.loads(route.request.post_data)
        asked.append(body)
        protected = json.loads(base64.urlsafe_b64decode(body["protected"] + "==="))
        if not ids_by_order:  # the first question comes when only the first note is delivered
            ids_by_order.extend(protected["ids"])
        results = [{"id": i, "state": states["first"] if i == ids_by_order[0] else states["second"]}
                   for i in protected["ids"]]
        route.fulfill(status=200, content_type="application/json", body=json.dumps({"results": results}))

    page.route("**/api/v1/reports/status", answer)
    sign_in(page, server)
    wait_enrolled(page)
    fill_minimal(page, "Status one.", flight="ZZ707")
    submit(page, 1)
    first_id = wait_states(page, "delivered", 1)[0][0]
    poll(page, "() => document.querySelector('#outbox [data-case-state]')?.dataset.caseState", lambda s: s == "seen",
         message="the first note's state shown")
    assert ids_by_order == [first_id]
    page.fill('[name="narrative"]', "Status two.")
    submit(page, 2)
    wait_states(page, "delivered", 2)
    page.click("#send-now")  # asks again at once
    shown = poll(page, """() => [...document.querySelectorAll('#outbox [data-report-id]')]
        .map((li) => [li.dataset.reportId, li.dataset.caseState || '', li.querySelector('.state-badge').textContent])""",
                 lambda v: v and all(s for _, s, _ in v), message="states shown")
    badges = {rid: (state, text) for rid, state, text in shown}
    assert badges[ids_by_order[0]] == ("seen", "Seen by Border Force")
    assert [t for rid, (s, t) in badges.items() if rid != ids_by_order[0]] == ["Border Force is acting"]

    # each request: the contract's shape, signed by this tablet's enrolled key, `at` now
    dev = page.evaluate("async () => (await (await import('/static/js/device.js')).getDevice()).device_id")
    jwk = json.loads(server.db_rows("SELECT public_jwk FROM device WHERE id = ?", (dev,))[0]["public_jwk"])
    key = env_mod.public_key_from_jwk(jwk)
    assert asked
    for body in asked:
        assert set(body) == {"protected", "signature"}
        protected = json.loads(base64.urlsafe_b64decode(body["protected"] + "==="))
        assert set(protected) == {"device", "ids", "at"} and protected["device"] == dev
        assert abs(_utc(protected["at"]) - datetime.now(UTC)) < timedelta(minutes=2)
        sig = base64.urlsafe_b64decode(body["signature"] + "===")
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
        key.verify(der, body["protected"].encode("ascii"), ec.ECDSA(hashes.SHA256()))
    page.unroute("**/api/v1/reports/status")


QUICK_ON_SCREEN = """() => ["#f-narrative", "#submit-button"].map((s) => {
  const r = document.querySelector(s).getBoundingClientRect();
  return r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight;
})"""


@pytest.mark.parametrize("size", [{"width": 1024, "height": 768}, {"width": 800, "height": 1280}],
                         ids=["landscape", "portrait"])
def test_the_next_note_fits_the_first_screen_under_the_banners(context: Any, page: Any, server: LiveServer,
                                                               size: dict[str, int]) -> None:
    """In descent, offline: the landing notice shows above the form, and a new
    version's banner may too; the next note is still its words and Save, on
    the first screen (DESIGN 7)."""
    try:
        queued_offline(context, page, server, "First note, written in descent.", lands_in="0:20", size=size)
        page.locator("#landing-banner").wait_for(state="visible")
        assert page.is_visible("#flight-summary")  # the flight folded: narrative and Save are the note
        assert page.evaluate(QUICK_ON_SCREEN) == [True, True]
        other = another_window(context, server)  # the app opened again, at the top
        other.set_viewport_size(size)
        other.locator("#landing-banner").wait_for(state="visible")
        assert other.evaluate(QUICK_ON_SCREEN) == [True, True]
        other.evaluate("() => { document.querySelector('#landing-banner').hidden = true;"
                       " document.querySelector('#update-banner').hidden = false; window.scrollTo(0, 0); }")
        assert other.evaluate(QUICK_ON_SCREEN) == [True, True]
    finally:
        context.set_offline(False)
