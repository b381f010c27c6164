// Delivery of the outbox (DESIGN.md section 5): batches POSTed to the intake
// (sized by batch-size.js: halved on 413 and after a timeout), each answer
// settled by its signed receipt (with one refresh of the published receipt
// keys if a receipt does not verify), a revoked registration marked, and a
// summary for the scheduler. No lock here (scheduler.js holds it).
import { verifyReceipt, envelopeBytes } from "../envelope.js";
import { getDevice, markRevoked, refreshKeys } from "../device.js";
import { withDeadline, requestTimeout } from "../net.js";
import { BATCH_LIMIT, BatchSize } from "./batch-size.js";
import { announce, pendingReports, pruneDelivered, putAll } from "./store.js";

export { BATCH_LIMIT };
// At most this much JSON per batch request (one envelope always goes, whatever its size).
export const BATCH_BYTES = 2 * 1024 * 1024;
// A bound on batches per pass: each one settles, halves or ends the pass, and
// sizes double back after a dead spell, so this is not reached in practice.
const MAX_ROUNDS = 50;

// Server error codes after which resending the same envelope cannot succeed.
export const PERMANENT_ERRORS = new Set([
  "revoked_device",
  "unknown_device",
  "bad_signature",
  "unknown_recipient",
  "invalid_report",
  "conflict",
  "malformed",
  "unsupported_version",
  "undecryptable",
  "too_large",
]);

const REVOKING_ERRORS = new Set(["revoked_device", "unknown_device"]);

// Said when what the server answered could not be stored (the tablet's storage is full).
const STORAGE_FULL = {
  code: "storage_full",
  message: "This tablet's storage is full, so what the server answered could not be kept here. Notes it has may still show as waiting; they are sent again, and the server keeps one copy.",
};
const TOO_LARGE_MESSAGE = "This note is too large for the server to accept. Tell the captain or call the 24-hour line.";
const PROXY_TOO_LARGE_MESSAGE = "A server on the way refused this note as too large. It is kept and will be sent again; tell the captain or call the 24-hour line.";

export function isPermanent(code) {
  return PERMANENT_ERRORS.has(code);
}

/**
 * What kind of trouble an error stands for, for what the app says:
 * "network" (no connection at all), "server" (it answered 5xx / is unavailable),
 * "receipt" (it answered, but its receipt could not be checked), "busy"
 * (rate limited) or "other".
 */
export function troubleKind(error) {
  const code = (error && error.code) || "";
  if (code === "network") return "network";
  if (code === "receipt_unverified") return "receipt";
  if (code === "rate_limited" || code === "http_429") return "busy";
  if (code === "storage_full") return "storage";
  if (/^http_5\d\d$/.test(code) || ["service_unavailable", "unavailable", "internal", "internal_error", "no_answer"].includes(code)) return "server";
  if (error && typeof error.http_status === "number" && error.http_status >= 500) return "server";
  return "other";
}

async function verifyWithAny(answer, receiptJwks, expect) {
  let lastError = null;
  for (const jwk of receiptJwks) {
    try {
      return await verifyReceipt(answer, jwk, expect);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError || new Error("no receipt key");
}

function deliveredRecord(record, answer, receipt, now) {
  // Only now is the queued copy dropped; the receipt is kept.
  const { envelope, ...rest } = record;
  return {
    ...rest,
    state: "delivered",
    delivered_at: now,
    last_error: null,
    receipt: {
      reference: receipt.reference,
      received_at: receipt.received_at,
      envelope_sha256: receipt.envelope_sha256,
      raw: answer,
    },
  };
}

/**
 * Outcome of one batch entry: {kind: "delivered" | "rejected" | "transient", record}.
 * receiptJwk: the receipt key (JWK), or a list of them (current first).
 */
export async function settle(record, answer, receiptJwk) {
  const now = new Date().toISOString();
  if (answer && answer.receipt) {
    try {
      const jwks = Array.isArray(receiptJwk) ? receiptJwk : [receiptJwk];
      const receipt = await verifyWithAny(answer, jwks, { id: record.id, envelope: record.envelope });
      return { kind: "delivered", record: deliveredRecord(record, answer, receipt, now) };
    } catch (err) {
      const message = `The server answered, but its receipt could not be checked (${String(err.message || err)}). The note is kept and will be sent again.`;
      return { kind: "transient", record: { ...record, state: "queued", last_error: { code: "receipt_unverified", message } } };
    }
  }
  const error = (answer && answer.error) || { code: "no_answer", message: "The server gave no answer for this report." };
  if (isPermanent(error.code)) {
    return {
      kind: "rejected",
      record: { ...record, state: "rejected", rejected_at: now, error: { code: error.code, message: error.message || "" } },
    };
  }
  return { kind: "transient", record: { ...record, state: "queued", last_error: error } };
}

/**
 * The next batch from the pending records (oldest first): at most `limit`
 * envelopes and at most `maxBytes` of request JSON, but always at least one.
 */
export function takeBatch(pending, limit = BATCH_LIMIT, maxBytes = BATCH_BYTES) {
  const out = [];
  let bytes = "{\"envelopes\":[]}".length;
  for (const r of pending) {
    if (out.length >= limit) break;
    const size = envelopeBytes(r.envelope) + (out.length ? 1 : 0);
    if (out.length && bytes + size > maxBytes) break;
    out.push(r);
    bytes += size;
  }
  return out;
}

// POST one batch and read its answer, under a deadline: a request that never
// answers counts as a network failure (null), and the lock is let go.
async function postBatch(fetchFn, envelopes, timeoutMs) {
  try {
    return await withDeadline(async (signal) => {
      const res = await fetchFn("/api/v1/reports/batch", {
        method: "POST",
        credentials: "omit",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ envelopes }),
        signal,
      });
      const data = await res.json().catch(() => null);
      return { res, data };
    }, timeoutMs);
  } catch (err) {
    return { res: null, data: null, timedOut: !!(err && err.name === "TimeoutError") };
  }
}

