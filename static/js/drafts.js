// Unfinished notes, each kept only sealed (sealed.js) under its own key, in a
// slot named by the note's id. A window holds a Web Lock on the slot of the
// note it shows, so that another window restores another note (or none)
// rather than the same one: two windows never overwrite each other's note,
// nor send one note twice. Wiping deletes a draft and its key; an abandoned
// draft expires. Its times are on the server's clock as the tablet last
// learnt it (clock.js), not the tablet's own, which can jump by hours when it
// is put right (on landing, say): a note written minutes before is not old.
import { uuid4 } from "./b64.js";
import { now as clockNow } from "./clock.js";
import { moveSealed, sealedRecord } from "./sealed.js";
import { withDb } from "./store.js";

// An abandoned draft (and its key) goes this long after it was last saved.
export const DRAFT_KEEP_MS = 12 * 3600 * 1000;
// The one slot every window shared before notes had a slot each; a draft
// found there moves to its note's own slot when it is restored.
export const LEGACY_SLOT = "current";
const LOCK_PREFIX = "cabin-notes-draft:";

const keyName = (id) => (id === LEGACY_SLOT ? "draft-key" : `draft-key:${id}`);
const slot = (id) => sealedRecord("drafts", id, keyName(id));
// The slots this window holds: id -> release(); and those it has asked for
// and still wants, id -> the asking calls' tokens (a slot released before its
// lock came is let go at once).
const held = new Map();
const wanted = new Map();

function expired(rec, now) {
  const saved = Date.parse((rec && rec.saved_at) || "");
  return Number.isNaN(saved) || saved + DRAFT_KEEP_MS < now;
}

/**
 * Hold the slot `id` for this window, if no other window holds it. Without
 * Web Locks (before iOS 15.4) every slot counts as free: the outbox still
 * refuses a second note under one id.
 */
export async function holdDraft(id) {
  if (held.has(id)) return true;
  if (!windowsCoordinate()) {
    held.set(id, () => {});
    return true;
  }
  const token = {};
  if (!wanted.has(id)) wanted.set(id, new Set());
  wanted.get(id).add(token);
  const release = await new Promise((resolve) => {
    navigator.locks.request(LOCK_PREFIX + id, { ifAvailable: true }, (lock) => {
      if (!lock) return resolve(null);
      return new Promise((done) => resolve(done)); // held until done() is called
    }).catch(() => resolve(null));
  });
  const asking = wanted.get(id);
  const stillWanted = !!asking && asking.delete(token);
  if (asking && !asking.size) wanted.delete(id);
  if (!release || !stillWanted) {
    if (release) release();
    return false;
  }
  held.set(id, release);
  return true;
}

/** Whether windows can tell which drafts the others show (Web Locks). */
export function windowsCoordinate() {
  return !!navigator.locks;
}

/** Let other windows restore the slot `id`. */
export function releaseDraft(id) {
  const release = held.get(id);
  held.delete(id);
  wanted.delete(id);
  if (release) release();
}

// The ids of slots another window holds.
async function heldElsewhere() {
  if (!windowsCoordinate()) return new Set();
  const { held: locks = [] } = await navigator.locks.query();
  return new Set(locks.map((l) => l.name).filter((n) => n.startsWith(LOCK_PREFIX)).map((n) => n.slice(LOCK_PREFIX.length))
    .filter((id) => !held.has(id)));
}

// Every stored draft as {id, rec}, the last saved first.
async function storedDrafts() {
  const [ids, recs] = await withDb(async (d) => Promise.all([d.getAllKeys("drafts"), d.getAll("drafts")]));
  const savedAt = (rec) => String((rec && rec.saved_at) || "");
  return ids.map((id, i) => ({ id, rec: recs[i] })).sort((a, b) => savedAt(b.rec).localeCompare(savedAt(a.rec)));
}

export async function saveDraft(id, values) {
  await slot(id).save(values, { saved_at: clockNow().toISOString() });
}

/** The draft in slot `id`, or null (none, or its key is gone). */
export async function loadDraft(id) {
  return slot(id).load();
}

export async function wipeDraft(id) {
  await slot(id).wipe();
}

/**
 * Wipe every draft last saved more than 12 hours ago that no window shows,
 * this one included (the server's first answer expires drafts while the
 * crew may be writing one, saved on a clock put right since). Returns how
 * many. Only once the server has told the time in this page
 * (ui/draft-autosave.js): until then, a clock put right since the offset was
 * learnt makes a note just written look old (claimDraft leaves it aside).
 */
export async function expireDrafts(now = clockNow().getTime()) {
  const old = await oldDrafts(now);
  for (const { id } of old) await wipeDraft(id);
  return old.length;
}

/**
 * How many drafts no window shows are old: those expireDrafts would wipe
 * (until the server tells the time they are left aside, and the crew told
 * so); with old false, those claimDraft could take (waiting while the form
 * holds a note).
 */
export async function unshownDrafts(old, now = clockNow().getTime()) {
  return (await oldDrafts(now, old)).length;
}

// The drafts no window shows that are old at `now` (or, with old false, not old).
async function oldDrafts(now, old = true) {
  const busy = await heldElsewhere();
  return (await storedDrafts()).filter(({ id, rec }) => !held.has(id) && !busy.has(id) && expired(rec, now) === old);
}

/**
 * The draft this window should show: `preferred` (the one it showed before a
 * reload) if it can, else the last saved one no other window shows and not
 * expired; its slot now held here. Returns {id, values, more} (more: how
 * many other such drafts no window shows), or null.
 */
export async function claimDraft(now = clockNow().getTime(), preferred = null) {
  let claimed = null;
  let more = 0;
  const busy = await heldElsewhere();
  const drafts = await storedDrafts();
  const first = drafts.findIndex((d) => d.id === preferred);
  if (first > 0) drafts.unshift(...drafts.splice(first, 1));
  for (const { id, rec } of drafts) {
    if (held.has(id) || busy.has(id) || expired(rec, now)) continue;
    if (claimed) {
      more++;
      continue;
    }
    if (!(await holdDraft(id))) continue;
    try {
      claimed = await openClaimed(id, rec);
    } catch {
      /* this one cannot be opened now: the next is offered, and it stays for later */
    } finally {
      if (!claimed) releaseDraft(id);
    }
  }
  return claimed && { ...claimed, more };
}

// The draft in a slot just held: {id, values}, or null (it could not be opened
// and is wiped, or it is in the shared slot and its note's own is held elsewhere).
async function openClaimed(id, rec) {
  const values = await loadDraft(id);
  if (!values) {
    await wipeDraft(id); // its key is gone: nothing can open it
    return null;
  }
  return id === LEGACY_SLOT ? moveLegacy(values, rec.saved_at) : { id, values };
}

// A draft from the shared slot moves to its note's own slot (a draft from
// before ids were kept gets one now), in one transaction, keeping when it was
// saved; not while any window, this one too, shows that note (an old
// version's window may still write the shared slot).
async function moveLegacy(values, savedAt) {
  const id = typeof values.report_id === "string" ? values.report_id : uuid4();
  if (held.has(id) || !(await holdDraft(id))) return null;
  try {
    const moved = { ...values, report_id: id };
    await moveSealed("drafts", { id: LEGACY_SLOT, keyName: keyName(LEGACY_SLOT) }, { id, keyName: keyName(id) }, moved,
      { saved_at: savedAt });
    return { id, values: moved };
  } catch (err) {
    releaseDraft(id);
    throw err;
  } finally {
    releaseDraft(LEGACY_SLOT);
  }
}
