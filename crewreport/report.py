"""What a report may contain: the cleartext header's values and the sealed
body's schema (DESIGN.md section 3). The browser's form.js mirrors these
rules; anything outside them is `invalid_report`.
"""
from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from .catalogue import CODES, GROUPS, label
from .envelope import EnvelopeError

URGENCIES = ("immediate", "priority", "routine")  # rank = index
URGENCY_RANK = {u: i for i, u in enumerate(URGENCIES)}
ROLES = ("possible_victim", "possible_trafficker", "companion", "other")
SEXES = ("female", "male", "unknown")
AGE_RANGES = ("under_12", "12_17", "18_24", "25_39", "40_59", "60_plus", "unknown")
CHILD_AGE_RANGES = ("under_12", "12_17")
CHILD_AGE_WORDS = {"under_12": "under 12", "12_17": "12 to 17"}
DOCUMENTS_HELD_BY = ("self", "companion", "other", "unknown")
PHASES = ("boarding", "taxi", "cruise", "descent", "other")

# \Z, not $: `$` also matches before a trailing newline ("BA75\n" would pass);
# re.ASCII: `\d` would otherwise take any Unicode digit.
AIRLINE = re.compile(r"^[A-Z0-9]{2}\Z")
FLIGHT = re.compile(r"^[A-Z0-9]{2}[0-9]{1,4}[A-Z]?\Z")
AIRPORT = re.compile(r"^[A-Z]{3}\Z")
SEAT = re.compile(r"^[0-9]{1,3}[A-K]\Z")
UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z", re.ASCII)  # the store's (times.py)
# What a client may send for `created`, `sta` and a status question's `at`:
# RFC 3339 UTC with a Z, a fraction of a second allowed (JavaScript's
# toISOString() gives milliseconds). The store keeps whole seconds.
SENT_UTC_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z\Z", re.ASCII)
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII)
STA_WINDOW = timedelta(hours=48)
# A tablet's clock may be off by minutes or hours and its notes must still
# count; only a `created` no real tablet could send is refused.
CREATED_AHEAD = timedelta(days=1)
MAX_OFFLINE = timedelta(days=365)  # the default of the setting MAX_OFFLINE_DAYS

LIMITS = {"narrative": 5000, "description": 500, "people": 20, "indicators": 60,
          "languages": 10, "language": 40, "crew_id": 32, "name": 100}

REQUIRED = {"observed_at", "indicators", "people", "narrative", "captain_informed", "reporter"}
OPTIONAL = {"languages", "documents_held_by", "phase_of_flight", "share_identity_with_airline",
            "child_involved"}
# The catalogue's `children` group: ticking any of them says a child is involved.
CHILD_INDICATORS = frozenset(i["code"] for g in GROUPS if g["code"] == "children" for i in g["indicators"])
ADULT_AGE_RANGES = ("18_24", "25_39", "40_59", "60_plus")


class Invalid(EnvelopeError):
    def __init__(self, message: str) -> None:
        super().__init__("invalid_report", message)


def parse_time(value: str, *, utc_z: bool = False) -> datetime:
    """RFC 3339 to an aware datetime; `utc_z` insists on the header's form."""
    if not isinstance(value, str) or not (SENT_UTC_Z if utc_z else RFC3339).match(value):
        raise ValueError(value)
    if utc_z and "." in value:  # at most microseconds for fromisoformat
        head, fraction = value[:-1].split(".")
        value = f"{head}.{fraction[:6]}Z"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        raise ValueError(value) from None


def whole_seconds(sent: str) -> str:
    """A time a client sent (SENT_UTC_Z) as the store keeps it: its fraction
    of a second dropped, so that it sorts and compares with the others."""
    return sent[:19] + "Z"


def server_now() -> datetime:
    """The server's clock, the one thing a tablet's times are bounded by."""
    return datetime.now(UTC)


