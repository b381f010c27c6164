"""Report envelopes, versions 1 and 2 (DESIGN.md sections 3, 3b): build,
verify, open.

Pure functions over `cryptography`; no Flask. The intake, the tests, the
benchmarks and the `send-test-report` command all use this one module.

Protocol notes, because the details matter:

* `protected` is base64url of the header's UTF-8 JSON bytes, and those exact
  bytes are what the signature and the HPKE `info` bind. We never re-serialise
  a received header: we verify and hash the bytes as sent.
* The signature is ECDSA P-256 / SHA-256 over the ASCII string
  `protected "." sealed[0] "." sealed[1] ...`, raw `r || s` (64 bytes) as
  WebCrypto produces it; `cryptography` wants DER, so we convert.
* Each `sealed[i]` is single-shot HPKE base mode (DHKEM(P-256, HKDF-SHA256),
  HKDF-SHA256, AES-256-GCM) to the key `rcpt[i]`, output `enc || ct`, empty
  aad, and `info = "crewreport/v1:" + b64u(SHA-256(header bytes))`. Binding the
  header through `info` means a sealed body cannot be moved under another
  header (another flight, another device) and still open.
* Version 2 changes only the KEM: X-Wing (ML-KEM-768 + X25519, see xwing.py),
  `enc` of 1120 bytes, and the label `crewreport/v2:`. All `rcpt` of one
  envelope are of its version's suite; a key of the other suite is not a
  recipient of it (`unknown_recipient`), so the suites never mix.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, hpke
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from . import xwing

SUITE = hpke.Suite(hpke.KEM.P256, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)  # version 1
SUITE_V2 = hpke.Suite(hpke.KEM.MLKEM768_X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
SUITES = {1: SUITE, 2: SUITE_V2}  # envelope version -> HPKE suite
VERSIONS = tuple(SUITES)
ENC_LEN = 65  # uncompressed P-256 point (version 1)
TAG_LEN = 16
SIGNATURE_LEN = 64

# A recipient key of either suite: P-256 (version 1) or X-Wing (version 2).
RecipientPrivateKey = ec.EllipticCurvePrivateKey | xwing.PrivateKey
RecipientPublicKey = ec.EllipticCurvePublicKey | xwing.PublicKey

# The header fields of version 1 and the JSON type each must have.
HEADER_TYPES: dict[str, type] = {
    "v": int, "id": str, "device": str, "created": str, "rcpt": list,
    "airline": str, "flight": str, "dep": str, "arr": str, "sta": str, "urgency": str,
}


class EnvelopeError(Exception):
    """An envelope refused with one of the API's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# -- encodings ---------------------------------------------------------------

def b64u_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict base64url without padding: anything else is a ValueError."""
    if not isinstance(text, str) or any(c in text for c in "=+/ \n\r\t"):
        raise ValueError("not base64url")
    if len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc
    return raw


class DuplicateKey(ValueError):
    """A JSON object names one key twice."""


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for json.loads: an object with a key twice is a ValueError."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise DuplicateKey("a JSON object has a key twice")
    return obj


class TwiceNamed(dict[str, Any]):
    """A JSON object that names a key twice, read rather than raised (the
    last copy kept) so that it spoils only the envelope of a batch it is in:
    `parse` refuses it as `malformed`."""


def mark_twice_named(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`object_pairs_hook` for json.loads: an object with a key twice comes back a TwiceNamed."""
    obj = dict(pairs)
    return obj if len(obj) == len(pairs) else TwiceNamed(obj)


def lenient_int(digits: str) -> int | float:
    """`parse_int` for json.loads: an integer longer than Python will convert
    (its guard against quadratic work) is read as infinity, a value no field
    of the protocol takes, instead of failing the whole document."""
    try:
        return int(digits)
    except ValueError:
        return float(digits)  # linear in the digits; over 4300 of them it is +-inf


def loads_per_item(raw: str) -> Any:
    """JSON whose flaws within an item are left for that item to answer for
    (a batch: one bad envelope does not spoil the others): an object naming
    a key twice is a TwiceNamed, an over-long integer infinity. Bad syntax is
    still a ValueError, nesting too deep a RecursionError."""
    return json.loads(raw, object_pairs_hook=mark_twice_named, parse_int=lenient_int)


