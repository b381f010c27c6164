// The IndexedDB outbox and its delivery (DESIGN.md section 5).
// Works in pages and in the service worker (no DOM use here).
import { withDb } from "./store.js";
import { verifyReceipt, envelopeBytes } from "./envelope.js";
import { getDevice, markRevoked, refreshKeys } from "./device.js";
import { withDeadline, requestTimeout } from "./net.js";

export const LOCK_NAME = "cabin-notes-outbox";
export const CHANNEL_NAME = "cabin-notes";
export const BATCH_LIMIT = 100;
// At most this much JSON per batch request (one envelope always goes, whatever its size).
export const BATCH_BYTES = 2 * 1024 * 1024;

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
  if (/^http_5\d\d$/.test(code) || ["service_unavailable", "unavailable", "internal", "internal_error", "no_answer"].includes(code)) return "server";
  if (error && typeof error.http_status === "number" && error.http_status >= 500) return "server";
  return "other";
}

// Delivered entries (cleartext flight header and reference) stay on the tablet
// only until this long after their scheduled arrival.
export const DELIVERED_KEEP_MS = 12 * 3600 * 1000;

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

function announce() {
  try {
    const ch = new BroadcastChannel(CHANNEL_NAME);
    ch.postMessage({ type: "outbox-changed" });
    ch.close();
  } catch (err) {
    /* no BroadcastChannel: pages re-read on their own timers */
  }
}

/** Put a sealed envelope into the outbox in one transaction. */
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
    await tx.store.add(record);
    await tx.done;
  });
  announce();
  return record;
}

export async function listReports() {
  const all = await withDb((d) => d.getAll("outbox"));
  return all.sort((a, b) => (a.queued_at < b.queued_at ? 1 : -1));
}

export async function removeReport(id) {
  await withDb((d) => d.delete("outbox", id));
  announce();
}

function pendingOf(records) {
  return records
    .filter((r) => (r.state === "queued" || r.state === "sending") && r.envelope)
    .sort((a, b) => (a.queued_at < b.queued_at ? -1 : 1));
}

