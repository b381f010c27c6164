"""The one place that accepts an envelope.

Order of checks (DESIGN.md sections 3 and 3b, fixed): structure (`malformed`),
version, device, signature, recipients, HPKE open of the Border Force copy,
header values and body schema; then store and sign the receipt in one
durable transaction. The body is opened only to validate it: the plaintext is
dropped at the end of this function and never written anywhere.
"""
from __future__ import annotations

import json
import logging
import secrets
import sqlite3
from dataclasses import dataclass
from typing import Any

from . import audit, envelope, keys, report
from .db import transaction
from .envelope import EnvelopeError
from .times import now

log = logging.getLogger(__name__)

# Reference alphabet: no 0/O, 1/I/L, 5/S, 2/Z, 8/B — easy to read over a radio.
REFERENCE_ALPHABET = "3469ACDEFGHJKMNPQRTUVWXY"

STATUS = {
    "malformed": 400, "too_large": 413, "unsupported_version": 400, "unknown_device": 401,
    "revoked_device": 403, "bad_signature": 401, "unknown_recipient": 422,
    "undecryptable": 422, "invalid_report": 422, "conflict": 409, "rate_limited": 429,
}


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]


def error(code: str, message: str) -> Outcome:
    return Outcome(STATUS[code], {"error": {"code": code, "message": message}})


def new_reference() -> str:
    chars = "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))
    return f"{chars[:3]}-{chars[3:]}"


def accept(db: sqlite3.Connection, ring: keys.Keyring, env: Any, size: int,
           max_bytes: int) -> Outcome:
    """Check, store and receipt one envelope; never raises for bad input."""
    signed_by = None
    try:
        if size > max_bytes:
            raise EnvelopeError("too_large", f"An envelope may be at most {max_bytes // 1024} KiB.")
        parsed = envelope.parse(env)
        device = db.execute("SELECT * FROM device WHERE id = ?", (parsed.header["device"],)).fetchone()
        if device is None:
            raise EnvelopeError("unknown_device", "This device is not enrolled. Sign in on the ground to enroll it.")
        envelope.verify_signature(parsed, envelope.public_key_from_jwk(json.loads(device["public_jwk"])))
        signed_by = device["id"]
        # A repeat of what we already hold gets its receipt even if the device
        # was revoked since: the first answer may have been lost on the way.
        if (repeat := stored_receipt(db, parsed)) is not None:
            return repeat
        if device["revoked_at"]:
            raise EnvelopeError("revoked_device",
                                "This device was revoked by the airline. Tell the captain or call the 24-hour line.")
        check_recipients(ring, parsed.header["rcpt"], device["airline"], parsed.version)
        plaintext = envelope.open_sealed(parsed, 0, ring.recipient_key(parsed.header["rcpt"][0]))
        report.validate_header(parsed.header, device["airline"])
        report.validate_body(envelope.loads_body(plaintext))
        check_copies(ring, parsed, plaintext)
        del plaintext  # validated; the plaintext goes no further
        return store(db, ring, parsed, device)
    except EnvelopeError as exc:
        if signed_by:
            # An enrolled device's own signed words were refused: worth a
            # permanent record (never the payload).
            audit.record("intake_rejected", actor=f"device:{signed_by}", db=db, code=exc.code, size=size)
        else:
            # Unsigned junk is anyone's to send: a log line, not an audit row
            # that could never be deleted.
            log.info("intake rejected an unsigned envelope: %s, %d bytes", exc.code, size)
        return error(exc.code, exc.message)


def stored_receipt(db: sqlite3.Connection, parsed: envelope.Parsed) -> Outcome | None:
    """The receipt already given for exactly this envelope, if any."""
    row = db.execute("SELECT envelope_sha256, receipt, receipt_signature FROM report WHERE id = ?",
                     (parsed.header["id"],)).fetchone()
    if row is None or row["envelope_sha256"] != envelope.envelope_sha256(parsed.envelope):
        return None
    return Outcome(200, {"receipt": row["receipt"], "signature": row["receipt_signature"]})


