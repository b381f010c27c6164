"""envelope.js sealing version 2 (X-Wing) in Chromium, opened in Python with
`cryptography` from the version 2 vectors' seeds; the tablet's choice of
version from the keys it holds; X-Wing kids computed in the browser."""
from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from tests.helpers import VECTORS, VECTORS_V2

pytestmark = pytest.mark.e2e

KEYS = VECTORS_V2["keys"]
V1_KEYS = VECTORS["keys"]
SUITE = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def x_wing_private(seed_b64u: str) -> hpke.MLKEM768X25519PrivateKey:
    """Section 3b's expansion, done here with `cryptography` alone."""
    expanded = hashlib.shake_256(unb64u(seed_b64u)).digest(96)
    return hpke.MLKEM768X25519PrivateKey(mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
                                         x25519.X25519PrivateKey.from_private_bytes(expanded[64:]))


def recipient(name: str, keys: dict[str, Any] = KEYS, suite: str = "v2", owner: str | None = None) -> dict[str, Any]:
    jwk = {k: v for k, v in keys[name]["jwk"].items() if k != "d"}
    return {"kid": keys[name]["kid"], "owner": owner or ("border_force" if name == "border_force" else "airline:ZZ"),
            "suite": suite, "jwk": jwk}


BUILD = """async ([header, body, recipients, deviceJwk]) => {
  const m = await import('/static/js/envelope.js');
  const key = await crypto.subtle.importKey('jwk', deviceJwk, {name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign']);
  try { return await m.buildEnvelope(header, body, recipients, key); } catch (e) { return 'error: ' + e.message; }
}"""


@pytest.mark.parametrize("name", ["valid", "valid_non_ascii"])
def test_a_version_2_seal_made_in_the_browser_opens_with_the_seeds(js_page: Any, name: str) -> None:
    case = next(c for c in VECTORS_V2["cases"] if c["name"] == name)
    header, body = case["header"], case["body"]
    env = js_page.evaluate(BUILD, [header, body, [recipient("border_force"), recipient("airline_ZZ")],
                                   KEYS["device"]["jwk"]])
    assert isinstance(env, dict), env
    header_bytes = unb64u(env["protected"])
    assert json.loads(header_bytes) == header and json.loads(header_bytes)["v"] == 2

    d = KEYS["device"]["jwk"]
    device = ec.derive_private_key(int.from_bytes(unb64u(d["d"]), "big"), ec.SECP256R1()).public_key()
    sig = unb64u(env["signature"])
    device.verify(encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")),
                  ".".join([env["protected"], *env["sealed"]]).encode("ascii"), ec.ECDSA(hashes.SHA256()))

    info = ("crewreport/v2:" + b64u(hashlib.sha256(header_bytes).digest())).encode("ascii")
    for sealed, owner in zip(env["sealed"], ("border_force", "airline_ZZ"), strict=True):
        raw = unb64u(sealed)
        assert len(raw) == 1120 + len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()) + 16
        assert json.loads(SUITE.decrypt(raw, x_wing_private(KEYS[owner]["seed"]), info=info)) == body
        with pytest.raises(InvalidTag):  # the v1 label does not open it
            SUITE.decrypt(raw, x_wing_private(KEYS[owner]["seed"]),
                          info=info.replace(b"crewreport/v2:", b"crewreport/v1:"))
    assert unb64u(env["sealed"][0])[:1120] != unb64u(env["sealed"][1])[:1120]  # one fresh seal per recipient

    # The server's own parser and opener agree.
    from crewreport import envelope, xwing
    parsed = envelope.parse(env)
    envelope.verify_signature(parsed, device)
    assert envelope.open_body(parsed, 0, xwing.private_key_from_seed(unb64u(KEYS["border_force"]["seed"]))) == body


def test_the_browser_never_mixes_suites(js_page: Any) -> None:
    case = next(c for c in VECTORS_V2["cases"] if c["name"] == "valid")
    mixed = [recipient("border_force"), recipient("airline_ZZ", V1_KEYS, "v1")]
    header = dict(case["header"], rcpt=[r["kid"] for r in mixed])
    out = js_page.evaluate(BUILD, [header, case["body"], mixed, KEYS["device"]["jwk"]])
    assert out == "error: a version 2 envelope is sealed to v2 keys only"
    v1_header = dict(header, v=1, rcpt=[KEYS["border_force"]["kid"]])
    out = js_page.evaluate(BUILD, [v1_header, case["body"], [recipient("border_force")], KEYS["device"]["jwk"]])
    assert out == "error: a version 1 envelope is sealed to v1 keys only"


def test_x_wing_kids_computed_in_the_browser(js_page: Any) -> None:
    kids = js_page.evaluate(
        """async (keys) => { const m = await import('/static/js/envelope.js');
             return Promise.all(keys.map(k => m.jwkThumbprint(k))); }""",
        [KEYS[n]["jwk"] for n in ("border_force", "airline_ZZ")])
    assert kids == [KEYS["border_force"]["kid"], KEYS["airline_ZZ"]["kid"]]


CHOOSE = """async (held) => {
  const m = await import('/static/js/envelope.js');
  const {version, recipients} = m.sealingKeys(held);
  return {version, kids: recipients.map(r => r.kid)};
}"""


def test_the_tablet_seals_version_2_when_its_keys_allow(js_page: Any) -> None:
    bf1, zz1 = recipient("border_force", V1_KEYS, "v1"), recipient("airline_ZZ", V1_KEYS, "v1")
    bf2, zz2 = recipient("border_force"), recipient("airline_ZZ")
    legacy = [{k: v for k, v in r.items() if k != "suite"} for r in (bf1, zz1)]  # a record from before suites
    expect = {
        "both suites": ([bf1, zz1, bf2, zz2], 2, [bf2["kid"], zz2["kid"]]),
        "v2 listed first": ([zz2, bf2, zz1, bf1], 2, [bf2["kid"], zz2["kid"]]),
        "only v1": ([bf1, zz1], 1, [bf1["kid"], zz1["kid"]]),
        "legacy record": (legacy, 1, [bf1["kid"], zz1["kid"]]),
        # The airline has no v2 key: the whole note stays version 1 rather than lose its copy.
        "airline without v2": ([bf1, zz1, bf2], 1, [bf1["kid"], zz1["kid"]]),
        "only v2": ([bf2, zz2], 2, [bf2["kid"], zz2["kid"]]),
        "no airline key": ([bf1, bf2], 2, [bf2["kid"]]),
    }
    for label, (held, version, kids) in expect.items():
        assert js_page.evaluate(CHOOSE, held) == {"version": version, "kids": kids}, label
