// Who writes the notes on this tablet: the crew ID typed last and the crew
// username from enrollment (the default crew ID). Kept only sealed under a
// non-extractable AES-GCM key, as drafts are (drafts.js); never in Web Storage
// and never in the device record.
import { withDb } from "./store.js";

const KEY = "identity-key"; // keys store: CryptoKey (AES-GCM, non-extractable)
const RECORD = "identity"; // meta store: {iv, ct} sealing {crew_id, username}

async function identityKey(create) {
  let key = await withDb((d) => d.get("keys", KEY));
  if (!key && create) {
    key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    await withDb((d) => d.put("keys", key, KEY));
  }
  return key || null;
}

/** {crew_id, username}; empty strings when nothing is kept. */
export async function loadIdentity() {
  const empty = { crew_id: "", username: "" };
  const rec = await withDb((d) => d.get("meta", RECORD));
  if (!rec) return empty;
  const key = await identityKey(false);
  if (!key) return empty;
  try {
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: rec.iv }, key, rec.ct);
    const v = JSON.parse(new TextDecoder().decode(pt));
    return { crew_id: String(v.crew_id || ""), username: String(v.username || "") };
  } catch (err) {
    return empty;
  }
}

/** Merge `changes` ({crew_id?, username?}) into the sealed identity. */
export async function saveIdentity(changes) {
  const next = { ...(await loadIdentity()), ...changes };
  const key = await identityKey(true);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, new TextEncoder().encode(JSON.stringify(next)));
  await withDb((d) => d.put("meta", { iv, ct: new Uint8Array(ct) }, RECORD));
  return next;
}

export async function wipeIdentity() {
  await withDb(async (d) => {
    const tx = d.transaction(["meta", "keys"], "readwrite");
    await tx.objectStore("meta").delete(RECORD);
    await tx.objectStore("keys").delete(KEY);
    await tx.done;
  });
}
