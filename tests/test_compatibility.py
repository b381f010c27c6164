"""Old tablets keep working: everything this release's crew app can put in a
note stays accepted by every later server.

A tablet may fly for days on an old shell with notes queued, and a note the
intake refuses cannot be sent again. So indicator codes, body fields, enum
values and limits are pinned here as literals. A later release may deprecate a
code (hidden from the crew form, still accepted and still labelled for
officers) but never remove or narrow anything: doing so fails these tests.
Adding something new means adding it to the pin as well (docs/protocol.md,
"Compatibility").
"""
from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import catalogue, report
from crewreport.times import stamp

from .helpers import AuthActions, valid_body, valid_header

Make = Callable[..., dict[str, Any]]
STATIC_JS = Path(__file__).resolve().parent.parent / "static" / "js"

# Every indicator code a crew app of this release can send.
PINNED_CODES = [
    "docs_held_by_other", "docs_not_matching", "no_docs", "unaware_of_destination", "unusual_itinerary",
    "ticket_paid_by_other",
    "not_allowed_to_speak", "escorted_always", "instructed_by_other", "controlled_food_drink",
    "no_control_of_money", "group_with_one_controller",
    "scripted_answers", "inconsistent_story", "unclear_job_offer", "debt_mentioned", "unaware_of_companion",
    "fearful_or_anxious", "avoids_eye_contact", "signs_of_injury", "malnourished_or_exhausted",
    "inappropriate_clothing", "disoriented",
    "child_with_unrelated_adult", "child_unsure_of_adult", "child_dressed_older",
    "child_inappropriate_relationship",
    "companion_controlling", "companion_answers_for", "companion_avoids_sitting_together",
    "companion_multiple_passengers", "companion_holds_belongings",
]
# Every value of every closed list, under the field name the crew form uses.
PINNED_VALUES = {
    "urgency": ["routine", "priority", "immediate"],
    "role": ["possible_victim", "possible_trafficker", "companion", "other"],
    "sex": ["female", "male", "unknown"],
    "age_range": ["under_12", "12_17", "18_24", "25_39", "40_59", "60_plus", "unknown"],
    "documents_held_by": ["self", "companion", "other", "unknown"],
    "phase_of_flight": ["boarding", "taxi", "cruise", "descent", "other"],
}
# The report's own constants for those lists, and the crew app's (static/js).
SERVER_LISTS = {"urgency": report.URGENCIES, "role": report.ROLES, "sex": report.SEXES,
                "age_range": report.AGE_RANGES, "documents_held_by": report.DOCUMENTS_HELD_BY,
                "phase_of_flight": report.PHASES}
JS_LISTS = {"urgency": "URGENCIES", "role": "ROLES", "sex": "SEXES", "age_range": "AGE_RANGES",
            "documents_held_by": "DOCUMENTS_HELD_BY", "phase_of_flight": "PHASES"}
# Every field of the body, of a person and of the reporter.
PINNED_FIELDS = {
    "report": ["observed_at", "indicators", "people", "narrative", "captain_informed", "reporter",
               "languages", "documents_held_by", "phase_of_flight", "share_identity_with_airline",
               "child_involved"],
    "person": ["role", "seat", "sex", "age_range", "description"],
    "reporter": ["crew_id", "name"],
}
# The largest a crew app of this release lets each thing be.
PINNED_LIMITS = {"narrative": 5000, "description": 500, "people": 20, "indicators": 60, "languages": 10,
                 "language": 40, "crew_id": 32, "name": 100}
# Header values of every shape the crew form lets through.
PINNED_FLIGHTS = ["BA75", "U21", "9W1234", "BA1234A"]
PINNED_SEATS = ["1A", "32B", "999K"]


def widest_body() -> dict[str, Any]:
    """Every pinned field present, each at its pinned limit."""
    people = [{"role": "possible_victim", "seat": "32B", "sex": "female", "age_range": "12_17",
               "description": "é" * PINNED_LIMITS["description"]}] * PINNED_LIMITS["people"]
    return valid_body(
        indicators=PINNED_CODES, people=people, narrative="ü" * PINNED_LIMITS["narrative"],
        languages=["l" * PINNED_LIMITS["language"]] * PINNED_LIMITS["languages"],
        documents_held_by="companion", phase_of_flight="cruise", share_identity_with_airline=True,
        child_involved=True, reporter={"crew_id": "C" * PINNED_LIMITS["crew_id"], "name": "N" * PINNED_LIMITS["name"]})


def test_the_pin_lists_each_thing_once() -> None:
    assert len(PINNED_CODES) == len(set(PINNED_CODES))
    for values in PINNED_VALUES.values():
        assert len(values) == len(set(values))
    assert len(PINNED_CODES) <= PINNED_LIMITS["indicators"]


def test_no_indicator_code_is_ever_removed() -> None:
    removed = set(PINNED_CODES) - catalogue.CODES
    assert not removed, f"removed codes {sorted(removed)}: deprecate them instead (\"deprecated\": true)"
    unpinned = catalogue.CODES - set(PINNED_CODES)
    assert not unpinned, f"new codes {sorted(unpinned)}: add them to PINNED_CODES"


@pytest.mark.parametrize("code", PINNED_CODES)
def test_every_pinned_code_is_accepted_and_labelled(code: str) -> None:
    report.validate_body(valid_body(indicators=[code]))
    assert catalogue.label(code) != code


