"""What a reload (the update banner's, a discarded tab, the system closing a
background app) keeps: "Hide" stays hidden, a first note's flight details
stay typed, and the landing notice comes back in view."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    queued_offline,
    saved_draft_id,
    sign_in,
    wait_enrolled,
    wait_ready,
)

pytestmark = pytest.mark.e2e

# Where each element is, and whether it is wholly on the screen as it stands.
ON_SCREEN = """(sels) => ({scrollY: Math.round(window.scrollY), boxes: sels.map((s) => {
  const r = document.querySelector(s).getBoundingClientRect();
  return {sel: s, top: Math.round(r.top), bottom: Math.round(r.bottom),
          visible: r.height > 0 && r.top >= 0 && r.bottom <= window.innerHeight};
})})"""


def test_hide_survives_a_reload(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    page.fill('[name="narrative"]', "The man in 32C holds her passport.")
    page.click("#hide-button")
    assert page.is_visible("#neutral-view") and page.is_hidden("#app-view")
    # Hide saves the draft at once, but sealing and storing it take a moment:
    # a reload in that moment (which no one's hand makes) would race it.
    saved_draft_id(page)
    page.reload()
    wait_ready(page)
    assert page.is_visible("#neutral-view") and page.is_hidden("#app-view")
    assert not page.is_visible("#f-narrative")
    page.click("#unhide-button")  # Back: the note is there, and a reload now shows the app
    assert page.input_value('[name="narrative"]') == "The man in 32C holds her passport."
    page.reload()
    wait_ready(page)
    assert page.is_visible("#app-view") and page.is_hidden("#neutral-view")


def test_a_first_notes_flight_details_survive_a_reload(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    page.fill('[name="flight"]', "ZZ202")
    page.fill('[name="dep"]', "ACC")
    page.fill('[name="arr"]', "LGW")
    page.fill('[name="lands_in"]', "1:10")
    page.select_option('[name="urgency"]', "immediate")
    page.check('[name="child_involved"]')
    page.locator('[name="flight"]').focus()  # leaving the last field: its change is kept
    sta = page.input_value('[name="sta"]')
    assert sta
    page.wait_for_timeout(1000)  # past the draft's save delay
    page.reload()
    wait_ready(page)
    after = {n: page.input_value(f'[name="{n}"]') for n in ("flight", "dep", "arr", "sta", "urgency")}
    assert after == {"flight": "ZZ202", "dep": "ACC", "arr": "LGW", "sta": sta, "urgency": "immediate"}
    assert page.is_checked('[name="child_involved"]')  # a body field: in the sealed draft


@pytest.mark.parametrize("size", [{"width": 1024, "height": 768}, {"width": 800, "height": 1280}],
                         ids=["landscape", "portrait"])
def test_the_landing_notice_is_in_view_after_a_reload(context: Any, page: Any, server: LiveServer,
                                                      size: dict[str, int]) -> None:
    try:
        queued_offline(context, page, server, "Landing soon, not sent.", lands_in="0:20", size=size)
        page.locator("#landing-banner").wait_for(state="visible")
        page.reload()
        wait_ready(page)
        page.locator("#landing-banner").wait_for(state="visible")
        page.wait_for_timeout(300)
        banner, appbar = page.evaluate(ON_SCREEN, ["#landing-banner", ".appbar"])["boxes"]
        assert banner["visible"] and banner["top"] >= appbar["bottom"], (banner, appbar)
    finally:
        context.set_offline(False)
