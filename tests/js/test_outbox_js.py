"""The outbox (outbox/): back-off, the delivery scheduler's timer logic, and how each
server answer settles a queued report."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def test_backoff_doubles_to_the_cap_and_resets(js_page: Any) -> None:
    seq = js_page.evaluate("""async () => {
      const { Backoff } = await import('/static/js/outbox/scheduler.js');
      const b = new Backoff();
      const out = [];
      for (let i = 0; i < 7; i++) out.push(b.next());
      b.reset();
      out.push(b.next());
      return out;
    }""")
    assert seq == [5000, 10000, 20000, 40000, 60000, 60000, 60000, 5000]


def test_scheduler_retries_with_backoff_and_stops_when_done(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { Backoff, DeliveryScheduler } = await import('/static/js/outbox/scheduler.js');
      const results = [
        {status: 'transient', pending: 2}, {status: 'transient', pending: 2}, {status: 'transient', pending: 2},
        {status: 'ok', delivered: 2, pending: 0},
        {status: 'busy', pending: -1},
        {status: 'ok', pending: 1},
        {status: 'not-enrolled', pending: 1},
      ];
      let calls = 0;
      const timers = [];
      const s = new DeliveryScheduler({
        deliverFn: async () => { calls++; return results.shift(); },
        backoff: new Backoff({base: 5000, max: 60000}),
        setTimer: (fn, ms) => { timers.push({fn, ms}); return timers.length; },
        clearTimer: () => {},
      });
      const delays = [];
      await s.run('start');
      for (let i = 0; i < 6; i++) {
        delays.push(s.nextDelay);
        if (s.timer === null) break;
        await s.run('timer');  // what the timer does when it fires
      }
      return {delays, calls, finalTimer: s.timer};
    }""")
    # three failures back off 5, 10, 20 s; success with nothing left: no timer (null);
    assert out["delays"][:4] == [5000, 10000, 20000, None]
    assert out["calls"] == 4


def test_scheduler_busy_then_partial_success(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { Backoff, DeliveryScheduler } = await import('/static/js/outbox/scheduler.js');
      const results = [{status: 'busy', pending: -1}, {status: 'ok', pending: 1}, {status: 'not-enrolled', pending: 1}];
      const s = new DeliveryScheduler({
        deliverFn: async () => results.shift(),
        backoff: new Backoff({base: 1000, max: 4000}),
        setTimer: (fn, ms) => ({fn, ms}), clearTimer: () => {},
      });
      const seen = [];
      await s.run(); seen.push(s.nextDelay);      // another tab is sending: look again later
      await s.run(); seen.push(s.nextDelay);      // some left (e.g. queued meanwhile): soon, from the base
      await s.run(); seen.push(s.nextDelay);      // not enrolled: no timer
      return seen;
    }""")
    assert out == [1000, 1000, None]


def test_concurrent_runs_are_coalesced(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { DeliveryScheduler } = await import('/static/js/outbox/scheduler.js');
      let calls = 0, inFlight = 0, maxInFlight = 0;
      const s = new DeliveryScheduler({
        deliverFn: async () => { calls++; inFlight++; maxInFlight = Math.max(maxInFlight, inFlight);
                                 await new Promise(r => setTimeout(r, 30)); inFlight--; return {status: 'ok', pending: 0}; },
        setTimer: () => 1, clearTimer: () => {},
      });
      await Promise.all([s.run(), s.run(), s.run()]);
      return {calls, maxInFlight};
    }""")
    assert out["maxInFlight"] == 1
    assert out["calls"] == 2  # the one running, then once more for the calls that came meanwhile


