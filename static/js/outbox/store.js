// The outbox's records in IndexedDB (DESIGN.md section 5): what is queued,
// sent, delivered or rejected, and the notice to other tabs when that changes.
// Works in pages and in the service worker (no DOM use here).
import { withDb } from "../store.js";

export const CHANNEL_NAME = "cabin-notes";

// Delivered entries (cleartext flight header and reference) stay on the tablet
// only until this long after their scheduled arrival.
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
  const sta = Date.parse((r.header && r.header.sta) || "");
  // No usable sta: count from delivery instead.
  const base = Number.isNaN(sta) ? Date.parse(r.delivered_at || "") : sta;
  if (Number.isNaN(base)) return false;
  return base + DELIVERED_KEEP_MS < now;
}

async function deleteWhere(pred) {
  const removed = await withDb(async (d) => {
    const tx = d.transaction("outbox", "readwrite");
    const ids = [];
    for (const r of await tx.store.getAll()) {
      if (pred(r)) {
        ids.push(r.id);
        await tx.store.delete(r.id);
      }
    }
    await tx.done;
    return ids;
  });
  if (removed.length) announce();
  return removed.length;
}

/** Remove delivered entries whose sta is more than 12 hours past. Never touches anything else. */
export async function pruneDelivered(now = Date.now()) {
  return deleteWhere((r) => deliveredExpired(r, now));
}

/** Remove every delivered entry now (the crew's "Clear delivered"). */
export async function clearDelivered() {
  return deleteWhere((r) => r.state === "delivered");
}

/** Whether two headers are for the same flight (number and arrival). */
export function sameFlight(a, b) {
  return !!a && !!b && a.flight === b.flight && a.sta === b.sta && a.dep === b.dep && a.arr === b.arr;
}

/** The next per-flight note number ("Note 2 on ZZ202") given the outbox's records. */
export function nextNoteNumber(records, header) {
  return records.filter((r) => sameFlight(r.header, header)).reduce((n, r) => Math.max(n, r.note_number || 0), 0) + 1;
}

/** The outbox already holds a note under this id: the same note, saved from another window. */
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
    const tx = d.transaction("outbox", "readwrite");
    const records = await tx.store.getAll();
    if (records.some((r) => r.id === header.id)) throw new AlreadyQueued(header.id);
    record.note_number = nextNoteNumber(records, header);
    await tx.store.add(record);
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
