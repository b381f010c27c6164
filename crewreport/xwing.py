"""X-Wing recipient keys (DESIGN.md section 3b): the KEM of envelope version 2.

X-Wing is the hybrid of ML-KEM-768 and X25519 (HPKE KEM 0x647a); a report
sealed to it stays confidential while either part holds, so a recording made
today cannot be opened by a future quantum computer that breaks P-256.

`cryptography` does the KEM (`hpke.KEM.MLKEM768_X25519`); this module only
handles the key formats, because the hybrid key objects cannot be serialised:

* the private key is a 32-byte seed; SHAKE256(seed, 96) gives the ML-KEM-768
  seed (d || z, 64 bytes) and the X25519 private key (32 bytes). We keep the
  two derived parts, each as PKCS#8 PEM (encrypted when a passphrase is set),
  one after the other in the key's one file;
* the public key travels as JWK `{"kty": "AKP", "alg": "X-Wing", "pub":
  b64u(pk_M || pk_X)}` (1184 + 32 bytes), its kid the RFC 7638 thumbprint over
  `alg`, `kty`, `pub`.

Pure functions, no Flask.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric import mlkem, x25519

SEED_LEN = 32
MLKEM_PUBLIC_LEN = 1184
X25519_LEN = 32
PUBLIC_LEN = MLKEM_PUBLIC_LEN + X25519_LEN  # 1216
ENC_LEN = 1120  # ML-KEM-768 ciphertext (1088) || X25519 ephemeral (32)
JWK_KTY, JWK_ALG = "AKP", "X-Wing"

_PEM_BLOCK = re.compile(rb"-----BEGIN [A-Z ]+-----\r?\n.*?-----END [A-Z ]+-----\r?\n?", re.S)


def _b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class PublicKey:
    """An X-Wing public key: its two parts and the hybrid object HPKE takes."""

    mlkem: mlkem.MLKEM768PublicKey
    x25519: x25519.X25519PublicKey

    @property
    def hpke(self) -> hpke.MLKEM768X25519PublicKey:
        return hpke.MLKEM768X25519PublicKey(self.mlkem, self.x25519)

    def raw(self) -> bytes:
        return self.mlkem.public_bytes_raw() + self.x25519.public_bytes_raw()


@dataclass(frozen=True)
class PrivateKey:
    """An X-Wing private key kept as its two serialisable parts."""

    mlkem: mlkem.MLKEM768PrivateKey
    x25519: x25519.X25519PrivateKey

    @property
    def hpke(self) -> hpke.MLKEM768X25519PrivateKey:
        return hpke.MLKEM768X25519PrivateKey(self.mlkem, self.x25519)

    def public_key(self) -> PublicKey:
        return PublicKey(self.mlkem.public_key(), self.x25519.public_key())


def private_key_from_seed(seed: bytes) -> PrivateKey:
    """The key a 32-byte X-Wing seed stands for (section 3b's expansion)."""
    if len(seed) != SEED_LEN:
        raise ValueError("an X-Wing seed is 32 bytes")
    expanded = hashlib.shake_256(seed).digest(96)
    return PrivateKey(mlkem.MLKEM768PrivateKey.from_seed_bytes(expanded[:64]),
                      x25519.X25519PrivateKey.from_private_bytes(expanded[64:]))


def generate_private_key() -> PrivateKey:
    return private_key_from_seed(os.urandom(SEED_LEN))


def public_key_from_raw(raw: bytes) -> PublicKey:
    if len(raw) != PUBLIC_LEN:
        raise ValueError(f"an X-Wing public key is {PUBLIC_LEN} bytes")
    return PublicKey(mlkem.MLKEM768PublicKey.from_public_bytes(raw[:MLKEM_PUBLIC_LEN]),
                     x25519.X25519PublicKey.from_public_bytes(raw[MLKEM_PUBLIC_LEN:]))


def jwk_from_public_key(key: PublicKey) -> dict[str, str]:
    return {"kty": JWK_KTY, "alg": JWK_ALG, "pub": _b64u(key.raw())}


def is_jwk(jwk: Any) -> bool:
    return isinstance(jwk, Mapping) and jwk.get("kty") == JWK_KTY and jwk.get("alg") == JWK_ALG


def public_key_from_jwk(jwk: Any) -> PublicKey:
    """An X-Wing public key from its JWK; ValueError for anything else."""
    if not is_jwk(jwk):
        raise ValueError("key must be a JWK with kty AKP and alg X-Wing")
    if "priv" in jwk or "d" in jwk:
        raise ValueError("a public JWK must not carry the private key")
    pub = jwk.get("pub")
    if not isinstance(pub, str) or not re.fullmatch(r"[A-Za-z0-9_-]*", pub):
        raise ValueError("JWK 'pub' must be base64url")
    try:
        raw = base64.urlsafe_b64decode(pub + "=" * (-len(pub) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("JWK 'pub' must be base64url") from None
    return public_key_from_raw(raw)


def thumbprint_members(jwk: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7638's required members for an X-Wing key."""
    return {k: jwk[k] for k in ("alg", "kty", "pub")}


# -- storage ---------------------------------------------------------------------

def private_key_to_pem(key: PrivateKey, passphrase: bytes | None) -> bytes:
    """Both parts as PKCS#8 PEM, ML-KEM first, one after the other."""
    def pem(part: mlkem.MLKEM768PrivateKey | x25519.X25519PrivateKey) -> bytes:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        return part.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return pem(key.mlkem) + pem(key.x25519)


def private_key_from_pem(data: bytes, passphrase: bytes | None) -> PrivateKey:
    """The key `private_key_to_pem` wrote; ValueError or TypeError when it is not one."""
    blocks = _PEM_BLOCK.findall(data)
    if len(blocks) != 2:
        raise ValueError("an X-Wing key file holds exactly two PEM blocks")
    part_m = serialization.load_pem_private_key(blocks[0], password=passphrase)
    part_x = serialization.load_pem_private_key(blocks[1], password=passphrase)
    if not isinstance(part_m, mlkem.MLKEM768PrivateKey) or not isinstance(part_x, x25519.X25519PrivateKey):
        raise ValueError("an X-Wing key file holds an ML-KEM-768 key, then an X25519 key")
    return PrivateKey(part_m, part_x)
