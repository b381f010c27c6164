"""Issue 3, test 2: nothing typed leaves the browser in clear (page and
service-worker requests), and nothing readable rests in IndexedDB or Web
Storage: not the report, and not who wrote it (the crew ID and the crew
username are kept only sealed)."""
from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

import pytest

from tests.e2e.harness import (
    LiveServer,
    dump_indexeddb,
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

NARRATIVE = "Quiet woman near row 41 whispered that a man keeps her passport - Zebra-Narrative-7741"
DESCRIPTION = "Grey hoodie, very anxious, Kestrel-Description-5512"
CREW_ID = "CID-Heron-3319"
SECRETS = [NARRATIVE, DESCRIPTION, "Zebra-Narrative-7741", "Kestrel-Description-5512", "whispered that a man", CREW_ID, "Heron-3319"]
USERNAME = "demo-crew"  # typed at sign-in (so it is in that request), but never at rest in clear


def _texts(req: dict[str, Any]) -> list[str]:
    out = [req["url"], unquote(req["url"])]
    body = req["body"]
    if body:
        text = body.decode("utf-8", "replace")
        out += [text, unquote(text)]
        try:  # JSON escapes (e.g. \u2014) must not hide anything
            out.append(json.dumps(json.loads(text), ensure_ascii=False))
        except ValueError:
            pass
    return out


def test_nothing_typed_leaves_in_clear_or_rests_readable(context: Any, page: Any, server: LiveServer) -> None:
    captured: list[dict] = []

    def on_request(req: Any) -> None:
        try:
            body = req.post_data_buffer
        except Exception:  # noqa: BLE001 - a request whose body cannot be read is captured without one
            body = None
        captured.append({"url": req.url, "method": req.method, "body": body, "sw": req.service_worker is not None})

    context.on("request", on_request)
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)

    fill_minimal(page, NARRATIVE)
    page.check('#report-form [name="child_involved"]')
    page.click("details.more > summary")
    page.fill('#report-form [name="crew_id"]', CREW_ID)
    page.click("#add-person")
    page.select_option('[data-person] [name="role"]', "possible_victim")
    page.fill('[data-person] [name="seat"]', "41c")
    page.select_option('[data-person] [name="age_range"]', "18_24")
    page.fill('[data-person] [name="description"]', DESCRIPTION)
    page.click("#indicators-group details > summary >> nth=0")  # one tap opens a group of signs
    page.check('input[name="indicators"] >> nth=0')
    page.check('input[name="captain_informed"]')

    # the draft autosaves, sealed
    dump: list = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        dump = json.loads(dump_indexeddb(page))
        drafts = [s for s in dump if s["store"] == "drafts"]
        if drafts and drafts[0]["rows"]:
            break
        time.sleep(0.1)
    draft = [s for s in dump if s["store"] == "drafts"][0]["rows"]
    assert draft and set(draft[0]) == {"iv", "ct", "saved_at"}
    keys = [s for s in dump if s["store"] == "keys"][0]["rows"]
    assert sorted(keys, key=str) == sorted(  # keys only as non-extractable CryptoKeys: draft, identity, signing
        ["CryptoKey:secret:false", "CryptoKey:secret:false",
         {"privateKey": "CryptoKey:private:false", "publicKey": "CryptoKey:public:true"}], key=str)
    meta = [s for s in dump if s["store"] == "meta"][0]["rows"]
    assert all("username" not in row for row in meta)  # not in the device record
    _assert_no_secret(json.dumps(dump, ensure_ascii=False), "IndexedDB with a draft", [USERNAME])

    # queue it with the server down: only the sealed envelope and the header rest on the tablet
    server.stop()
    submit(page, 1)
    wait_states(page, "queued", 1)
    dump = json.loads(dump_indexeddb(page))
    outbox = [s for s in dump if s["store"] == "outbox"][0]["rows"]
    assert len(outbox) == 1 and outbox[0]["envelope"]["sealed"]
    assert set(outbox[0]) <= {"id", "header", "envelope", "state", "queued_at", "attempts", "last_error", "last_attempt",
                              "note_number"}
    assert "child" not in json.dumps(outbox[0])  # the child flag is sealed in the body only
    assert [s for s in dump if s["store"] == "drafts"][0]["rows"] == []  # wiped after submit
    _assert_no_secret(json.dumps(dump, ensure_ascii=False), "IndexedDB with a queued report", [USERNAME])
    storage = page.evaluate("() => JSON.stringify({...localStorage}) + JSON.stringify({...sessionStorage})")
    assert "ZZ101" in storage  # flight details are kept for the next note (not sensitive)
    _assert_no_secret(storage, "Web Storage", [USERNAME])
    report_id = outbox[0]["id"]

    # leave the app (an image of the same origin: no app code runs); the service
    # worker delivers by itself on a Background Sync event (forced over CDP)
    page.goto("about:blank")  # first, so that the app's own timer cannot deliver it
    server.start()
    page.goto(server.url + "/static/icons/favicon.png")
    cdp = context.new_cdp_session(page)
    registrations: list[dict] = []
    cdp.on("ServiceWorker.workerRegistrationUpdated", lambda e: registrations.extend(e["registrations"]))
    cdp.send("ServiceWorker.enable")
    deadline = time.monotonic() + 10
    while not registrations and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # lets Playwright dispatch the CDP events
    reg = [r for r in registrations if r["scopeURL"].startswith(server.url)][0]
    cdp.send("ServiceWorker.dispatchSyncEvent", {"origin": server.url, "registrationId": reg["registrationId"],
                                                 "tag": "outbox", "lastChance": False})
    deadline = time.monotonic() + 20
    while not server.db_rows("SELECT id FROM report WHERE id = ?", (report_id,)) and time.monotonic() < deadline:
        time.sleep(0.1)
    cdp.detach()
    header, body = open_report(server, report_id)
    assert body["narrative"] == NARRATIVE
    assert body["people"] == [{"role": "possible_victim", "seat": "41C", "age_range": "18_24", "description": DESCRIPTION}]
    assert body["captain_informed"] is True and body["child_involved"] is True
    assert body["reporter"] == {"crew_id": CREW_ID}

    page.goto(server.url + "/")
    wait_states(page, "delivered", 1)
    # the entry on screen says what is in clear in the header, and its number on the flight
    entry = page.inner_text(f'#outbox [data-report-id="{report_id}"]')
    assert entry.startswith("Note 1 on ZZ101 · Priority · written ")
    _assert_no_secret(entry, "the outbox on screen")
    _assert_no_secret(json.dumps(json.loads(dump_indexeddb(page)), ensure_ascii=False), "IndexedDB after delivery", [USERNAME])
    # the crew ID comes back for the next note, from its sealed copy
    poll(page, "() => document.querySelector('#f-crew-id').value", lambda v: v == CREW_ID, message="crew ID restored")
    assert page.get_attribute("#f-crew-id", "placeholder") == USERNAME
    # ... for the rest of that flight only: on a tablet shared by crews, the next
    # flight's crew is not offered this one's ID
    page.evaluate("""async () => (await import('/static/js/identity.js')).saveIdentity({crew_id_sta: '2020-01-01T00:00'})""")
    page.reload()
    wait_ready(page)  # the form restored what it keeps
    assert page.input_value("#f-crew-id") == ""

    sw_batches = [r for r in captured if r["url"].endswith("/api/v1/reports/batch") and r["sw"]]
    assert sw_batches, ("the service worker's batch request was not captured",
                        [(r["url"], r["sw"]) for r in captured if "/api/" in r["url"]], context.service_workers)
    assert any(r["url"].endswith("/api/v1/devices") for r in captured)
    assert len(captured) > 10
    for req in captured:
        for text in _texts(req):
            _assert_no_secret(text, f"{req['method']} {req['url']}")


