"""The outbox (outbox/), net.js, device.js, identity.js: batches bounded by
count and bytes, 413 handling, batches halved after a timeout, a refusal marking only
the registration that signed, deadlines on every request, and the crew ID kept
only sealed."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewreport import create_app

pytestmark = pytest.mark.e2e

SETUP = """async () => {
  const { db } = await import('/static/js/store.js');
  const d = await db();
  await d.clear('outbox');
  await d.put('meta', {device_id: 'dev-l', airline: 'ZZ', recipients: [],
                       receipt_key: {kid: 'k', jwk: {kty: 'EC', crv: 'P-256', x: 'rsveQo3Hopn02GE2H_9nz921L2J_Y0dN4USMhO4jUH4', y: 'pEUl_4zlHEBAzn7c6JsjJfQ-MPTTHsYVBoP5C62E6Vg'}}}, 'device');
  // The intake's answer to a batch of n that refuses each envelope (which settles it).
  globalThis.refusedAll = (n, code = 'invalid_report', message = 'no') => new Response(
    JSON.stringify({results: Array.from({length: n}, () => ({error: {code, message}}))}), {status: 200});
}"""


def test_envelope_limit_matches_the_servers(js_page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = js_page.evaluate("""async () => {
      const e = await import('/static/js/envelope.js');
      const o = await import('/static/js/outbox/delivery.js');
      return {max: e.MAX_ENVELOPE_BYTES, batchBytes: o.BATCH_BYTES, batchLimit: o.BATCH_LIMIT,
              size: e.envelopeBytes({protected: 'ab', sealed: ['c'], signature: 'd'})};
    }""")
    monkeypatch.setenv("CREWREPORT_INSTANCE", str(tmp_path))
    server = create_app({"TESTING": True, "SECRET_KEY": "x"}).config
    assert out["max"] == server["MAX_ENVELOPE_BYTES"]
    assert out["batchLimit"] == server["MAX_BATCH"]
    # A full batch of the tablet's size fits the server's request limit.
    assert out["batchBytes"] == 2 * 1024 * 1024 and out["batchBytes"] + out["max"] < server["MAX_CONTENT_LENGTH"]
    assert out["size"] == len('{"protected":"ab","sealed":["c"],"signature":"d"}')


def test_take_batch_bounds_count_and_bytes_but_always_sends_one(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { takeBatch } = await import('/static/js/outbox/delivery.js');
      const rec = (n, len) => ({id: 'r' + n, envelope: {protected: 'p', sealed: ['s'.repeat(len)], signature: 'g'}});
      const small = Array.from({length: 250}, (_, i) => rec(i, 10));
      const big = Array.from({length: 5}, (_, i) => rec(i, 700 * 1024));
      const huge = [rec(0, 3 * 1024 * 1024), rec(1, 10)];
      return {small: takeBatch(small).length, big: takeBatch(big).length, huge: takeBatch(huge).length,
              limited: takeBatch(small, 7).length,
              bytes: JSON.stringify({envelopes: takeBatch(big).map(r => r.envelope)}).length};
    }""")
    assert out["small"] == 100 and out["limited"] == 7
    assert out["big"] == 2 and out["bytes"] <= 2 * 1024 * 1024
    assert out["huge"] == 1


