"""The one place that accepts an envelope.

Order of checks (DESIGN.md sections 3 and 3b, fixed): structure (`malformed`),
version, device, signature, recipients, HPKE open of the Border Force copy,
header values and body schema; then store and sign the receipt in one
durable transaction: one for a whole batch, and under `serve` one for every
request a worker holds at that moment (crewreport.group_commit). The body
is opened only to validate it: the plaintext is dropped at the end of this
function and never written anywhere.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import secrets
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NamedTuple

from cryptography.hazmat.primitives.asymmetric import ec

from . import audit, envelope, flights, group_commit, keys, ratelimit, report
from .envelope import EnvelopeError
from .times import now

log = logging.getLogger(__name__)

# Reference alphabet: no 0/O, 1/I/L, 5/S, 2/Z, 8/B — easy to read over a radio.
REFERENCE_ALPHABET = "3469ACDEFGHJKMNPQRTUVWXY"
REFERENCE_ATTEMPTS = 10  # draws of a reference before a collision is an error

STATUS = {
    "malformed": 400, "too_large": 413, "unsupported_version": 400, "unknown_device": 401,
    "revoked_device": 403, "bad_signature": 401, "unknown_recipient": 422,
    "undecryptable": 422, "invalid_report": 422, "conflict": 409, "rate_limited": 429,
}


@dataclass
class Outcome:
    status: int
    body: dict[str, Any]
    retry_after: int = 0  # for `rate_limited`: seconds until the device may send again


def error(code: str, message: str) -> Outcome:
    return Outcome(STATUS[code], {"error": {"code": code, "message": message}})


def new_reference() -> str:
    """Six letters of REFERENCE_ALPHABET, uniformly random: one draw below
    24**6, written in base 24 (one read of the system's randomness, not six)."""
    base = len(REFERENCE_ALPHABET)
    value = secrets.randbelow(base ** 6)
    chars = ""
    for _ in range(6):
        value, digit = divmod(value, base)
        chars += REFERENCE_ALPHABET[digit]
    return f"{chars[:3]}-{chars[3:]}"


@dataclass
class Signed:
    """An envelope whose signature verifies against an enrolled device's key."""

    parsed: envelope.Parsed
    device: sqlite3.Row
    size: int
    known_canonical: str | None = None  # when the size check already wrote it
    # Of the plaintext only this goes further (set once the body validates),
    # kept with the cleartext header columns so the board can rank by it.
    child: bool = False

    @functools.cached_property
    def canonical(self) -> str:
        """The envelope as stored; its SHA-256 is the receipt's `envelope_sha256`."""
        return self.known_canonical or envelope.canonical_json(self.parsed.envelope)

    @functools.cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.canonical.encode("utf-8")).hexdigest()


@dataclass
class Limits:
    """What the intake checks against the server's own settings."""

    max_bytes: int
    max_offline: timedelta


def accept(db: sqlite3.Connection, ring: keys.Keyring, items: Sequence[tuple[Any, int | None]],
           limits: Limits) -> list[Outcome]:
    """Check every (envelope, size), then store the good ones in one durable transaction.

    `size` is the request's own length for a single envelope; None for one of
    a batch, whose size is then the length of its compact JSON (which is also
    the canonical form stored, so it is written once).

    Each envelope is accepted or refused on its own; the answers come back in
    order. Nothing is written for a request whose envelopes are all refused
    unsigned or all repeats; otherwise one commit holds every new report, its
    audit event and the (collapsed) refusals of signed envelopes, so a batch
    costs one disk sync. Never raises for bad input.
    """
    results: list[Outcome | None] = [None] * len(items)
    signed: dict[int, Signed] = {}
    devices: dict[str, sqlite3.Row | None] = {}  # a batch comes from one tablet: one lookup
    for i, (env, size) in enumerate(items):
        try:
            signed[i] = authenticate(db, env, size, limits.max_bytes, devices)
        except EnvelopeError as exc:
            # Unsigned junk is anyone's to send: a log line, not an audit row
            # that could never be deleted.
            log.info("intake rejected an unsigned envelope: %s", exc.code)
            results[i] = error(exc.code, exc.message)
    charge_devices(signed, results)
    refused: list[tuple[Signed, str]] = []
    to_store: list[tuple[int, Signed]] = []
    held = stored_receipts(db, [item.parsed.header["id"] for item in signed.values()])
    for i, item in signed.items():
        try:
            repeat = examine(ring, item, held, limits.max_offline)
        except EnvelopeError as exc:
            refused.append((item, exc.code))
            results[i] = error(exc.code, exc.message)
            continue
        if repeat is not None:
            results[i] = repeat
        else:
            to_store.append((i, item))
    if to_store or refused:
        prepared = [(i, item, prepare(ring, item)) for i, item in to_store]
        group_commit.run(db, functools.partial(write, ring, prepared, refused, results))
    answered = [r for r in results if r is not None]
    if len(answered) != len(items):  # every path above answers; a gap is a bug, never a guess
        raise RuntimeError("an envelope was left without an answer")
    return answered


