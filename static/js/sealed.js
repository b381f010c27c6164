// One record kept only sealed: AES-GCM under its own non-extractable key in
// IndexedDB (the "keys" store). Drafts and the crew identity use it; wiping a
// record deletes its key too, so nothing of it can be opened afterwards.
import { withDb } from "./store.js";

/**
 * A sealed record `id` in object store `storeName`, keyed by `keyName`.
 * Returns {load, save, wipe, stored}: `load` gives the value or null,
 * `save(value, extra)` seals it (extra cleartext fields beside {iv, ct}, e.g.
 * a timestamp), `stored` gives the raw record.
 */
async function newKey() {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

async function seal(k, value, extra) {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, k, new TextEncoder().encode(JSON.stringify(value)));
  return { ...extra, iv, ct: new Uint8Array(ct) };
}

/**
 * Replace the sealed record `from` ({id, keyName}) in `storeName` by `value`
 * sealed as record `to` under a new key, in one transaction: a crash leaves
 * the one or the other, never both.
 */
export async function moveSealed(storeName, from, to, value, extra = {}) {
  const k = await newKey();
  const rec = await seal(k, value, extra);
  await withDb(async (d) => {
    const tx = d.transaction([storeName, "keys"], "readwrite");
    await Promise.all([
      tx.objectStore("keys").put(k, to.keyName),
      tx.objectStore(storeName).put(rec, to.id),
      tx.objectStore(storeName).delete(from.id),
      tx.objectStore("keys").delete(from.keyName),
      tx.done,
    ]);
  });
}

export function sealedRecord(storeName, id, keyName) {
  async function key(create) {
    let k = await withDb((d) => d.get("keys", keyName));
    if (!k && create) {
      k = await newKey();
      await withDb((d) => d.put("keys", k, keyName));
    }
    return k || null;
  }

  async function stored() {
    return withDb((d) => d.get(storeName, id));
  }

  async function load() {
    const rec = await stored();
    const k = rec ? await key(false) : null;
    if (!rec || !k) return null;
    try {
      const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: rec.iv }, k, rec.ct);
      return JSON.parse(new TextDecoder().decode(pt));
    } catch {
      return null;
    }
  }

  async function save(value, extra = {}) {
    const rec = await seal(await key(true), value, extra);
    await withDb((d) => d.put(storeName, rec, id));
  }

  async function wipe() {
    await withDb(async (d) => {
      const tx = d.transaction([storeName, "keys"], "readwrite");
      await Promise.all([tx.objectStore(storeName).delete(id), tx.objectStore("keys").delete(keyName), tx.done]);
    });
  }

  return { load, save, wipe, stored };
}
