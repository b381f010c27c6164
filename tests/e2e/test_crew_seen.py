"""The tablet learns, from the live server, that Border Force read its note
(DESIGN section 4a): the crew app asks `POST /api/v1/reports/status` after
it syncs and shows the answer on the note; the answers carry nothing else
about the case."""
from __future__ import annotations

import json
from typing import Any

import pytest

from tests.e2e.harness import (
    PASSWORD,
    TOTP_SECRET,
    LiveServer,
    fill_minimal,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_states,
)

pytestmark = pytest.mark.e2e

OFFICER = "seen-officer"
CASE_STATE = "(id) => document.querySelector(`#outbox [data-report-id=\"${id}\"]`)?.dataset.caseState || null"


@pytest.fixture(scope="module")
def officer(live_server: LiveServer) -> str:
    """An officer of this module's own (a code is good once per user)."""
    live_server.flask("create-user", OFFICER, "--role", "border_force", "--password", PASSWORD,
                      "--totp-secret", TOTP_SECRET)
    return OFFICER


def test_a_delivered_note_shows_when_border_force_has_seen_it(browser: Any, context: Any, page: Any,
                                                              server: LiveServer, officer: str) -> None:
    answers: list[dict[str, Any]] = []
    context.on("response", lambda r: answers.append(r.json()) if r.url.endswith("/api/v1/reports/status") else None)
    sign_in(page, server)
    wait_enrolled(page)
    fill_minimal(page, "Seen-test: the woman in 14C is not allowed to speak - Kestrel-Narrative-3391")
    submit(page, 1)
    report_id = wait_states(page, "delivered", 1)[0][0]
    page.click("#send-now")  # a sync asks at once what became of delivered notes
    poll(page, CASE_STATE, lambda s: s == "received", message="the note shown as received", arg=report_id)

    officer_ctx = browser.new_context(base_url=server.url)
    try:
        officer_page = officer_ctx.new_page()
        sign_in(officer_page, server, officer, "/triage/")
        officer_page.goto(f"{server.url}/triage/reports/{report_id}")
        assert "Kestrel-Narrative-3391" in officer_page.inner_text("main")  # opened (and audited) by the officer
    finally:
        officer_ctx.close()

    page.click("#send-now")
    poll(page, CASE_STATE, lambda s: s == "seen", message="the note shown as seen", arg=report_id)
    entry = page.locator(f'#outbox [data-report-id="{report_id}"]').inner_text()
    assert "Seen by Border Force" in entry and OFFICER not in entry
    assert answers and all(set(a) == {"results"} for a in answers), answers
    said = json.dumps(answers)
    assert OFFICER not in said and "Kestrel" not in said  # no officer, no content: only the coarse state
    assert {tuple(sorted(r)) for a in answers for r in a["results"]} == {("id", "state")}