def test_settle_classifies_server_answers(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { settle, isPermanent, PERMANENT_ERRORS } = await import('/static/js/outbox/delivery.js');
      const rec = {id: 'r1', header: {flight: 'ZZ1'}, envelope: {protected: 'x', sealed: ['y'], signature: 'z'}, state: 'sending'};
      const jwk = {kty: 'EC', crv: 'P-256', x: 'rsveQo3Hopn02GE2H_9nz921L2J_Y0dN4USMhO4jUH4', y: 'pEUl_4zlHEBAzn7c6JsjJfQ-MPTTHsYVBoP5C62E6Vg'};
      const out = {};
      for (const code of ['revoked_device', 'invalid_report', 'conflict', 'too_large', 'rate_limited', 'internal']) {
        const s = await settle(rec, {error: {code, message: 'm ' + code}}, jwk);
        out[code] = [s.kind, s.record.state, s.record.envelope ? 'kept' : 'dropped'];
      }
      const bad = await settle(rec, {receipt: 'eyJ9', signature: 'A'.repeat(86)}, jwk);
      out.badReceipt = [bad.kind, bad.record.state, bad.record.envelope ? 'kept' : 'dropped'];
      out.permanent = [...PERMANENT_ERRORS].sort();
      out.transientNetwork = isPermanent('network');
      return out;
    }""")
    assert out["revoked_device"] == ["rejected", "rejected", "kept"]
    assert out["invalid_report"][0] == "rejected" and out["conflict"][0] == "rejected" and out["too_large"][0] == "rejected"
    assert out["rate_limited"] == ["transient", "queued", "kept"]
    assert out["internal"] == ["transient", "queued", "kept"]
    # a receipt that does not verify never drops the queued copy
    assert out["badReceipt"] == ["transient", "queued", "kept"]
    assert out["permanent"] == sorted(["bad_signature", "conflict", "invalid_report", "malformed", "revoked_device",
                                       "too_large", "undecryptable", "unknown_device", "unknown_recipient",
                                       "unsupported_version"])
    assert out["transientNetwork"] is False


def test_delivery_is_single_flight_and_a_failed_send_stays_queued(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { db } = await import('/static/js/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      const { enqueue, listReports, removeReport } = await import('/static/js/outbox/store.js');
      const d = await db();
      await d.put('meta', {device_id: 'dev-x', airline: 'ZZ', recipients: [], username: 'u',
                           receipt_key: {kid: 'k', jwk: {kty: 'EC', crv: 'P-256', x: 'rsveQo3Hopn02GE2H_9nz921L2J_Y0dN4USMhO4jUH4', y: 'pEUl_4zlHEBAzn7c6JsjJfQ-MPTTHsYVBoP5C62E6Vg'}}}, 'device');
      await enqueue({id: 'single-flight-1', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'a', sealed: ['b'], signature: 'c'});
      let calls = 0;
      const bodies = [];
      const slow503 = async (url, init) => { calls++; bodies.push(JSON.parse(init.body)); await new Promise(r => setTimeout(r, 150));
                                             return new Response(JSON.stringify({error: {code: 'unavailable', message: 'down'}}), {status: 503}); };
      // two "tabs" (or a tab and the service worker) at once: one sends, the other steps aside
      const [a, b] = await Promise.all([deliver({fetchFn: slow503}), deliver({fetchFn: slow503})]);
      const after = await listReports();
      const thrown = await deliver({fetchFn: async () => { throw new TypeError('Failed to fetch'); }});
      const after2 = await listReports();
      await removeReport('single-flight-1');
      await d.delete('meta', 'device');
      return {statuses: [a.status, b.status].sort(), calls, batch: bodies[0],
              troubles: [a.trouble, b.trouble], thrownTrouble: thrown.trouble,
              state: after[0].state, error: after[0].last_error, attempts: after[0].attempts,
              thrown: thrown.status, state2: after2[0].state, envelopeKept: !!after2[0].envelope};
    }""")
    assert out["statuses"] == ["busy", "transient"]
    assert out["calls"] == 1
    assert out["batch"] == {"envelopes": [{"protected": "a", "sealed": ["b"], "signature": "c"}]}
    assert out["state"] == "queued" and out["error"]["code"] == "unavailable" and out["attempts"] == 1
    assert out["thrown"] == "transient" and out["state2"] == "queued" and out["envelopeKept"] is True
    # what the status line is based on: a 503 is the server, a failed fetch is the connection
    assert "server" in out["troubles"] and out["thrownTrouble"] == "network"