def write(ring: keys.Keyring, prepared: list[tuple[int, Signed, dict[str, Any]]],
          refused: list[tuple[Signed, str]], results: list[Outcome | None], db: sqlite3.Connection) -> None:
    """A request's writes, inside the durable transaction that `group_commit`
    holds (shared with other requests under `serve`): its new reports, their
    audit rows and the refusals of signed envelopes."""
    audit.flush_tallies(db)  # once: `store` chains its audit rows with `audit.append`
    # Under the write lock again: a concurrent request may have stored
    # one of these ids since the look above.
    held = stored_receipts(db, [item.parsed.header["id"] for _, item, _ in prepared])
    for i, item, receipt in prepared:
        results[i] = store(db, ring, item, receipt, held)
    for item, code in refused:
        # An enrolled device's own signed words were refused: worth a
        # permanent record (never the payload), one counted row a minute.
        audit.record_repeated(db, "intake_rejected", f"device:{item.device['id']}", code,
                              size=item.size)
    # No device's last use is written here: the airline sees it, and notes are
    # rare enough that "used" would name who sent them (api.device_state).


def authenticate(db: sqlite3.Connection, env: Any, size: int | None, max_bytes: int,
                 devices: dict[str, sqlite3.Row | None]) -> Signed:
    """Structure, version, device and signature: who sent it, before anything else.
    `devices` holds the rows already looked up in this request."""
    canonical = None
    if size is None:  # one of a batch: measured as compact JSON (key order changes no length)
        canonical = envelope.canonical_json(env)
        size = len(canonical)
    check_size(size, max_bytes)
    parsed = envelope.parse(env)
    device_id = parsed.header["device"]
    if device_id not in devices:
        devices[device_id] = db.execute("SELECT * FROM device WHERE id = ?", (device_id,)).fetchone()
    device = devices[device_id]
    if device is None:
        raise EnvelopeError("unknown_device", "This device is not enrolled. Sign in on the ground to enroll it.")
    envelope.verify_signature(parsed, device_key(device["public_jwk"]))
    return Signed(parsed, device, size, canonical)


def check_size(size: int, max_bytes: int) -> None:
    """Check 1 of the contract, before structure: a single envelope's
    request is measured before it is even parsed."""
    if size > max_bytes:
        raise EnvelopeError("too_large", f"An envelope may be at most {max_bytes // 1024} KiB.")


@functools.lru_cache(maxsize=1024)
def device_key(public_jwk: str) -> ec.EllipticCurvePublicKey:
    """A device's public key, parsed (and checked on the curve) once per process."""
    return envelope.public_key_from_jwk(json.loads(public_jwk))