function receiptJwksOf(device) {
  return [device.receipt_key, ...(device.previous_receipt_keys || [])].map((k) => k.jwk);
}

function hasReceiptKey(device) {
  return !!(device && device.receipt_key && device.receipt_key.jwk);
}

function isUnverifiedReceipt(out) {
  return out.kind === "transient" && out.record.last_error && out.record.last_error.code === "receipt_unverified";
}

// Store records as far as the tablet's storage allows; whether they were.
// A full storage (QuotaExceededError) refuses every write of a pass, not
// only those that grow a record, and must not end the pass: a note whose
// outcome is not stored stays pending and is sent again, which the server
// answers from what it stored (its receipt, or the same refusal).
async function keep(records) {
  try {
    await putAll(records);
    return true;
  } catch {
    return false;
  }
}

// The batch marked as being sent (stored, so the outbox view can say so and
// count the attempts). Only bookkeeping: a note is pending whether queued or
// sending, so a tablet whose storage is full sends the batch unmarked rather
// than not at all.
async function markSending(batch) {
  const at = new Date().toISOString();
  const sending = batch.map((r) => ({ ...r, state: "sending", attempts: (r.attempts || 0) + 1, last_attempt: at }));
  if (await keep(sending)) announce();
  return sending;
}

// Outcomes of this pass (a transient one ends it): left out of the pass's
// later batches, stored or not; when not, the pass says why at its end.
async function keepOutcomes(records, pass) {
  for (const r of records) pass.settled.add(r.id);
  if (!(await keep(records))) pass.unstored = true;
}

// Whatever answered 413 (the app, or a proxy in front of it, with or without JSON):
// a batch of several is split and sent again at once. One envelope on its own
// is rejected with the reason only when the app itself says it is too large; a
// 413 from anything else (a proxy's page) says nothing about the note, which
// stays queued (a proxy's limit is put right; a rejected note is never sent
// again) and is set aside for the rest of the pass, so that the notes behind
// it still go. Never a tight loop: each 413 halves the batch or settles or
// sets aside one note.
async function onTooLarge(batch, data, pass, summary) {
  if (batch.length > 1) {
    await keep(batch.map((r) => ({ ...r, state: "queued" })));
    pass.size.tooLarge(batch.length);
    return true;
  }
  if (!(data && data.error && data.error.code === "too_large")) {
    const error = { code: "http_413", message: PROXY_TOO_LARGE_MESSAGE, http_status: 413 };
    await keep([{ ...batch[0], state: "queued", last_error: error }]);
    pass.setAside.set(batch[0].id, error);
    pass.size.setAside();
    announce();
    return true;
  }
  const settled = await settle(batch[0], { error: { code: "too_large", message: data.error.message || TOO_LARGE_MESSAGE } }, []);
  await keepOutcomes([settled.record], pass);
  summary.rejected += 1;
  announce();
  return true;
}

// The per-envelope results of a well-formed answer, or null.
function resultsOf(res, data, count) {
  const ok = res && res.status === 200 && data && Array.isArray(data.results) && data.results.length === count;
  return ok ? data.results : null;
}

// How long the server asked us to wait (Retry-After in seconds, as the intake
// sends it with 429 and 503), in ms; 0 when it did not say. At most 10 minutes:
// "Send now" and coming back online still try at once.
export function retryAfterMs(res) {
  const seconds = Number.parseInt((res && res.headers && res.headers.get("Retry-After")) || "", 10);
  return seconds > 0 ? Math.min(seconds, 600) * 1000 : 0;
}

// Why a whole batch failed: no answer, the server's error, or its HTTP status.
function batchError(res, data, timedOut) {
  if (!res) return { code: "network", message: timedOut ? "The server did not answer in time." : "No connection to the server." };
  if (data && data.error) return { ...data.error, http_status: res.status };
  return { code: `http_${res.status}`, message: `Server answered ${res.status}.`, http_status: res.status };
}

