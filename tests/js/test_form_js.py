"""form.js: client-side validation mirrors the server's schema; every body it
produces passes crewreport.report.validate_body."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import SET_UP_TABLET

pytestmark = pytest.mark.e2e

NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def local(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M")


BASE = {"flight": "zz101", "dep": "los", "arr": "LHR", "sta": local(NOW + timedelta(hours=3)), "urgency": "priority",
        "narrative": "  Something I saw.  ", "crew_id": "", "indicators": [], "people": [],
        "captain_informed": False, "share_identity_with_airline": False}

VALIDATE = """async ([values, username, now, codes]) => {
  const f = await import('/static/js/form.js');
  return f.validateReport(values, {username, now: new Date(now), codes});
}"""


def run(page: Any, values: dict[str, Any], username: str = "demo-crew", codes: Iterable[str] | None = None) -> Any:
    from crewreport.catalogue import CODES

    return page.evaluate(VALIDATE, [values, username, NOW.isoformat(), sorted(codes or CODES)])


def test_minimal_form_is_valid_and_server_accepts_the_body(js_page: Any) -> None:
    from crewreport.report import validate_body

    out = run(js_page, BASE)
    assert out["ok"], out["errors"]
    assert out["flight"] == {"flight": "ZZ101", "dep": "LOS", "arr": "LHR", "sta": "2026-12-01T14:00:00Z",
                             "urgency": "priority"}
    body = out["body"]
    assert body["narrative"] == "Something I saw."
    assert body["reporter"] == {"crew_id": "demo-crew"}
    assert body["captain_informed"] is False and body["share_identity_with_airline"] is False
    assert body["observed_at"] == "2026-12-01T11:00:00Z"
    assert set(body) == {"observed_at", "indicators", "people", "narrative", "captain_informed", "reporter",
                         "share_identity_with_airline"}
    validate_body(body)


def test_full_form_body_passes_the_server_schema(js_page: Any) -> None:
    from crewreport.catalogue import CODES
    from crewreport.report import validate_body

    codes = sorted(CODES)[:3]
    values = dict(BASE, indicators=codes + [codes[0]], crew_id="C1234", reporter_name="Sam",
                  captain_informed=True, share_identity_with_airline=True,
                  people=[{"seat": "32b", "role": "possible_victim", "sex": "female", "age_range": "12_17",
                           "description": "Quiet, holds no ticket"},
                          {"seat": "", "role": "possible_trafficker", "sex": "", "age_range": "", "description": " "}],
                  languages="English, Yoruba", documents_held_by="companion", phase_of_flight="cruise",
                  observed_at=local(NOW - timedelta(minutes=20)))
    out = run(js_page, values)
    assert out["ok"], out["errors"]
    body = out["body"]
    assert body["indicators"] == codes  # duplicates dropped
    assert body["people"] == [{"role": "possible_victim", "seat": "32B", "sex": "female", "age_range": "12_17",
                               "description": "Quiet, holds no ticket"}, {"role": "possible_trafficker"}]
    assert body["languages"] == ["English", "Yoruba"]
    assert body["reporter"] == {"crew_id": "C1234", "name": "Sam"}
    assert body["observed_at"] == "2026-12-01T10:40:00Z"
    validate_body(body)


BAD: list[tuple[dict[str, Any], str]] = [
    ({"narrative": "   "}, "narrative"),
    ({"narrative": "x" * 5001}, "narrative"),
    ({"flight": ""}, "flight"),
    ({"flight": "BA-75"}, "flight"),
    ({"flight": "ZZ12345"}, "flight"),
    ({"dep": "LO"}, "dep"),
    ({"arr": "LOS"}, "arr"),
    ({"sta": ""}, "sta"),
    ({"sta": "2026-13-01T10:00"}, "sta"),
    ({"sta": local(NOW + timedelta(hours=49))}, "sta"),
    ({"sta": local(NOW - timedelta(hours=49))}, "sta"),
    ({"urgency": "panic"}, "urgency"),
    ({"indicators": ["not_a_code"]}, "indicators"),
    ({"people": [{"role": ""}]}, "people.0.role"),
    ({"people": [{"role": "other", "seat": "32Z"}]}, "people.0.seat"),
    ({"people": [{"role": "other", "description": "d" * 501}]}, "people.0.description"),
    ({"people": [{"role": "other"}] * 21}, "people"),
    ({"crew_id": "c" * 33}, "crew_id"),
    ({"reporter_name": "n" * 101}, "reporter_name"),
    ({"languages": ",".join(["en"] * 11)}, "languages"),
    ({"languages": "l" * 41}, "languages"),
    ({"observed_at": local(NOW + timedelta(hours=2))}, "observed_at"),
    ({"documents_held_by": "captain"}, "documents_held_by"),
    ({"phase_of_flight": "landing"}, "phase_of_flight"),
]


def test_each_bad_field_gets_a_message_on_that_field(js_page: Any) -> None:
    wrong = []
    for change, field in BAD:  # one page for all cases: fast
        out = run(js_page, dict(BASE, **change))
        if out["ok"] or not out["errors"].get(field):
            wrong.append((change if len(str(change)) < 80 else field, out["errors"]))
    assert wrong == []


def test_limits_are_inclusive_and_count_characters_not_utf16_units(js_page: Any) -> None:
    from crewreport.report import validate_body

    out = run(js_page, dict(BASE, narrative="😀" * 5000, people=[{"role": "other", "description": "é" * 500}]))
    assert out["ok"], out["errors"]
    validate_body(out["body"])


def test_no_crew_id_and_no_username_is_an_error(js_page: Any) -> None:
    out = run(js_page, BASE, username="")
    assert "crew_id" in out["errors"]


def test_form_shows_messages_on_fields(js_page: Any, static_server: str) -> None:
    page = js_page
    page.goto(static_server + "/static/css/crew.css")
    page.evaluate(SET_UP_TABLET, "dev-form-0001")  # the form opens only on a set-up tablet
    page.route("**/api/v1/devices/*", lambda route: route.abort("internetdisconnected"))
    page.goto(static_server + "/")  # the real shell (service workers are blocked in this context)
    page.wait_for_selector("#form-body:not([disabled])", state="attached")
    page.fill('[name="narrative"]', "x" * 10)
    page.fill('[name="flight"]', "??")
    page.click("#submit-button")
    page.wait_for_selector(".field-error")
    errors = page.evaluate("""() => [...document.querySelectorAll('[aria-invalid=true]')].map(el => [el.name,
        document.getElementById(el.getAttribute('aria-describedby').split(' ').pop()).textContent])""")
    names = [n for n, _ in errors]
    assert names[:4] == ["flight", "dep", "arr", "lands_in"]
    assert all(text for _, text in errors)
    assert page.evaluate("() => document.activeElement.name") == "flight"
    assert "not queued" not in page.inner_text("#form-status").lower()
    assert page.evaluate("() => document.querySelectorAll('#outbox [data-report-id]').length") == 0
