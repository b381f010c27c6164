"""Keys for one purpose each, derived from the instance secret.

The instance secret (`SECRET_KEY`, a 0600 file in the instance folder unless
set) already signs the session cookie; HKDF with a purpose label gives every
other use its own independent key, so a key for one purpose says nothing
about another, and a copy of the store alone (without the instance folder's
secret) cannot reverse a keyed hash or open a sealed TOTP secret.
"""
from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app


def derived_key(purpose: str) -> bytes:
    """32 bytes for `purpose`, the same in every worker and after a restart."""
    secret = current_app.config["SECRET_KEY"]
    material = secret if isinstance(secret, bytes) else str(secret).encode("utf-8")
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"crewreport:" + purpose.encode("ascii")).derive(material)


def keyed_hash(purpose: str, text: str) -> str:
    """HMAC-SHA256 of `text` under the key for `purpose`, hex."""
    return hmac.new(derived_key(purpose), text.encode("utf-8"), hashlib.sha256).hexdigest()