@pytest.mark.parametrize("name", sorted(PINNED_VALUES))
def test_no_value_is_removed_from_a_closed_list(name: str) -> None:
    server = set(SERVER_LISTS[name])
    removed = set(PINNED_VALUES[name]) - server
    assert not removed, f"{name}: {sorted(removed)} removed; old notes carrying them would be refused"
    assert not server - set(PINNED_VALUES[name]), f"{name}: pin the new values too"


def test_every_pinned_value_passes_validation() -> None:
    for urgency in PINNED_VALUES["urgency"]:
        report.validate_header(valid_header(urgency=urgency), "ZZ")
    for flight in PINNED_FLIGHTS:
        report.validate_header(valid_header(flight=flight), "ZZ")
    person_values = {"role": "role", "sex": "sex", "age_range": "age_range"}
    for field, key in person_values.items():
        for value in PINNED_VALUES[key]:
            person = {"role": "other", field: value}
            report.validate_body(valid_body(people=[person]))
    for seat in PINNED_SEATS:
        report.validate_body(valid_body(people=[{"role": "other", "seat": seat}]))
    for field in ("documents_held_by", "phase_of_flight"):
        for value in PINNED_VALUES[field]:
            report.validate_body(valid_body(**{field: value}))


def test_every_pinned_field_at_its_limit_passes_validation() -> None:
    body = widest_body()
    assert sorted(body) == sorted(PINNED_FIELDS["report"])
    assert sorted(body["people"][0]) == sorted(PINNED_FIELDS["person"])
    assert sorted(body["reporter"]) == sorted(PINNED_FIELDS["reporter"])
    report.validate_body(body)
    # A later server may accept more fields, but every pinned one stays.
    assert set(PINNED_FIELDS["report"]) <= report.REQUIRED | report.OPTIONAL
    assert not report.REQUIRED - set(PINNED_FIELDS["report"]), "a new required field refuses every old note"
    assert not (report.REQUIRED | report.OPTIONAL) - set(PINNED_FIELDS["report"]), "pin the new body field"
    assert {k: report.LIMITS[k] for k in PINNED_LIMITS} == PINNED_LIMITS


def test_a_widest_note_made_days_ago_is_still_accepted(client: FlaskClient, make_envelope: Make) -> None:
    """A note queued on a tablet for five days, with everything in it, gets a receipt."""
    made = datetime.now(UTC) - timedelta(days=5)
    env = make_envelope(body=widest_body(), created=stamp(made), sta=stamp(made + timedelta(hours=6)))
    response = client.post("/api/v1/reports", json=env)
    assert response.status_code == 201, response.get_json()


class FormValues(HTMLParser):
    """The values the crew form can send: ticked checkboxes and select options."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, set[str]] = {}
        self.select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "select":
            self.select = a.get("name")
        elif tag == "option" and self.select and a.get("value"):
            self.values.setdefault(self.select, set()).add(a["value"] or "")
        elif tag == "input" and a.get("type") == "checkbox" and a.get("name") == "indicators":
            self.values.setdefault("indicators", set()).add(a.get("value") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


def test_the_pin_covers_everything_the_crew_app_offers(client: FlaskClient) -> None:
    """A code or value the form offers but the pin lacks would be unprotected."""
    parser = FormValues()
    parser.feed(client.get("/").get_data(as_text=True))
    offered = parser.values
    assert offered["indicators"] and offered["indicators"] <= set(PINNED_CODES)
    assert set(offered) - {"indicators"} == set(PINNED_VALUES)
    for name, values in PINNED_VALUES.items():
        assert offered[name] <= set(values), name
    source = "\n".join(p.read_text("utf-8") for p in sorted(STATIC_JS.rglob("*.js")))
    for name, constant in JS_LISTS.items():
        found = re.search(rf"export const {constant} = (\[[^\]]*\]);", source)
        assert found, constant
        assert set(re.findall(r'"([^"]+)"', found.group(1))) <= set(PINNED_VALUES[name]), name
    limits = re.search(r"export const LIMITS = \{([^}]*)\}", source)
    assert limits, "LIMITS"
    for key, value in re.findall(r"(\w+): (\d+)", limits.group(1)):
        assert int(value) <= PINNED_LIMITS[key], key


def test_a_deprecated_code_is_hidden_from_the_form_but_accepted_and_labelled(
        client: FlaskClient, app: Flask, make_envelope: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    indicator = next(i for g in catalogue.GROUPS for i in g["indicators"] if i["code"] == "no_docs")
    monkeypatch.setitem(indicator, "deprecated", True)
    form = client.get("/").get_data(as_text=True)
    assert 'value="no_docs"' not in form
    assert 'value="docs_held_by_other"' in form  # the rest of its group is still offered
    response = client.post("/api/v1/reports", json=make_envelope(body=valid_body(indicators=["no_docs"])))
    assert response.status_code == 201, response.get_json()
    AuthActions(client).login("officer")
    with app.app_context():
        from crewreport.db import get_db

        (row,) = get_db().execute("SELECT id FROM report").fetchall()
    page = client.get(f"/triage/reports/{row['id']}").get_data(as_text=True)
    assert f'<li data-code="no_docs">{indicator["label"]}</li>' in page


def test_a_group_with_every_code_deprecated_is_not_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    group = catalogue.GROUPS[0]
    for indicator in group["indicators"]:
        monkeypatch.setitem(indicator, "deprecated", True)
    assert group["code"] not in [g["code"] for g in catalogue.form_groups()]
    assert len(catalogue.form_groups()) == len(catalogue.GROUPS) - 1
    assert all(i["code"] in catalogue.CODES for i in group["indicators"])
