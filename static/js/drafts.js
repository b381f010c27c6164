// An unfinished report, kept only sealed (sealed.js). Wiping deletes both the
// sealed draft and its key; an abandoned draft expires.
import { sealedRecord } from "./sealed.js";

const draft = sealedRecord("drafts", "current", "draft-key");
// An abandoned draft (and its key) goes this long after it was last saved.
export const DRAFT_KEEP_MS = 12 * 3600 * 1000;

function expired(rec, now) {
  const saved = Date.parse((rec && rec.saved_at) || "");
  return Number.isNaN(saved) || saved + DRAFT_KEEP_MS < now;
}

export async function saveDraft(values) {
  await draft.save(values, { saved_at: new Date().toISOString() });
}

/** Wipe the draft and its key when it was last saved more than 12 hours ago. Returns true if wiped. */
export async function expireDraft(now = Date.now()) {
  const rec = await draft.stored();
  if (!rec || !expired(rec, now)) return false;
  await wipeDraft();
  return true;
}

export async function loadDraft(now = Date.now()) {
  if (await expireDraft(now)) return null;
  return draft.load();
}

export async function wipeDraft() {
  await draft.wipe();
}
