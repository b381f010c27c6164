"""The crew form holds still and says what matters where crew look: a notice
that appears above does not push the note being written out from under a
finger, and a tablet just set up shows its storage warning on the first
screen (the box moves below the notes only once a note is written)."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    queued_offline,
    sign_in,
    wait_enrolled,
    wait_ready,
)

pytestmark = pytest.mark.e2e

PLACES = """() => { const q = (s) => document.querySelector(s).getBoundingClientRect();
  return {box: Math.round(q('#indicators-group details input').top),
          status: Math.round(q('#form-status').height), banner: Math.round(q('#landing-banner').height)}; }"""


def test_the_note_being_written_does_not_jump_when_the_landing_notice_appears(
        context: Any, page: Any, server: LiveServer) -> None:
    """In flight, offline: a first note is queued 34 minutes before landing;
    the crew, scrolled down, are ticking indicators of a second note when the
    landing notice (30 minutes) appears at the top. The notice inserted above
    must not push what is under their finger down by its own height (the
    status line above Save growing by a line is another matter, and is
    allowed for here)."""
    page.clock.install()
    try:
        queued_offline(context, page, server, "First note, landing in 34 minutes.", lands_in="0:34",
                       size={"width": 1024, "height": 768})
        assert page.is_hidden("#landing-banner")
        page.fill('[name="narrative"]', "Second note: the girl in 14A is not allowed to speak.")
        page.evaluate("() => { const d = document.querySelector('#indicators-group details');"
                      " d.open = true; d.querySelector('input').scrollIntoView({block: 'center'}); }")
        page.wait_for_timeout(300)
        before = page.evaluate(PLACES)
        page.clock.fast_forward("06:00")  # six minutes on: the 30 s refresh runs, landing within 30 min
        page.locator("#landing-banner").wait_for(state="visible")
        page.wait_for_timeout(300)
        after = page.evaluate(PLACES)
        moved = after["box"] - before["box"]
        status_grew = after["status"] - before["status"]
        assert moved <= status_grew + 2, (
            f"the indicator under the crew's finger moved {moved} px down when the {after['banner']} px "
            f"landing notice appeared above (the status line grew {status_grew} px): {before} -> {after}")
    finally:
        context.set_offline(False)


def test_the_storage_warning_of_a_tablet_just_set_up_is_on_the_first_screen(
        page: Any, server: LiveServer) -> None:
    """When the browser will not keep the app's storage, the device box says
    so and what to do (docs/operations.md, 'Setting up tablets'): the crew
    who just set the tablet up must see it without scrolling past the form
    and the list of notes."""
    page.set_viewport_size({"width": 1024, "height": 768})
    sign_in(page, server)
    wait_enrolled(page)
    wait_ready(page)
    page.wait_for_function("() => document.querySelector('#device-message').textContent.includes('may clear')",
                           timeout=5000)
    box = page.evaluate("() => { const r = document.querySelector('#device-status').getBoundingClientRect();"
                        " return {top: Math.round(r.top), bottom: Math.round(r.bottom), screen: innerHeight,"
                        " page: document.documentElement.scrollHeight,"
                        " text: document.querySelector('#device-message').textContent}; }")
    assert box["top"] >= 0 and box["bottom"] <= box["screen"], box
