"""outbox/status.js against a mocked fetch: the tablet asks about its delivered
notes exactly as DESIGN section 4a says (signed by the device key over the
protected part, `at` from the corrected clock, at most 100 ids a request),
keeps each state on the note's entry, ignores answers that are not about what
it asked, marks a revoked device, and changes nothing when the server cannot
answer."""
from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

pytestmark = pytest.mark.e2e

SETUP = """async (count) => {
  const { withDb } = await import('/static/js/store.js');
  const pair = await crypto.subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const ids = [];
  await withDb(async (d) => {
    const tx = d.transaction(['meta', 'keys', 'outbox'], 'readwrite');
    await tx.objectStore('outbox').clear();
    await tx.objectStore('keys').put(pair, 'signing');
    await tx.objectStore('meta').put({device_id: 'dev-status-1', airline: 'ZZ', recipients: [], receipt_key: {kid: 'r', jwk: {}}}, 'device');
    for (let i = 0; i < count; i++) {
      const id = `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`;
      ids.push(id);
      await tx.objectStore('outbox').put({id, state: 'delivered', header: {id, flight: 'ZZ202', sta: '2026-12-01T21:20:00Z'},
                                          queued_at: new Date(Date.UTC(2026, 11, 1, 20, 0, i)).toISOString(),
                                          receipt: {reference: 'R' + i}});
    }
    await tx.objectStore('outbox').put({id: 'queued-1', state: 'queued', header: {id: 'queued-1'}, queued_at: '2026-12-01T20:00:00Z'});
    await tx.done;
  });
  return {ids, jwk: {x: jwk.x, y: jwk.y}};
}"""

ASK = """async ([mode, nowIso]) => {
  const s = await import('/static/js/outbox/status.js');
  const { listReports } = await import('/static/js/outbox/store.js');
  const { getDevice } = await import('/static/js/device.js');
  const requests = [];
  const reply = (status, body) => new Response(JSON.stringify(body), {status, headers: {'Content-Type': 'application/json'}});
  const fetchFn = async (url, init) => {
    const body = JSON.parse(init.body);
    requests.push({url, method: init.method, credentials: init.credentials, body});
    const ids = JSON.parse(atob(body.protected.replace(/-/g, '+').replace(/_/g, '/'))).ids;
    switch (mode) {
      case 'answer': return reply(200, {results: ids.map((id, i) => ({id, state: ['received', 'seen', 'acting', 'closed', 'unknown'][i % 5]}))});
      case 'shuffled': return reply(200, {results: ids.map((id, i) => ({id: ids[(i + 1) % ids.length], state: 'seen'}))});
      case 'strange': return reply(200, {results: ids.map((id) => ({id, state: 'arrested', officer: 'X'}))});
      case 'short': return reply(200, {results: []});
      case 'offline': throw new TypeError('Failed to fetch');
      case 'missing': return reply(404, {error: {code: 'not_found', message: 'Not Found'}});
      case 'stale': return reply(400, {error: {code: 'malformed', message: 'at is too far from now'}});
      case 'revoked': return reply(403, {error: {code: 'revoked_device', message: 'This device was revoked.'}});
    }
  };
  const result = await s.refreshStatuses({fetchFn, now: () => new Date(nowIso)});
  const states = Object.fromEntries((await listReports()).map((r) => [r.id, r.case_state || null]));
  const device = await getDevice();
  return {result, requests, states, revoked: device.revoked ? device.revoked.code : null};
}"""

NOW = "2026-12-01T20:10:00.000Z"


def _verify(jwk: dict[str, str], protected: str, signature: str) -> None:
    def unb64(s: str) -> bytes:
        return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))

    key = ec.EllipticCurvePublicNumbers(int.from_bytes(unb64(jwk["x"]), "big"), int.from_bytes(unb64(jwk["y"]), "big"),
                                        ec.SECP256R1()).public_key()
    sig = unb64(signature)
    assert len(sig) == 64
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    key.verify(der, protected.encode("ascii"), ec.ECDSA(hashes.SHA256()))  # raises if it does not verify


def test_request_is_signed_as_the_contract_says_and_states_are_kept(js_page: Any) -> None:
    setup = js_page.evaluate(SETUP, 5)
    out = js_page.evaluate(ASK, ["answer", NOW])
    assert out["result"] == {"status": "ok", "changed": 5}
    [req] = out["requests"]
    assert req["url"] == "/api/v1/reports/status" and req["method"] == "POST" and req["credentials"] == "omit"
    assert set(req["body"]) == {"protected", "signature"}
    protected = json.loads(base64.urlsafe_b64decode(req["body"]["protected"] + "==="))
    assert protected == {"device": "dev-status-1", "ids": sorted(setup["ids"]), "at": "2026-12-01T20:10:00Z"}
    _verify(setup["jwk"], req["body"]["protected"], req["body"]["signature"])
    order = protected["ids"]
    assert [out["states"][i] for i in order] == ["received", "seen", "acting", "closed", "unknown"]
    assert out["states"]["queued-1"] is None  # only delivered notes are asked about

    # a closed note is not asked about again
    again = js_page.evaluate(ASK, ["answer", NOW])
    asked = json.loads(base64.urlsafe_b64decode(again["requests"][0]["body"]["protected"] + "==="))["ids"]
    assert order[3] not in asked and len(asked) == 4


def test_more_than_a_hundred_notes_are_asked_about_in_requests_of_a_hundred(js_page: Any) -> None:
    js_page.evaluate(SETUP, 230)
    out = js_page.evaluate(ASK, ["answer", NOW])
    sizes = [len(json.loads(base64.urlsafe_b64decode(r["body"]["protected"] + "==="))["ids"]) for r in out["requests"]]
    assert sizes == [100, 100, 30]
    assert out["result"]["status"] == "ok"


@pytest.mark.parametrize("mode", ["shuffled", "strange", "short", "offline", "missing", "stale"])
def test_answers_that_are_not_about_what_was_asked_change_nothing(js_page: Any, mode: str) -> None:
    js_page.evaluate(SETUP, 3)
    out = js_page.evaluate(ASK, [mode, NOW])
    assert set(out["states"].values()) == {None}, out
    assert out["revoked"] is None
    assert out["result"]["status"] != "ok" or mode in ("shuffled", "strange")


def test_a_revoked_device_is_marked_and_then_asks_no_more(js_page: Any) -> None:
    js_page.evaluate(SETUP, 2)
    out = js_page.evaluate(ASK, ["revoked", NOW])
    assert out["revoked"] == "revoked_device"
    again = js_page.evaluate(ASK, ["answer", NOW])
    assert again["requests"] == [] and again["result"]["status"] == "not-enrolled"


def test_status_check_asks_at_most_once_per_interval_unless_forced(js_page: Any) -> None:
    calls = js_page.evaluate("""async () => {
      const { StatusCheck } = await import('/static/js/outbox/status.js');
      let t = 0, n = 0;
      const c = new StatusCheck({checkFn: async () => { n++; return {status: 'ok'}; }, intervalMs: 1000, now: () => t});
      await c.run(); t = 10; await c.run(); t = 20; await c.run({force: true}); t = 1500; await c.run();
      return n;
    }""")
    assert calls == 3