def charge_devices(signed: dict[int, Signed], results: list[Outcome | None]) -> None:
    """Each device's signed envelopes against its own limit; the excess is
    refused `rate_limited` (not audited: it is throttling, not a finding)."""
    by_device: dict[str, list[int]] = {}
    for i, item in signed.items():
        by_device.setdefault(item.device["id"], []).append(i)
    for device_id, indexes in by_device.items():
        decision = ratelimit.take("intake_per_device", device_id, len(indexes))
        for i in indexes[decision.granted:]:
            del signed[i]
            results[i] = rate_limited(decision.retry_after)


def rate_limited(retry_after: int) -> Outcome:
    outcome = error("rate_limited", f"Too many reports from this device; it will retry in {retry_after} s.")
    outcome.retry_after = retry_after
    return outcome


def examine(ring: keys.Keyring, item: Signed, held: dict[str, Held],
            max_offline: timedelta) -> Outcome | None:
    """The rest of the checks, in the fixed order; the stored receipt for a
    repeat (`held`: what the store holds of this request's ids)."""
    parsed, device = item.parsed, item.device
    # A repeat of what we already hold gets its receipt even if the device
    # was revoked since: the first answer may have been lost on the way.
    if (repeat := stored_receipt(held, parsed.header["id"], item.digest)) is not None:
        return repeat
    if device["revoked_at"]:
        raise EnvelopeError("revoked_device",
                            "This device was revoked by the airline. Tell the captain or call the 24-hour line.")
    check_recipients(ring, parsed.header["rcpt"], device["airline"], parsed.version)
    plaintext = envelope.open_sealed(parsed, 0, ring.recipient_key(parsed.header["rcpt"][0]))
    report.validate_header(parsed.header, device["airline"], max_offline=max_offline)
    body = envelope.loads_body(plaintext)
    report.validate_body(body)
    check_copies(ring, parsed, plaintext)
    item.child = report.involves_child(body)
    del plaintext, body  # validated; the plaintext goes no further
    return None


class Held(NamedTuple):
    """What the store holds under a report id: enough to know a repeat and answer it."""

    envelope_sha256: str
    receipt: str
    receipt_signature: str

    def answer(self) -> Outcome:
        """The receipt given the first time: the tablet may have lost it."""
        return Outcome(200, {"receipt": self.receipt, "signature": self.receipt_signature})


def stored_receipts(db: sqlite3.Connection, report_ids: list[str]) -> dict[str, Held]:
    """What the store holds under these ids, in one query (not one per envelope)."""
    held: dict[str, Held] = {}
    for start in range(0, len(report_ids), 500):  # well under SQLite's limit on parameters
        chunk = report_ids[start:start + 500]
        ids = ", ".join("?" * len(chunk))
        # Only "?" placeholders are spliced in; the ids are bound.
        query = f"SELECT id, envelope_sha256, receipt, receipt_signature FROM report WHERE id IN ({ids})"  # noqa: S608 - placeholders only
        held.update((row[0], Held(*row[1:])) for row in db.execute(query, chunk))
    return held


def stored_receipt(held: dict[str, Held], report_id: str, digest: str) -> Outcome | None:
    """The receipt already given for exactly this envelope, if any."""
    row = held.get(report_id)
    return row.answer() if row is not None and row.envelope_sha256 == digest else None


def check_copies(ring: keys.Keyring, parsed: envelope.Parsed, plaintext: bytes) -> None:
    """Every other copy must open to the same report as Border Force's.

    The airline's security team reads its own copy; a device that sealed them
    something else (or nothing that opens) must not get a receipt.
    """
    for index, kid in enumerate(parsed.header["rcpt"][1:], start=1):
        try:
            copy = envelope.open_sealed(parsed, index, ring.recipient_key(kid))
        except EnvelopeError:
            # `undecryptable` says the Border Force copy does not open (docs/api.md); this
            # one is checked last, and a copy that does not open differs as much as any.
            copy = None
        if copy != plaintext:
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


def prepare(ring: keys.Keyring, item: Signed) -> dict[str, Any]:
    """The receipt, signed before the write lock is taken (signing is the slow part)."""
    return sign(ring, item.parsed.header["id"], new_reference(), now(), item.digest)


