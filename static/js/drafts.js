// An unfinished report, kept only sealed under a non-extractable AES-GCM key.
// Wiping deletes both the sealed draft and the key.
import { withDb } from "./store.js";

const KEY = "draft-key";
const DRAFT = "current";
// An abandoned draft (and its key) goes this long after it was last saved.
export const DRAFT_KEEP_MS = 12 * 3600 * 1000;

function expired(rec, now) {
  const saved = Date.parse((rec && rec.saved_at) || "");
  return Number.isNaN(saved) || saved + DRAFT_KEEP_MS < now;
}

async function draftKey(create) {
  let key = await withDb((d) => d.get("keys", KEY));
  if (!key && create) {
    key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
    await withDb((d) => d.put("keys", key, KEY));
  }
  return key || null;
}

export async function saveDraft(values) {
  const key = await draftKey(true);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, new TextEncoder().encode(JSON.stringify(values)));
  await withDb((d) => d.put("drafts", { iv, ct: new Uint8Array(ct), saved_at: new Date().toISOString() }, DRAFT));
}

/** Wipe the draft and its key when it was last saved more than 12 hours ago. Returns true if wiped. */
export async function expireDraft(now = Date.now()) {
  const rec = await withDb((d) => d.get("drafts", DRAFT));
  if (!rec || !expired(rec, now)) return false;
  await wipeDraft();
  return true;
}

export async function loadDraft(now = Date.now()) {
  const rec = await withDb((d) => d.get("drafts", DRAFT));
  if (!rec) return null;
  if (expired(rec, now)) {
    await wipeDraft();
    return null;
  }
  const key = await draftKey(false);
  if (!key) return null;
  try {
    const pt = await crypto.subtle.decrypt({ name: "AES-GCM", iv: rec.iv }, key, rec.ct);
    return JSON.parse(new TextDecoder().decode(pt));
  } catch (err) {
    return null;
  }
}

export async function wipeDraft() {
  await withDb(async (d) => {
    const tx = d.transaction(["drafts", "keys"], "readwrite");
    await tx.objectStore("drafts").delete(DRAFT);
    await tx.objectStore("keys").delete(KEY);
    await tx.done;
  });
}
