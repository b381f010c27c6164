"""The envelope's structure rules (DESIGN.md section 3), each refusal with its
code and exact words, and the encodings under them held to the letter. A
mutation run on envelope.py showed these went unchecked: a base64url field
with a stray character, a key id that is not a string, a sealed body that is
not JSON, a canonical form without sorted keys."""
from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from crewreport import envelope
from crewreport.envelope import EnvelopeError

from .helpers import KeySet, hand_sealed, hand_signed, header_of

Make = Callable[..., dict[str, Any]]


def header(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "v": 1, "id": "8c4c3f7e-3d0f-4b5e-9a55-2f1d5b7a6c01", "device": "dev-1", "created": "2026-11-30T10:00:00Z",
        "rcpt": ["kid-bf", "kid-zz"], "airline": "ZZ", "flight": "ZZ101", "dep": "LOS", "arr": "LHR",
        "sta": "2026-11-30T13:00:00Z", "urgency": "routine"}
    value.update(changes)
    return {k: v for k, v in value.items() if v is not None}


def unsealed(head: dict[str, Any] | list[Any] | bytes | None = None, **changes: Any) -> dict[str, Any]:
    """An envelope with the given header and placeholder sealed copies and
    signature: enough for `parse`, which checks structure only."""
    head = header() if head is None else head
    raw = head if isinstance(head, bytes) else json.dumps(head).encode()
    count = len(head["rcpt"]) if isinstance(head, dict) and isinstance(head.get("rcpt"), list) else 2
    value: dict[str, Any] = {"protected": envelope.b64u_encode(raw),
                             "sealed": [envelope.b64u_encode(b"copy")] * count,
                             "signature": envelope.b64u_encode(b"s" * 64)}
    value.update(changes)
    return value


STRINGS = "'protected' and 'signature' must be strings."
SEALED = "'sealed' must be a non-empty list of strings."
BASE64 = "A field is not valid base64url (no padding)."
RCPT = "'rcpt' must be a non-empty list of key ids."

STRUCTURE_REFUSALS: list[tuple[Any, str, str]] = [
    ([unsealed()], "malformed", "The envelope must be a JSON object."),
    ({k: v for k, v in unsealed().items() if k != "signature"}, "malformed",
     "The envelope must have exactly 'protected', 'sealed' and 'signature'."),
    (unsealed(protected=5), "malformed", STRINGS),
    (unsealed(signature=None), "malformed", STRINGS),
    (unsealed(sealed=[]), "malformed", SEALED),
    (unsealed(sealed="Y29weQ"), "malformed", SEALED),
    (unsealed(sealed=["Y29weQ", 5]), "malformed", SEALED),
    (unsealed(sealed=["Y29weQ", "Y2!weQ"]), "malformed", BASE64),
    (unsealed(signature="c3M="), "malformed", BASE64),
    (unsealed(b"{not json"), "malformed", "The header is not UTF-8 JSON."),
    (unsealed(b'{"v":1,"v":1}'), "malformed", "The header names a field twice."),
    (unsealed(["v", 1]), "malformed", "The header must be a JSON object."),
    (unsealed(header(airline=None, urgency=None)), "malformed", "The header lacks airline, urgency."),
    (unsealed(header(v=True)), "malformed", "Header field 'v' has the wrong type."),
    (unsealed(header(flight=75)), "malformed", "Header field 'flight' has the wrong type."),
    (unsealed(header(rcpt=[]), sealed=["Y29weQ"]), "malformed", RCPT),
    (unsealed(header(rcpt=[5])), "malformed", RCPT),
    (unsealed(header(rcpt=["kid-bf", "kid-bf"])), "malformed", "'rcpt' names a key twice."),
    (unsealed(header(), sealed=[envelope.b64u_encode(b"copy")]), "malformed",
     "'sealed' must have one entry per 'rcpt' key, in the same order."),
    (unsealed(header(v=3)), "unsupported_version",
     "Envelope version 3 is not supported; this service accepts versions 1 and 2."),
    (unsealed(header(zz=1, aa=2)), "malformed", "The header has unknown fields: aa, zz."),
]


@pytest.mark.parametrize(("value", "code", "message"), STRUCTURE_REFUSALS,
                         ids=[f"{c}: {m}" for _, c, m in STRUCTURE_REFUSALS])
