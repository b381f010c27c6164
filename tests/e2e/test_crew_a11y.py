"""axe-core finds no serious or critical violations in the crew app at both
tablet sizes: not set up (the form closed, what to do said), the flight
folded into one line after a note, and the form with every section open, a
person added and errors shown, and the outbox."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    open_flight_fields,
    sign_in,
    submit,
    wait_enrolled,
    wait_ready,
    wait_states,
)

pytestmark = pytest.mark.e2e

AXE_RUN = """async () => {
  const r = await axe.run(document, {resultTypes: ['violations']});
  return r.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
}"""


def _audit(page: Any) -> Any:
    if not page.evaluate("() => typeof axe !== 'undefined'"):
        page.add_script_tag(url="/static/vendor/axe.min.js")
    return page.evaluate(AXE_RUN)


@pytest.mark.parametrize("size", [{"width": 1024, "height": 768}, {"width": 800, "height": 1280}],
                         ids=["landscape", "portrait"])
def test_no_serious_or_critical_accessibility_violations(page: Any, server: LiveServer, size: dict[str, int]) -> None:
    page.set_viewport_size(size)
    page.goto(server.url + "/")
    wait_ready(page)
    assert page.is_visible("#form-device-notice")  # not set up: the form is closed, what to do is said
    assert _audit(page) == []

    sign_in(page, server)
    wait_enrolled(page)
    fill_minimal(page, "Accessibility check report.")
    page.check('[name="child_involved"]')
    submit(page, 1)
    wait_states(page, "delivered", 1)
    assert page.is_visible("#flight-summary")
    assert _audit(page) == []

    open_flight_fields(page)
    page.evaluate("() => document.querySelectorAll('details').forEach(d => d.open = true)")
    page.click("#add-person")
    page.fill('#report-form [name="flight"]', "not a flight")
    page.click("#submit-button")  # shows field errors
    page.wait_for_selector(".field-error")
    violations = _audit(page)
    assert violations == [], violations

    # touch targets: every control at least 44 px tall
    small = page.evaluate("""() => [...document.querySelectorAll('#app-view button, #app-view a.btn, #app-view select, #app-view input:not([type=checkbox]), #app-view label.check, #app-view summary')]
        .filter(el => el.offsetParent !== null && el.getBoundingClientRect().height < 44)
        .map(el => el.outerHTML.slice(0, 80))""")
    assert small == []

    page.click("#hide-button")  # one tap to a neutral screen
    assert page.is_visible("#neutral-view") and not page.is_visible("#app-view")
    assert page.title() == "Cabin Notes"
    assert _audit(page) == []
    page.click("#unhide-button")
    assert page.is_visible("#app-view")
