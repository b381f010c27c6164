"""The officers' flight board in Chromium: alerts on what is urgent without
a reload (banner, title, new mark; notification and sound only once the
officer allowed them, remembered per browser), and every staff page readable
on a tablet without sideways scrolling."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from crewreport.client import Client
from crewreport.times import stamp
from tests.e2e.harness import PASSWORD, LiveServer, officer_page, poll

pytestmark = pytest.mark.e2e

# Records the titles of the notifications the page makes, and still makes them.
NOTIFICATION_SPY = """
window.__notified = [];
if ('Notification' in window) {
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) { super(title, options); window.__notified.push(title); }
  };
}
"""
BANNER_SHOWN = "() => !document.getElementById('board-alert').hidden"
ADULT = [{"role": "possible_victim", "age_range": "25_39"}]


def crew_client(server: LiveServer, label: str) -> Client:
    client = Client(server.url)
    client.sign_in("demo-crew", PASSWORD)
    client.enroll(label)
    return client


def send(client: Client, flight: str, minutes: float, urgency: str = "routine", **body: Any) -> str:
    """Deliver one report over real HTTP; its id."""
    now = datetime.now(UTC)
    fields = {"flight": flight, "dep": "ACC", "arr": "LHR", "urgency": urgency,
              "sta": stamp(now + timedelta(minutes=minutes))}
    content = {"observed_at": stamp(now), "indicators": [], "people": ADULT, "narrative": "Board test.",
               "captain_informed": False, "reporter": {"crew_id": "B1"}, **body}
    env = client.envelope(fields, content)
    status, answer = client.post_report(env)
    assert status == 201, answer
    return str(client.verify_receipt(answer)["id"])


def wait_listed(officer: Any, report_id: str) -> None:
    poll(officer, "(id) => !!document.querySelector(`#queue [data-report-id=\"${id}\"]`)", arg=report_id,
         timeout=20, message=f"report {report_id} on the open board")


def test_urgent_arrivals_alert_the_open_board(browser: Any, server: LiveServer) -> None:
    crew = crew_client(server, "board alerts tablet")
    officer = officer_page(browser, server, permissions=["notifications"])
    ctx = officer.context
    ctx.add_init_script(NOTIFICATION_SPY)
    errors: list[Any] = []
    officer.on("pageerror", lambda exc: errors.append(exc))
    try:
        officer.reload()
        officer.evaluate("() => { window.__sameDocument = 'yes'; }")
        title = officer.title()
        assert not officer.is_checked("#alert-sound")  # off by default

        quiet = send(crew, "ZZ501", 5 * 60)  # routine, adult, lands in 5 h: listed, no alert
        wait_listed(officer, quiet)
        assert officer.evaluate(BANNER_SHOWN) is False and officer.title() == title

        urgent = send(crew, "ZZ202", 14, urgency="immediate")
        wait_listed(officer, urgent)
        poll(officer, BANNER_SHOWN, timeout=5, message="the alert banner")
        assert officer.evaluate("() => window.__sameDocument") == "yes"  # no reload
        banner = officer.locator("#board-alert")
        assert "Immediate report: ZZ202" in banner.inner_text()
        assert banner.locator("time").inner_text() in ("lands in 13 min", "lands in 14 min")
        assert officer.title().startswith("(!) ZZ202 lands in 1") and officer.title().endswith(title)
        card = officer.locator('#queue [data-flight="ZZ202"]')
        assert card.get_attribute("data-new") == "true" and "is-new" in (card.get_attribute("class") or "")
        assert officer.evaluate("() => window.__notified") == []  # not allowed yet
        assert banner.get_attribute("data-sounded") is None
        officer.click("[data-alert-dismiss]")
        assert officer.evaluate(BANNER_SHOWN) is False and officer.title() == title

        # Allowed once, remembered in this browser across a reload; nothing else stored.
        officer.check("#alert-sound")
        officer.reload()
        assert officer.is_checked("#alert-sound")
        assert officer.evaluate("() => Object.entries(localStorage)") == [["crewreport.board.alerts", "on"]]

        child = send(crew, "ZZ305", 10 * 60, child_involved=True)
        wait_listed(officer, child)
        poll(officer, BANNER_SHOWN, timeout=5, message="the child alert")
        assert "Report involving a child: ZZ305" in banner.inner_text()
        assert officer.evaluate("() => window.__notified") == ["Report involving a child: ZZ305"]
        assert banner.get_attribute("data-sounded") == "true"
        officer.click("[data-alert-dismiss]")

        soon = send(crew, "ZZ410", 40)  # routine, adult, inside the 60-minute window
        wait_listed(officer, soon)
        poll(officer, BANNER_SHOWN, timeout=5, message="the landing-soon alert")
        assert "New report, landing soon: ZZ410" in banner.inner_text()

        officer.uncheck("#alert-sound")
        assert officer.evaluate("() => Object.keys(localStorage)") == []
        assert errors == []
    finally:
        ctx.close()


def test_only_reports_received_since_the_last_look_alert(browser: Any, server: LiveServer) -> None:
    """An Immediate child report received hours ago, closed, then reopened on
    its flight that landed 3 h ago comes back onto the board: no alert. One
    received after the board was loaded still alerts, on a view the officer
    never looked at before (no last-look time)."""
    crew = crew_client(server, "board arrivals tablet")
    old = send(crew, "ZZ611", 30, urgency="immediate", child_involved=True)
    [was] = server.db_rows("SELECT r.received_at, r.sta, f.sta AS flight_sta, f.id AS flight_id"
                           " FROM report r JOIN flight f ON f.id = r.flight_id WHERE r.id = ?", (old,))
    long_ago = datetime.now(UTC) - timedelta(hours=4)
    landed = stamp(long_ago + timedelta(hours=1))
    assert server.db_change("UPDATE report SET received_at = ?, status_changed_at = ?, sta = ?,"
                            " status = 'no_further_action', closed_at = ? WHERE id = ?",
                            (stamp(long_ago), landed, landed, landed, old)) == 1
    assert server.db_change("UPDATE flight SET sta = ? WHERE id = (SELECT flight_id FROM report WHERE id = ?)",
                            (landed, old)) == 1
    officer = officer_page(browser, server)
    try:
        officer.goto("/triage/?arr=LHR")
        assert officer.get_attribute("#queue", "data-since") == ""  # a first look at this view
        assert officer.locator(f'#queue [data-report-id="{old}"]').count() == 0
        title = officer.title()

        assert server.db_change("UPDATE report SET status = 'assessing', closed_at = NULL WHERE id = ?", (old,)) == 1
        wait_listed(officer, old)
        assert officer.evaluate(BANNER_SHOWN) is False and officer.title() == title
        line = officer.locator(f'#queue [data-report-id="{old}"]')
        assert "just-arrived" not in (line.get_attribute("class") or "")
        assert officer.inner_text("#queue-status") == ""

        new = send(crew, "ZZ612", 50, urgency="immediate")
        wait_listed(officer, new)
        poll(officer, BANNER_SHOWN, timeout=5, message="the alert for the new report")
        banner = officer.locator("#board-alert")
        assert "Immediate report: ZZ612" in banner.inner_text() and "more" not in banner.inner_text()
        assert banner.get_attribute("role") == "alert"
        assert officer.title().startswith("(!) ZZ612 ")
        assert "just-arrived" in (officer.locator(f'#queue [data-report-id="{new}"]').get_attribute("class") or "")
        assert officer.inner_text("#queue-status") == "1 new report"
    finally:
        officer.context.close()
        # As it was received: the later tests' pages list no landed flight of this test's.
        server.db_change("UPDATE report SET received_at = ?, status_changed_at = ?, sta = ?, status = 'received',"
                         " closed_at = NULL WHERE id = ?", (was["received_at"], was["received_at"], was["sta"], old))
        server.db_change("UPDATE flight SET sta = ? WHERE id = ?", (was["flight_sta"], was["flight_id"]))


WIDE = "W" * 120  # one long unbroken word
OVERFLOW = """() => {
  const doc = document.documentElement;
  const scrollers = [...document.querySelectorAll('body *')].filter((el) => {
    const style = getComputedStyle(el);
    return ['auto', 'scroll'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1;
  }).map((el) => el.tagName + '#' + el.id + '.' + el.className);
  return {page: doc.scrollWidth - doc.clientWidth, scrollers};
}"""


def test_no_staff_page_scrolls_sideways_on_a_tablet(browser: Any, server: LiveServer) -> None:
    """At a tablet's width, held either way (each person signs in once: a
    second sign-in within the minute waits for a fresh authenticator code)."""
    crew = crew_client(server, "Tablet-" + WIDE[:90])
    report_id = send(crew, "ZZ9999", 30, urgency="immediate", narrative=f"Long {WIDE} word in the narrative.",
                     people=[{"role": "possible_victim", "seat": "14C", "age_range": "12_17",
                              "description": f"Red coat {WIDE}"}],
                     indicators=["docs_held_by_other", "child_with_unrelated_adult"], languages=[WIDE[:40]])
    for _ in range(3):
        send(crew, "ZZ9999", 30)
    flight_id = server.db_rows("SELECT flight_id FROM report WHERE id = ?", (report_id,))[0]["flight_id"]
    pages = {
        "demo-officer": ["/triage/", "/triage/?status=any", f"/triage/reports/{report_id}",
                         f"/triage/reports/{report_id}/nrm", f"/triage/flights/{flight_id}", "/no-such-page"],
        "demo-security": ["/review/", f"/review/reports/{report_id}", "/review/crew", "/triage/"],
        "demo-admin": ["/admin/", f"/admin/reports/{report_id}"],
    }
    problems = []
    for username, paths in pages.items():
        page = officer_page(browser, server, username, next_path=paths[0])
        try:
            for width, height in ((800, 1280), (1024, 768)):
                page.set_viewport_size({"width": width, "height": height})
                for path in paths:
                    page.goto(path)
                    measured = page.evaluate(OVERFLOW)
                    if measured["page"] > 0 or measured["scrollers"]:
                        problems.append(f"{username} {path} at {width}x{height}: {measured}")
        finally:
            page.context.close()
    assert not problems, "\n".join(problems)