def sign(ring: keys.Keyring, report_id: str, reference: str, received_at: str, digest: str) -> dict[str, Any]:
    answer = envelope.sign_receipt(
        {"id": report_id, "reference": reference, "received_at": received_at, "envelope_sha256": digest},
        ring.current_key(keys.RECEIPT))
    return {"receipt": answer["receipt"], "signature": answer["signature"], "reference": reference,
            "received_at": received_at, "digest": digest}


def store(db: sqlite3.Connection, ring: keys.Keyring, item: Signed, receipt: dict[str, Any],
          held: dict[str, Held]) -> Outcome:
    """Insert once, or answer a repeat, inside the caller's transaction (whose
    look at the store, `held`, was taken under the write lock): concurrent
    duplicates queue on that lock, and the primary key backs it up."""
    header, device = item.parsed.header, item.device
    existing = held.get(header["id"])
    if existing is not None and existing.envelope_sha256 == receipt["digest"]:
        return existing.answer()
    if existing is not None:
        audit.record_repeated(db, "intake_rejected", f"device:{device['id']}", "conflict",
                              subject=f"report:{header['id']}")
        return error("conflict", "A different report with this id was already received.")
    if purged(db, header["id"]):
        # Received once, later deleted under the retention policy (the audit
        # trail keeps the id, never the content): never stored a second time.
        audit.record_repeated(db, "intake_rejected", f"device:{device['id']}", "conflict",
                              subject=f"report:{header['id']}")
        return error("conflict", "This report was received before and has since been deleted under the "
                                 "retention policy; it is not stored again.")
    for attempt in range(REFERENCE_ATTEMPTS):
        try:
            insert(db, item, receipt)
            break
        except sqlite3.IntegrityError as exc:
            # The reference column is UNIQUE: a reference drawn twice (one in
            # 191 million) is drawn again and the receipt signed again.
            if not is_taken_reference(exc) or attempt == REFERENCE_ATTEMPTS - 1:
                raise
            receipt = sign(ring, header["id"], new_reference(), receipt["received_at"], receipt["digest"])
    held[header["id"]] = Held(receipt["digest"], receipt["receipt"], receipt["signature"])  # an id twice in a batch
    audit.append(db, "report_received", f"device:{device['id']}", f"report:{header['id']}",
                 {"reference": receipt["reference"]})
    return Outcome(201, {"receipt": receipt["receipt"], "signature": receipt["signature"]})


def purged(db: sqlite3.Connection, report_id: str) -> bool:
    """Whether retention deleted a report of this id (audit_event_subject index)."""
    return db.execute("SELECT 1 FROM audit_event WHERE subject = ? AND action = 'report_purged' LIMIT 1",
                      (f"report:{report_id}",)).fetchone() is not None


def is_taken_reference(exc: sqlite3.IntegrityError) -> bool:
    """The UNIQUE constraint on the reference, and no other constraint."""
    return exc.sqlite_errorname == "SQLITE_CONSTRAINT_UNIQUE" and str(exc).endswith(": report.reference")


def insert(db: sqlite3.Connection, item: Signed, receipt: dict[str, Any]) -> None:
    """The report row: the envelope as received, the cleartext header columns
    the board sorts and filters by, the receipt; never any plaintext."""
    header, received_at = item.parsed.header, receipt["received_at"]
    db.execute(
        "INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
        " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
        " receipt_signature, status_changed_at, child, flight_id)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (header["id"], receipt["reference"], item.device["id"], header["airline"], header["flight"],
         header["dep"], header["arr"], report.whole_seconds(header["sta"]), header["urgency"],
         report.URGENCY_RANK[header["urgency"]], report.whole_seconds(header["created"]), json.dumps(header["rcpt"]),
         item.canonical, receipt["digest"], received_at,
         receipt["receipt"], receipt["signature"], received_at, int(item.child),
         flights.place(db, header["airline"], header["flight"], header["arr"], report.whole_seconds(header["sta"]),
                       flights.estimated(report.whole_seconds(header["created"]), received_at))))
