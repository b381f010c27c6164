"""A draft must not be lost to the tablet's clock. Drafts expire (an abandoned
note is not left for the next crew to find), but the tablet's clock can jump:
a clock set wrong is put right when the tablet finds a network on landing, or
by hand. A note written minutes before such a jump is not abandoned."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.e2e.harness import SAVED_DRAFTS, SET_UP_TABLET, poll, saved_draft_id, server_answers_at

pytestmark = pytest.mark.e2e

ASIDE = "An older unfinished note is kept aside until there is a connection."
NOTE = "Written just before landing, on a tablet whose clock was 12 hours slow."
FAST_NOTE = "Written just after landing, on a tablet whose clock was 12 hours fast until then."


@pytest.fixture
def tablet(js_browser: Any, static_server: str) -> Iterator[Any]:
    ctx = js_browser.new_context(service_workers="block")
    page = ctx.new_page()
    page.goto(static_server + "/static/css/crew.css")
    page.evaluate(SET_UP_TABLET, "dev-clock-0001")
    page.close()
    yield ctx
    ctx.close()


def open_app(ctx: Any, origin: str, tablet_clock: datetime, server_clock: datetime | None) -> Any:
    page = ctx.new_page()
    page.clock.set_system_time(tablet_clock)
    server_answers_at(page, server_clock)
    page.goto(origin + "/")
    page.wait_for_selector("#crew-app[data-ready=true]", state="attached")
    return page


def landed_with_a_note_aside(tablet: Any, origin: str, true_time: datetime) -> Any:
    """NOTE written in flight on a tablet clock 12 hours slow (the server told
    the app so on the ground), then the app opened offline after landing on
    the clock put right: NOTE looks 12 hours old, and is said to be kept aside."""
    cabin = open_app(tablet, origin, true_time - timedelta(hours=12), true_time)
    poll(cabin, "() => JSON.parse(localStorage.getItem('cabin-notes-clock') || 'null')",
         lambda kept: bool(kept) and abs(kept["offset_ms"] - 12 * 3600 * 1000) < 5000, message="offset learnt")
    cabin.wait_for_selector("#form-body:not([disabled])", state="attached")
    cabin.fill('[name="narrative"]', NOTE)
    saved_draft_id(cabin)
    cabin.close()
    landed = open_app(tablet, origin, true_time + timedelta(minutes=5), None)
    landed.wait_for_selector("#form-body:not([disabled])", state="attached")
    assert landed.inner_text("#form-status") == ASIDE
    return landed


def test_a_clock_put_right_on_landing_does_not_delete_a_note_written_minutes_before(tablet: Any,
                                                                                    static_server: str) -> None:
    true_time = datetime.now(UTC)
    # In flight the tablet's clock is 12 hours slow; on landing it is put right, and
    # the app starts again (iPadOS ended it in the background) before it reaches the server.
    landed = landed_with_a_note_aside(tablet, static_server, true_time)
    assert [d["narrative"] for d in landed.evaluate(SAVED_DRAFTS).values()] == [NOTE]  # kept
    # not in the form (it looks 12 hours old), but the crew is told it is there: not written twice
    assert landed.input_value('[name="narrative"]') == ""

    # Once the server answers (a network found: `online`), the note is in the form again.
    tablet.set_offline(True)
    server_answers_at(landed, true_time + timedelta(minutes=6))
    tablet.set_offline(False)
    poll(landed, "() => document.querySelector('[name=narrative]').value", lambda v: v == NOTE,
         message="the note restored")
    assert "deleted" not in landed.inner_text("#form-status")


def test_an_abandoned_draft_is_not_shown_and_goes_once_the_server_tells_the_time(tablet: Any,
                                                                                 static_server: str) -> None:
    true_time = datetime.now(UTC)
    before = open_app(tablet, static_server, true_time, true_time)
    before.wait_for_selector("#form-body:not([disabled])", state="attached")
    before.fill('[name="narrative"]', "Begun on the last duty, then left.")
    saved_draft_id(before)
    before.close()

    # 13 hours later, the next crew opens the app offline: the note is not shown to them...
    later = true_time + timedelta(hours=13)
    next_crew = open_app(tablet, static_server, later, None)
    next_crew.wait_for_selector("#form-body:not([disabled])", state="attached")
    assert next_crew.input_value('[name="narrative"]') == ""
    assert next_crew.inner_text("#form-status") == ASIDE
    # ...and once the server confirms the time, it is deleted, and they are told.
    tablet.set_offline(True)
    server_answers_at(next_crew, later)
    tablet.set_offline(False)
    poll(next_crew, "() => document.querySelector('#form-status').innerText",
         lambda t: t == "An unfinished note left unchanged for 12 hours was deleted.", message="told")
    assert next_crew.evaluate(SAVED_DRAFTS) == {}
    assert next_crew.input_value('[name="narrative"]') == ""


def test_a_note_being_written_when_the_server_first_tells_the_time_is_not_deleted(tablet: Any,
                                                                                   static_server: str) -> None:
    """The server's first answer in a page expires old drafts (told.then(restoreDraft)),
    which may come while the crew is writing: the note in the form is not abandoned,
    whatever its saved_at says on a clock put right since it was saved."""
    true_time = datetime.now(UTC)
    # In flight: the tablet's clock is 12 hours fast; the server told the app so on the ground.
    cabin = open_app(tablet, static_server, true_time + timedelta(hours=12), true_time)
    poll(cabin, "() => JSON.parse(localStorage.getItem('cabin-notes-clock') || 'null')",
         lambda kept: bool(kept) and abs(kept["offset_ms"] + 12 * 3600 * 1000) < 5000, message="offset learnt")
    cabin.close()

    # Landed: the clock is put right; offline, the crew writes a note (its saved_at
    # is 12 hours early on the offset learnt in flight).
    landed = open_app(tablet, static_server, true_time + timedelta(minutes=5), None)
    landed.wait_for_selector("#form-body:not([disabled])", state="attached")
    landed.fill('[name="narrative"]', FAST_NOTE)
    saved_draft_id(landed)

    # A network is found while the note is still in the form, unchanged since its last save.
    tablet.set_offline(True)
    server_answers_at(landed, true_time + timedelta(minutes=6))
    tablet.set_offline(False)
    poll(landed, "() => JSON.parse(localStorage.getItem('cabin-notes-clock') || 'null')",
         lambda kept: bool(kept) and abs(kept["offset_ms"]) < 5 * 60 * 1000, message="the server's time")
    landed.wait_for_timeout(1500)  # the restore the first answer starts (no sign of it when nothing happens)
    assert [d["narrative"] for d in landed.evaluate(SAVED_DRAFTS).values()] == [FAST_NOTE]
    assert "deleted" not in landed.inner_text("#form-status")
    assert landed.input_value('[name="narrative"]') == FAST_NOTE


def test_a_note_left_aside_is_said_as_kept_once_the_server_tells_the_time_while_the_crew_writes(
        tablet: Any, static_server: str) -> None:
    """The sentence that a note is kept aside "until there is a connection" goes
    once there is one: a crew member writing another note meanwhile is told
    their earlier note is kept for after this one (not written twice), not
    that it waits for a connection they have."""
    true_time = datetime.now(UTC)
    landed = landed_with_a_note_aside(tablet, static_server, true_time)
    landed.fill('[name="narrative"]', "Another note, begun before a network is found.")
    poll(landed, SAVED_DRAFTS, lambda drafts: len(drafts) == 2, message="both notes saved")

    tablet.set_offline(True)
    server_answers_at(landed, true_time + timedelta(minutes=6))
    tablet.set_offline(False)
    poll(landed, "() => document.querySelector('#form-status').innerText",
         lambda t: t == "1 more unfinished note is kept; it opens here when this one is sent.",
         message="the note kept aside said as kept for later")
    assert landed.input_value('[name="narrative"]') == "Another note, begun before a network is found."


def test_a_note_left_aside_then_opened_in_another_window_is_no_longer_said_aside(tablet: Any,
                                                                                static_server: str) -> None:
    """Once a connection comes, a note said to be kept aside that another window
    has opened meanwhile is not said to be aside any more."""
    true_time = datetime.now(UTC)
    landed = landed_with_a_note_aside(tablet, static_server, true_time)
    other = open_app(tablet, static_server, true_time + timedelta(minutes=5), true_time + timedelta(minutes=5))
    poll(other, "() => document.querySelector('[name=narrative]').value", lambda v: v == NOTE,
         message="the note opened in the other window")

    tablet.set_offline(True)
    server_answers_at(landed, true_time + timedelta(minutes=6))
    tablet.set_offline(False)
    poll(landed, "() => document.querySelector('#form-status').innerText", lambda t: ASIDE not in t,
         message="the note no longer said aside")
    assert landed.input_value('[name="narrative"]') == ""