def test_delivery_sends_many_notes_in_bounded_requests(js_page: Any) -> None:
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      for (let i = 0; i < 230; i++) {
        const id = 'many-' + String(i).padStart(3, '0');
        await enqueue({id, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'p' + i, sealed: ['s'], signature: 'g'});
      }
      const sizes = [];
      const fetchFn = async (url, init) => {
        const n = JSON.parse(init.body).envelopes.length;
        sizes.push(n);
        return refusedAll(n);
      };
      const summary = await deliver({fetchFn});
      const states = [...new Set((await listReports()).map(r => r.state))];
      return {sizes, rejected: summary.rejected, states};
    }""")
    assert out["sizes"] == [100, 100, 30]
    assert out["rejected"] == 230 and out["states"] == ["rejected"]


def test_a_413_splits_a_batch_and_rejects_a_single_note_only_when_the_app_says_so(js_page: Any) -> None:
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      const { db } = await import('/static/js/store.js');
      const proxy413 = (calls) => async (url, init) => {  // a proxy: HTML, not the API's JSON
        calls.push(JSON.parse(init.body).envelopes.length);
        return new Response('<html><body>413 Request Entity Too Large</body></html>', {status: 413, headers: {'Content-Type': 'text/html'}});
      };
      const app413 = (calls) => async (url, init) => {  // the app's own answer about one envelope
        calls.push(JSON.parse(init.body).envelopes.length);
        return new Response(JSON.stringify({error: {code: 'too_large', message: 'An envelope may be at most 320 KiB.'}}), {status: 413});
      };
      await enqueue({id: 'one', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'a', sealed: ['b'], signature: 'c'});
      const single = [];
      const s1 = await deliver({fetchFn: app413(single)});
      const r1 = (await listReports())[0];
      await (await db()).clear('outbox');

      // a proxy's 413 says nothing about the note: kept, queued, sent again on the next pass
      await enqueue({id: 'px', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'px', sealed: ['b'], signature: 'c'});
      const proxied = [];
      const s2 = await deliver({fetchFn: proxy413(proxied)});
      const s2again = await deliver({fetchFn: proxy413(proxied)});
      const r2 = (await listReports())[0];
      await (await db()).clear('outbox');

      for (const id of ['t1', 't2', 't3']) await enqueue({id, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: id, sealed: ['b'], signature: 'c'});
      const several = [];
      const s3 = await deliver({fetchFn: app413(several)});
      const r3 = await listReports();
      await (await db()).clear('outbox');
      for (const id of ['v1', 'v2', 'v3']) await enqueue({id, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: id, sealed: ['b'], signature: 'c'});
      const severalProxied = [];
      const s5 = await deliver({fetchFn: proxy413(severalProxied)});
      const r5 = await listReports();

      // a JSON 413 from the app for a batch that is split and then accepted one by one is not a rejection
      await (await db()).clear('outbox');
      for (const id of ['u1', 'u2']) await enqueue({id, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: id, sealed: ['b'], signature: 'c'});
      const split = [];
      const s4 = await deliver({fetchFn: async (url, init) => {
        const n = JSON.parse(init.body).envelopes.length;
        split.push(n);
        if (n > 1) return new Response(JSON.stringify({error: {code: 'too_large', message: 'The request is too large.'}}), {status: 413});
        return new Response(JSON.stringify({error: {code: 'unavailable', message: 'down'}}), {status: 503});
      }});
      const r4 = await listReports();
      await (await db()).clear('outbox');
      return {single, s1: [s1.status, s1.rejected, s1.pending], r1: [r1.state, r1.error && r1.error.code, r1.error && r1.error.message],
              proxied, s2: [s2.status, s2.trouble, s2.rejected, s2.pending], s2again: s2again.status,
              r2: [r2.state, !!r2.envelope, r2.last_error && r2.last_error.code],
              several, s3: [s3.rejected, s3.pending], r3: r3.map(r => [r.state, r.error && r.error.code]),
              severalProxied, s5: [s5.status, s5.rejected, s5.pending], r5: r5.map(r => r.state),
              split, s4: [s4.status, s4.rejected], r4: r4.map(r => r.state)};
    }""")
    assert out["single"] == [1]  # once, not in a loop
    assert out["r1"] == ["rejected", "too_large", "An envelope may be at most 320 KiB."]
    assert out["s1"][1:] == [1, 0]
    assert out["proxied"] == [1, 1]  # once a pass, never a tight loop
    assert out["s2"] == ["transient", "other", 0, 1] and out["s2again"] == "transient"
    assert out["r2"] == ["queued", True, "http_413"]
    assert out["several"] == [3, 1, 1, 1]
    assert out["s3"] == [3, 0] and out["r3"] == [["rejected", "too_large"]] * 3
    # split; each note the proxy refuses on its own is set aside for this pass and the rest go on
    assert out["severalProxied"] == [3, 1, 2, 1, 1]
    assert out["s5"] == ["transient", 0, 3] and out["r5"] == ["queued"] * 3
    assert out["split"] == [2, 1]  # split, then a 503: back-off takes over
    assert out["s4"] == ["transient", 0] and out["r4"] == ["queued", "queued"]


