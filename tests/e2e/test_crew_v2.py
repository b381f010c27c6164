"""Envelope version 2 in the browser: a note typed offline is sealed with
X-Wing, delivered when the server returns and read by an officer; every
request body carries `"v": 2` and never the narrative in clear. A tablet
that queued notes before it learned the X-Wing keys still delivers them
(as version 1, as sealed), and seals version 2 from then on."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.e2e.harness import (
    PASSWORD,
    STORED_OUTBOX,
    TOTP_SECRET,
    LiveServer,
    fill_minimal,
    open_report,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_ready,
    wait_service_worker,
    wait_states,
)

pytestmark = pytest.mark.e2e

# Read straight from IndexedDB: the page runs its bundles, and a module imported
# here would be another copy (and, offline, not in the precache).
QUEUED_HEADERS = """async () => (await (""" + STORED_OUTBOX + """)())
  .filter(r => r.envelope).map(r => JSON.parse(new TextDecoder().decode(
    Uint8Array.from(atob(r.envelope.protected.replace(/-/g, '+').replace(/_/g, '/')), c => c.charCodeAt(0)))))"""
HELD_SUITES = """async () => {
  const db = await new Promise((res, rej) => { const r = indexedDB.open('cabin-notes'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
  try {
    const device = await new Promise((res, rej) => { const r = db.transaction('meta').objectStore('meta').get('device'); r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error); });
    return device ? device.recipients.map(r => r.suite || 'v1') : null;
  } finally {
    db.close();
  }
}"""


def protected_header(env: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(env["protected"] + "==="))


def capture(context: Any) -> list[dict[str, Any]]:
    captured: list[dict[str, Any]] = []

    def on_request(req: Any) -> None:
        try:
            body = req.post_data_buffer
        except Exception:  # noqa: BLE001 - a request without a readable body is kept with none
            body = None
        captured.append({"url": req.url, "body": body})

    context.on("request", on_request)
    return captured


OFFICER = "v2-officer"


@pytest.fixture(scope="module")
def officer(live_server: LiveServer) -> str:
    """An officer of this module's own: a code is good once per user, so
    signing in demo-officer here would use up the codes later modules need."""
    live_server.flask("create-user", OFFICER, "--role", "border_force", "--password", PASSWORD,
                      "--totp-secret", TOTP_SECRET)
    return OFFICER


def officer_reads(browser: Any, server: LiveServer, officer: str, report_id: str) -> str:
    ctx = browser.new_context(base_url=server.url)
    try:
        page = ctx.new_page()
        sign_in(page, server, officer, "/triage/")  # with its known second factor
        page.goto(f"{server.url}/triage/reports/{report_id}")
        return str(page.inner_text("main"))
    finally:
        ctx.close()


def test_a_note_typed_offline_is_sealed_version_2_delivered_and_read(
        browser: Any, context: Any, page: Any, server: LiveServer, officer: str) -> None:
    narrative = "X-Wing e2e: boy in 22F says the man in 22E is not his father - Osprey-Narrative-6620 — 乗客"
    captured = capture(context)
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    assert sorted(set(page.evaluate(HELD_SUITES))) == ["v1", "v2"]

    server.stop()
    page.reload()  # the app starts from the service worker's cache
    wait_ready(page)
    fill_minimal(page, narrative, flight="ZZ2201")
    submit(page, 1)
    wait_states(page, "queued", 1)
    queued = page.evaluate(QUEUED_HEADERS)
    assert len(queued) == 1 and queued[0]["v"] == 2

    server.start()
    delivered = wait_states(page, "delivered", 1, timeout=30)
    report_id = delivered[0][0]
    header, body = open_report(server, report_id)
    assert header["v"] == 2 and body["narrative"] == narrative
    assert narrative in officer_reads(browser, server, officer, report_id)

    sent = [r for r in captured if "/api/v1/reports" in r["url"] and not r["url"].endswith("/status") and r["body"]]
    assert sent, "the delivery request was not captured"
    for req in sent:
        text = req["body"].decode("utf-8", "replace")
        assert "Osprey-Narrative-6620" not in text and "not his father" not in text
        payload = json.loads(text)
        envelopes = payload.get("envelopes", [payload])
        assert envelopes and all(protected_header(e)["v"] == 2 for e in envelopes)
    for req in captured:
        if req["body"]:
            assert b"Osprey-Narrative-6620" not in req["body"]


def test_notes_queued_before_the_tablet_learned_x_wing_keys_are_still_delivered(
        browser: Any, page: Any, server: LiveServer, officer: str) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)
    # A tablet enrolled before version 2: its record holds the P-256 keys only.
    page.evaluate("""async () => {
      const { withDb } = await import('/static/js/store.js');
      await withDb(async (d) => { const dev = await d.get('meta', 'device');
        dev.recipients = dev.recipients.filter(r => r.suite === 'v1').map(({suite, ...r}) => r);
        await d.put('meta', dev, 'device'); });
    }""")
    assert page.evaluate(HELD_SUITES) == ["v1", "v1"]

    server.stop()
    page.reload()
    wait_ready(page)
    fill_minimal(page, "Sealed the old way while offline - Plover-Narrative-1187", flight="ZZ2202")
    submit(page, 1)
    wait_states(page, "queued", 1)
    assert [h["v"] for h in page.evaluate(QUEUED_HEADERS)] == [1]

    server.start()
    page.reload()  # back online: the app refreshes its keys and delivers what is queued
    wait_ready(page)
    delivered = wait_states(page, "delivered", 1, timeout=30)
    old_id = delivered[0][0]
    poll(page, HELD_SUITES, lambda s: s is not None and "v2" in s, message="X-Wing keys learned")
    header, body = open_report(server, old_id)
    assert header["v"] == 1 and body["narrative"].endswith("Plover-Narrative-1187")

    fill_minimal(page, "Sealed post-quantum - Plover-Narrative-1188", flight="ZZ2202")
    submit(page, 2)
    states = wait_states(page, "delivered", 2, timeout=30)
    new_id = next(rid for rid, _, _ in states if rid != old_id)
    header, body = open_report(server, new_id)
    assert header["v"] == 2 and body["narrative"].endswith("Plover-Narrative-1188")
    text = officer_reads(browser, server, officer, old_id)
    assert "Plover-Narrative-1187" in text
