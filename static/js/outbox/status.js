// What a tablet may learn about its delivered notes (DESIGN.md section 4a):
// POST /api/v1/reports/status, signed by the device key like the intake,
// answers a coarse state per note (received, seen, acting, closed, unknown)
// and nothing else. The state is kept on the note's outbox entry.
import { b64u, utf8 } from "../b64.js";
import { getDevice, getSigningKey, markRevoked } from "../device.js";
import { withDeadline } from "../net.js";
import { rfc3339 } from "../times.js";
import { now as clockNow } from "../clock.js";
import { withDb } from "../store.js";
import { announce } from "./store.js";
import { ThrottledCheck } from "../throttle.js";

export const STATUS_URL = "/api/v1/reports/status";
export const STATUS_LIMIT = 100;
export const CASE_STATES = new Set(["received", "seen", "acting", "closed", "unknown"]);
// Nothing more will change once closed: not asked about again.
const FINAL = new Set(["closed"]);
const REVOKING = new Set(["revoked_device", "unknown_device"]);

/** The signed request for these ids at `at` (a Date on the corrected clock). */
export async function signedStatusRequest(deviceId, ids, at, signingKey) {
  const protectedPart = b64u(utf8(JSON.stringify({ device: deviceId, ids, at: rfc3339(at) })));
  const signature = await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, signingKey, utf8(protectedPart));
  return { protected: protectedPart, signature: b64u(new Uint8Array(signature)) };
}

/**
 * {id: state} from an answer, for the ids asked, in the order asked; an entry
 * for another id or with a state outside the contract is left out. null when
 * the answer is not one at all.
 */
export function readStatusAnswer(data, ids) {
  if (!data || !Array.isArray(data.results) || data.results.length !== ids.length) return null;
  const states = {};
  data.results.forEach((r, i) => {
    if (r && r.id === ids[i] && CASE_STATES.has(r.state)) states[r.id] = r.state;
  });
  return states;
}

async function delivered() {
  const all = await withDb((d) => d.getAll("outbox"));
  return all.filter((r) => r.state === "delivered" && !FINAL.has(r.case_state));
}

// Keep the new states; returns how many entries changed.
async function keepStates(states, at) {
  const changed = await withDb(async (d) => {
    const tx = d.transaction("outbox", "readwrite");
    let n = 0;
    for (const [id, state] of Object.entries(states)) {
      const r = await tx.store.get(id);
      if (!r || r.state !== "delivered") continue;
      r.case_checked_at = at;
      if (r.case_state !== state) n += 1;
      r.case_state = state;
      await tx.store.put(r);
    }
    await tx.done;
    return n;
  });
  if (changed) announce();
  return changed;
}

async function post(fetchFn, body, timeoutMs) {
  try {
    return await withDeadline(async (signal) => {
      const res = await fetchFn(STATUS_URL, {
        method: "POST",
        credentials: "omit",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(body),
        signal,
      });
      return { res, data: await res.json().catch(() => null) };
    }, timeoutMs);
  } catch {
    return { res: null, data: null };
  }
}

/**
 * Ask about every delivered note not yet closed, 100 at a time. Returns
 * {status: "ok" | "idle" | "not-enrolled" | "network" | error code, changed}.
 * A revoked or unknown device is marked as after a delivery refusal; any
 * other failure changes nothing.
 */
export async function refreshStatuses({ fetchFn = (...a) => fetch(...a), timeoutMs = undefined, now = clockNow } = {}) {
  const device = await getDevice();
  if (!device || device.revoked || !device.device_id) return { status: "not-enrolled", changed: 0 };
  const records = await delivered();
  if (!records.length) return { status: "idle", changed: 0 };
  const key = await getSigningKey();
  if (!key) return { status: "not-enrolled", changed: 0 };
  let changed = 0;
  for (let i = 0; i < records.length; i += STATUS_LIMIT) {
    const ids = records.slice(i, i + STATUS_LIMIT).map((r) => r.id);
    const at = now();
    const { res, data } = await post(fetchFn, await signedStatusRequest(device.device_id, ids, at, key), timeoutMs);
    if (!res) return { status: "network", changed };
    if (res.status !== 200) {
      const error = (data && data.error) || {};
      if (REVOKING.has(error.code)) await markRevoked(error.code, error.message, device.device_id);
      return { status: error.code || `http_${res.status}`, changed };
    }
    const states = readStatusAnswer(data, ids);
    if (!states) return { status: "bad_answer", changed };
    changed += await keepStates(states, rfc3339(at));
  }
  return { status: "ok", changed };
}

/**
 * When to ask: after a delivery pass that reached the server, and now and
 * then while the app is open, at most once per interval unless forced
 * (something was just delivered, "Send now", back online). One at a time.
 */
export class StatusCheck extends ThrottledCheck {
  constructor({ checkFn = () => refreshStatuses(), intervalMs = 120000, now = () => Date.now() } = {}) {
    super({ checkFn, intervalMs, now });
  }
}
