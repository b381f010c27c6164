"""The second factor of staff: TOTP (RFC 6238: SHA-1, 6 digits, 30 s, pyotp)
and ten one-time recovery codes.

The secret is sealed at rest with AES-256-GCM under a key derived from the
instance secret, the user id as associated data (a sealed secret copied to
another user's row does not open). It is shown once, at enrolment, as a QR
code drawn server-side as inline SVG (segno) and as text; never again.
A code is good once: the time step of the last accepted code is kept and a
code of that step or an earlier one is refused. Recovery codes are random
(80 bits), stored as keyed hashes and shown once.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import sqlite3
import time

import pyotp
import segno
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from markupsafe import Markup

from . import audit
from .derived import derived_key, keyed_hash
from .times import now

STAFF_ROLES = ("airline_security", "border_force", "admin")
ISSUER = "Cabin Notes"
RECOVERY_CODES = 10
STEP_SECONDS = 30
# Wrong codes in a row after which an account's authenticator codes are no
# longer taken (NIST SP 800-63B 5.2.2: at most 100); see migration 0011.
MAX_WRONG_CODES = 100


def needs_second_factor(role: str) -> bool:
    return role in STAFF_ROLES


def valid_secret(secret: str) -> str:
    """`secret` as pyotp takes it (upper case, no spaces), or ValueError."""
    cleaned = "".join(secret.split()).upper()
    try:
        pyotp.TOTP(cleaned).byte_secret()
    except (ValueError, binascii.Error, TypeError) as exc:
        raise ValueError(f"the TOTP secret must be base32 of at least 128 bits: {exc}") from None
    if len(base64.b32decode(cleaned + "=" * (-len(cleaned) % 8))) < 16:
        raise ValueError("the TOTP secret must be base32 of at least 128 bits (26 characters)")
    return cleaned


def random_secret() -> str:
    """A new secret: 160 bits, as RFC 4226 recommends, in base32."""
    return pyotp.random_base32()


def _seal(user_id: int, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(derived_key("totp-secret")).encrypt(nonce, secret.encode("ascii"), str(user_id).encode())
    return base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def _open(user_id: int, sealed: str) -> str:
    raw = base64.urlsafe_b64decode(sealed)
    return AESGCM(derived_key("totp-secret")).decrypt(raw[:12], raw[12:], str(user_id).encode()).decode("ascii")


def set_secret(db: sqlite3.Connection, user_id: int, secret: str, *, confirmed: bool) -> None:
    """Replace the user's secret (a known one from the CLI is confirmed at once);
    wrong codes typed for the old one are no longer counted."""
    db.execute("INSERT INTO user_totp (user_id, sealed, created_at, confirmed_at, last_step)"
               " VALUES (?, ?, ?, ?, 0) ON CONFLICT (user_id) DO UPDATE SET sealed = excluded.sealed,"
               " created_at = excluded.created_at, confirmed_at = excluded.confirmed_at, last_step = 0,"
               " wrong_codes = 0",
               (user_id, _seal(user_id, secret), now(), now() if confirmed else None))


def enrolled(db: sqlite3.Connection, user_id: int) -> bool:
    return db.execute("SELECT 1 FROM user_totp WHERE user_id = ? AND confirmed_at IS NOT NULL",
                      (user_id,)).fetchone() is not None


def begin_enrolment(db: sqlite3.Connection, user_id: int) -> str:
    """A fresh secret awaiting its first code, replacing any other pending one
    (a secret shown to an earlier sign-in is good for nothing once another
    begins); returns its fingerprint, to bind the enrolment to this sign-in."""
    set_secret(db, user_id, random_secret(), confirmed=False)
    return enrolment_fingerprint(db, user_id) or ""


def enrolment_fingerprint(db: sqlite3.Connection, user_id: int) -> str | None:
    """Names the pending secret (not derived from the secret itself)."""
    row = db.execute("SELECT sealed FROM user_totp WHERE user_id = ? AND confirmed_at IS NULL",
                     (user_id,)).fetchone()
    return hashlib.sha256(row["sealed"].encode("ascii")).hexdigest()[:32] if row else None


def pending_secret(db: sqlite3.Connection, user_id: int) -> str | None:
    """The secret waiting for its first code, to show at enrolment."""
    row = db.execute("SELECT sealed FROM user_totp WHERE user_id = ? AND confirmed_at IS NULL",
                     (user_id,)).fetchone()
    try:
        return _open(user_id, row["sealed"]) if row else None
    except InvalidTag:  # the instance secret changed since
        return None


def provisioning_uri(username: str, secret: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=ISSUER)


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as an inline SVG QR code, drawn here (no third party)."""
    svg = segno.make(uri, error="m").svg_inline(scale=5, border=4, dark="#000", light="#fff",
                                                title="QR code for your authenticator app")
    return Markup(svg)  # noqa: S704 - segno's own SVG of a URI we built from a base32 secret and a username it escapes


