"""store.js: the IndexedDB schema is upgraded by numbered steps keyed by the
tablet's old version, and a store made by the previous release (version 1,
with notes queued in it) keeps its notes: the app lists them unchanged and
they can still be delivered."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

# The database exactly as the previous release made it (version 1, its four
# stores), written with the raw IndexedDB API, with two notes queued offline.
MAKE_V1_STORE = """async () => {
  await new Promise((resolve, reject) => {
    const del = indexedDB.deleteDatabase('cabin-notes');
    del.onsuccess = resolve; del.onerror = () => reject(del.error);
  });
  const records = [1, 2].map((n) => ({
    id: `old-note-${n}`,
    header: {v: 1, id: `old-note-${n}`, device: 'dev-old', created: `2026-11-29T0${n}:00:00Z`, rcpt: ['kid-bf'],
             airline: 'ZZ', flight: `ZZ${n}`, dep: 'LOS', arr: 'LHR', sta: '2099-01-01T12:00:00Z', urgency: 'routine'},
    envelope: {protected: `p${n}`, sealed: [`s${n}`], signature: `g${n}`},
    state: 'queued', queued_at: `2026-11-29T0${n}:00:01.000Z`, attempts: n - 1,
    last_error: n === 2 ? {code: 'network', message: 'No connection to the server.'} : null,
  }));
  const database = await new Promise((resolve, reject) => {
    const req = indexedDB.open('cabin-notes', 1);
    req.onupgradeneeded = () => {
      const d = req.result;
      d.createObjectStore('keys');
      d.createObjectStore('meta');
      d.createObjectStore('outbox', {keyPath: 'id'});
      d.createObjectStore('drafts');
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  await new Promise((resolve, reject) => {
    const tx = database.transaction('outbox', 'readwrite');
    for (const r of records) tx.objectStore('outbox').put(r);
    tx.oncomplete = resolve; tx.onerror = () => reject(tx.error);
  });
  database.close();
  return records;
}"""

# Enroll the old store's device (a receipt key this test holds) and deliver
# the queued notes to an intake that signs a receipt for each.
DELIVER_OLD_NOTES = """async () => {
  const { db } = await import('/static/js/store.js');
  const { deliver } = await import('/static/js/outbox/scheduler.js');
  const { listReports } = await import('/static/js/outbox/store.js');
  const { jwkThumbprint, envelopeSha256 } = await import('/static/js/envelope.js');
  const { b64u, utf8 } = await import('/static/js/b64.js');
  const key = await crypto.subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign', 'verify']);
  const j = await crypto.subtle.exportKey('jwk', key.publicKey);
  const jwk = {kty: j.kty, crv: j.crv, x: j.x, y: j.y};
  const d = await db();
  await d.put('meta', {device_id: 'dev-old', airline: 'ZZ', recipients: [], username: 'u',
                       receipt_key: {kid: await jwkThumbprint(jwk), jwk}}, 'device');
  const sent = [];
  const fetchFn = async (url, init) => {
    const { envelopes } = JSON.parse(init.body);
    const results = [];
    for (const envelope of envelopes) {
      const id = `old-note-${envelope.protected.slice(1)}`;
      sent.push(id);
      const receipt = b64u(utf8(JSON.stringify({id, reference: `REF-${id}`, received_at: '2026-11-29T10:00:00Z',
                                                envelope_sha256: await envelopeSha256(envelope)})));
      const signature = b64u(await crypto.subtle.sign({name: 'ECDSA', hash: 'SHA-256'}, key.privateKey, utf8(receipt)));
      results.push({receipt, signature});
    }
    return new Response(JSON.stringify({results}), {status: 200});
  };
  const summary = await deliver({fetchFn});
  const after = await listReports();
  await d.clear('outbox');
  await d.delete('meta', 'device');
  return {summary, sent, after: after.map((r) => [r.id, r.state, r.receipt && r.receipt.reference])};
}"""


def test_migration_steps_run_in_order_from_the_old_version(js_page: Any) -> None:
    out = js_page.evaluate("""async () => {
      const { migrate, MIGRATIONS, DB_VERSION } = await import('/static/js/store.js');
      const ran = [];
      const steps = [0, 1, 2].map((i) => (database, tx) => ran.push([i, database, tx]));
      const runs = (oldVersion, newVersion) => { ran.length = 0; migrate('db', oldVersion, newVersion, 'tx', steps);
                                                return ran.map(([i, d, t]) => `${i}:${d}:${t}`); };
      let beyond = null;
      try { migrate('db', 0, 4, 'tx', steps); } catch (err) { beyond = err.message; }
      return {fresh: runs(0, 3), fromOne: runs(1, 3), current: runs(3, 3), beyond,
              version: DB_VERSION, steps: MIGRATIONS.length};
    }""")
    assert out["fresh"] == ["0:db:tx", "1:db:tx", "2:db:tx"]
    assert out["fromOne"] == ["1:db:tx", "2:db:tx"]  # a tablet at version 1 runs only what came after
    assert out["current"] == []
    assert out["beyond"] == "no migration to version 4"
    assert out["version"] == out["steps"]


def test_a_store_from_the_previous_release_keeps_its_queued_notes(js_page: Any, static_server: str) -> None:
    page = js_page
    stored = page.evaluate(MAKE_V1_STORE)
    page.goto(static_server + "/")
    page.wait_for_selector("#crew-app[data-ready=true]", state="attached")

    # the app opened it (at the current version, its stores all there) and lists both notes as waiting
    shape = page.evaluate("""async () => {
      const { db, DB_VERSION } = await import('/static/js/store.js');
      const d = await db();
      return {version: d.version, expected: DB_VERSION, stores: [...d.objectStoreNames].sort()};
    }""")
    assert shape["version"] == shape["expected"]
    assert shape["stores"] == ["drafts", "keys", "meta", "outbox"]
    items = page.locator("#outbox [data-report-id]")
    assert items.count() == 2
    assert sorted(items.evaluate_all("els => els.map(e => [e.dataset.reportId, e.dataset.state])")) == [
        ["old-note-1", "queued"], ["old-note-2", "queued"]]
    assert "Last try: No connection to the server." in page.locator('[data-report-id="old-note-2"]').inner_text()

    # intact, field for field
    kept = page.evaluate("async () => (await import('/static/js/outbox/store.js')).listReports()")
    assert sorted(kept, key=lambda r: r["id"]) == stored

    # and still deliverable: sent oldest first, each settled by its receipt
    out = page.evaluate(DELIVER_OLD_NOTES)
    assert out["sent"] == ["old-note-1", "old-note-2"]
    assert out["summary"]["status"] == "ok" and out["summary"]["delivered"] == 2
    assert sorted(out["after"]) == [["old-note-1", "delivered", "REF-old-note-1"],
                                    ["old-note-2", "delivered", "REF-old-note-2"]]
