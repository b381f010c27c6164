// Report envelopes, versions 1 and 2 (DESIGN.md sections 3 and 3b): build,
// seal, sign; and verification of the server's signed receipts. Version 2
// differs only in its KEM: X-Wing (ML-KEM-768 + X25519), post-quantum.
import { CipherSuite, DhkemP256HkdfSha256, HkdfSha256, Aes256Gcm } from "/static/vendor/hpke.js";
import { XWing } from "/static/vendor/xwing.js";
import { b64u, unb64u, utf8, sha256, hex } from "./b64.js";

// The server's per-envelope limit (crewreport: MAX_ENVELOPE_BYTES), measured
// as the length of the compact JSON of the envelope. It covers the schema's
// worst case; the app still checks before queueing, so that a note that could
// never be accepted stays in the form instead.
export const MAX_ENVELOPE_BYTES = 320 * 1024;

/** Size of an envelope as the server measures it: its compact JSON, in UTF-8 bytes (ASCII in practice). */
export function envelopeBytes(envelope) {
  return new TextEncoder().encode(JSON.stringify(envelope)).length;
}

const ECDSA = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };

// One HPKE suite per envelope version: its KEM, HKDF-SHA256, AES-256-GCM.
const suites = new Map();
function hpkeSuite(version) {
  if (!suites.has(version)) {
    suites.set(version, new CipherSuite({
      kem: version === 2 ? new XWing() : new DhkemP256HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes256Gcm(),
    }));
  }
  return suites.get(version);
}

function publicJwk(jwk) {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

// RFC 7638 thumbprint: of an EC key (crv, kty, x, y) or an X-Wing key (alg, kty, pub).
export async function jwkThumbprint(jwk) {
  const canonical = jwk.kty === "AKP"
    ? `{"alg":"${jwk.alg}","kty":"${jwk.kty}","pub":"${jwk.pub}"}`
    : `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return b64u(await sha256(utf8(canonical)));
}

/** The suite of a recipient key as the server lists it ("v1" P-256, "v2" X-Wing); older records carry none: v1. */
export function keySuite(r) {
  return r.suite || "v1";
}

/**
 * Which envelope version to seal and to which keys, from every recipient key
 * the tablet holds: version 2 when each owner (Border Force, the airline) has
 * a v2 key, else version 1. The suites never mix within one envelope, so an
 * owner without a v2 key makes the whole note version 1 rather than lose its copy.
 * Returns {version, recipients} with Border Force first.
 */
export function sealingKeys(held) {
  const all = Array.isArray(held) ? held : [];
  const owners = [...new Set(all.map((r) => r.owner))].sort((a, b) => (b === "border_force") - (a === "border_force"));
  const pick = (suite) => owners.map((o) => all.find((r) => r.owner === o && keySuite(r) === suite)).filter(Boolean);
  const v2 = pick("v2");
  const v1 = pick("v1");
  if (v2.length && v2.length >= v1.length) return { version: 2, recipients: v2 };
  return { version: 1, recipients: v1 };
}

export async function importRecipientKey(jwk) {
  if (jwk.kty === "AKP" && jwk.alg === "X-Wing") return new XWing().deserializePublicKey(unb64u(jwk.pub));
  return crypto.subtle.importKey("jwk", publicJwk(jwk), { name: "ECDH", namedCurve: "P-256" }, true, []);
}

export async function importVerifyKey(jwk) {
  return crypto.subtle.importKey("jwk", publicJwk(jwk), ECDSA, true, ["verify"]);
}

/**
 * Build a sealed, signed envelope.
 * header: the full header object (v, id, device, created, rcpt, airline, flight, dep, arr, sta, urgency);
 *   v is 1 (P-256) or 2 (X-Wing).
 * body: the report body object (plaintext, never stored).
 * recipients: [{kid, suite, jwk}] in header.rcpt order, all of the header's version.
 * signingKey: the device's ECDSA P-256 private CryptoKey.
 */
export async function buildEnvelope(header, body, recipients, signingKey) {
  if (!recipients.length) throw new Error("no recipient keys: set up this tablet again");
  if (!Array.isArray(header.rcpt) || header.rcpt.length !== recipients.length) {
    throw new Error("recipient list does not match header.rcpt");
  }
  recipients.forEach((r, i) => {
    if (r.kid !== header.rcpt[i]) throw new Error("recipient order does not match header.rcpt");
    if (keySuite(r) !== `v${header.v}`) throw new Error(`a version ${header.v} envelope is sealed to v${header.v} keys only`);
  });
  const headerBytes = utf8(JSON.stringify(header));
  const protectedPart = b64u(headerBytes);
  const info = utf8(`crewreport/v${header.v}:` + b64u(await sha256(headerBytes)));
  const plaintext = utf8(JSON.stringify(body));
  const s = hpkeSuite(header.v);
  const sealed = [];
  for (const r of recipients) {
    // One seal (one fresh sender context) per recipient.
    const recipientPublicKey = await importRecipientKey(r.jwk);
    const { enc, ct } = await s.seal({ recipientPublicKey, info }, plaintext);
    const both = new Uint8Array(enc.byteLength + ct.byteLength);
    both.set(new Uint8Array(enc), 0);
    both.set(new Uint8Array(ct), enc.byteLength);
    sealed.push(b64u(both));
  }
  const signingInput = utf8([protectedPart, ...sealed].join("."));
  const signature = new Uint8Array(await crypto.subtle.sign(SIGN, signingKey, signingInput));
  return { protected: protectedPart, sealed, signature: b64u(signature) };
}

// Python's json.dumps(obj, sort_keys=True, separators=(",", ":")) for the
// shapes an envelope has (strings, arrays, objects; ASCII escaped as Python does).
export function canonicalJson(value) {
  if (value === null) return "null";
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  if (typeof value === "object") {
    return "{" + Object.keys(value).sort().map((k) => pyString(k) + ":" + canonicalJson(value[k])).join(",") + "}";
  }
  if (typeof value === "string") return pyString(value);
  return JSON.stringify(value);
}

function pyString(s) {
  return JSON.stringify(s).replace(/[\u007f-\uffff]/g, (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
}

export async function envelopeSha256(envelope) {
  return hex(await sha256(utf8(canonicalJson(envelope))));
}

/**
 * Verify a receipt answer {receipt, signature} with the receipt key (JWK).
 * Returns the parsed receipt, or throws. When envelope/id are given, they must match.
 */
export async function verifyReceipt(answer, receiptJwk, expect = {}) {
  if (!answer || typeof answer.receipt !== "string" || typeof answer.signature !== "string") {
    throw new Error("receipt missing");
  }
  const sig = unb64u(answer.signature);
  if (sig.length !== 64) throw new Error("receipt signature has the wrong length");
  const key = await importVerifyKey(receiptJwk);
  const ok = await crypto.subtle.verify(SIGN, key, sig, utf8(answer.receipt));
  if (!ok) throw new Error("receipt signature does not verify");
  const receipt = JSON.parse(new TextDecoder().decode(unb64u(answer.receipt)));
  if (expect.id && receipt.id !== expect.id) throw new Error("receipt is for another report");
  if (expect.envelope && receipt.envelope_sha256 !== (await envelopeSha256(expect.envelope))) {
    throw new Error("receipt is for other content");
  }
  return receipt;
}

export function decodeHeader(envelope) {
  return JSON.parse(new TextDecoder().decode(unb64u(envelope.protected)));
}