def validate_header(header: Mapping[str, Any], device_airline: str, *,
                    received: datetime | None = None, max_offline: timedelta = MAX_OFFLINE) -> None:
    """Values of the cleartext header (types were checked by envelope.parse).

    `created` is bounded by the server's clock (`received`, server_now() by default):
    at most a day ahead, and no older than the longest a tablet may stay
    offline. A note that arrives after its flight landed is still accepted.
    """
    try:
        uuid_value = uuid.UUID(header["id"])
    except ValueError:
        raise Invalid("The report id must be a UUID.") from None
    if uuid_value.version != 4 or str(uuid_value) != header["id"]:
        raise Invalid("The report id must be a lower-case UUID version 4.")
    if header["airline"] != device_airline:
        raise Invalid(f"This device belongs to airline {device_airline}; the report says {header['airline']}.")
    if not FLIGHT.match(header["flight"]):
        raise Invalid("The flight must look like BA75 (airline code and number).")
    for name in ("dep", "arr"):
        if not AIRPORT.match(header[name]):
            raise Invalid(f"'{name}' must be a three-letter IATA airport code.")
    if header["dep"] == header["arr"]:
        raise Invalid("Departure and arrival airports must differ.")
    try:
        created = parse_time(header["created"], utc_z=True)
        sta = parse_time(header["sta"], utc_z=True)
    except ValueError:
        raise Invalid("'created' and 'sta' must be UTC times like 2026-12-01T14:35:00Z.") from None
    if abs(sta - created) > STA_WINDOW:
        raise Invalid("The scheduled arrival must be within 48 hours of when the report was made.")
    received = received or server_now()
    if created - received > CREATED_AHEAD:
        raise Invalid("The report says it was made more than a day from now; check the tablet's date and time.")
    if received - created > max_offline:
        raise Invalid(f"The report was made more than {max_offline.days} days ago, longer than a tablet "
                      "may stay offline; check the tablet's date and time.")
    if header["urgency"] not in URGENCY_RANK:
        raise Invalid("Urgency must be routine, priority or immediate.")


def _text(value: Any, name: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f"'{name}' must be non-empty text.")
    if len(value) > limit:
        raise Invalid(f"'{name}' must be at most {limit} characters.")


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed or not isinstance(value, str):
        raise Invalid(f"'{name}' must be one of {', '.join(allowed)}.")


def _bool(value: Any, name: str) -> None:
    if not isinstance(value, bool):
        raise Invalid(f"'{name}' must be true or false.")


def _keys(obj: Any, name: str, required: set[str], optional: set[str]) -> None:
    if not isinstance(obj, dict):
        raise Invalid(f"'{name}' must be an object.")
    missing = required - set(obj)
    if missing:
        raise Invalid(f"'{name}' lacks {', '.join(sorted(missing))}.")
    extra = set(obj) - required - optional
    if extra:
        raise Invalid(f"'{name}' has unknown fields: {', '.join(sorted(extra))}.")