async function putAll(records) {
  await withDb(async (d) => {
    const tx = d.transaction("outbox", "readwrite");
    for (const r of records) await tx.store.put(r);
    await tx.done;
  });
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

// Outcome of one batch entry: a new record to store, plus a flag.
// receiptJwk: the receipt key (JWK), or a list of them (current first).
export async function settle(record, answer, receiptJwk) {
  const now = new Date().toISOString();
  if (answer && answer.receipt) {
    try {
      const jwks = Array.isArray(receiptJwk) ? receiptJwk : [receiptJwk];
      const receipt = await verifyWithAny(answer, jwks, { id: record.id, envelope: record.envelope });
      // Only now is the queued copy dropped; the receipt is kept.
      const { envelope, ...rest } = record;
      return {
        kind: "delivered",
        record: {
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
        },
      };
    } catch (err) {
      return {
        kind: "transient",
        record: {
          ...record,
          state: "queued",
          last_error: {
            code: "receipt_unverified",
            message: `The server answered, but its receipt could not be checked (${String(err.message || err)}). The note is kept and will be sent again.`,
          },
        },
      };
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

function isUnverifiedReceipt(out) {
  return out.kind === "transient" && out.record.last_error && out.record.last_error.code === "receipt_unverified";
}

/**
 * The next batch from the pending records (oldest first): at most `limit`
 * envelopes and at most `maxBytes` of request JSON, but always at least one.
 */
export function takeBatch(pending, limit = BATCH_LIMIT, maxBytes = BATCH_BYTES) {
  const out = [];
  let bytes = '{"envelopes":[]}'.length;
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

const TOO_LARGE_MESSAGE = "This note is too large for the server to accept. Tell the captain or call the 24-hour line.";

/** Send everything queued, unless another tab or the service worker is already sending. */
export async function deliver(options = {}) {
  if (typeof navigator !== "undefined" && navigator.locks && navigator.locks.request) {
    return navigator.locks.request(LOCK_NAME, { ifAvailable: true }, async (lock) => {
      if (!lock) return { status: "busy", delivered: 0, rejected: 0, pending: -1 };
      return deliverLocked(options);
    });
  }
  return deliverLocked(options);
}

function receiptJwksOf(device) {
  return [device.receipt_key, ...(device.previous_receipt_keys || [])].map((k) => k.jwk);
}

async function deliverLocked({ fetchFn = (...a) => fetch(...a), timeoutMs = requestTimeout() } = {}) {
  const summary = { status: "idle", delivered: 0, rejected: 0, pending: 0, error: null, trouble: null };
  try {
    await pruneDelivered();
  } catch (err) {
    /* pruning is housekeeping; delivery goes on */
  }
  let limit = BATCH_LIMIT;
  let keysRefreshed = false;
  for (let round = 0; round < 50; round++) {
    const pending = pendingOf(await withDb((d) => d.getAll("outbox")));
    summary.pending = pending.length;
    if (!pending.length) break;
    const device = await getDevice();
    if (!device || !device.receipt_key || !device.receipt_key.jwk) {
      summary.status = "not-enrolled";
      break;
    }
    let receiptJwks = receiptJwksOf(device);
    const batch = takeBatch(pending, limit).map((r) => ({ ...r, state: "sending", attempts: (r.attempts || 0) + 1, last_attempt: new Date().toISOString() }));
    await putAll(batch);
    announce();
    const { res, data, timedOut } = await postBatch(fetchFn, batch.map((r) => r.envelope), timeoutMs);
    if (res && res.status === 413) {
      // Whatever answered 413 (the app, or a proxy in front of it, with or without JSON):
      // a batch of several is split and sent again at once; one envelope on its
      // own can never be accepted, so it is rejected with the reason. Never a tight loop:
      // each 413 either halves the batch or settles one note for good.
      if (batch.length > 1) {
        await putAll(batch.map((r) => ({ ...r, state: "queued" })));
        limit = Math.max(1, Math.floor(batch.length / 2));
        continue;
      }
      const given = data && data.error && data.error.code === "too_large" ? data.error.message : "";
      const settled = await settle(batch[0], { error: { code: "too_large", message: given || TOO_LARGE_MESSAGE } }, []);
      await putAll([settled.record]);
      summary.rejected += 1;
      announce();
      continue;
    }
    const results = res && res.status === 200 && data && Array.isArray(data.results) && data.results.length === batch.length ? data.results : null;
    if (!results) {
      let error;
      if (!res) error = { code: "network", message: timedOut ? "The server did not answer in time." : "No connection to the server." };
      else if (data && data.error) error = { ...data.error, http_status: res.status };
      else error = { code: `http_${res.status}`, message: `Server answered ${res.status}.`, http_status: res.status };
      await putAll(batch.map((r) => ({ ...r, state: "queued", last_error: error })));
      summary.status = "transient";
      summary.error = error;
      announce();
      break;
    }
    let outs = [];
    for (let i = 0; i < batch.length; i++) outs.push(await settle(batch[i], results[i], receiptJwks));
    if (!keysRefreshed && outs.some(isUnverifiedReceipt)) {
      // The receipt key may have been rotated since this tablet last looked:
      // fetch the published keys (each checked against its thumbprint) and
      // check the same answers once more. Nothing is sent again for this.
      keysRefreshed = true;
      let fresh = null;
      try {
        fresh = await refreshKeys(fetchFn);
      } catch (err) {
        fresh = null;
      }
      if (fresh && fresh.receipt_key && fresh.receipt_key.jwk) {
        receiptJwks = receiptJwksOf(fresh);
        outs = await Promise.all(outs.map((out, i) => (isUnverifiedReceipt(out) ? settle(batch[i], results[i], receiptJwks) : out)));
      }
    }
    const updated = [];
    let transient = false;
    let revoked = null;
    for (const out of outs) {
      updated.push(out.record);
      if (out.kind === "delivered") summary.delivered += 1;
      else if (out.kind === "rejected") {
        summary.rejected += 1;
        const code = out.record.error.code;
        if (code === "revoked_device" || code === "unknown_device") revoked = out.record.error;
      } else {
        transient = true;
        if (!summary.error || out.record.last_error.code === "receipt_unverified") summary.error = out.record.last_error;
      }
    }
    await putAll(updated);
    if (revoked) await markRevoked(revoked.code, revoked.message);
    announce();
    if (transient) {
      summary.status = "transient";
      break;
    }
    summary.status = "ok";
  }
  summary.pending = pendingOf(await withDb((d) => d.getAll("outbox"))).length;
  if (summary.status === "transient" && summary.pending === 0) summary.status = "ok";
  if (summary.status === "transient") summary.trouble = troubleKind(summary.error);
  else summary.error = null;
  return summary;
}

/** Exponential back-off: base, 2*base, ... capped at max; reset on success. */
export class Backoff {
  constructor({ base = 5000, max = 60000 } = {}) {
    this.base = base;
    this.max = max;
    this.current = base;
  }
  next() {
    const d = this.current;
    this.current = Math.min(this.current * 2, this.max);
    return d;
  }
  reset() {
    this.current = this.base;
  }
}

/**
 * Runs delivery now and keeps a back-off timer while anything is pending.
 * deliverFn returns a summary like deliver(); timers are injectable for tests.
 */
export class DeliveryScheduler {
  constructor({ deliverFn = deliver, backoff = new Backoff(), setTimer = (f, ms) => setTimeout(f, ms), clearTimer = (t) => clearTimeout(t), onResult = () => {} } = {}) {
    this.deliverFn = deliverFn;
    this.backoff = backoff;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.onResult = onResult;
    this.timer = null;
    this.nextDelay = null;
    this.running = null;
    this.again = false;
  }

  async run(reason = "manual") {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.cancel();
    this.running = (async () => {
      let result;
      do {
        this.again = false;
        try {
          result = await this.deliverFn();
        } catch (err) {
          result = { status: "transient", pending: -1, error: String(err && err.message ? err.message : err) };
        }
      } while (this.again && result.status !== "transient");
      return result;
    })();
    let result;
    try {
      result = await this.running;
    } finally {
      this.running = null;
    }
    this.plan(result);
    this.onResult(result, reason);
    return result;
  }

  plan(result) {
    this.cancel();
    if (result.status === "ok" || result.status === "idle") {
      this.backoff.reset();
      if (result.pending > 0) this.schedule(this.backoff.next());
      return;
    }
    if (result.status === "not-enrolled") return;
    // transient failure, or another tab / the service worker is busy sending
    this.schedule(this.backoff.next());
  }

  schedule(ms) {
    this.nextDelay = ms;
    this.timer = this.setTimer(() => {
      this.timer = null;
      this.run("timer");
    }, ms);
  }

  cancel() {
    if (this.timer !== null) this.clearTimer(this.timer);
    this.timer = null;
    this.nextDelay = null;
  }
}
