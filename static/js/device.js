// Device enrollment and key storage (DESIGN.md section 5).
// The signing key pair is generated non-extractable and stored as CryptoKey
// objects in IndexedDB; the server learns only the public key.
import { withDb } from "./store.js";
import { jwkThumbprint } from "./envelope.js";
import { withDeadline } from "./net.js";
import { ThrottledCheck } from "./throttle.js";

const DEVICE = "device"; // meta key: {device_id, airline, recipients, receipt_key, enrolled_at, revoked?}
// No username here: the crew ID default is kept sealed (identity.js).
const SIGNING = "signing"; // keys key: CryptoKeyPair

export async function getDevice() {
  return withDb((d) => d.get("meta", DEVICE));
}

export async function getSigningKey() {
  const pair = await withDb((d) => d.get("keys", SIGNING));
  return pair ? pair.privateKey : null;
}

// Mark the registration `deviceId` revoked, and only that one: the server's
// answer is about the device that signed, and a tablet re-enrolled since then
// (keeping the old registration's queued notes) must not lose its new one.
export async function markRevoked(code, message, deviceId) {
  await withDb(async (d) => {
    const tx = d.transaction("meta", "readwrite");
    const dev = await tx.store.get(DEVICE);
    if (dev && !dev.revoked && dev.device_id === deviceId) {
      dev.revoked = { code, message: message || "", at: new Date().toISOString() };
      await tx.store.put(dev, DEVICE);
    }
    await tx.done;
  });
}

export const REVOKED_MESSAGE = "This device was revoked by the airline.";
export const UNKNOWN_MESSAGE = "This device is not enrolled.";

/**
 * Ask the server whether this tablet is still enrolled
 * (GET /api/v1/devices/<id>, no cookie), so that crew learn of a revocation
 * before they write a note that would be refused. Returns "active",
 * "revoked" (the record is then marked revoked, as after a `revoked_device`
 * rejection), or null when there is nothing to learn: no device, already
 * revoked, or no usable answer (offline, timeout, server trouble) - those
 * change nothing, so offline never stops anyone writing.
 */
export async function checkDeviceState(fetchFn = fetch, ms = undefined) {
  const dev = await getDevice();
  if (!dev || dev.revoked || !dev.device_id) return null;
  let answer;
  try {
    answer = await withDeadline(async (signal) => {
      const res = await fetchFn(`/api/v1/devices/${encodeURIComponent(dev.device_id)}`, {
        credentials: "omit",
        cache: "no-store",
        headers: { Accept: "application/json" },
        signal,
      });
      return { status: res.status, data: await res.json().catch(() => null) };
    }, ms);
  } catch {
    return null;
  }
  const { status, data } = answer;
  let code;
  let message;
  if (status === 200 && data && data.device_id === dev.device_id) {
    if (data.state === "active") return "active";
    if (data.state !== "revoked") return null;
    code = "revoked_device";
    message = REVOKED_MESSAGE;
  } else if (status === 404 && data && data.error && data.error.code === "unknown_device") {
    code = "unknown_device";
    message = data.error.message || UNKNOWN_MESSAGE;
  } else {
    return null; // a proxy's page, a 5xx, a rate limit: not an answer about this tablet
  }
  // Only the record that was asked about (a re-enrollment may have replaced it meanwhile).
  const current = await getDevice();
  if (!current || current.device_id !== dev.device_id) return null;
  await markRevoked(code, message, dev.device_id);
  return "revoked";
}

/**
 * When to ask (checkDeviceState): at once when forced (app start, `online`),
 * otherwise - before a delivery pass - at most once per interval, so the
 * back-off timer's ticks do not each ask. One question at a time.
 */
export class DeviceCheck extends ThrottledCheck {
  constructor({ checkFn = () => checkDeviceState(), intervalMs = 5 * 60000, now = () => Date.now() } = {}) {
    // A forced check (start, `online`) joins one under way; a delivery pass never waits for it.
    super({ checkFn, intervalMs, now, joinForced: true });
  }
}

// Who is signed in, with a fresh CSRF token (the cached shell's token is stale).
// Every request has a deadline (net.js); a timeout is a network failure.
export async function fetchSession(fetchFn = fetch) {
  return withDeadline(async (signal) => {
    const res = await fetchFn("/auth/session", {
      credentials: "same-origin",
      cache: "no-store",
      headers: { Accept: "application/json" },
      signal,
    });
    if (!res.ok) throw new Error(`session check failed (${res.status})`);
    return res.json();
  });
}

/**
 * End the web session (POST /auth/logout, form-encoded `csrf_token`): once the
 * tablet is enrolled, sending needs only its device key. Best effort; returns
 * true when the server then reports nobody signed in.
 */
export async function signOut(csrfToken = null, fetchFn = fetch) {
  try {
    let token = csrfToken;
    if (!token) {
      const s = await fetchSession(fetchFn);
      if (!s.signed_in) return true;
      token = s.csrf_token;
    }
    await withDeadline((signal) =>
      fetchFn("/auth/logout", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        redirect: "manual", // it answers with a redirect to the sign-in page; not needed here
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ csrf_token: token || "" }).toString(),
        signal,
      })
    );
    const after = await fetchSession(fetchFn);
    return !after.signed_in;
  } catch {
    return false;
  }
}

function label() {
  const ua = navigator.userAgent || "";
  const kind = /iPad|Tablet|Android/i.test(ua) ? "Tablet" : "Device";
  return `${kind} ${new Date().toISOString().slice(0, 10)}`.slice(0, 100);
}