ROTATED_RECEIPT = """async ({publish}) => {
  const { db } = await import('/static/js/store.js');
  const { deliver } = await import('/static/js/outbox/scheduler.js');
  const { enqueue, listReports, removeReport } = await import('/static/js/outbox/store.js');
  const { jwkThumbprint, envelopeSha256 } = await import('/static/js/envelope.js');
  const { b64u, utf8 } = await import('/static/js/b64.js');
  const ecdsa = {name: 'ECDSA', namedCurve: 'P-256'};
  const pub = async (pair) => { const j = await crypto.subtle.exportKey('jwk', pair.publicKey); return {kty: j.kty, crv: j.crv, x: j.x, y: j.y}; };
  const oldKey = await crypto.subtle.generateKey(ecdsa, false, ['sign', 'verify']);
  const newKey = await crypto.subtle.generateKey(ecdsa, false, ['sign', 'verify']);
  const bfKey = await crypto.subtle.generateKey({name: 'ECDH', namedCurve: 'P-256'}, true, ['deriveBits']);
  const oldJwk = await pub(oldKey), newJwk = await pub(newKey), bfJwk = await pub(bfKey);
  const bf = {kid: await jwkThumbprint(bfJwk), owner: 'border_force', jwk: bfJwk};
  const d = await db();
  await d.put('meta', {device_id: 'dev-r', airline: 'ZZ', recipients: [bf], username: 'u',
                       receipt_key: {kid: await jwkThumbprint(oldJwk), jwk: oldJwk}}, 'device');
  const envelope = {protected: 'a', sealed: ['b'], signature: 'c'};
  await enqueue({id: 'rotated-1', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, envelope);
  // the server has rotated its receipt key: it signs with the new one
  const receipt = b64u(utf8(JSON.stringify({id: 'rotated-1', reference: 'ZZ-ROT-1', received_at: '2026-11-29T10:00:00Z',
                                            envelope_sha256: await envelopeSha256(envelope)})));
  const signature = b64u(await crypto.subtle.sign({name: 'ECDSA', hash: 'SHA-256'}, newKey.privateKey, utf8(receipt)));
  const published = publish === 'new' ? newJwk : oldJwk;
  const calls = [];
  const fetchFn = async (url, init) => {
    calls.push(url);
    if (url === '/api/v1/reports/batch') return new Response(JSON.stringify({results: [{receipt, signature}]}), {status: 200});
    if (url === '/api/v1/keys') return new Response(JSON.stringify({
      recipients: [bf], receipt_key: {kid: await jwkThumbprint(published), jwk: published}}), {status: 200});
    throw new TypeError('unexpected ' + url);
  };
  const summary = await deliver({fetchFn});
  const rec = (await listReports()).find(r => r.id === 'rotated-1');
  const dev = await d.get('meta', 'device');
  await removeReport('rotated-1');
  await d.delete('meta', 'device');
  return {summary, calls, state: rec.state, reference: rec.receipt && rec.receipt.reference,
          envelopeKept: !!rec.envelope, error: rec.last_error,
          receiptKid: dev.receipt_key.kid, newKid: await jwkThumbprint(newJwk),
          previous: (dev.previous_receipt_keys || []).map(k => k.kid), oldKid: await jwkThumbprint(oldJwk)};
}"""