def test_each_structure_refusal(value: Any, code: str, message: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        envelope.parse(value)
    assert (caught.value.code, caught.value.message) == (code, message)


def test_a_sound_structure_parses() -> None:
    parsed = envelope.parse(unsealed())
    assert parsed.header == header() and parsed.sealed == (b"copy", b"copy") and parsed.signature == b"s" * 64


@pytest.mark.parametrize("text", ["Y29w!!!!", "**Y29w**", "Y2!weQ", "Y29*eQ", "Y29w eQ", "Y29weQ=", "Y29+eQ",
                                  "Y29/eQ", "Y29wé", "Y29we", 5])
def test_base64url_is_strict(text: Any) -> None:
    """No padding, no standard-alphabet characters, nothing outside the
    alphabet silently dropped, no impossible length."""
    with pytest.raises(ValueError, match="^not base64url$"):
        envelope.b64u_decode(text)


def test_base64url_round_trips() -> None:
    for data in (b"", b"c", b"co", b"cop", b"copy", bytes(range(256))):
        assert envelope.b64u_decode(envelope.b64u_encode(data)) == data
    assert envelope.b64u_decode("-_-_") == b"\xfb\xff\xbf"
    assert envelope.b64u_encode(b"\0\0\x17") == "AAAX"  # only padding is stripped, never a letter


def test_a_receipt_answer_must_be_two_strings(keyset: KeySet) -> None:
    answer = envelope.sign_receipt({"id": "r1"}, keyset.receipt)
    assert envelope.verify_receipt(answer, keyset.receipt.public_key()) == {"id": "r1"}
    for broken in ({**answer, "receipt": 5}, {**answer, "signature": None}, {"receipt": answer["receipt"]}):
        with pytest.raises(ValueError, match="^not a receipt answer$"):
            envelope.verify_receipt(broken, keyset.receipt.public_key())
    with pytest.raises(ValueError, match="^receipt signature does not verify$"):
        envelope.verify_receipt(answer, keyset.device.public_key())


def test_device_key_refusals_say_what_is_wrong(keyset: KeySet) -> None:
    """The enrolment answer quotes these words after "'public_key' is not a P-256 public key: "."""
    jwk = envelope.jwk_from_public_key(keyset.device.public_key())
    refusals = [
        ({**jwk, "crv": "P-384"}, "key must be a JWK with kty EC and crv P-256"),
        ({**jwk, "d": jwk["x"]}, "a public JWK must not contain the private 'd'"),
        ({**jwk, "x": jwk["x"][:-3]}, "JWK 'x' must be 32 bytes of base64url"),
        ({**jwk, "y": 5}, "JWK 'y' must be 32 bytes of base64url"),
    ]
    for bad, message in refusals:
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            envelope.public_key_from_jwk(bad)
    assert envelope.public_key_from_jwk(jwk).public_numbers() == keyset.device.public_key().public_numbers()


def test_canonical_json_sorts_keys_at_every_depth() -> None:
    """The receipt's `envelope_sha256` is over this form (DESIGN.md): the same
    envelope sent twice with its keys in another order is the same envelope."""
    value = {"sealed": ["b", "a"], "protected": "p", "x": {"d": 1, "c": "é"}}
    assert envelope.canonical_json(value) == '{"protected":"p","sealed":["b","a"],"x":{"c":"\\u00e9","d":1}}'
    assert envelope.envelope_sha256(value) == hashlib.sha256(envelope.canonical_json(value).encode()).hexdigest()
    assert envelope.envelope_sha256(value) == envelope.envelope_sha256(dict(reversed(list(value.items()))))


def test_signature_refusals(keyset: KeySet) -> None:
    data = b"protected.sealed"
    good = envelope.sign_raw(keyset.device, data)
    key = keyset.device.public_key()
    assert envelope.verify_raw(key, good, data)
    for wrong in (good[:63], good + b"\0", good[32:] + good[:32], b"\0" * 64):
        assert not envelope.verify_raw(key, wrong, data)
    parsed = envelope.parse(unsealed(signature=envelope.b64u_encode(good[:63])))
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify_signature(parsed, key)
    assert (caught.value.code, caught.value.message) == ("bad_signature", "The signature must be 64 bytes (r || s).")
    with pytest.raises(EnvelopeError) as caught:
        envelope.verify_signature(envelope.parse(unsealed()), key)
    assert (caught.value.code, caught.value.message) == ("bad_signature",
                                                         "The signature does not match this device's key.")


@pytest.mark.parametrize(("plaintext", "message"), [
    (b"not json", "The report body is not UTF-8 JSON."),
    (b'{"narrative": "caf\xe9"}', "The report body is not UTF-8 JSON."),
    (b'{"narrative": "\\ud800"}', "The report body is not UTF-8 JSON."),
    (b'{"narrative": "a", "narrative": "b"}', "The report body names a field twice."),
])
def test_a_sealed_body_that_is_not_json_is_invalid_report(
        client: FlaskClient, make_envelope: Make, keyset: KeySet, plaintext: bytes, message: str) -> None:
    """Signed by an enrolled device and sealed to the right keys, but what it
    sealed is not a JSON report: refused at the intake with its reason."""
    head = header_of(make_envelope())
    bad = hand_signed(keyset, head, hand_sealed(head, [(k, plaintext) for k in keyset.recipients(1)]))
    resp = client.post("/api/v1/reports", json=bad)
    assert resp.status_code == 422
    assert resp.get_json()["error"] == {"code": "invalid_report", "message": message}


def test_a_copy_sealed_in_the_other_suite_is_unknown_recipient(keyset: KeySet) -> None:
    parsed = envelope.parse(unsealed())
    with pytest.raises(EnvelopeError) as caught:
        envelope.open_sealed(parsed, 0, keyset.border_force_v2)
    assert (caught.value.code, caught.value.message) == (
        "unknown_recipient", "A version 1 envelope names a key of another suite; refresh the tablet's keys.")
    with pytest.raises(EnvelopeError) as caught:
        envelope.open_sealed(parsed, 0, keyset.border_force)
    assert (caught.value.code, caught.value.message) == (
        "undecryptable", "The sealed report could not be opened with the recipient key.")
