"""The envelope module against the fixed vectors (DESIGN.md section 3)."""
from __future__ import annotations

import json
from typing import Any

import pytest

from crewreport import envelope
from crewreport.envelope import EnvelopeError
from crewreport.report import validate_body

from .helpers import VECTORS, KeySet

CASES = {c["name"]: c for c in VECTORS["cases"]}


def outcome(case: dict[str, Any], keyset: KeySet) -> str:
    """What a verifier with the vectors' keys concludes, in intake order."""
    k = VECTORS["keys"]
    try:
        parsed = envelope.parse(case["envelope"])
        envelope.verify_signature(parsed, keyset.device.public_key())
        rcpt = parsed.header["rcpt"]
        if rcpt[0] != k["border_force"]["kid"] or any(x != k["airline_ZZ"]["kid"] for x in rcpt[1:]):
            return "unknown_recipient"
        validate_body(envelope.open_body(parsed, 0, keyset.border_force))
    except EnvelopeError as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_outcome(name: str, keyset: KeySet) -> None:
    assert outcome(CASES[name], keyset) == CASES[name]["expect"]


@pytest.mark.parametrize("name", ["valid", "valid_non_ascii"])
def test_valid_vectors_open_to_their_header_and_body(name: str, keyset: KeySet) -> None:
    case = CASES[name]
    parsed = envelope.parse(case["envelope"])
    assert parsed.header == case["header"]
    assert envelope.open_body(parsed, 0, keyset.border_force) == case["body"]
    # The airline's copy opens to the same body with the airline's key.
    assert envelope.open_body(parsed, 1, keyset.airline_zz) == case["body"]


def test_vector_kids_are_rfc7638_thumbprints() -> None:
    for name in ("border_force", "airline_ZZ"):
        key = VECTORS["keys"][name]
        assert envelope.thumbprint(key["jwk"]) == key["kid"]