def check_copies(ring: keys.Keyring, parsed: envelope.Parsed, plaintext: bytes) -> None:
    """Every other copy must open to the same report as Border Force's.

    The airline's security team reads its own copy; a device that sealed them
    something else (or nothing that opens) must not get a receipt.
    """
    for index, kid in enumerate(parsed.header["rcpt"][1:], start=1):
        if envelope.open_sealed(parsed, index, ring.recipient_key(kid)) != plaintext:
            raise EnvelopeError("invalid_report", "The airline's copy of the report differs from Border Force's.")


def check_recipients(ring: keys.Keyring, rcpt: list[str], airline: str, version: int) -> None:
    """`rcpt[0]` a Border Force key; any other a key of the device's airline;
    every one of the envelope's own suite (P-256 for version 1, X-Wing for 2).

    Retired keys still count: a tablet that cached them before a rotation may
    still be flying, and we keep those private keys to open what it sends.
    """
    if not ring.is_border_force(rcpt[0]):
        raise EnvelopeError("unknown_recipient",
                            "The first recipient must be the Border Force key; refresh the tablet's keys.")
    for kid in rcpt[1:]:
        if ring.owner.get(kid) != keys.airline_owner(airline):
            raise EnvelopeError("unknown_recipient", "A recipient key is not one of this airline's keys.")
    if any(ring.suite[kid] != f"v{version}" for kid in rcpt):
        raise EnvelopeError("unknown_recipient", f"A version {version} envelope must be sealed to version {version} "
                                                 "keys only; refresh the tablet's keys.")


def store(db: sqlite3.Connection, ring: keys.Keyring, parsed: envelope.Parsed,
          device: sqlite3.Row) -> Outcome:
    """Insert once, or answer a repeat; the write lock makes concurrent
    duplicates queue here, and the primary key backs it up."""
    header = parsed.header
    digest = envelope.envelope_sha256(parsed.envelope)
    with transaction(db):
        existing = db.execute("SELECT envelope_sha256, receipt, receipt_signature FROM report WHERE id = ?",
                              (header["id"],)).fetchone()
        if existing is not None and existing["envelope_sha256"] == digest:
            return Outcome(200, {"receipt": existing["receipt"], "signature": existing["receipt_signature"]})
        if existing is not None:
            audit.record("intake_rejected", actor=f"device:{device['id']}", db=db,
                         subject=f"report:{header['id']}", code="conflict")
            return error("conflict", "A different report with this id was already received.")
        received_at = now()
        for _ in range(10):
            reference = new_reference()
            if not db.execute("SELECT 1 FROM report WHERE reference = ?", (reference,)).fetchone():
                break
        answer = envelope.sign_receipt(
            {"id": header["id"], "reference": reference, "received_at": received_at,
             "envelope_sha256": digest},
            ring.current_key(keys.RECEIPT))
        db.execute(
            "INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
            " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
            " receipt_signature, status_changed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (header["id"], reference, device["id"], header["airline"], header["flight"],
             header["dep"], header["arr"], header["sta"], header["urgency"],
             report.URGENCY_RANK[header["urgency"]], header["created"], json.dumps(header["rcpt"]),
             envelope.canonical_json(parsed.envelope), digest, received_at,
             answer["receipt"], answer["signature"], received_at))
        db.execute("UPDATE device SET last_seen_at = ? WHERE id = ?", (received_at, device["id"]))
        audit.record("report_received", actor=f"device:{device['id']}", db=db,
                     subject=f"report:{header['id']}", reference=reference)
    return Outcome(201, answer)


def rate_limited(db: sqlite3.Connection, client: str, limit: int) -> bool:
    """Count this request against the client's minute; True when over.

    The counter is not a promise to anyone, so its commit skips the WAL sync
    (synchronous=NORMAL for this one transaction): losing the last few counts
    in a power cut is harmless, and it halves the disk syncs per request.
    """
    minute = now()[:16]
    db.execute("PRAGMA synchronous = NORMAL")
    try:
        with transaction(db):
            db.execute("DELETE FROM intake_window WHERE minute < ?", (minute,))
            count = db.execute(
                "INSERT INTO intake_window (client, minute, count) VALUES (?, ?, 1)"
                " ON CONFLICT (client, minute) DO UPDATE SET count = count + 1"
                " RETURNING count", (client, minute)).fetchone()[0]
    finally:
        db.execute("PRAGMA synchronous = FULL")
    return count > limit