# `\uD800`..`\uDFFF` escapes are the only way a lone surrogate gets into
# parsed JSON, since the strict UTF-8 decode refuses encoded ones. Only the
# first digit is matched: Python's fallback parser reads the other three with
# int(), which also takes non-ASCII digits ("\uD٨00"). An escaped backslash
# followed by "ud" also matches, which only costs the closer look.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD]")


def loads_strict(raw: bytes) -> Any:
    """UTF-8 JSON from an untrusted source; every way it can be bad is a ValueError.

    Besides plain syntax errors: nesting deep enough to exhaust the stack
    (RecursionError), and `\\udXXX` escapes that decode to lone surrogates,
    which no UTF-8 store or page can hold (SQLite would raise at insert).
    A key twice in one object is refused too: parsers disagree on which copy
    wins, so what was signed could be read one way here and another elsewhere.
    """
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, object_pairs_hook=unique_keys)
        if _SURROGATE_ESCAPE.search(text):  # only such an escape can make one: look closer
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except UnicodeError as exc:  # UnicodeDecodeError or a lone surrogate
        raise ValueError("not UTF-8 text") from exc
    return value


def canonical_json(value: Any) -> str:
    """The canonical form the receipt's `envelope_sha256` is computed over."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def envelope_sha256(envelope: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(envelope).encode("utf-8")).hexdigest()


# -- keys as JWK ---------------------------------------------------------------

def _coordinate(jwk: Mapping[str, Any], name: str) -> int:
    value = jwk.get(name)
    raw = b64u_decode(value) if isinstance(value, str) else b""
    if len(raw) != 32:
        raise ValueError(f"JWK '{name}' must be 32 bytes of base64url")
    return int.from_bytes(raw, "big")


def public_key_from_jwk(jwk: Any) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from a JWK; ValueError for anything else (incl. off-curve)."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") != "EC" or jwk.get("crv") != "P-256":
        raise ValueError("key must be a JWK with kty EC and crv P-256")
    if "d" in jwk:
        raise ValueError("a public JWK must not contain the private 'd'")
    numbers = ec.EllipticCurvePublicNumbers(_coordinate(jwk, "x"), _coordinate(jwk, "y"), ec.SECP256R1())
    return numbers.public_key()  # raises ValueError when the point is not on the curve


def private_key_from_jwk(jwk: Mapping[str, Any]) -> ec.EllipticCurvePrivateKey:
    d = _coordinate(jwk, "d")
    key = ec.derive_private_key(d, ec.SECP256R1())
    if jwk_from_public_key(key.public_key()) != public_jwk_members(jwk):
        raise ValueError("JWK 'd' does not match 'x' and 'y'")
    return key


def jwk_from_public_key(key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-256",
        "x": b64u_encode(numbers.x.to_bytes(32, "big")),
        "y": b64u_encode(numbers.y.to_bytes(32, "big")),
    }


def public_jwk_members(jwk: Mapping[str, Any]) -> dict[str, Any]:
    return {k: jwk[k] for k in ("kty", "crv", "x", "y")}


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint, SHA-256, base64url: the `kid` of every key
    (P-256: crv, kty, x, y; X-Wing: alg, kty, pub)."""
    members = xwing.thumbprint_members(jwk) if xwing.is_jwk(jwk) else public_jwk_members(jwk)
    required = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return b64u_encode(hashlib.sha256(required.encode("ascii")).digest())


def suite_version(key: RecipientPrivateKey | RecipientPublicKey) -> int:
    """The envelope version a recipient key serves: 1 for P-256, 2 for X-Wing."""
    return 2 if isinstance(key, (xwing.PrivateKey, xwing.PublicKey)) else 1


def recipient_jwk(key: RecipientPublicKey) -> dict[str, str]:
    return xwing.jwk_from_public_key(key) if isinstance(key, xwing.PublicKey) else jwk_from_public_key(key)


def recipient_key_from_jwk(jwk: Any) -> RecipientPublicKey:
    """A published recipient key of either suite; ValueError for anything else."""
    return xwing.public_key_from_jwk(jwk) if xwing.is_jwk(jwk) else public_key_from_jwk(jwk)