export class EnrollError extends Error {
  /** retryAfter: for `rate_limited`, the seconds the server asked to wait (0 when it did not say). */
  constructor(message, code, retryAfter = 0) {
    super(message);
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/**
 * Enroll this tablet: needs a signed-in crew session (session from fetchSession).
 * Returns the stored device record.
 */
export async function enroll(session, fetchFn = fetch) {
  const pair = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, ["sign", "verify"]);
  const jwk = await crypto.subtle.exportKey("jwk", pair.publicKey);
  const publicKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  let res;
  let data;
  try {
    ({ res, data } = await withDeadline(async (signal) => {
      const r = await fetchFn("/api/v1/devices", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": session.csrf_token || "" },
        body: JSON.stringify({ public_key: publicKey, label: label() }),
        signal,
      });
      return { res: r, data: await r.json().catch(() => null) };
    }));
  } catch {
    throw new EnrollError("No connection. Set up this tablet while it is online.", "network");
  }
  if (res.status !== 201 || !data || !data.device_id) {
    const msg = data && data.error ? data.error.message : `The server refused (${res.status}).`;
    const wait = Number.parseInt(res.headers.get("Retry-After") || "", 10);
    throw new EnrollError(msg, (data && data.error && data.error.code) || `http_${res.status}`, wait > 0 ? wait : 0);
  }
  const record = {
    device_id: data.device_id,
    airline: data.airline,
    recipients: knownKeys(data.recipients),
    receipt_key: data.receipt_key,
    enrolled_at: new Date().toISOString(),
  };
  await withDb(async (d) => {
    const tx = d.transaction(["meta", "keys"], "readwrite");
    const previous = previousReceiptKeys(await tx.objectStore("meta").get(DEVICE), record.receipt_key || {});
    if (previous.length) record.previous_receipt_keys = previous;
    await tx.objectStore("keys").put(pair, SIGNING);
    await tx.objectStore("meta").put(record, DEVICE);
    await tx.done;
  });
  return record;
}

// The server lists each recipient key with its suite (v1: P-256, v2: X-Wing;
// an answer from before suites existed has only v1 keys, without the field).
// The tablet keeps both suites' keys; envelope.js sealingKeys() picks one.
const SUITES = ["v1", "v2"];
function knownKeys(list) {
  return (Array.isArray(list) ? list : [])
    .map((r) => ({ kid: r.kid, owner: r.owner, suite: r.suite || "v1", jwk: r.jwk }))
    .filter((r) => SUITES.includes(r.suite));
}

function sameKeys(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * When online: pick up rotated recipient and receipt keys from GET /api/v1/keys.
 * Each key must match its kid (RFC 7638 thumbprint). Old receipt keys are kept,
 * so receipts signed before a rotation still verify. Returns the device record.
 */
export async function refreshKeys(fetchFn = fetch) {
  let data;
  try {
    data = await withDeadline(async (signal) => {
      const res = await fetchFn("/api/v1/keys", { credentials: "omit", cache: "no-store", headers: { Accept: "application/json" }, signal });
      return res.ok ? res.json() : null;
    });
    if (!data) return null;
  } catch {
    return null;
  }
  const dev = await getDevice();
  if (!dev || !data || !data.receipt_key) return dev || null;
  const k = data.receipt_key;
  if (!k.jwk || (await jwkThumbprint(k.jwk)) !== k.kid) return dev;
  const receipt = { kid: k.kid, jwk: k.jwk };
  // A revoked tablet seals nothing more, but still checks the receipts the
  // intake gives for what it sent before (a lost answer, resent).
  let recipients = dev.recipients;
  if (!dev.revoked) {
    if (!Array.isArray(data.recipients)) return dev;
    // Border Force's and this airline's current key of each suite, v1 then v2.
    const published = knownKeys(data.recipients);
    recipients = SUITES.flatMap((suite) => ["border_force", `airline:${dev.airline}`]
      .map((owner) => published.find((r) => r.owner === owner && r.suite === suite))
      .filter(Boolean));
    if (!recipients.some((r) => r.owner === "border_force")) return dev;
    for (const r of recipients) {
      if (!r.jwk || (await jwkThumbprint(r.jwk)) !== r.kid) return dev;
    }
  }
  if (sameKeys(recipients, dev.recipients) && sameKeys(receipt, dev.receipt_key)) return dev;
  return withDb(async (d) => {
    const tx = d.transaction("meta", "readwrite");
    const current = await tx.store.get(DEVICE);
    if (!current || current.device_id !== dev.device_id) return current;
    current.previous_receipt_keys = previousReceiptKeys(current, receipt);
    if (!current.revoked) current.recipients = recipients;
    current.receipt_key = receipt;
    await tx.store.put(current, DEVICE);
    await tx.done;
    return current;
  });
}

// The receipt keys a record had besides `receipt`, newest first (at most 5):
// a note sent before a rotation, or under an earlier registration, whose
// answer was lost gets the receipt signed back then when it is sent again.
function previousReceiptKeys(old, receipt) {
  const keys = old ? [old.receipt_key, ...(old.previous_receipt_keys || [])] : [];
  const kept = keys.filter((k) => k && k.kid && k.kid !== receipt.kid);
  return kept.filter((k, i) => kept.findIndex((o) => o.kid === k.kid) === i).slice(0, 5);
}

/**
 * Older versions kept the signed-in username in the device record. Remove it
 * from the record (it is kept sealed now, see identity.js) and return it.
 */
export async function takeLegacyUsername() {
  return withDb(async (d) => {
    const tx = d.transaction("meta", "readwrite");
    const dev = await tx.store.get(DEVICE);
    let username = "";
    if (dev && "username" in dev) {
      username = dev.username || "";
      delete dev.username;
      await tx.store.put(dev, DEVICE);
    }
    await tx.done;
    return username;
  });
}
