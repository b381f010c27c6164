// A clock the crew app can trust. Tablet clocks drift or are set wrong, and
// the times a note carries (created, the arrival from "lands in", when it was
// noticed) and the status request's `at` come from it. Whenever the server
// answers, its Date header tells how far off this tablet is; the offset is
// kept (not sensitive: a number) for offline use, and now() corrects by it.
// A clock far off is only corrected, never a reason to refuse a note.

const KEY = "cabin-notes-clock";
// An answer that took longer than this says too little about when it was sent.
const MAX_ROUND_TRIP_MS = 10000;

let offsetMs = null;
let hear;
/** Whether the server has told the time in this page (learn()): now() is then its time, not only the tablet's. */
export let heard = false;
/** Settles at that first answer. */
export const told = new Promise((resolve) => (hear = resolve));

function storage() {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null;
  }
}

function load() {
  if (offsetMs !== null) return offsetMs;
  try {
    const kept = JSON.parse(storage()?.getItem(KEY) || "null");
    offsetMs = kept && Number.isFinite(kept.offset_ms) ? kept.offset_ms : 0;
  } catch {
    offsetMs = 0;
  }
  return offsetMs;
}

/** How far the server's clock is ahead of this tablet's, in ms (0 until learnt). */
export function offset() {
  return load();
}

/** The corrected time now. */
export function now() {
  return new Date(Date.now() + load());
}

/**
 * The offset one answer gives: its Date header (whole seconds, so +500 ms on
 * average) against the middle of the round trip on this tablet's clock.
 * null when the answer says nothing usable.
 */
export function offsetFrom(dateHeader, sentAt, receivedAt) {
  const server = Date.parse(dateHeader || "");
  if (Number.isNaN(server) || receivedAt < sentAt || receivedAt - sentAt > MAX_ROUND_TRIP_MS) return null;
  return server + 500 - (sentAt + receivedAt) / 2;
}

/** Keep a new offset (ms) for this page and the next start. */
export function setOffset(ms) {
  offsetMs = Math.round(ms);
  try {
    storage()?.setItem(KEY, JSON.stringify({ offset_ms: offsetMs, learnt_at: new Date(Date.now() + offsetMs).toISOString() }));
  } catch {
    /* kept for this page only */
  }
}

/** Learn from one answer (a fetch Response); true if it told the time. */
export function learn(response, sentAt, receivedAt) {
  const headers = response && response.headers;
  const value = offsetFrom(headers && typeof headers.get === "function" ? headers.get("Date") : null, sentAt, receivedAt);
  if (value === null) return false;
  setOffset(value);
  heard = true;
  hear();
  return true;
}

/** A fetch that learns the offset from every answer of the server. */
export function observing(fetchFn = (...a) => fetch(...a)) {
  return async (...args) => {
    const sentAt = Date.now();
    const res = await fetchFn(...args);
    learn(res, sentAt, Date.now());
    return res;
  };
}