def test_batches_that_time_out_are_halved_until_they_get_through(js_page: Any) -> None:
    """A slow uplink: a batch of several that misses the deadline is sent again
    in halves, and later passes keep the smaller size until the backlog is
    cleared (sent again whole, it would time out on every pass)."""
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      const { db } = await import('/static/js/store.js');
      const queue = async (prefix, n) => {
        for (let i = 0; i < n; i++) await enqueue({id: prefix + String(i).padStart(3, '0'), flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'},
                                                  {protected: prefix + i, sealed: ['s'], signature: 'g'});
      };
      const sizes = [];
      // More than 20 envelopes do not get through in time; 20 or fewer are answered (refused, which settles them).
      const slowLink = (answer) => (url, init) => {
        const n = JSON.parse(init.body).envelopes.length;
        sizes.push(n);
        if (n > 20) return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason)));
        return Promise.resolve(answer(n));
      };
      const down = () => new Response(JSON.stringify({error: {code: 'unavailable', message: 'down'}}), {status: 503});
      await queue('slow-', 60);
      const first = await deliver({fetchFn: slowLink(down), timeoutMs: 150});
      const afterFirst = [...sizes]; sizes.length = 0;
      const states = [...new Set((await listReports()).map(r => r.state))];
      const second = await deliver({fetchFn: slowLink(refusedAll), timeoutMs: 150});
      const afterSecond = [...sizes]; sizes.length = 0;
      await (await db()).clear('outbox');
      await queue('later-', 40);  // the backlog was cleared: full batches again
      const third = await deliver({fetchFn: async (url, init) => { sizes.push(JSON.parse(init.body).envelopes.length); return refusedAll(sizes.at(-1)); }});
      return {afterFirst, first: [first.status, first.pending], states, afterSecond, second: [second.status, second.rejected, second.pending],
              afterThird: [...sizes], third: third.rejected};
    }""")
    assert out["afterFirst"] == [60, 30]  # halved at once; a second timeout ends the pass
    assert out["first"] == ["transient", 60] and out["states"] == ["queued"]
    # the next pass starts at half the last size; answered in time, it doubles (once: a size
    # that timed out in a pass is not tried again in it)
    assert out["afterSecond"] == [15, 30, 15, 15, 15]
    assert out["second"] == ["ok", 60, 0]
    assert out["afterThird"] == [40] and out["third"] == 40


def test_after_a_dead_link_batches_grow_back_and_a_note_a_proxy_refuses_holds_up_no_other(js_page: Any) -> None:
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      const { db } = await import('/static/js/store.js');
      const sizes = [];
      const count = (init) => { const n = JSON.parse(init.body).envelopes.length; sizes.push(n); return n; };
      for (let i = 0; i < 100; i++) {
        await enqueue({id: 'dead-' + String(i).padStart(3, '0'), flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'd' + i, sealed: ['s'], signature: 'g'});
      }
      // a link that never answers: two tries a pass, then the back-off
      const hang = (url, init) => { count(init); return new Promise((_, reject) => init.signal.addEventListener('abort', () => reject(init.signal.reason))); };
      const dead = await deliver({fetchFn: hang, timeoutMs: 100});
      const deadSizes = sizes.splice(0);
      const back = await deliver({fetchFn: async (url, init) => refusedAll(count(init))});
      const backSizes = sizes.splice(0);
      await (await db()).clear('outbox');

      // the oldest note is larger than a proxy takes; nine small ones wait behind it
      await enqueue({id: 'big', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'b', sealed: ['x'.repeat(4000)], signature: 'g'});
      for (let i = 0; i < 9; i++) await enqueue({id: 'small-' + i, flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 's' + i, sealed: ['s'], signature: 'g'});
      const proxy = async (url, init) => {
        const n = count(init);
        if (init.body.length > 2000) return new Response('<html>413</html>', {status: 413, headers: {'Content-Type': 'text/html'}});
        return refusedAll(n);
      };
      const first = await deliver({fetchFn: proxy});
      const proxySizes = sizes.splice(0);
      const left = (await listReports()).filter(r => r.state === 'queued').map(r => [r.id, r.last_error && r.last_error.code]);
      await (await db()).clear('outbox');
      return {deadSizes, dead: [dead.status, dead.trouble, dead.pending], backSizes, back: [back.status, back.pending],
              proxySizes, first: [first.status, first.trouble, first.rejected, first.pending], left};
    }""")
    assert out["deadSizes"] == [100, 50] and out["dead"] == ["transient", "network", 100]
    # back: from half the last size, doubling while batches are answered in time
    assert out["backSizes"] == [25, 50, 25] and out["back"] == ["ok", 0]
    assert out["proxySizes"] == [10, 5, 2, 1, 9]
    assert out["first"] == ["transient", "other", 9, 1]
    assert out["left"] == [["big", "http_413"]]


