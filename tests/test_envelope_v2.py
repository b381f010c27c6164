"""Envelope version 2 (X-Wing) against its fixed vectors (DESIGN.md section 3b),
and the key formats: seed, JWK, kid."""
from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

from crewreport import envelope, xwing
from crewreport.envelope import EnvelopeError
from crewreport.report import validate_body

from .helpers import VECTORS, VECTORS_V2, KeySet, hand_signed

CASES = {c["name"]: c for c in VECTORS_V2["cases"]}
KEYS = VECTORS_V2["keys"]


def outcome(case: dict[str, Any], keyset: KeySet) -> str:
    """What a verifier holding both suites' keys concludes, in intake order."""
    by_kid = {keyset.kid(k): k for k in (keyset.border_force, keyset.airline_zz,
                                          keyset.border_force_v2, keyset.airline_zz_v2)}
    border_force = {keyset.kid(keyset.border_force), keyset.kid(keyset.border_force_v2)}
    try:
        parsed = envelope.parse(case["envelope"])
        envelope.verify_signature(parsed, keyset.device_of_v2_vectors.public_key())
        rcpt = parsed.header["rcpt"]
        if rcpt[0] not in border_force or any(k not in by_kid or k in border_force for k in rcpt[1:]):
            return "unknown_recipient"
        if any(envelope.suite_version(by_kid[k]) != parsed.version for k in rcpt):
            return "unknown_recipient"
        validate_body(envelope.open_body(parsed, 0, by_kid[rcpt[0]]))
    except EnvelopeError as exc:
        return exc.code
    return "ok"


@pytest.mark.parametrize("name", sorted(CASES))
def test_vector_outcome(name: str, keyset: KeySet) -> None:
    assert outcome(CASES[name], keyset) == CASES[name]["expect"]


def test_the_vectors_cover_what_version_2_must_refuse() -> None:
    expected = {"valid": "ok", "valid_non_ascii": "ok", "tampered_ciphertext": "bad_signature",
                "info_not_bound_to_header": "undecryptable", "v1_info_label": "undecryptable",
                "mixed_suites": "unknown_recipient", "truncated_enc": "undecryptable"}
    assert {n: c["expect"] for n, c in CASES.items()} == expected


@pytest.mark.parametrize("name", ["valid", "valid_non_ascii"])
def test_valid_vectors_open_to_their_header_and_body(name: str, keyset: KeySet) -> None:
    case = CASES[name]
    parsed = envelope.parse(case["envelope"])
    assert parsed.header == case["header"] and parsed.version == 2
    assert all(len(s) > xwing.ENC_LEN for s in parsed.sealed)
    assert envelope.open_body(parsed, 0, keyset.border_force_v2) == case["body"]
    assert envelope.open_body(parsed, 1, keyset.airline_zz_v2) == case["body"]
    with pytest.raises(EnvelopeError) as exc:  # the other recipient's key does not open it
        envelope.open_body(parsed, 0, keyset.airline_zz_v2)
    assert exc.value.code == "undecryptable"


def test_seeds_expand_to_the_published_keys() -> None:
    """SHAKE256(seed, 96) = ML-KEM-768 seed (d || z) || X25519 private key,
    computed here from section 3b's words, not via the app's helper."""
    for name in ("border_force", "airline_ZZ"):
        seed = envelope.b64u_decode(KEYS[name]["seed"])
        assert len(seed) == 32
        expanded = hashlib.shake_256(seed).digest(96)
        pk_m = mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]).public_key().public_bytes_raw()
        pk_x = x25519.X25519PrivateKey.from_private_bytes(expanded[64:]).public_key().public_bytes_raw()
        assert (len(pk_m), len(pk_x)) == (1184, 32)
        assert envelope.b64u_decode(KEYS[name]["jwk"]["pub"]) == pk_m + pk_x
        assert xwing.jwk_from_public_key(xwing.private_key_from_seed(seed).public_key()) == KEYS[name]["jwk"]


def test_kids_are_rfc7638_thumbprints_over_alg_kty_pub() -> None:
    for name in ("border_force", "airline_ZZ"):
        jwk = KEYS[name]["jwk"]
        members = '{{"alg":"{}","kty":"{}","pub":"{}"}}'.format(jwk["alg"], jwk["kty"], jwk["pub"])
        kid = envelope.b64u_encode(hashlib.sha256(members.encode("ascii")).digest())
        assert kid == KEYS[name]["kid"] == envelope.thumbprint({**jwk, "kid": "ignored", "use": "enc"})


def test_jwk_validation() -> None:
    good = KEYS["border_force"]["jwk"]
    assert xwing.public_key_from_jwk(good).raw() == envelope.b64u_decode(good["pub"])
    assert isinstance(envelope.recipient_key_from_jwk(good), xwing.PublicKey)
    for bad in ({**good, "alg": "ML-KEM-768"}, {**good, "kty": "OKP"}, {**good, "pub": good["pub"][:-4]},
                {**good, "pub": good["pub"] + "AAAA"}, {**good, "pub": "+" + good["pub"][1:]},
                {**good, "pub": 5}, {**good, "priv": KEYS["border_force"]["seed"]},
                {"kty": "AKP", "alg": "X-Wing"}, "jwk", None):
        with pytest.raises(ValueError, match="JWK|X-Wing public key|private key|AKP"):
            xwing.public_key_from_jwk(bad)
    with pytest.raises(ValueError, match="32 bytes"):
        xwing.private_key_from_seed(b"\0" * 31)