def _assert_no_secret(text: str, where: str, extra: list[str] | None = None) -> None:
    for secret in SECRETS + (extra or []):
        assert secret not in text, f"{secret!r} readable in {where}"


def test_a_crew_id_left_in_an_open_app_goes_once_its_flight_is_over(context: Any, page: Any,
                                                                     server: LiveServer) -> None:
    """After a note the form keeps the crew ID for the next note of that flight.
    A tablet left open (as the delivered notes it prunes by itself are) does
    not offer it to the next flight's crew once that flight is over, as a
    reload would not: in a hurry they could send a note under it."""
    page.clock.install()
    sign_in(page, server)
    wait_enrolled(page)
    wait_ready(page)
    context.set_offline(True)
    try:
        fill_minimal(page, "A first note, signed with a crew ID.", lands_in="1:00")
        page.click("details.more > summary")
        page.fill("#f-crew-id", CREW_ID)
        submit(page, 1)
        assert page.input_value("#f-crew-id") == CREW_ID  # for the next note on this flight
        page.clock.fast_forward("02:00:00")  # still that flight's hours
        page.wait_for_timeout(500)
        assert page.input_value("#f-crew-id") == CREW_ID
        page.clock.fast_forward("12:00:00")  # landed 13 hours ago: the next crew's flight
        poll(page, "() => document.querySelector('#f-crew-id').value", lambda v: v == "",
             message="the last crew's ID taken out of the form")
    finally:
        context.set_offline(False)