def test_rfc7638_example_thumbprint() -> None:
    # RFC 7638 section 3.1 gives an RSA example; the EC rule is the same
    # (required members, sorted, no whitespace). Check the exact input form.
    jwk = {"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "BBBB", "kid": "ignored", "use": "enc"}
    import hashlib
    expected = envelope.b64u_encode(hashlib.sha256(b'{"crv":"P-256","kty":"EC","x":"AAAA","y":"BBBB"}').digest())
    assert envelope.thumbprint(jwk) == expected


def test_build_round_trip_with_non_ascii(keyset: KeySet) -> None:
    header = dict(CASES["valid"]["header"], id="a6f1c1de-6d4b-4c55-8f3c-2b9c7d1e0f11")
    body = dict(CASES["valid_non_ascii"]["body"])
    env = envelope.build(header, body, [keyset.border_force.public_key(), keyset.airline_zz.public_key()],
                         keyset.device)
    parsed = envelope.parse(env)
    envelope.verify_signature(parsed, keyset.device.public_key())
    assert envelope.open_body(parsed, 0, keyset.border_force) == body
    assert envelope.open_body(parsed, 1, keyset.airline_zz) == body
    with pytest.raises(EnvelopeError) as exc:  # the other recipient's key does not open it
        envelope.open_body(parsed, 0, keyset.airline_zz)
    assert exc.value.code == "undecryptable"


def test_sealed_copy_cannot_move_under_another_header(keyset: KeySet) -> None:
    """info binds the header: a body re-signed under a new header won't open."""
    env = envelope.build(CASES["valid"]["header"], CASES["valid"]["body"], [keyset.border_force.public_key()],
                         keyset.device)
    other = dict(CASES["valid"]["header"], flight="ZZ999", rcpt=[VECTORS["keys"]["border_force"]["kid"]])
    protected = envelope.b64u_encode(json.dumps(other).encode())
    sig = envelope.sign_raw(keyset.device, envelope.signing_input(protected, env["sealed"]))
    moved = {"protected": protected, "sealed": env["sealed"], "signature": envelope.b64u_encode(sig)}
    parsed = envelope.parse(moved)
    envelope.verify_signature(parsed, keyset.device.public_key())
    with pytest.raises(EnvelopeError) as exc:
        envelope.open_sealed(parsed, 0, keyset.border_force)
    assert exc.value.code == "undecryptable"


@pytest.mark.parametrize(("env", "code"), [
    ([], "malformed"),
    ({"protected": "x", "sealed": ["x"]}, "malformed"),
    ({"protected": "x", "sealed": ["x"], "signature": "x", "extra": 1}, "malformed"),
    ({"protected": 1, "sealed": ["AA"], "signature": "AA"}, "malformed"),
    ({"protected": "AA", "sealed": "AA", "signature": "AA"}, "malformed"),
    ({"protected": "AA", "sealed": [], "signature": "AA"}, "malformed"),
    ({"protected": "a+b/", "sealed": ["AA"], "signature": "AA"}, "malformed"),
    ({"protected": "AAA=", "sealed": ["AA"], "signature": "AA"}, "malformed"),
    ({"protected": envelope.b64u_encode(b"[1]"), "sealed": ["AA"], "signature": "AA"}, "malformed"),
    ({"protected": envelope.b64u_encode(b"\xff\xfe"), "sealed": ["AA"], "signature": "AA"}, "malformed"),
    # The contract's order: a missing field or a wrong type is malformed
    # before the version is looked at.
    ({"protected": envelope.b64u_encode(b'{"v":2}'), "sealed": ["AA"], "signature": "AA"}, "malformed"),
    ({"protected": envelope.b64u_encode(b'{"v":true}'), "sealed": ["AA"], "signature": "AA"}, "malformed"),
    ({"protected": envelope.b64u_encode(b'{"v":1}'), "sealed": ["AA"], "signature": "AA"}, "malformed"),
])
def test_parse_rejects(env: Any, code: str) -> None:
    with pytest.raises(EnvelopeError) as exc:
        envelope.parse(env)
    assert exc.value.code == code
    assert exc.value.message


@pytest.mark.parametrize(("changes", "code"), [
    ({"v": 3}, "unsupported_version"),
    ({"v": 0}, "unsupported_version"),
    ({"v": 3, "new_field": "x"}, "unsupported_version"),  # another version may add fields
    ({"v": 2, "new_field": "x"}, "malformed"),  # version 2 has the fields of version 1
    ({"v": "1"}, "malformed"),
    ({"v": "2"}, "malformed"),
    ({"v": 3, "rcpt": ["a", "b", "c"]}, "malformed"),  # sealed count differs: malformed first
    ({"v": 3, "sta": None}, "malformed"),
])
def test_version_is_checked_after_structure(changes: dict[str, Any], code: str) -> None:
    header = {**CASES["valid"]["header"], **changes}
    env = {"protected": envelope.b64u_encode(json.dumps(header).encode()),
           "sealed": CASES["valid"]["envelope"]["sealed"], "signature": "AA"}
    with pytest.raises(EnvelopeError) as exc:
        envelope.parse(env)
    assert exc.value.code == code


def test_header_field_types_and_extras(keyset: KeySet) -> None:
    base = dict(CASES["valid"]["header"])
    change: dict[str, Any]
    for change in ({"sta": 12}, {"rcpt": "kid"}, {"rcpt": []}, {"extra": "x"}, {"urgency": None}):
        header = {**base, **change}
        protected = envelope.b64u_encode(json.dumps(header).encode())
        env = {"protected": protected, "sealed": CASES["valid"]["envelope"]["sealed"], "signature": "AA"}
        with pytest.raises(EnvelopeError) as exc:
            envelope.parse(env)
        assert exc.value.code == "malformed", change


def test_jwk_validation() -> None:
    good = envelope.public_jwk_members(VECTORS["keys"]["device"]["jwk"])
    assert envelope.public_key_from_jwk(good)
    not_p256 = "kty EC and crv P-256"
    for bad, why in (({**good, "crv": "P-384"}, not_p256), ({**good, "kty": "RSA"}, not_p256),
                     ({**good, "x": good["x"][:-2]}, "base64url"), ({**good, "y": good["x"]}, "not on the curve"),
                     (VECTORS["keys"]["device"]["jwk"], "private 'd'"), ("jwk", not_p256), (None, not_p256)):
        with pytest.raises(ValueError, match=why):
            envelope.public_key_from_jwk(bad)


def test_receipt_sign_and_verify(keyset: KeySet) -> None:
    payload = {"id": "x", "reference": "ABC-DEF", "received_at": "2026-12-01T11:00:00Z", "envelope_sha256": "00"}
    answer = envelope.sign_receipt(payload, keyset.receipt)
    assert envelope.verify_receipt(answer, keyset.receipt.public_key()) == payload
    with pytest.raises(ValueError, match="does not verify"):
        envelope.verify_receipt(answer, keyset.border_force.public_key())
    forged = dict(answer, receipt=envelope.b64u_encode(json.dumps({**payload, "reference": "XXX-XXX"}).encode()))
    with pytest.raises(ValueError, match="does not verify"):
        envelope.verify_receipt(forged, keyset.receipt.public_key())


@pytest.mark.parametrize("raw", [b'"\\ud800"', b'{"a": "x\\uDFFF"}', b'["\\ude00\\ud83d"]', b'"\\udbff "'])
def test_lone_surrogate_escapes_are_refused(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        envelope.loads_strict(raw)


@pytest.mark.parametrize(("raw", "value"), [
    (b'"\\ud83d\\ude00"', "\U0001F600"),  # a pair is one character
    (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, then letters
    (b'"\\u00e9 \\uD7FF \\uE000"', "\u00e9 \ud7ff \ue000"),  # either side of the surrogates
    ('"caf\u00e9"'.encode(), "caf\u00e9"),
])
def test_text_that_only_looks_like_a_surrogate_is_kept(raw: bytes, value: str) -> None:
    assert envelope.loads_strict(raw) == value


def test_lone_surrogates_are_refused_by_the_fallback_parser_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's pure-Python JSON parser (used where the C one is missing)
    reads an escape's digits with int(), which takes non-ASCII digits: "\\uD٨00"
    is U+D800 there. The check must not rely on the C parser refusing it."""
    import json.decoder
    import json.scanner

    # Not in the type stubs, but in both modules since Python 3.1.
    monkeypatch.setattr(json.decoder, "scanstring", getattr(json.decoder, "py_scanstring"))  # noqa: B009 - see above
    monkeypatch.setattr(json.scanner, "make_scanner", getattr(json.scanner, "py_make_scanner"))  # noqa: B009 - see above
    raw = '["\\uD\u066800"]'.encode()
    assert json.loads(raw.decode(), object_pairs_hook=envelope.unique_keys) == ["\ud800"]  # the parser is in use
    with pytest.raises(ValueError, match="not UTF-8"):
        envelope.loads_strict(raw)