def test_a_public_jwk_carrying_d_is_refused() -> None:
    """A JWK's "d" is where JOSE puts a private key (RFC 7518's EC and RFC 8037's
    OKP keys): a key published with one is refused, as one with "priv" is."""
    good = KEYS["border_force"]["jwk"]
    with pytest.raises(ValueError, match="must not carry the private key"):
        xwing.public_key_from_jwk({**good, "d": KEYS["border_force"]["seed"]})


def test_build_round_trip_with_non_ascii(keyset: KeySet) -> None:
    header = dict(CASES["valid"]["header"], id="b8b1c1de-6d4b-4c55-8f3c-2b9c7d1e0f22")
    body = dict(CASES["valid_non_ascii"]["body"])
    env = envelope.build(header, body, [keyset.border_force_v2.public_key(), keyset.airline_zz_v2.public_key()],
                         keyset.device)
    parsed = envelope.parse(env)
    envelope.verify_signature(parsed, keyset.device.public_key())
    plaintext_len = len(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    assert [len(s) for s in parsed.sealed] == [xwing.ENC_LEN + plaintext_len + 16] * 2
    assert envelope.open_body(parsed, 0, keyset.border_force_v2) == body
    assert envelope.open_body(parsed, 1, keyset.airline_zz_v2) == body


def test_the_builder_never_mixes_suites(keyset: KeySet) -> None:
    v2 = dict(CASES["valid"]["header"])
    v1 = dict(VECTORS["cases"][0]["header"])
    cases: list[tuple[dict[str, Any], list[envelope.RecipientPublicKey]]] = [
        (v2, [keyset.border_force_v2.public_key(), keyset.airline_zz.public_key()]),
        (v2, [keyset.border_force.public_key()]),
        (v1, [keyset.border_force_v2.public_key()])]
    for header, keys in cases:
        with pytest.raises(ValueError, match="own suite"):
            envelope.build(header, CASES["valid"]["body"], keys, keyset.device)


def test_a_key_of_the_other_suite_is_not_a_recipient(keyset: KeySet) -> None:
    """Opening a version 2 copy with a P-256 key, or a version 1 copy with an
    X-Wing key, is `unknown_recipient`: the suites never mix."""
    v2 = envelope.parse(CASES["valid"]["envelope"])
    v1 = envelope.parse(VECTORS["cases"][0]["envelope"])
    for parsed, key in ((v2, keyset.border_force), (v1, keyset.border_force_v2)):
        with pytest.raises(EnvelopeError) as exc:
            envelope.open_sealed(parsed, 0, key)
        assert exc.value.code == "unknown_recipient"


def resigned(keyset: KeySet, header: dict[str, Any], sealed: list[bytes]) -> envelope.Parsed:
    parsed = envelope.parse(hand_signed(keyset, header, sealed))
    envelope.verify_signature(parsed, keyset.device.public_key())
    return parsed


@pytest.mark.parametrize("length", [0, 1, 32, 1088, 1119, 1120, 1121, 1135])
def test_truncated_encapsulation_is_undecryptable(keyset: KeySet, length: int) -> None:
    header = dict(CASES["valid"]["header"], rcpt=[KEYS["border_force"]["kid"]])
    plaintext = json.dumps(CASES["valid"]["body"]).encode()
    info = envelope.hpke_info(json.dumps(header).encode(), 2)
    whole = envelope.seal(plaintext, keyset.border_force_v2.public_key(), info)
    parsed = resigned(keyset, header, [whole[:length]])
    with pytest.raises(EnvelopeError) as exc:
        envelope.open_sealed(parsed, 0, keyset.border_force_v2)
    assert exc.value.code == "undecryptable"


def test_the_v1_label_or_another_header_does_not_open(keyset: KeySet) -> None:
    header = dict(CASES["valid"]["header"], rcpt=[KEYS["border_force"]["kid"]])
    header_bytes = json.dumps(header).encode()
    plaintext = json.dumps(CASES["valid"]["body"]).encode()
    key = keyset.border_force_v2.public_key()
    right = envelope.seal(plaintext, key, envelope.hpke_info(header_bytes, 2))
    assert envelope.open_sealed(resigned(keyset, header, [right]), 0, keyset.border_force_v2) == plaintext
    v1_label = envelope.seal(plaintext, key, envelope.hpke_info(header_bytes, 1))
    other_header = envelope.seal(plaintext, key,
                                 envelope.hpke_info(json.dumps({**header, "flight": "ZZ9"}).encode(), 2))
    for sealed in (v1_label, other_header):
        with pytest.raises(EnvelopeError) as exc:
            envelope.open_sealed(resigned(keyset, header, [sealed]), 0, keyset.border_force_v2)
        assert exc.value.code == "undecryptable"


def test_x_wing_key_pem_round_trip_with_and_without_passphrase() -> None:
    key = xwing.generate_private_key()
    for passphrase in (None, b"a passphrase"):
        pem = xwing.private_key_to_pem(key, passphrase)
        back = xwing.private_key_from_pem(pem, passphrase)
        assert back.public_key().raw() == key.public_key().raw()
    with pytest.raises((ValueError, TypeError)):
        xwing.private_key_from_pem(xwing.private_key_to_pem(key, b"right"), b"wrong")
    with pytest.raises(ValueError, match="two PEM blocks"):
        xwing.private_key_from_pem(xwing.private_key_to_pem(key, None).split(b"-----END ")[0], None)  # half a file
