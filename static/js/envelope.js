// Report envelope, version 1 (DESIGN.md section 3): build, seal, sign;
// and verification of the server's signed receipts.
import { CipherSuite, DhkemP256HkdfSha256, HkdfSha256, Aes256Gcm } from "/static/vendor/hpke.js";
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

let suite = null;
function hpkeSuite() {
  if (!suite) {
    suite = new CipherSuite({
      kem: new DhkemP256HkdfSha256(),
      kdf: new HkdfSha256(),
      aead: new Aes256Gcm(),
    });
  }
  return suite;
}

function publicJwk(jwk) {
  return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
}

// RFC 7638 thumbprint of an EC public key.
export async function jwkThumbprint(jwk) {
  const canonical = `{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}","y":"${jwk.y}"}`;
  return b64u(await sha256(utf8(canonical)));
}

export async function importRecipientKey(jwk) {
  return crypto.subtle.importKey("jwk", publicJwk(jwk), { name: "ECDH", namedCurve: "P-256" }, true, []);
}

export async function importVerifyKey(jwk) {
  return crypto.subtle.importKey("jwk", publicJwk(jwk), ECDSA, true, ["verify"]);
}

/**
 * Build a sealed, signed envelope.
 * header: the full header object (v, id, device, created, rcpt, airline, flight, dep, arr, sta, urgency).
 * body: the report body object (plaintext, never stored).
 * recipients: [{kid, jwk}] in header.rcpt order.
 * signingKey: the device's ECDSA P-256 private CryptoKey.
 */
export async function buildEnvelope(header, body, recipients, signingKey) {
  if (!recipients.length) throw new Error("no recipient keys: set up this tablet again");
  if (!Array.isArray(header.rcpt) || header.rcpt.length !== recipients.length) {
    throw new Error("recipient list does not match header.rcpt");
  }
  recipients.forEach((r, i) => {
    if (r.kid !== header.rcpt[i]) throw new Error("recipient order does not match header.rcpt");
  });
  const headerBytes = utf8(JSON.stringify(header));
  const protectedPart = b64u(headerBytes);
  const info = utf8("crewreport/v1:" + b64u(await sha256(headerBytes)));
  const plaintext = utf8(JSON.stringify(body));
  const s = hpkeSuite();
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