def check_totp(db: sqlite3.Connection, user_id: int, code: str) -> bool:
    """A code of the current step or one either side, newer than the last one
    used; accepting it moves the last step on, atomically, so it is good once."""
    row = db.execute("SELECT sealed, last_step FROM user_totp WHERE user_id = ?", (user_id,)).fetchone()
    if row is None or not (len(code) == 6 and code.isascii() and code.isdigit()):
        return False
    try:
        totp = pyotp.TOTP(_open(user_id, row["sealed"]))
    except InvalidTag:  # the instance secret changed: only an admin reset helps
        return False
    current = int(time.time()) // STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if step > row["last_step"] and hmac.compare_digest(totp.generate_otp(step), code):
            cur = db.execute("UPDATE user_totp SET last_step = ?, confirmed_at = coalesce(confirmed_at, ?)"
                             " WHERE user_id = ? AND last_step < ?", (step, now(), user_id, step))
            return cur.rowcount == 1
    return False


def codes_stopped(db: sqlite3.Connection, user_id: int) -> bool:
    """Whether this account's authenticator codes are no longer taken."""
    row = db.execute("SELECT wrong_codes FROM user_totp WHERE user_id = ?", (user_id,)).fetchone()
    return row is not None and row["wrong_codes"] >= MAX_WRONG_CODES


def count_wrong_code(db: sqlite3.Connection, user_id: int, actor: str, address: str) -> bool:
    """One more wrong code in a row, in the caller's transaction; True when
    the codes are stopped, and the one that stops them is audited
    (`second_factor_stopped`), by the sign-in and the recovery-code renewal alike."""
    row = db.execute("UPDATE user_totp SET wrong_codes = wrong_codes + 1 WHERE user_id = ? RETURNING wrong_codes",
                     (user_id,)).fetchone()
    if row is None:
        return False
    if row["wrong_codes"] == MAX_WRONG_CODES:
        audit.record("second_factor_stopped", actor=actor, db=db, subject=actor, address=address,
                     wrong_codes=MAX_WRONG_CODES)
    return bool(row["wrong_codes"] >= MAX_WRONG_CODES)


def clear_wrong_codes(db: sqlite3.Connection, user_id: int) -> None:
    """A right code (or recovery code) ends the run of wrong ones."""
    db.execute("UPDATE user_totp SET wrong_codes = 0 WHERE user_id = ? AND wrong_codes != 0", (user_id,))


def _recovery_hash(code: str) -> str:
    return keyed_hash("recovery-code", "".join(c for c in code.upper() if c.isalnum()))


def new_recovery_codes(db: sqlite3.Connection, user_id: int) -> list[str]:
    """Ten fresh codes replacing any old ones; the caller shows them once."""
    db.execute("DELETE FROM recovery_code WHERE user_id = ?", (user_id,))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = base64.b32encode(secrets.token_bytes(10)).decode("ascii")  # 16 characters, 80 bits
        code = "-".join(raw[i:i + 4] for i in range(0, 16, 4))
        db.execute("INSERT INTO recovery_code (user_id, code_hash, created_at) VALUES (?, ?, ?)",
                   (user_id, _recovery_hash(code), now()))
        codes.append(code)
    return codes


def use_recovery_code(db: sqlite3.Connection, user_id: int, code: str) -> bool:
    """Spend one unused recovery code of this user."""
    cur = db.execute("UPDATE recovery_code SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at IS NULL",
                     (now(), user_id, _recovery_hash(code)))
    return cur.rowcount == 1


def recovery_codes_left(db: sqlite3.Connection, user_id: int) -> int:
    return db.execute("SELECT count(*) FROM recovery_code WHERE user_id = ? AND used_at IS NULL",
                      (user_id,)).fetchone()[0]


def reset(db: sqlite3.Connection, user_id: int) -> None:
    """Forget the secret and the recovery codes: the user enrols again at next sign-in."""
    db.execute("DELETE FROM user_totp WHERE user_id = ?", (user_id,))
    db.execute("DELETE FROM recovery_code WHERE user_id = ?", (user_id,))