// The receipt key may have been rotated since this tablet last looked: fetch
// the published keys (each checked against its thumbprint) and check the same
// answers once more. Nothing is sent again for this; done once per pass.
async function recheckWithFreshKeys(batch, results, outs, pass) {
  if (pass.keysRefreshed || !outs.some(isUnverifiedReceipt)) return outs;
  pass.keysRefreshed = true;
  let fresh;
  try {
    fresh = await refreshKeys(pass.fetchFn);
  } catch {
    fresh = null;
  }
  if (!hasReceiptKey(fresh)) return outs;
  const jwks = receiptJwksOf(fresh);
  return Promise.all(outs.map((out, i) => (isUnverifiedReceipt(out) ? settle(batch[i], results[i], jwks) : out)));
}

// Store the outcomes, count them, and mark the tablet's registration revoked
// if the server said so of a note it signed (a note queued under an earlier
// registration says nothing about the current one).
// Returns whether anything is left to retry later (a transient outcome).
async function recordOutcomes(outs, summary, pass) {
  let transient = false;
  const revoked = new Map(); // device id -> the refusal
  for (const out of outs) {
    if (out.kind === "delivered") summary.delivered += 1;
    else if (out.kind === "rejected") {
      summary.rejected += 1;
      if (REVOKING_ERRORS.has(out.record.error.code)) revoked.set((out.record.header || {}).device, out.record.error);
    } else {
      transient = true;
      if (!summary.error || out.record.last_error.code === "receipt_unverified") summary.error = out.record.last_error;
    }
  }
  await keepOutcomes(outs.map((out) => out.record), pass);
  for (const [device, error] of revoked) await markRevoked(error.code, error.message, device);
  announce();
  return transient;
}

// One batch round trip. Returns false when the pass should stop here.
async function deliverBatch(pending, device, pass, summary) {
  const batch = await markSending(takeBatch(pending, pass.size.limit));
  const { res, data, timedOut } = await postBatch(pass.fetchFn, batch.map((r) => r.envelope), pass.timeoutMs);
  if (res && res.status === 413) return onTooLarge(batch, data, pass, summary);
  const results = resultsOf(res, data, batch.length);
  if (!results) {
    const error = batchError(res, data, timedOut);
    await keep(batch.map((r) => ({ ...r, state: "queued", last_error: error })));
    // Too slow for the deadline (or no link): half the size, at once, the first time in a pass.
    if (timedOut && batch.length > 1 && pass.size.timedOut(batch.length)) {
      announce();
      return true;
    }
    summary.status = "transient";
    summary.error = error;
    summary.retryAfterMs = retryAfterMs(res);
    announce();
    return false;
  }
  pass.size.answered(batch.length);
  const jwks = receiptJwksOf(device);
  let outs = [];
  for (let i = 0; i < batch.length; i++) outs.push(await settle(batch[i], results[i], jwks));
  outs = await recheckWithFreshKeys(batch, results, outs, pass);
  if (await recordOutcomes(outs, summary, pass)) {
    summary.status = "transient";
    summary.retryAfterMs = retryAfterMs(res); // the intake says when a rate-limited envelope may come again
    return false;
  }
  summary.status = "ok";
  return true;
}

/**
 * Send everything pending, batch after batch, until done or a batch fails.
 * Returns {status: "idle"|"ok"|"transient"|"not-enrolled", delivered, rejected,
 * pending, error, trouble, retryAfterMs}. Callers hold the outbox lock
 * (scheduler.js deliver()).
 */
export async function deliverPending({ fetchFn = (...a) => fetch(...a), timeoutMs = requestTimeout() } = {}) {
  const summary = { status: "idle", delivered: 0, rejected: 0, pending: 0, error: null, trouble: null, retryAfterMs: 0 };
  try {
    await pruneDelivered();
  } catch {
    /* pruning is housekeeping; delivery goes on */
  }
  // setAside: notes a proxy refused as too large, left for the next pass (id -> error);
  // settled: ids answered in this pass (not sent again in it, stored or not)
  const pass = { fetchFn, timeoutMs, size: new BatchSize(), setAside: new Map(), settled: new Set(), unstored: false, keysRefreshed: false };
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const pending = (await pendingReports()).filter((r) => !pass.setAside.has(r.id) && !pass.settled.has(r.id));
    if (!pending.length) break;
    const device = await getDevice();
    if (!hasReceiptKey(device)) {
      summary.status = "not-enrolled";
      break;
    }
    if (!(await deliverBatch(pending, device, pass, summary))) break;
  }
  summary.pending = (await pendingReports()).length;
  if (summary.pending === 0) BatchSize.cleared();
  if (pass.setAside.size && summary.status !== "transient" && summary.status !== "not-enrolled") {
    summary.status = "transient";
    summary.error = [...pass.setAside.values()][0];
  }
  // Outcomes not stored: the notes still look pending here. Not "ok" (that
  // would send them again within seconds), but the back-off's pace, saying why.
  if (pass.unstored && summary.status !== "not-enrolled") {
    if (summary.status !== "transient") summary.error = STORAGE_FULL;
    summary.status = "transient";
  }
  if (summary.status === "transient" && summary.pending === 0) summary.status = "ok";
  if (summary.status === "transient") summary.trouble = troubleKind(summary.error);
  else summary.error = null;
  return summary;
}
