"""envelope.js in the browser, checked by Python with `cryptography` alone:
the output opens with the vector keys and the signature verifies."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.hpke import AEAD, KDF, KEM, Suite

from tests.helpers import VECTORS

pytestmark = pytest.mark.e2e

KEYS = VECTORS["keys"]
SUITE = Suite(KEM.P256, KDF.HKDF_SHA256, AEAD.AES_256_GCM)


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key(jwk: dict) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(unb64u(jwk["d"]), "big"), ec.SECP256R1())


def public(jwk: dict) -> dict:
    return {k: jwk[k] for k in ("kty", "crv", "x", "y")}


BUILD = """async ([header, body, recipients, deviceJwk]) => {
  const m = await import('/static/js/envelope.js');
  const key = await crypto.subtle.importKey('jwk', deviceJwk, {name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign']);
  return m.buildEnvelope(header, body, recipients, key);
}"""


def case(name: str) -> dict:
    return next(c for c in VECTORS["cases"] if c["name"] == name)


@pytest.mark.parametrize("name", ["valid", "valid_non_ascii"])
def test_envelope_opens_with_vector_keys_and_signature_verifies(js_page: Any, name: str) -> None:
    c = case(name)
    header, body = c["header"], c["body"]
    recipients = [{"kid": KEYS["border_force"]["kid"], "jwk": public(KEYS["border_force"]["jwk"])},
                  {"kid": KEYS["airline_ZZ"]["kid"], "jwk": public(KEYS["airline_ZZ"]["jwk"])}]
    env = js_page.evaluate(BUILD, [header, body, recipients, KEYS["device"]["jwk"]])

    assert set(env) == {"protected", "sealed", "signature"}
    header_bytes = unb64u(env["protected"])
    assert header_bytes == json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert json.loads(header_bytes) == header
    # no padding, url-safe alphabet
    for part in [env["protected"], env["signature"], *env["sealed"]]:
        assert "=" not in part and "+" not in part and "/" not in part

    sig = unb64u(env["signature"])
    assert len(sig) == 64
    device_pub = private_key(KEYS["device"]["jwk"]).public_key()
    signing_input = ".".join([env["protected"], *env["sealed"]]).encode("ascii")
    device_pub.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                      signing_input, ec.ECDSA(hashes.SHA256()))

    info = ("crewreport/v1:" + b64u(hashlib.sha256(header_bytes).digest())).encode("ascii")
    assert len(env["sealed"]) == 2
    for sealed, owner in zip(env["sealed"], ("border_force", "airline_ZZ"), strict=True):
        raw = unb64u(sealed)
        assert raw[0] == 4 and len(raw) > 65  # enc is an uncompressed P-256 point
        plaintext = SUITE.decrypt(raw, private_key(KEYS[owner]["jwk"]), info=info)
        assert json.loads(plaintext.decode("utf-8")) == body
    # the two seals are independent (fresh ephemeral key each)
    assert unb64u(env["sealed"][0])[:65] != unb64u(env["sealed"][1])[:65]

    # the lead's intake parser agrees, if present
    try:
        from crewreport import envelope as server_envelope
    except ImportError:
        return
    parsed = server_envelope.parse(env)
    server_envelope.verify_signature(parsed, server_envelope.public_key_from_jwk(public(KEYS["device"]["jwk"])))
    assert server_envelope.open_body(parsed, 0, server_envelope.private_key_from_jwk(KEYS["border_force"]["jwk"])) == body


def test_recipient_order_must_match_rcpt(js_page: Any) -> None:
    c = case("valid")
    recipients = [{"kid": KEYS["airline_ZZ"]["kid"], "jwk": public(KEYS["airline_ZZ"]["jwk"])},
                  {"kid": KEYS["border_force"]["kid"], "jwk": public(KEYS["border_force"]["jwk"])}]
    msg = js_page.evaluate(
        f"""async (args) => {{ try {{ await ({BUILD})(args); return 'built'; }} catch (e) {{ return e.message; }} }}""",
        [c["header"], c["body"], recipients, KEYS["device"]["jwk"]])
    assert "order" in msg


def test_thumbprint_matches_kid(js_page: Any) -> None:
    kids = js_page.evaluate(
        """async (keys) => { const m = await import('/static/js/envelope.js');
             return Promise.all(keys.map(k => m.jwkThumbprint(k))); }""",
        [public(KEYS[n]["jwk"]) for n in ("border_force", "airline_ZZ")])
    assert kids == [KEYS["border_force"]["kid"], KEYS["airline_ZZ"]["kid"]]


def test_receipt_verification(js_page: Any) -> None:
    receipt_key = ec.generate_private_key(ec.SECP256R1())
    nums = receipt_key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": "P-256", "x": b64u(nums.x.to_bytes(32, "big")), "y": b64u(nums.y.to_bytes(32, "big"))}
    env = case("valid")["envelope"]
    canonical = json.dumps(env, sort_keys=True, separators=(",", ":"))
    payload = {"id": case("valid")["header"]["id"], "reference": "ZK4-7QP", "received_at": "2026-12-01T11:02:05Z",
               "envelope_sha256": hashlib.sha256(canonical.encode()).hexdigest()}
    receipt = b64u(json.dumps(payload).encode())
    r, s = decode_dss_signature(receipt_key.sign(receipt.encode("ascii"), ec.ECDSA(hashes.SHA256())))
    good = {"receipt": receipt, "signature": b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))}
    forged = dict(good, receipt=b64u(json.dumps(dict(payload, reference="XXX-XXX")).encode()))

    out = js_page.evaluate(
        """async ([good, forged, jwk, env, id]) => {
          const m = await import('/static/js/envelope.js');
          const tryit = async (a, expect) => { try { return await m.verifyReceipt(a, jwk, expect); } catch (e) { return 'error: ' + e.message; } };
          return {
            sha: await m.envelopeSha256(env),
            ok: await tryit(good, {id, envelope: env}),
            forged: await tryit(forged, {}),
            otherId: await tryit(good, {id: '00000000-0000-4000-8000-000000000000'}),
            short: await tryit({receipt: good.receipt, signature: good.signature.slice(0, 40)}, {}),
          };
        }""",
        [good, forged, jwk, env, payload["id"]])
    assert out["sha"] == payload["envelope_sha256"]
    assert out["ok"] == payload
    assert out["forged"].startswith("error:")
    assert out["otherId"].startswith("error:")
    assert out["short"].startswith("error:")
    assert receipt_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())  # (key used only here)