def test_a_receipt_from_a_rotated_key_verifies_after_one_key_refresh(js_page: Any) -> None:
    out = js_page.evaluate(ROTATED_RECEIPT, {"publish": "new"})
    assert out["calls"] == ["/api/v1/reports/batch", "/api/v1/keys"]  # not sent again
    assert out["state"] == "delivered" and out["reference"] == "ZZ-ROT-1" and not out["envelopeKept"]
    assert out["summary"]["status"] == "ok" and out["summary"]["delivered"] == 1
    assert out["receiptKid"] == out["newKid"] and out["previous"] == [out["oldKid"]]


def test_a_receipt_that_still_does_not_verify_keeps_the_report_queued_and_says_so(js_page: Any) -> None:
    out = js_page.evaluate(ROTATED_RECEIPT, {"publish": "old"})
    assert out["calls"] == ["/api/v1/reports/batch", "/api/v1/keys"]  # one refresh, one re-check, no loop
    assert out["state"] == "queued" and out["envelopeKept"]
    assert out["error"]["code"] == "receipt_unverified" and "receipt could not be checked" in out["error"]["message"]
    assert out["summary"]["status"] == "transient" and out["summary"]["trouble"] == "receipt"


def test_trouble_kinds_for_the_status_line(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { troubleKind } = await import('/static/js/outbox/delivery.js');
      return ['network', 'service_unavailable', 'http_503', 'http_500', 'receipt_unverified', 'rate_limited', 'http_404']
        .map(code => troubleKind({code}))
        .concat([troubleKind({code: 'whatever', http_status: 502}), troubleKind(null)]);
    }""")
    assert out == ["network", "server", "server", "server", "receipt", "busy", "other", "server", "other"]


def test_a_trigger_during_a_failing_pass_gets_a_pass_of_its_own(js_page: Any) -> None:
    """Back online while a pass is failing: the `online` trigger is not lost
    with that failure, so delivery does not wait for the back-off."""
    out = js_page.evaluate("""async () => {
      const { Backoff, DeliveryScheduler } = await import('/static/js/outbox/scheduler.js');
      let calls = 0, release;
      const results = [{status: 'transient', pending: 1, trouble: 'network'}, {status: 'ok', delivered: 1, pending: 0}];
      const s = new DeliveryScheduler({
        deliverFn: async () => { calls++; if (calls === 1) await new Promise((r) => { release = r; }); return results.shift(); },
        backoff: new Backoff({base: 20000, max: 20000}), setTimer: (fn, ms) => ({fn, ms}), clearTimer: () => {},
      });
      const first = s.run('timer');
      await new Promise((r) => setTimeout(r, 10));
      const second = s.run('online');   // comes while the first pass is still failing
      release();
      const result = await first;
      await second;
      return {calls, status: result.status, timer: s.timer};
    }""")
    assert out == {"calls": 2, "status": "ok", "timer": None}


def test_a_note_is_queued_in_a_strict_transaction(js_page: Any) -> None:
    """Queued means on the disk: the transaction that stores the note asks for
    strict durability (Chromium's default since version 121 is relaxed)."""
    out = js_page.evaluate("""async () => {
      const store = await import('/static/js/outbox/store.js');
      const opened = [];
      const transaction = IDBDatabase.prototype.transaction;
      IDBDatabase.prototype.transaction = function (...args) {
        const tx = transaction.apply(this, args);
        opened.push({stores: [...tx.objectStoreNames], mode: tx.mode, durability: tx.durability});
        return tx;
      };
      try {
        await store.enqueue({id: 'strict-1', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'p', sealed: ['s'], signature: 'g'});
      } finally {
        IDBDatabase.prototype.transaction = transaction;
        await store.removeReport('strict-1');
      }
      return opened.filter(t => t.mode === 'readwrite');
    }""")
    assert out == [{"stores": ["meta", "outbox"], "mode": "readwrite", "durability": "strict"}]


def test_the_outbox_refuses_a_second_note_under_one_id(js_page: Any) -> None:
    """What a window that did not hear of the first (asleep, say) meets when it
    sends a draft another window sent: refused while the note is listed, and
    after it was delivered and cleared from the list."""
    out = js_page.evaluate("""async () => {
      const store = await import('/static/js/outbox/store.js');
      const header = {id: 'c9d7a0f2-3b1e-4c55-9a61-0d2f8e7b4a10', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'};
      await store.enqueue(header, {protected: 'first', sealed: ['s'], signature: 'g'});
      let refused = null;
      try { await store.enqueue(header, {protected: 'second', sealed: ['s'], signature: 'g'}); } catch (e) { refused = e.name; }
      const all = await store.listReports();
      // delivered and cleared from the list: its id is still refused
      await store.putAll([{...all[0], state: 'delivered'}]);
      const cleared = await store.clearDelivered();
      let after = null;
      try { await store.enqueue(header, {protected: 'third', sealed: ['s'], signature: 'g'}); } catch (e) { after = e.name; }
      const fresh = await store.enqueue({...header, id: '5b0c7e31-9d24-4f6a-8e13-2a7c4d9f6b02'}, {protected: 'new', sealed: ['s'], signature: 'g'});
      return {refused, count: all.length, kept: all[0].envelope.protected, cleared, after, fresh: fresh.state,
              left: (await store.listReports()).map(r => r.id)};
    }""")
    assert out == {"refused": "AlreadyQueued", "count": 1, "kept": "first", "cleared": 1, "after": "AlreadyQueued",
                   "fresh": "queued", "left": ["5b0c7e31-9d24-4f6a-8e13-2a7c4d9f6b02"]}


def test_notes_still_go_when_the_tablets_storage_is_full(js_page: Any) -> None:
    """A full storage refuses the outbox's mark that a batch is being sent
    (its attempt count grows the record): the notes are sent all the same,
    rather than the whole outbox waiting for room that may never come."""
    out = js_page.evaluate("""async () => {
      const { db } = await import('/static/js/store.js');
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      const d = await db();
      await d.clear('outbox');
      await d.put('meta', {device_id: 'dev-full', airline: 'ZZ', recipients: [], receipt_key: {kid: 'k', jwk: {
        kty: 'EC', crv: 'P-256', x: 'rsveQo3Hopn02GE2H_9nz921L2J_Y0dN4USMhO4jUH4',
        y: 'pEUl_4zlHEBAzn7c6JsjJfQ-MPTTHsYVBoP5C62E6Vg'}}}, 'device');
      for (const id of ['full-1', 'full-2']) {
        await enqueue({id, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'p', sealed: ['s'], signature: 'g'});
      }
      const put = IDBObjectStore.prototype.put;
      IDBObjectStore.prototype.put = function (value, ...rest) {
        if (value && value.state === 'sending') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
        return put.call(this, value, ...rest);
      };
      const sent = [];
      try {
        const summary = await deliver({fetchFn: async (url, init) => {
          const envelopes = JSON.parse(init.body).envelopes;
          sent.push(envelopes.length);
          return new Response(JSON.stringify({results: envelopes.map(() => (
            {error: {code: 'invalid_report', message: 'no'}}))}), {status: 200});
        }});
        return {sent, rejected: summary.rejected, states: (await listReports()).map(r => r.state)};
      } finally {
        IDBObjectStore.prototype.put = put;
      }
    }""")
    assert out["sent"] == [2]
    assert out["rejected"] == 2 and out["states"] == ["rejected", "rejected"]


FULL_STORAGE = """async ({answer, timeoutMs, notes, bytes}) => {
  const { db } = await import('/static/js/store.js');
  const { enqueue, listReports } = await import('/static/js/outbox/store.js');
  const { deliver } = await import('/static/js/outbox/scheduler.js');
  const { BatchSize } = await import('/static/js/outbox/batch-size.js');
  const d = await db();
  await d.clear('outbox');
  await d.put('meta', {device_id: 'dev-full', airline: 'ZZ', recipients: [], receipt_key: {kid: 'k', jwk: {
    kty: 'EC', crv: 'P-256', x: 'rsveQo3Hopn02GE2H_9nz921L2J_Y0dN4USMhO4jUH4',
    y: 'pEUl_4zlHEBAzn7c6JsjJfQ-MPTTHsYVBoP5C62E6Vg'}}}, 'device');
  for (let i = 0; i < notes; i++) {
    await enqueue({id: `full-${i}`, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'},
                  {protected: 'p', sealed: ['s'.repeat(bytes)], signature: 'g'});
  }
  // Full: no record may be written any more, whatever it holds (as Chromium
  // counts a transaction's writes against the quota, not what they replace).
  const put = IDBObjectStore.prototype.put;
  IDBObjectStore.prototype.put = function () {
    throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
  };
  const sent = [];
  try {
    const summary = await deliver({timeoutMs, fetchFn: async (url, init) => {
      const envelopes = JSON.parse(init.body).envelopes;
      sent.push(envelopes.length);
      if (answer === 'proxy413' && envelopes.length > 1) return new Response('<h1>413</h1>', {status: 413});
      if (answer === 'slow' && envelopes.length > 1) {
        await new Promise((resolve, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
      }
      return new Response(JSON.stringify({results: envelopes.map(() => (
        {error: {code: 'invalid_report', message: 'no'}}))}), {status: 200});
    }});
    return {sent, summary, states: (await listReports()).map(r => r.state)};
  } catch (err) {
    return {sent, thrown: String(err && err.name)};
  } finally {
    IDBObjectStore.prototype.put = put;
    await d.clear('outbox');
    await d.delete('meta', 'device');
    BatchSize.cleared();
  }
}"""


def test_a_full_storage_does_not_end_the_pass_after_its_first_batch(js_page: Any) -> None:
    """Outcomes that cannot be stored do not throw the pass away: the notes
    behind the first batch still go (each once), and the pass says why the
    ones the server took may still show as waiting (they are sent again next
    time; the server answers a repeat from what it stored)."""
    out = js_page.evaluate(FULL_STORAGE, {"answer": "reject", "timeoutMs": 10_000, "notes": 7, "bytes": 310_000})
    assert "thrown" not in out, out
    assert out["sent"] == [6, 1]
    assert out["summary"]["rejected"] == 7 and out["states"] == ["queued"] * 7
    assert out["summary"]["status"] == "transient" and out["summary"]["trouble"] == "storage"
    assert out["summary"]["error"]["code"] == "storage_full"


def test_a_full_storage_still_halves_a_batch_a_proxy_refuses_as_too_large(js_page: Any) -> None:
    out = js_page.evaluate(FULL_STORAGE, {"answer": "proxy413", "timeoutMs": 10_000, "notes": 2, "bytes": 10})
    assert "thrown" not in out, out
    assert out["sent"] == [2, 1, 1] and out["summary"]["rejected"] == 2


def test_a_full_storage_still_halves_a_batch_that_timed_out(js_page: Any) -> None:
    out = js_page.evaluate(FULL_STORAGE, {"answer": "slow", "timeoutMs": 300, "notes": 2, "bytes": 10})
    assert "thrown" not in out, out
    assert out["sent"] == [2, 1, 1] and out["summary"]["rejected"] == 2


def test_the_status_line_says_when_the_tablets_storage_is_full(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { troubleKind } = await import('/static/js/outbox/delivery.js');
      const { deliveryStatusText } = await import('/static/js/ui/outbox-view.js');
      const trouble = troubleKind({code: 'storage_full'});
      return {trouble, line: deliveryStatusText({status: 'transient', trouble}, new Date('2026-12-01T10:00:00Z'), 60000)};
    }""")
    assert out["trouble"] == "storage"
    assert out["line"].startswith("This tablet's storage is full") and out["line"].endswith("Trying again in 60 s.")
