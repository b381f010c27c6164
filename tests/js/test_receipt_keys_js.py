"""The receipt keys a tablet keeps (device.js): the intake answers a resent
note with the receipt it signed the first time, even after a receipt-key
rotation, a revocation or a new registration of the tablet, so the tablet
must still be able to check that receipt; otherwise the note stays "waiting"
for ever, resent on every pass, though Border Force has it."""
from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.e2e

KEYS = """
  const { withDb } = await import('/static/js/store.js');
  const { jwkThumbprint } = await import('/static/js/envelope.js');
  const ecdsa = {name: 'ECDSA', namedCurve: 'P-256'};
  const receiptKey = async () => {
    const pair = await crypto.subtle.generateKey(ecdsa, false, ['sign', 'verify']);
    const j = await crypto.subtle.exportKey('jwk', pair.publicKey);
    const jwk = {kty: j.kty, crv: j.crv, x: j.x, y: j.y};
    return {pair, key: {kid: await jwkThumbprint(jwk), jwk}};
  };
  const bfPair = await crypto.subtle.generateKey({name: 'ECDH', namedCurve: 'P-256'}, true, ['deriveBits']);
  const b = await crypto.subtle.exportKey('jwk', bfPair.publicKey);
  const bfJwk = {kty: b.kty, crv: b.crv, x: b.x, y: b.y};
  const bf = {kid: await jwkThumbprint(bfJwk), owner: 'border_force', suite: 'v1', jwk: bfJwk};
"""

REVOKED_AFTER_ROTATION = """async () => {""" + KEYS + """
  const { deliver } = await import('/static/js/outbox/scheduler.js');
  const { enqueue, listReports } = await import('/static/js/outbox/store.js');
  const { envelopeSha256 } = await import('/static/js/envelope.js');
  const { b64u, utf8 } = await import('/static/js/b64.js');
  const before = await receiptKey(), after = await receiptKey();
  // The tablet knew the old receipt key; the server rotated it, stored this
  // note (its receipt signed by the new key) and the answer was lost; then the
  // tablet learnt that the airline had revoked it.
  await withDb(async (d) => {
    await d.clear('outbox');
    await d.put('meta', {device_id: 'dev-rv', airline: 'ZZ', recipients: [bf], receipt_key: before.key,
                         revoked: {code: 'revoked_device', message: 'revoked', at: new Date().toISOString()}}, 'device');
  });
  const id = '0b9d8c7e-6f5a-4b3c-9d2e-1f0a9b8c7d6e';
  const envelope = {protected: 'a', sealed: ['b'], signature: 'c'};
  await enqueue({id, device: 'dev-rv', flight: 'ZZ1', sta: '2026-12-01T14:00:00Z'}, envelope);
  const receipt = b64u(utf8(JSON.stringify({id, reference: 'KMN-PQR', received_at: '2026-11-29T10:00:00Z',
                                            envelope_sha256: await envelopeSha256(envelope)})));
  const signature = b64u(await crypto.subtle.sign({name: 'ECDSA', hash: 'SHA-256'}, after.pair.privateKey, utf8(receipt)));
  const fetchFn = async (url) => {
    if (url === '/api/v1/reports/batch') return new Response(JSON.stringify({results: [{receipt, signature}]}), {status: 200});
    if (url === '/api/v1/keys') return new Response(JSON.stringify({recipients: [], receipt_key: after.key}), {status: 200});
    throw new TypeError('unexpected ' + url);
  };
  const summary = await deliver({fetchFn});
  const note = (await listReports()).find(r => r.id === id);
  const device = await withDb((d) => d.get('meta', 'device'));
  await withDb(async (d) => { await d.clear('outbox'); await d.delete('meta', 'device'); });
  return {delivered: summary.delivered, state: note.state, reference: note.receipt && note.receipt.reference,
          receiptKid: device.receipt_key.kid, previous: device.previous_receipt_keys.map(k => k.kid),
          recipients: device.recipients.map(r => r.kid), revoked: Boolean(device.revoked),
          kids: {before: before.key.kid, after: after.key.kid, bf: bf.kid}};
}"""

ENROLL_AGAIN = """async () => {""" + KEYS + """
  const { enroll } = await import('/static/js/device.js');
  const older = await receiptKey(), old = await receiptKey(), current = await receiptKey();
  await withDb((d) => d.put('meta', {device_id: 'dev-old', airline: 'ZZ', recipients: [bf], receipt_key: old.key,
                                     previous_receipt_keys: [older.key, old.key]}, 'device'));
  const fetchFn = async (url) => {
    if (url !== '/api/v1/devices') throw new TypeError('unexpected ' + url);
    return new Response(JSON.stringify({device_id: 'dev-new', airline: 'ZZ', recipients: [bf], receipt_key: current.key}),
                        {status: 201});
  };
  const record = await enroll({csrf_token: 't'}, fetchFn);
  const stored = await withDb((d) => d.get('meta', 'device'));
  await withDb((d) => d.delete('meta', 'device'));
  return {device: stored.device_id, receiptKid: stored.receipt_key.kid, returned: record.previous_receipt_keys.map(k => k.kid),
          previous: stored.previous_receipt_keys.map(k => k.kid), kids: [old.key.kid, older.key.kid, current.key.kid]};
}"""


def test_a_revoked_tablet_takes_the_new_receipt_key_and_settles_a_stored_note(js_page: Any) -> None:
    out = js_page.evaluate(REVOKED_AFTER_ROTATION)
    assert (out["delivered"], out["state"], out["reference"]) == (1, "delivered", "KMN-PQR")
    assert out["receiptKid"] == out["kids"]["after"]
    assert out["previous"] == [out["kids"]["before"]]
    # A revoked tablet seals nothing more: its recipient keys are left as they were.
    assert out["recipients"] == [out["kids"]["bf"]]
    assert out["revoked"]


def test_a_new_registration_keeps_the_receipt_keys_of_the_last(js_page: Any) -> None:
    out = js_page.evaluate(ENROLL_AGAIN)
    old, older, current = out["kids"]
    assert (out["device"], out["receiptKid"]) == ("dev-new", current)
    assert out["previous"] == [old, older]  # newest first, each once
    assert out["returned"] == out["previous"]
