// The outbox's records in IndexedDB (DESIGN.md section 5): what is queued,
// sent, delivered or rejected, and the notice to other tabs when that changes.
// Works in pages and in the service worker (no DOM use here).
import { withDb } from "../store.js";

export const CHANNEL_NAME = "cabin-notes";

// Delivered entries (cleartext flight header and reference) stay on the tablet
// only until this long after their scheduled arrival, or after their delivery
// when that came later (a tablet offline for a day after landing must still
// show that the note went, and its reference).
export const DELIVERED_KEEP_MS = 12 * 3600 * 1000;

/** Tell other tabs and the service worker that the outbox changed. */
export function announce() {
  try {
    const ch = new BroadcastChannel(CHANNEL_NAME);
    ch.postMessage({ type: "outbox-changed" });
    ch.close();
  } catch {
    /* no BroadcastChannel: pages re-read on their own timers */
  }
}

function deliveredExpired(r, now) {
  if (r.state !== "delivered") return false;
  // Whichever of arrival and delivery is later (and parses) starts the clock.
  const times = [(r.header && r.header.sta) || "", r.delivered_at || ""]
    .map((t) => Date.parse(t))
    .filter((t) => !Number.isNaN(t));
  if (!times.length) return false;
  return Math.max(...times) + DELIVERED_KEEP_MS < now;
}

// The ids of the last delivered notes taken off the list (cleared, or pruned
// after landing), kept in "meta": enqueue refuses those ids too. A window that
// restored a draft another window has since sent, and the list cleared, would
// otherwise send it again under its id, which the intake refuses for good as
// a conflict. Ids only: nothing about the notes.
const SENT_IDS = "sent-ids";
const SENT_IDS_KEPT = 1000;

// Delete the delivered entries `pred` picks, in one transaction; with
// `remember`, their ids go into SENT_IDS in the same one.
async function removeDelivered(pred, remember) {
  return withDb(async (d) => {
    const tx = d.transaction(["outbox", "meta"], "readwrite");
    const outbox = tx.objectStore("outbox");
    const ids = [];
    for (const r of await outbox.getAll()) {
      if (r.state === "delivered" && pred(r)) {
        ids.push(r.id);
        await outbox.delete(r.id);
      }
    }
    if (remember && ids.length) await addSentIds(tx.objectStore("meta"), ids);
    await tx.done;
    return ids;
  });
}

// Add `ids` to SENT_IDS in the transaction `meta` belongs to.
async function addSentIds(meta, ids) {
  const sent = (await meta.get(SENT_IDS)) || [];
  await meta.put([...sent, ...ids].slice(-SENT_IDS_KEPT), SENT_IDS);
}

async function rememberSent(ids) {
  await withDb(async (d) => {
    const tx = d.transaction("meta", "readwrite");
    await addSentIds(tx.store, ids);
    await tx.done;
  });
}

async function deleteDelivered(pred) {
  let removed;
  try {
    removed = await removeDelivered(pred, true);
  } catch (err) {
    if (!(err && err.name === "QuotaExceededError")) throw err;
    // A full storage refuses a transaction that writes anything, however
    // much its deletes free (Chromium weighs what it writes against the room
    // left, not what that replaces or deletes), so the crew could not make
    // room for a new note. Deleting alone passes; the ids are remembered
    // afterwards if the room freed allows (tests/js/test_full_storage_js.py).
    removed = await removeDelivered(pred, false);
    try {
      await rememberSent(removed);
    } catch {
      /* still full: a stale window could resend one of these, which the intake answers */
    }
  }
  if (removed.length) announce();
  return removed.length;
}

/** Remove delivered entries more than 12 hours past both their sta and their delivery. Never touches anything else. */
export async function pruneDelivered(now = Date.now()) {
  return deleteDelivered((r) => deliveredExpired(r, now));
}

/** Remove every delivered entry now (the crew's "Clear delivered"). */
export async function clearDelivered() {
  return deleteDelivered(() => true);
}

/** Whether two headers are for the same flight (number and arrival). */
export function sameFlight(a, b) {
  return !!a && !!b && a.flight === b.flight && a.sta === b.sta && a.dep === b.dep && a.arr === b.arr;
}

/** The next per-flight note number ("Note 2 on ZZ202") given the outbox's records. */
export function nextNoteNumber(records, header) {
  return records.filter((r) => sameFlight(r.header, header)).reduce((n, r) => Math.max(n, r.note_number || 0), 0) + 1;
}

/** The outbox holds (or held, delivered) a note under this id: the same note, saved from another window. */
export class AlreadyQueued extends Error {
  constructor(id) {
    super(`A note with id ${id} is already in the outbox.`);
    this.name = "AlreadyQueued";
  }
}

/**
 * Put a sealed envelope into the outbox in one transaction, numbered within
 * its flight. AlreadyQueued if a note with its id is there (nothing changed).
 */
export async function enqueue(header, envelope) {
  const record = {
    id: header.id,
    header,
    envelope,
    state: "queued",
    queued_at: new Date().toISOString(),
    attempts: 0,
    last_error: null,
  };
  await withDb(async (d) => {
    // Strict: "Saved and sealed" waits until the note is on the disk, not
    // only handed to the system (Chromium's default since 121 is relaxed,
    // which a flat battery just after the tap could undo).
    const tx = d.transaction(["outbox", "meta"], "readwrite", { durability: "strict" });
    const outbox = tx.objectStore("outbox");
    const records = await outbox.getAll();
    const sent = (await tx.objectStore("meta").get(SENT_IDS)) || [];
    if (records.some((r) => r.id === header.id) || sent.includes(header.id)) throw new AlreadyQueued(header.id);
    record.note_number = nextNoteNumber(records, header);
    await outbox.add(record);
    await tx.done;
  });
  announce();
  return record;
}

/** Every entry, newest first. */
export async function listReports() {
  const all = await withDb((d) => d.getAll("outbox"));
  return all.sort((a, b) => (a.queued_at < b.queued_at ? 1 : -1));
}

export async function removeReport(id) {
  await withDb((d) => d.delete("outbox", id));
  announce();
}

/** What still has to be sent (queued, or caught mid-send), oldest first. */
export async function pendingReports() {
  const records = await withDb((d) => d.getAll("outbox"));
  return records
    .filter((r) => (r.state === "queued" || r.state === "sending") && r.envelope)
    .sort((a, b) => (a.queued_at < b.queued_at ? -1 : 1));
}

/** Store these records (whole) in one transaction. */
export async function putAll(records) {
  await withDb(async (d) => {
    const tx = d.transaction("outbox", "readwrite");
    for (const r of records) await tx.store.put(r);
    await tx.done;
  });
}