def validate_body(body: Any) -> None:
    """The sealed report body, checked after opening it at intake."""
    _keys(body, "report", REQUIRED, OPTIONAL)
    try:
        parse_time(body["observed_at"])
    except ValueError:
        raise Invalid("'observed_at' must be an RFC 3339 time.") from None
    indicators = body["indicators"]
    if not isinstance(indicators, list) or len(indicators) > LIMITS["indicators"]:
        raise Invalid("'indicators' must be a list of catalogue codes.")
    if len(set(map(str, indicators))) != len(indicators):
        raise Invalid("'indicators' lists a code twice.")
    unknown = [c for c in indicators if not isinstance(c, str) or c not in CODES]
    if unknown:
        raise Invalid(f"Unknown indicator code: {unknown[0]!s:.40}.")
    people = body["people"]
    if not isinstance(people, list) or len(people) > LIMITS["people"]:
        raise Invalid(f"'people' must be a list of at most {LIMITS['people']}.")
    for person in people:
        _keys(person, "person", {"role"}, {"seat", "sex", "age_range", "description"})
        _choice(person["role"], "role", ROLES)
        if "seat" in person and (not isinstance(person["seat"], str) or not SEAT.match(person["seat"])):
            raise Invalid("A seat must look like 32B.")
        if "sex" in person:
            _choice(person["sex"], "sex", SEXES)
        if "age_range" in person:
            _choice(person["age_range"], "age_range", AGE_RANGES)
        if "description" in person:
            _text(person["description"], "description", LIMITS["description"])
    _text(body["narrative"], "narrative", LIMITS["narrative"])
    _bool(body["captain_informed"], "captain_informed")
    reporter = body["reporter"]
    _keys(reporter, "reporter", {"crew_id"}, {"name"})
    _text(reporter["crew_id"], "crew_id", LIMITS["crew_id"])
    if "name" in reporter:
        _text(reporter["name"], "name", LIMITS["name"])
    if "languages" in body:
        langs = body["languages"]
        if not isinstance(langs, list) or len(langs) > LIMITS["languages"]:
            raise Invalid(f"'languages' must be a list of at most {LIMITS['languages']}.")
        for lang in langs:
            _text(lang, "language", LIMITS["language"])
    if "documents_held_by" in body:
        _choice(body["documents_held_by"], "documents_held_by", DOCUMENTS_HELD_BY)
    if "phase_of_flight" in body:
        _choice(body["phase_of_flight"], "phase_of_flight", PHASES)
    if "share_identity_with_airline" in body:
        _bool(body["share_identity_with_airline"], "share_identity_with_airline")
    if "child_involved" in body:
        _bool(body["child_involved"], "child_involved")


def child_evidence(body: Mapping[str, Any]) -> list[str]:
    """Why a report involves a child, in words; empty when nothing says so.

    Three kinds of evidence, any one enough: a `children` indicator, a person
    in a child's age range, or the crew's own `child_involved` tick.
    """
    found = [f"Indicator: {label(c)}" for c in body.get("indicators", []) if c in CHILD_INDICATORS]
    found += [f"A person ({p.get('role', 'other').replace('_', ' ')}) aged {CHILD_AGE_WORDS[p['age_range']]}"
              for p in body.get("people", []) if p.get("age_range") in CHILD_AGE_RANGES]
    if body.get("child_involved") is True:
        found.append("The crew marked the report as involving a child")
    return found


def involves_child(body: Mapping[str, Any]) -> bool:
    """The report's child flag (derived at intake, shown on the board)."""
    return bool(child_evidence(body))


def referral_subject(body: Mapping[str, Any]) -> str:
    """`child`, `adult` or `unknown`, for the NRM prompt sheet.

    Never `adult` while any child evidence exists; `adult` only when every
    possible victim has an adult age range (and there is at least one).
    """
    if involves_child(body):
        return "child"
    victims = [p for p in body.get("people", []) if p.get("role") == "possible_victim"]
    if victims and all(p.get("age_range") in ADULT_AGE_RANGES for p in victims):
        return "adult"
    return "unknown"


class NotRecipient(LookupError):
    """The stored envelope was not sealed to any key of the owner asking."""


def recipient_index(rcpt: list[str], ring: Any, owner: str) -> int | None:
    """Where in `rcpt` a key of `owner` (current or retired) sits, if anywhere."""
    for index, kid in enumerate(rcpt):
        if ring.owner.get(kid) == owner and (kid in ring.private or kid in ring.xwing):
            return index
    return None


def open_stored(row: sqlite3.Row, ring: Any, owner: str) -> dict[str, Any]:
    """Decrypt a stored report's body for `owner` (e.g. `border_force`,
    `airline:ZZ`), in memory only: the caller renders it and drops it.

    Raises NotRecipient when no key of `owner` was a recipient.
    """
    import json

    from . import envelope

    parsed = envelope.parse(json.loads(row["envelope"]))
    index = recipient_index(parsed.header["rcpt"], ring, owner)
    if index is None:
        raise NotRecipient(f"the report was not sealed to {owner}")
    body = envelope.open_body(parsed, index, ring.recipient_key(parsed.header["rcpt"][index]))
    if not isinstance(body, dict):  # intake validated it; a stored row was altered
        raise ValueError("the stored report body is not a JSON object")
    return body
