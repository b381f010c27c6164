"""Sign-in throttling that slows guessing without letting strangers lock a user out.

Failures are kept for one window (`LOGIN_WINDOW_SECONDS`) under a keyed hash
of the typed name, never the name itself (it is sometimes a password typed
into the wrong box), and purged as new ones are written.

Two channels, after OWASP's "Slow down online guessing attacks with device
cookies": a browser that signed in as this user before carries a signed
device cookie naming the user and a random nonce. Its attempts are counted
only against that cookie, so nothing anyone else does refuses it. Every
other attempt is untrusted and counted, with limit L = `LOGIN_MAX_FAILURES`:

- per account and address: L failures refuse that address for that account;
- per address, any account: 4 L failures refuse the address (spraying);
- per account, untrusted, from anywhere: at 4 L the account is under attack
  and every address that already failed for it is refused (one try per
  address instead of L), while a right password from an address new to the
  account still signs in; at 10 L the untrusted channel is closed for the
  account until the window has passed, and only trusted browsers sign in.
  (So at most 10 L untrusted guesses per account and window, 50 per 15
  minutes by default, against 20 before; staff then still need a code.)

The same rules count second-factor codes (`step="code"`) separately.
"""
from __future__ import annotations

import hashlib
import ipaddress
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask import Response, current_app, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from .derived import keyed_hash
from .times import now, stamp

DEVICE_COOKIE = "crewreport_device"
DEVICE_COOKIE_DAYS = 180
DEVICE_COOKIE_USERS = 8  # a shared tablet keeps the cookies of this many users
UNDER_ATTACK = 4  # times LOGIN_MAX_FAILURES
CLOSED = 10  # times LOGIN_MAX_FAILURES: at most this many untrusted guesses per account and window


@dataclass(frozen=True)
class Attempt:
    """Who is being tried, from where, and through which channel."""
    account: str  # keyed hash of the case-folded typed username
    address: str
    device: str | None  # hash of the device-cookie nonce when the cookie is valid for this user


def account_key(username: str) -> str:
    """What the store keeps of a typed username: a keyed hash, case-folded
    (the store compares usernames without case)."""
    return keyed_hash("login-failure-account", username.strip().casefold())


def address_key(address: str) -> str:
    """IPv4 as is; IPv6 by its /64, since one host usually holds a whole /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if ip.version == 6 and ip.ipv4_mapped is None:  # type: ignore[union-attr]
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(getattr(ip, "ipv4_mapped", None) or ip)


def _since() -> str:
    window = timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    return stamp(datetime.now(UTC) - window)


def refused(db: sqlite3.Connection, attempt: Attempt, step: str = "password") -> bool:
    """Whether this attempt is refused before its password or code is checked."""
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    since = _since()

    def failures(where: str, *args: str) -> int:
        return db.execute(f"SELECT count(*) FROM login_failure WHERE {where} AND step = ? AND at > ?",  # noqa: S608 - `where` is one of fixed conditions; values are ? parameters
                          (*args, step, since)).fetchone()[0]

    if attempt.device is not None:
        return failures("device = ?", attempt.device) >= limit
    untrusted = "device IS NULL AND "
    pair = failures(untrusted + "account = ? AND address = ?", attempt.account, attempt.address)
    if pair >= limit or failures(untrusted + "address = ?", attempt.address) >= UNDER_ATTACK * limit:
        return True
    on_account = failures(untrusted + "account = ?", attempt.account)
    return on_account >= CLOSED * limit or (on_account >= UNDER_ATTACK * limit and pair > 0)


def record_failure(db: sqlite3.Connection, attempt: Attempt, step: str = "password") -> int | None:
    """One failure; everything older than the window goes on the way. Its
    row id, for `uncount` once an attempt counted ahead turns out right."""
    db.execute("DELETE FROM login_failure WHERE at <= ?", (_since(),))
    return db.execute("INSERT INTO login_failure (account, address, device, step, at) VALUES (?, ?, ?, ?, ?)",
                      (attempt.account, attempt.address, attempt.device, step, now())).lastrowid


def uncount(db: sqlite3.Connection, failure: int | None) -> None:
    """Take back a failure counted before its attempt was checked (which was right)."""
    db.execute("DELETE FROM login_failure WHERE id = ?", (failure,))


def clear_failures(db: sqlite3.Connection, attempt: Attempt) -> None:
    """After a full sign-in: this browser's and this address's failures for the account."""
    db.execute("DELETE FROM login_failure WHERE account = ? AND (address = ? OR device = ?)",
               (attempt.account, attempt.address, attempt.device))


# -- device cookies -------------------------------------------------------------------

def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="crewreport device cookie")


def _cookie_entries() -> dict[str, str]:
    """user id -> nonce, from a valid device cookie; {} when absent, forged or old."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return {}
    try:
        value = _serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadSignature:
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def device_for(user_id: int | None) -> str | None:
    """The hash of this browser's device nonce for `user_id`, if it has one."""
    nonce = _cookie_entries().get(str(user_id)) if user_id is not None else None
    return hashlib.sha256(nonce.encode("ascii", "replace")).hexdigest() if nonce else None


def attempt(username: str, user_id: int | None, address: str) -> Attempt:
    return Attempt(account_key(username), address_key(address), device_for(user_id))


def remember_device(response: Response, user_id: int) -> None:
    """A fresh nonce for `user_id` in this browser's device cookie (others kept)."""
    entries = _cookie_entries()
    entries.pop(str(user_id), None)
    entries[str(user_id)] = secrets.token_urlsafe(16)
    kept = dict(list(entries.items())[-DEVICE_COOKIE_USERS:])
    response.set_cookie(DEVICE_COOKIE, _serializer().dumps(kept), max_age=DEVICE_COOKIE_DAYS * 86400,
                        path="/auth/", httponly=True, samesite="Strict",
                        secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure)