def test_the_next_try_waits_at_least_as_long_as_the_server_asked(js_page: Any) -> None:
    """Retry-After on a refused batch (429, 503) or on an answer with a
    rate-limited envelope: the back-off timer is never shorter (at most 10 min)."""
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue } = await import('/static/js/outbox/store.js');
      const { deliver, Backoff, DeliveryScheduler } = await import('/static/js/outbox/scheduler.js');
      const { db } = await import('/static/js/store.js');
      await enqueue({id: 'wait-1', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'w', sealed: ['s'], signature: 'g'});
      const answers = [
        () => new Response(JSON.stringify({error: {code: 'rate_limited', message: 'slow down'}}), {status: 429, headers: {'Retry-After': '120'}}),
        () => new Response(JSON.stringify({results: [{error: {code: 'rate_limited', message: 'later'}}]}), {status: 200, headers: {'Retry-After': '90'}}),
        () => new Response(JSON.stringify({error: {code: 'unavailable', message: 'down'}}), {status: 503, headers: {'Retry-After': '86400'}}),
        () => new Response(JSON.stringify({error: {code: 'unavailable', message: 'down'}}), {status: 503}),
      ];
      const delays = [];
      const waits = [];
      const s = new DeliveryScheduler({
        deliverFn: async () => { const r = await deliver({fetchFn: async () => answers.shift()()}); waits.push(r.retryAfterMs); return r; },
        backoff: new Backoff({base: 5000, max: 60000}),
        setTimer: () => 1, clearTimer: () => {},
      });
      for (let i = 0; i < 4; i++) { await s.run('timer'); delays.push(s.nextDelay); }
      await (await db()).clear('outbox');
      return {waits, delays};
    }""")
    assert out["waits"] == [120000, 90000, 600000, 0]
    # the back-off goes on underneath (5, 10, 20, 40 s): the longer of the two is the wait
    assert out["delays"] == [120000, 90000, 600000, 40000]


def test_a_refusal_for_an_earlier_registration_leaves_the_current_one_alone(js_page: Any) -> None:
    """A tablet re-enrolled with notes of its old, revoked registration still
    queued: their refusal rejects them, and only a refusal of a note the
    current registration signed marks it revoked."""
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver } = await import('/static/js/outbox/scheduler.js');
      const { getDevice } = await import('/static/js/device.js');
      const { db } = await import('/static/js/store.js');
      const revoked = async (url, init) => {
        const n = JSON.parse(init.body).envelopes.length;
        return refusedAll(n, 'revoked_device', 'This device was revoked by the airline.');
      };
      await enqueue({id: 'old-reg', device: 'dev-old', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'o', sealed: ['s'], signature: 'g'});
      const s1 = await deliver({fetchFn: revoked});
      const old = (await listReports())[0];
      const afterOld = (await getDevice()).revoked || null;
      await (await db()).clear('outbox');
      // one batch: the current registration's note, then an older one's
      await enqueue({id: 'cur-reg', device: 'dev-l', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'c', sealed: ['s'], signature: 'g'});
      await enqueue({id: 'old-reg-2', device: 'dev-old', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'o2', sealed: ['s'], signature: 'g'});
      await deliver({fetchFn: revoked});
      const afterCurrent = (await getDevice()).revoked || null;
      await (await db()).clear('outbox');
      return {s1: s1.rejected, old: [old.state, old.error.code], afterOld, afterCurrent: afterCurrent && afterCurrent.code};
    }""")
    assert out["s1"] == 1 and out["old"] == ["rejected", "revoked_device"]
    assert out["afterOld"] is None
    assert out["afterCurrent"] == "revoked_device"


