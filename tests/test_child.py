"""Children first: the child flag derived at intake from every kind of child
evidence, kept with the cleartext columns (never from the sealed body later),
and the NRM prompt sheet's child / adult / unknown with what each referral
needs."""
from __future__ import annotations

import re
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import report

from .helpers import AuthActions, Make, deliver, row, text, valid_body

ADULT_VICTIM = {"role": "possible_victim", "age_range": "25_39"}
SUBJECT = re.compile(r'data-nrm-subject="(child|adult|unknown)"')


def nrm_subject(client: FlaskClient, report_id: str) -> str:
    resp = client.get(f"/triage/reports/{report_id}/nrm")
    assert resp.status_code == 200
    found = SUBJECT.findall(text(resp))
    assert len(found) == 1
    return found[0]


def deliver_body(client: FlaskClient, make_envelope: Make, **changes: Any) -> str:
    return deliver(client, make_envelope, body=valid_body(**changes))


def test_the_catalogue_has_child_indicators() -> None:
    assert len(report.CHILD_INDICATORS) >= 4
    assert "child_with_unrelated_adult" in report.CHILD_INDICATORS


@pytest.mark.parametrize("code", sorted(report.CHILD_INDICATORS))
def test_each_children_indicator_alone_flags_a_child(client: FlaskClient, app: Flask, make_envelope: Make,
                                                      auth: AuthActions, code: str) -> None:
    """Even when the only person described has an adult age range."""
    rid = deliver_body(client, make_envelope, indicators=[code], people=[ADULT_VICTIM])
    assert row(app, rid)["child"] == 1  # type: ignore[index]
    auth.login("officer")
    assert nrm_subject(client, rid) == "child"
    page = text(client.get(f"/triage/reports/{rid}/nrm"))
    assert "consent" in page and "A child does not have to consent" in page
    assert "you make the referral" in page
    assert "Adult referral" not in page and "needs the person&#39;s informed consent" not in page


@pytest.mark.parametrize("age_range", report.AGE_RANGES)
@pytest.mark.parametrize("role", ["possible_victim", "companion"])
def test_each_age_range(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                        age_range: str, role: str) -> None:
    person = {"role": role, "age_range": age_range}
    people = [person] if role == "possible_victim" else [ADULT_VICTIM, person]
    rid = deliver_body(client, make_envelope, indicators=["docs_held_by_other"], people=people)
    child = age_range in report.CHILD_AGE_RANGES
    assert row(app, rid)["child"] == int(child)  # type: ignore[index]
    auth.login("officer")
    if child:
        expected = "child"
    elif age_range == "unknown" and role == "possible_victim":
        expected = "unknown"
    else:
        expected = "adult"
    assert nrm_subject(client, rid) == expected


def test_the_crews_child_involved_flag_alone(client: FlaskClient, app: Flask, make_envelope: Make,
                                             auth: AuthActions) -> None:
    flagged = deliver_body(client, make_envelope, indicators=[], people=[ADULT_VICTIM], child_involved=True)
    unflagged = deliver_body(client, make_envelope, indicators=[], people=[ADULT_VICTIM], child_involved=False)
    assert row(app, flagged)["child"] == 1  # type: ignore[index]
    assert row(app, unflagged)["child"] == 0  # type: ignore[index]
    auth.login("officer")
    assert nrm_subject(client, flagged) == "child"
    assert "The crew marked the report as involving a child" in text(client.get(f"/triage/reports/{flagged}/nrm"))
    assert 'id="child-badge"' in text(client.get(f"/triage/reports/{flagged}"))
    assert 'id="child-badge"' not in text(client.get(f"/triage/reports/{unflagged}"))
    assert nrm_subject(client, unflagged) == "adult"


def test_child_involved_must_be_a_boolean(client: FlaskClient, make_envelope: Make) -> None:
    values: list[Any] = ["yes", 1, None, []]
    for value in values:
        resp = client.post("/api/v1/reports", json=make_envelope(body=valid_body(child_involved=value)))
        assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_report"


def test_no_people_and_no_evidence_is_unknown_never_adult(client: FlaskClient, app: Flask,
                                                          make_envelope: Make, auth: AuthActions) -> None:
    nobody = deliver_body(client, make_envelope, indicators=["no_docs"], people=[])
    ageless = deliver_body(client, make_envelope, indicators=[], people=[{"role": "possible_victim"}])
    assert row(app, nobody)["child"] == 0  # type: ignore[index]
    auth.login("officer")
    assert nrm_subject(client, nobody) == "unknown"
    assert nrm_subject(client, ageless) == "unknown"
    assert "treat them as a child" in text(client.get(f"/triage/reports/{ageless}/nrm"))


def test_one_child_among_adults_makes_it_a_child_referral(client: FlaskClient, make_envelope: Make,
                                                          auth: AuthActions) -> None:
    rid = deliver_body(client, make_envelope, indicators=[],
                       people=[ADULT_VICTIM, {"role": "possible_victim", "age_range": "under_12"}])
    auth.login("officer")
    assert nrm_subject(client, rid) == "child"
    assert "aged under 12" in text(client.get(f"/triage/reports/{rid}/nrm"))
