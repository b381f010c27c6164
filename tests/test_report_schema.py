"""The report's rules one by one (DESIGN.md section 3), each refusal with its
exact words: the API returns them as the `invalid_report` message and the
crew app shows them, so each must name the field at fault. Limits are tested
on both sides of the line. (The intake tests check the same refusals end to
end, by code; a mutation run showed the words and the lines went unchecked.)"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crewreport import catalogue, report
from crewreport.envelope import EnvelopeError
from crewreport.times import stamp

from .helpers import valid_body, valid_header

ROLES = "possible_victim, possible_trafficker, companion, other"
WHEN = "check the tablet's date and time."

BODY_REFUSALS: list[tuple[dict[str, Any], str]] = [
    ({"observed_at": "10:58"}, "'observed_at' must be an RFC 3339 time."),
    ({"indicators": "docs_held_by_other"}, "'indicators' must be a list of catalogue codes."),
    ({"indicators": {"docs_held_by_other": True}}, "'indicators' must be a list of catalogue codes."),
    ({"indicators": ["docs_held_by_other"] * 2}, "'indicators' lists a code twice."),
    ({"indicators": ["docs_held_by_other"] * 60}, "'indicators' lists a code twice."),  # 60 is a length allowed
    ({"indicators": ["nationality"]}, "Unknown indicator code: nationality."),
    ({"people": {"role": "other"}}, "'people' must be a list of at most 20."),
    ({"people": [{"role": "other"}] * 21}, "'people' must be a list of at most 20."),
    ({"people": ["other"]}, "'person' must be an object."),
    ({"people": [{"seat": "32B"}]}, "'person' lacks role."),
    ({"people": [{"role": "other", "nationality": "X"}]}, "'person' has unknown fields: nationality."),
    ({"people": [{"role": "victim"}]}, f"'role' must be one of {ROLES}."),
    ({"people": [{"role": "other", "seat": "row 32"}]}, "A seat must look like 32B."),
    ({"people": [{"role": "other", "seat": 32}]}, "A seat must look like 32B."),
    ({"people": [{"role": "other", "sex": "f"}]}, "'sex' must be one of female, male, unknown."),
    ({"people": [{"role": "other", "age_range": "child"}]},
     "'age_range' must be one of under_12, 12_17, 18_24, 25_39, 40_59, 60_plus, unknown."),
    ({"people": [{"role": "other", "description": " "}]}, "'description' must be non-empty text."),
    ({"people": [{"role": "other", "description": "d" * 501}]}, "'description' must be at most 500 characters."),
    ({"narrative": "   "}, "'narrative' must be non-empty text."),
    ({"narrative": 5}, "'narrative' must be non-empty text."),
    ({"narrative": "x" * 5001}, "'narrative' must be at most 5000 characters."),
    ({"captain_informed": "yes"}, "'captain_informed' must be true or false."),
    ({"reporter": "C1"}, "'reporter' must be an object."),
    ({"reporter": {}}, "'reporter' lacks crew_id."),
    ({"reporter": {"crew_id": "C1", "phone": "1"}}, "'reporter' has unknown fields: phone."),
    ({"reporter": {"crew_id": "C" * 33}}, "'crew_id' must be at most 32 characters."),
    ({"reporter": {"crew_id": "C1", "name": "N" * 101}}, "'name' must be at most 100 characters."),
    ({"languages": ["en"] * 11}, "'languages' must be a list of at most 10."),
    ({"languages": ["e" * 41]}, "'language' must be at most 40 characters."),
    ({"documents_held_by": "passport"}, "'documents_held_by' must be one of self, companion, other, unknown."),
    ({"phase_of_flight": "landing"}, "'phase_of_flight' must be one of boarding, taxi, cruise, descent, other."),
    ({"share_identity_with_airline": 1}, "'share_identity_with_airline' must be true or false."),
    ({"child_involved": "yes"}, "'child_involved' must be true or false."),
    ({"passenger_name": "X"}, "'report' has unknown fields: passenger_name."),
    ({"seat": "32B", "passenger_name": "X"}, "'report' has unknown fields: passenger_name, seat."),
]


def refusal(check: Any, *args: Any, **kwargs: Any) -> str:
    """The message of the `invalid_report` that `check` raises."""
    with pytest.raises(EnvelopeError) as caught:
        check(*args, **kwargs)
    assert caught.value.code == "invalid_report"
    return caught.value.message


@pytest.mark.parametrize(("changes", "message"), BODY_REFUSALS, ids=[m for _, m in BODY_REFUSALS])
def test_each_body_refusal_names_its_field(changes: dict[str, Any], message: str) -> None:
    assert refusal(report.validate_body, valid_body(**changes)) == message


def test_a_body_that_is_not_an_object_is_refused() -> None:
    assert refusal(report.validate_body, [valid_body()]) == "'report' must be an object."
    body = valid_body()
    del body["narrative"], body["captain_informed"]
    assert refusal(report.validate_body, body) == "'report' lacks captain_informed, narrative."


def test_every_limit_itself_is_allowed() -> None:
    """One below each refusal above: the limits are inclusive."""
    report.validate_body(valid_body(
        people=[{"role": "other", "description": "d" * 500}] * 20, narrative="x" * 5000,
        reporter={"crew_id": "C" * 32, "name": "N" * 100}, languages=["e" * 40] * 10))
    # Every code at once: the catalogue has fewer than 60, so the edge of that
    # limit is the case of 60 entries above, refused only for naming one twice.
    assert len(catalogue.CODES) < report.LIMITS["indicators"]
    report.validate_body(valid_body(indicators=sorted(catalogue.CODES)))


def test_observed_at_may_carry_an_offset_or_fractions() -> None:
    """Unlike the header's times, the body's `observed_at` is any RFC 3339 time."""
    for observed in ("2026-11-30T10:58:00+01:00", "2026-11-30T10:58:00.123Z", "2026-11-30T10:58:00-05:30"):
        report.validate_body(valid_body(observed_at=observed))


HEADER_REFUSALS: list[tuple[dict[str, str], str]] = [
    ({"id": "not-a-uuid"}, "The report id must be a UUID."),
    ({"id": "8C4C3F7E-3D0F-4B5E-9A55-2F1D5B7A6C01"}, "The report id must be a lower-case UUID version 4."),
    ({"id": "8c4c3f7e-3d0f-1b5e-9a55-2f1d5b7a6c01"}, "The report id must be a lower-case UUID version 4."),
    ({"airline": "YY"}, "This device belongs to airline ZZ; the report says YY."),
    ({"flight": "BA"}, "The flight must look like BA75 (airline code and number)."),
    ({"dep": "LH"}, "'dep' must be a three-letter IATA airport code."),
    ({"arr": "lhr"}, "'arr' must be a three-letter IATA airport code."),
    ({"dep": "LHR", "arr": "LHR"}, "Departure and arrival airports must differ."),
    ({"created": "yesterday"}, "'created' and 'sta' must be UTC times like 2026-12-01T14:35:00Z."),
    ({"urgency": "urgent"}, "Urgency must be routine, priority or immediate."),
]


@pytest.mark.parametrize(("changes", "message"), HEADER_REFUSALS, ids=[m for _, m in HEADER_REFUSALS])
def test_each_header_refusal_says_what_is_wrong(changes: dict[str, str], message: str) -> None:
    assert refusal(report.validate_header, valid_header(**changes), "ZZ") == message


@pytest.mark.parametrize("field", ["created", "sta"])
def test_header_times_must_be_written_in_utc_with_z(field: str) -> None:
    """The header's times are UTC with a Z: the same instant written with an
    offset is refused, not converted. A fraction of a second is RFC 3339 too
    (the store's columns drop it, so they still sort as text)."""
    header = valid_header()
    same_instant = datetime.fromisoformat(header[field].replace("Z", "+00:00"))
    assert refusal(report.validate_header, valid_header(**{field: same_instant.isoformat()}), "ZZ") == (
        "'created' and 'sta' must be UTC times like 2026-12-01T14:35:00Z.")
    report.validate_header(valid_header(**{field: header[field].replace("Z", ".000Z")}), "ZZ")


def at(moment: datetime, **offset: float) -> str:
    return stamp(moment + timedelta(**offset))


def test_the_arrival_may_be_48_hours_either_side_of_the_report_and_no_more() -> None:
    received = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    for sign in (1, -1):
        report.validate_header(valid_header(created=at(received), sta=at(received, hours=48 * sign)), "ZZ",
                               received=received)
        header = valid_header(created=at(received), sta=at(received, hours=48 * sign, seconds=sign))
        assert refusal(report.validate_header, header, "ZZ", received=received) == (
            "The scheduled arrival must be within 48 hours of when the report was made.")


def test_created_may_be_a_day_ahead_of_the_server_and_no_more() -> None:
    received = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    report.validate_header(valid_header(created=at(received, days=1), sta=at(received, days=1, hours=3)), "ZZ",
                           received=received)
    header = valid_header(created=at(received, days=1, seconds=1), sta=at(received, days=1, hours=3))
    assert refusal(report.validate_header, header, "ZZ", received=received) == (
        f"The report says it was made more than a day from now; {WHEN}")


def test_created_may_be_as_old_as_the_longest_offline_time_and_no_older() -> None:
    received = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    limit = timedelta(days=7)
    report.validate_header(valid_header(created=at(received, days=-7), sta=at(received, days=-7, hours=3)), "ZZ",
                           received=received, max_offline=limit)
    header = valid_header(created=at(received, days=-7, seconds=-1), sta=at(received, days=-7, hours=3))
    assert refusal(report.validate_header, header, "ZZ", received=received, max_offline=limit) == (
        f"The report was made more than 7 days ago, longer than a tablet may stay offline; {WHEN}")


def test_child_evidence_says_each_reason_in_words() -> None:
    """What the officer reads beside the child flag: every reason, in order."""
    body = valid_body(
        indicators=["docs_held_by_other", "child_dressed_older"], child_involved=True,
        people=[{"role": "possible_victim", "age_range": "under_12"}, {"role": "companion", "age_range": "40_59"},
                {"role": "possible_trafficker", "age_range": "12_17"}])
    assert report.child_evidence(body) == [
        f"Indicator: {catalogue.label('child_dressed_older')}",
        "A person (possible victim) aged under 12",
        "A person (possible trafficker) aged 12 to 17",
        "The crew marked the report as involving a child",
    ]
    assert report.involves_child(body)
    adults = valid_body(people=[{"role": "possible_victim", "age_range": "25_39"}], child_involved=False)
    assert report.child_evidence(adults) == [] and not report.involves_child(adults)
    assert report.referral_subject(adults) == "adult" and report.referral_subject(body) == "child"