def test_a_request_that_never_answers_times_out_and_lets_go_of_the_lock(js_page: Any) -> None:
    js_page.evaluate(SETUP)
    out = js_page.evaluate("""async () => {
      const { enqueue, listReports } = await import('/static/js/outbox/store.js');
      const { deliver, LOCK_NAME } = await import('/static/js/outbox/scheduler.js');
      await enqueue({id: 'hung', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, {protected: 'a', sealed: ['b'], signature: 'c'});
      const never = () => new Promise(() => {});  // ignores its signal, never settles
      let aborted = false;
      const honours = (url, init) => new Promise((_, reject) => init.signal.addEventListener('abort', () => { aborted = true; reject(init.signal.reason); }));
      const t0 = performance.now();
      const a = await deliver({fetchFn: never, timeoutMs: 200});
      const b = await deliver({fetchFn: honours, timeoutMs: 200});
      const ms = performance.now() - t0;
      const held = (await navigator.locks.query()).held.filter(l => l.name === LOCK_NAME).length;
      const rec = (await listReports())[0];
      return {a: [a.status, a.trouble], b: [b.status, b.trouble], aborted, ms, held, state: rec.state, err: rec.last_error};
    }""")
    assert out["a"] == ["transient", "network"] and out["b"] == ["transient", "network"]
    assert out["aborted"] is True
    assert out["ms"] < 2000 and out["held"] == 0
    assert out["state"] == "queued" and out["err"]["code"] == "network"


def test_session_keys_enrollment_and_sign_out_requests_have_deadlines(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const dev = await import('/static/js/device.js');
      const net = await import('/static/js/net.js');
      const default_ = net.requestTimeout();
      net.setRequestTimeout(150);
      const never = () => new Promise(() => {});
      const t0 = performance.now();
      const outcome = async (p) => { try { return ['ok', await p]; } catch (e) { return ['error', e.name, e.code]; } };
      const session = await outcome(dev.fetchSession(never));
      const keys = await outcome(dev.refreshKeys(never));
      const signOut = await outcome(dev.signOut('token', never));
      const enroll = await outcome(dev.enroll({csrf_token: 't', username: 'u'}, never));
      const ms = performance.now() - t0;
      net.setRequestTimeout(0);
      return {default_, session, keys, signOut, enroll, ms, after: net.requestTimeout()};
    }""")
    assert out["default_"] == 30000 and out["after"] == 30000
    assert out["session"] == ["error", "TimeoutError", "network"]
    assert out["keys"] == ["ok", None]
    assert out["signOut"] == ["ok", False]
    assert out["enroll"] == ["error", "Error", "network"]
    assert out["ms"] < 3000


def test_identity_is_kept_only_sealed(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const id = await import('/static/js/identity.js');
      const { db } = await import('/static/js/store.js');
      await id.saveIdentity({username: 'crew-user-4471'});
      await id.saveIdentity({crew_id: 'CID-Osprey-9902', crew_id_sta: '2026-06-01T14:00'});
      const back = await id.loadIdentity();
      const raw = await (await db()).get('meta', 'identity');
      const key = await (await db()).get('keys', 'identity-key');
      const rawText = JSON.stringify(raw) + new TextDecoder().decode(raw.ct);
      await id.wipeIdentity();
      return {back, keys: Object.keys(raw).sort(), leaks: rawText.includes('Osprey') || rawText.includes('crew-user'),
              extractable: key.extractable, alg: key.algorithm.name, afterWipe: await id.loadIdentity()};
    }""")
    assert out["back"] == {"crew_id": "CID-Osprey-9902", "crew_id_sta": "2026-06-01T14:00", "username": "crew-user-4471"}
    assert out["keys"] == ["ct", "iv"] and out["leaks"] is False
    assert out["extractable"] is False and out["alg"] == "AES-GCM"
    assert out["afterWipe"] == {"crew_id": "", "crew_id_sta": "", "username": ""}