# -- signatures ------------------------------------------------------------------

def sign_raw(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def verify_raw(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    if len(signature) != SIGNATURE_LEN:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# -- envelopes ---------------------------------------------------------------------

def hpke_info(header_bytes: bytes, version: int = 1) -> bytes:
    """`crewreport/v<version>:` + b64u(SHA-256(header bytes)): binds the header."""
    return f"crewreport/v{version}:{b64u_encode(hashlib.sha256(header_bytes).digest())}".encode("ascii")


def signing_input(protected: str, sealed: Sequence[str]) -> bytes:
    return ".".join([protected, *sealed]).encode("ascii")


@dataclass(frozen=True)
class Parsed:
    """An envelope whose structure is sound; nothing about it is trusted yet."""

    envelope: Mapping[str, Any]
    header_bytes: bytes
    header: dict[str, Any]
    sealed: tuple[bytes, ...]
    signature: bytes

    @property
    def signing_input(self) -> bytes:
        return signing_input(self.envelope["protected"], self.envelope["sealed"])

    @property
    def version(self) -> int:
        return int(self.header["v"])


def _malformed(message: str) -> EnvelopeError:
    return EnvelopeError("malformed", message)


def parse(envelope: Any) -> Parsed:
    """Structure checks: `malformed` and `unsupported_version` (DESIGN order)."""
    if not isinstance(envelope, Mapping):
        raise _malformed("The envelope must be a JSON object.")
    if isinstance(envelope, TwiceNamed):
        raise _malformed("The envelope names a field twice.")
    if set(envelope) != {"protected", "sealed", "signature"}:
        raise _malformed("The envelope must have exactly 'protected', 'sealed' and 'signature'.")
    protected, sealed, signature = envelope["protected"], envelope["sealed"], envelope["signature"]
    if not isinstance(protected, str) or not isinstance(signature, str):
        raise _malformed("'protected' and 'signature' must be strings.")
    if not isinstance(sealed, list) or not sealed or not all(isinstance(s, str) for s in sealed):
        raise _malformed("'sealed' must be a non-empty list of strings.")
    try:
        header_bytes = b64u_decode(protected)
        sealed_raw = tuple(b64u_decode(s) for s in sealed)
        signature_raw = b64u_decode(signature)
    except ValueError:
        raise _malformed("A field is not valid base64url (no padding).") from None
    try:
        header = loads_strict(header_bytes)
    except DuplicateKey:
        raise _malformed("The header names a field twice.") from None
    except ValueError:
        raise _malformed("The header is not UTF-8 JSON.") from None
    if not isinstance(header, dict):
        raise _malformed("The header must be a JSON object.")
    # The order is the contract's: missing fields, wrong types and a sealed
    # count that differs from rcpt are `malformed`; then the version; fields
    # versions 1 and 2 do not have are checked last, since another version
    # may well have them.
    missing = [k for k in HEADER_TYPES if k not in header]
    if missing:
        raise _malformed(f"The header lacks {', '.join(missing)}.")
    for name, kind in HEADER_TYPES.items():
        if not isinstance(header[name], kind) or isinstance(header[name], bool):
            raise _malformed(f"Header field '{name}' has the wrong type.")
    rcpt = header["rcpt"]
    if not rcpt or not all(isinstance(k, str) for k in rcpt):
        raise _malformed("'rcpt' must be a non-empty list of key ids.")
    if len(set(rcpt)) != len(rcpt):
        raise _malformed("'rcpt' names a key twice.")
    if len(sealed) != len(rcpt):
        raise _malformed("'sealed' must have one entry per 'rcpt' key, in the same order.")
    if header["v"] not in VERSIONS:
        raise EnvelopeError("unsupported_version",
                            f"Envelope version {header['v']} is not supported; this service accepts versions 1 and 2.")
    extra = sorted(set(header) - set(HEADER_TYPES))
    if extra:
        raise _malformed(f"The header has unknown fields: {', '.join(extra)}.")
    return Parsed(envelope, header_bytes, header, sealed_raw, signature_raw)


def verify_signature(parsed: Parsed, device_key: ec.EllipticCurvePublicKey) -> None:
    if len(parsed.signature) != SIGNATURE_LEN:
        raise EnvelopeError("bad_signature", "The signature must be 64 bytes (r || s).")
    if not verify_raw(device_key, parsed.signature, parsed.signing_input):
        raise EnvelopeError("bad_signature", "The signature does not match this device's key.")


def open_sealed(parsed: Parsed, index: int, private_key: RecipientPrivateKey) -> bytes:
    """Open `sealed[index]` with that recipient's private key, in the
    envelope's own suite; a key of the other suite is not its recipient."""
    if suite_version(private_key) != parsed.version:
        raise EnvelopeError("unknown_recipient", f"A version {parsed.version} envelope names a key of another "
                                                 "suite; refresh the tablet's keys.")
    try:
        return unseal(parsed.sealed[index], private_key, hpke_info(parsed.header_bytes, parsed.version))
    except (InvalidTag, ValueError):
        raise EnvelopeError("undecryptable", "The sealed report could not be opened with the recipient key.") from None


def open_body(parsed: Parsed, index: int, private_key: RecipientPrivateKey) -> Any:
    """Open and parse the body JSON; a body that is not JSON is `invalid_report`."""
    return loads_body(open_sealed(parsed, index, private_key))


def loads_body(plaintext: bytes) -> Any:
    try:
        return loads_strict(plaintext)
    except DuplicateKey:
        raise EnvelopeError("invalid_report", "The report body names a field twice.") from None
    except ValueError:
        raise EnvelopeError("invalid_report", "The report body is not UTF-8 JSON.") from None


def seal(plaintext: bytes, key: RecipientPublicKey, info: bytes) -> bytes:
    """Single-shot HPKE to one recipient in its key's suite: `enc || ct`."""
    if isinstance(key, xwing.PublicKey):
        return SUITE_V2.encrypt(plaintext, key.hpke, info=info)
    return SUITE.encrypt(plaintext, key, info=info)


def unseal(sealed: bytes, key: RecipientPrivateKey, info: bytes) -> bytes:
    """`seal` undone with the recipient's private key, in its key's suite;
    InvalidTag or ValueError when it does not open."""
    if isinstance(key, xwing.PrivateKey):
        return SUITE_V2.decrypt(sealed, key.hpke, info=info)
    return SUITE.decrypt(sealed, key, info=info)


def build(header: Mapping[str, Any], body: Mapping[str, Any],
          recipients: Sequence[RecipientPublicKey],
          device_key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    """Seal `body` once per recipient (in `header['rcpt']` order) and sign.

    The same steps as the browser's envelope.js, for tests, benchmarks and the
    `send-test-report` command. `header['v']` picks the suite; every recipient
    key must be of it.
    """
    version = header["v"]
    if version in SUITES and any(suite_version(k) != version for k in recipients):
        raise ValueError(f"a version {version} envelope takes recipient keys of its own suite only")
    header_bytes = json.dumps(dict(header), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    plaintext = json.dumps(dict(body), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    info = hpke_info(header_bytes, version if version in SUITES else 1)
    protected = b64u_encode(header_bytes)
    sealed = [b64u_encode(seal(plaintext, key, info)) for key in recipients]
    signature = sign_raw(device_key, signing_input(protected, sealed))
    return {"protected": protected, "sealed": sealed, "signature": b64u_encode(signature)}


# -- receipts ------------------------------------------------------------------------

def sign_receipt(payload: Mapping[str, Any], key: ec.EllipticCurvePrivateKey) -> dict[str, str]:
    receipt = b64u_encode(json.dumps(dict(payload), separators=(",", ":")).encode("utf-8"))
    return {"receipt": receipt, "signature": b64u_encode(sign_raw(key, receipt.encode("ascii")))}


def verify_receipt(answer: Mapping[str, Any], key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """The receipt's content if its signature verifies; ValueError otherwise."""
    receipt, signature = answer.get("receipt"), answer.get("signature")
    if not isinstance(receipt, str) or not isinstance(signature, str):
        raise ValueError("not a receipt answer")
    if not verify_raw(key, b64u_decode(signature), receipt.encode("ascii")):
        raise ValueError("receipt signature does not verify")
    return json.loads(b64u_decode(receipt))
