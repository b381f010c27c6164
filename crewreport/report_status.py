"""What a tablet may learn about its own reports (DESIGN.md section 4a).

A signed question, `{"protected": b64u(JSON {"device", "ids", "at"}),
"signature": b64u(r || s)}`, answered with one coarse state per id, in the
order asked. The device's signature is the only credential. An id that is
not a report this device sent answers `unknown`, whether or not it exists;
no answer ever carries a reason, a note or an officer. Nothing is written:
a question changes nothing in the store.

Checks run in the intake's order: structure (`malformed`), size
(`too_large`), device (`unknown_device`), signature (`bad_signature`),
revocation (`revoked_device`), then the clock: an `at` more than five minutes
from the server's is `malformed`, so a replayed question learns nothing new.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from . import envelope, ratelimit, report
from .envelope import EnvelopeError
from .intake import Outcome, error

MAX_IDS = 100
MAX_ID_LENGTH = 64
CLOCK_SKEW = timedelta(minutes=5)
STATES = ("received", "seen", "acting", "closed", "unknown")


def coarse_state(status: str, first_opened_at: str | None) -> str:
    """The one word a tablet is told: never the decision's detail."""
    if status in ("meet_aircraft", "referred"):
        return "acting"
    if status == "no_further_action":
        return "closed"
    if status == "assessing" or first_opened_at:
        return "seen"
    return "received"


def _malformed(message: str) -> EnvelopeError:
    return EnvelopeError("malformed", message)


def parse(data: Any) -> tuple[dict[str, Any], bytes, bytes]:
    """(question, signed bytes, raw signature), or `malformed` / `too_large`."""
    if not isinstance(data, dict) or set(data) != {"protected", "signature"}:
        raise _malformed('Send {"protected": b64u(JSON), "signature": b64u(r || s)}.')
    if not isinstance(data["protected"], str) or not isinstance(data["signature"], str):
        raise _malformed("'protected' and 'signature' must be base64url text.")
    try:
        protected = envelope.b64u_decode(data["protected"])
        signature = envelope.b64u_decode(data["signature"])
        question = envelope.loads_strict(protected)
    except ValueError:
        raise _malformed("'protected' must be base64url of UTF-8 JSON; 'signature' base64url.") from None
    if not isinstance(question, dict) or set(question) != {"device", "ids", "at"}:
        raise _malformed("The question must be a JSON object with exactly 'device', 'ids' and 'at'.")
    ids, device = question["ids"], question["device"]
    if not isinstance(device, str) or not isinstance(ids, list) or not isinstance(question["at"], str):
        raise _malformed("'device' and 'at' must be text and 'ids' a list.")
    if not all(isinstance(i, str) and 0 < len(i) <= MAX_ID_LENGTH for i in ids):
        raise _malformed(f"Each id must be text of at most {MAX_ID_LENGTH} characters.")
    if not report.SENT_UTC_Z.match(question["at"]):
        raise _malformed("'at' must be a UTC time like 2026-12-01T14:35:00Z.")
    if len(ids) > MAX_IDS:
        raise EnvelopeError("too_large", f"Ask about at most {MAX_IDS} reports at once.")
    return question, data["protected"].encode("ascii"), signature


def answer(db: sqlite3.Connection, data: Any, at: datetime | None = None) -> Outcome:
    """The states of the asking device's reports; never raises for bad input."""
    try:
        question, signed, signature = parse(data)
        device = db.execute("SELECT public_jwk, revoked_at FROM device WHERE id = ?",
                            (question["device"],)).fetchone()
        if device is None:
            raise EnvelopeError("unknown_device", "This device is not enrolled.")
        key = envelope.public_key_from_jwk(json.loads(device["public_jwk"]))
        if not envelope.verify_raw(key, signature, signed):
            raise EnvelopeError("bad_signature", "The signature does not match this device's key.")
        if device["revoked_at"]:
            raise EnvelopeError("revoked_device", "This device was revoked by the airline.")
        # Charged only once the signature verifies: a forger cannot spend
        # another tablet's allowance.
        decision = ratelimit.take("status_per_device", question["device"])
        if not decision.allowed:
            limited = error("rate_limited",
                            f"Too many questions from this device; ask again in {decision.retry_after} s.")
            limited.retry_after = decision.retry_after
            return limited
        at = at or datetime.now(UTC)
        try:
            asked_at = report.parse_time(question["at"], utc_z=True)
        except ValueError:
            raise _malformed("'at' is not a valid time.") from None
        if abs(asked_at - at) > CLOCK_SKEW:
            raise _malformed("'at' is more than 5 minutes from the server's clock; check the tablet's clock.")
    except EnvelopeError as exc:
        return error(exc.code, exc.message)
    return Outcome(200, {"results": states(db, question["device"], question["ids"])})


def states(db: sqlite3.Connection, device_id: str, ids: list[str]) -> list[dict[str, str]]:
    """One state per id asked, in order; `unknown` for anything not this device's."""
    wanted = sorted(set(ids))
    known: dict[str, str] = {}
    if wanted:
        marks = ", ".join("?" * len(wanted))
        for r in db.execute(f"SELECT id, status, first_opened_at FROM report"  # noqa: S608 - only ? marks joined in
                            f" WHERE device_id = ? AND id IN ({marks})", (device_id, *wanted)):
            known[r["id"]] = coarse_state(r["status"], r["first_opened_at"])
    return [{"id": i, "state": known.get(i, "unknown")} for i in ids]
