"""axe-core finds no serious or critical violations on the staff pages
(sign-in and its second-factor steps, triage, review, admin, an error page), in the dark default and in
the light `prefers-color-scheme` variant of static/css/staff.css."""
from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pyotp
import pytest

from crewreport.client import Client
from crewreport.times import stamp
from tests.e2e.harness import PASSWORD, TOTP_SECRET, LiveServer

pytestmark = pytest.mark.e2e

SERIOUS = ("serious", "critical")
# Page backgrounds of staff.css: proof that the emulated scheme took effect.
BACKGROUNDS = {"dark": "rgb(15, 20, 24)", "light": "rgb(245, 247, 248)"}
# The whole rule set in the dark default; in the light variant only what a
# colour scheme can change (the markup is the same).
COLOUR_RULES = ["color-contrast", "link-in-text-block"]
# Started without waiting (the pages of the three users are audited side by
# side), collected with AXE_RESULT. Loads axe on the page first if need be.
AXE_START = """(rules) => {
  const loaded = typeof axe !== 'undefined' ? Promise.resolve() : new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/static/vendor/axe.min.js';
    script.onload = resolve;
    script.onerror = () => reject(new Error('axe did not load'));
    document.head.append(script);
  });
  const options = {resultTypes: ['violations']};
  if (rules) options.runOnly = {type: 'rule', values: rules};
  window.__axeResult = loaded.then(() => axe.run(document, options)).then(r => r.violations.map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')
      + (n.failureSummary ? ' :: ' + n.failureSummary.replace(/\\s+/g, ' ') : ''))})));
}"""
AXE_RESULT = "() => window.__axeResult"


def deliver_report(url: str) -> str:
    """One report from demo-crew over real HTTP, with people (a child among
    them), indicators and a shared identity, so every part of the report
    pages is shown."""
    client = Client(url)
    client.sign_in("demo-crew", PASSWORD)
    client.enroll("a11y tablet")
    now = datetime.now(UTC)
    fields = {"flight": "ZZ88", "dep": "LOS", "arr": "LHR", "urgency": "immediate",
              "sta": stamp(now + timedelta(hours=3))}
    body = {"observed_at": stamp(now),
            "indicators": ["docs_held_by_other", "no_docs"],
            "people": [{"role": "possible_victim", "seat": "14C", "sex": "female", "age_range": "12_17",
                        "description": "Quiet, red coat"},
                       {"role": "companion", "seat": "14D", "age_range": "40_59"}],
            "narrative": "Accessibility check of the staff pages.", "captain_informed": True,
            "languages": ["French"], "documents_held_by": "companion", "phase_of_flight": "cruise",
            "share_identity_with_airline": True, "reporter": {"crew_id": "A11Y1", "name": "Test Crew"}}
    report_id = str(uuid.uuid4())
    status, answer = client.post_report(client.envelope(fields, body, report_id))
    assert status == 201, answer
    return report_id


def session_cookies(url: str, username: str) -> list[dict[str, Any]]:
    """Sign in over HTTP (quicker than through the form, and the sign-in page
    is audited on its own) and return the cookies for a browser context."""
    client = Client(url)
    client.sign_in(username, PASSWORD, TOTP_SECRET)
    return [{"name": c.name, "value": c.value or "", "url": url} for c in client.jar]


class Auditor:
    """Runs axe on a page in both colour schemes and collects every violation."""

    def __init__(self) -> None:
        self.found: dict[str, list[dict[str, Any]]] = {}

    def audit(self, *named: tuple[Any, str]) -> None:
        """Audit (page, name) pairs, the pages side by side."""
        for scheme, rules in (("dark", None), ("light", COLOUR_RULES)):
            for page, _ in named:
                page.emulate_media(color_scheme=scheme)
                assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") == BACKGROUNDS[scheme]
                page.evaluate(AXE_START, rules)
            for page, name in named:
                violations = page.evaluate(AXE_RESULT)
                if violations:
                    self.found[f"{name} [{scheme}]"] = violations
        for page, _ in named:
            page.emulate_media(color_scheme="dark")

    def serious(self) -> dict[str, list[str]]:
        return {where: [v["id"] for v in vs if v["impact"] in SERIOUS]
                for where, vs in self.found.items() if any(v["impact"] in SERIOUS for v in vs)}


def password_step(page: Any, username: str) -> None:
    """Through the password step of the sign-in form, up to `#totp-form`."""
    page.goto("/auth/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_selector("#totp-form")
    page.wait_for_load_state("load")  # the style sheet too, before axe reads colours


def new_page(browser: Any, server: LiveServer, cookies: list[dict[str, Any]] | None = None) -> Any:
    ctx = browser.new_context(base_url=server.url, color_scheme="dark")
    ctx.set_default_timeout(20000)
    if cookies:
        ctx.add_cookies(cookies)
    return ctx.new_page()


def visit(auditor: Auditor, *visits: tuple[Any, str, str, int]) -> None:
    """Open (page, path, name, status) for each page, then audit them side by side."""
    for page, path, _, status in visits:
        response = page.goto(path)
        assert response is not None and response.status == status, (path, response and response.status)
        assert "/auth/login" not in page.url, f"{path}: not signed in"
    auditor.audit(*[(page, name) for page, _, name, _ in visits])


def test_staff_pages_have_no_serious_or_critical_accessibility_violations(browser: Any, server: LiveServer) -> None:
    auditor = Auditor()
    pages: list[Any] = []
    server.flask("create-user", "a11y-new-admin", "--role", "admin", "--password", PASSWORD)
    try:
        # Over HTTP in the background, one after another (argon2 sign-ins in
        # parallel only slow each other down), while the browser audits.
        with ThreadPoolExecutor(1) as pool:
            delivered = pool.submit(deliver_report, server.url)
            cookies = {u: pool.submit(session_cookies, server.url, u)
                       for u in ("demo-officer", "demo-security", "demo-admin")}
            officer = new_page(browser, server)
            pages.append(officer)
            officer.goto("/auth/login")
            auditor.audit((officer, "sign-in"))
            password_step(officer, "demo-admin")  # the code is never sent: demo-admin signs in over HTTP
            auditor.audit((officer, "second-factor code"))
            enrol = new_page(browser, server)
            pages.append(enrol)
            password_step(enrol, "a11y-new-admin")
            assert enrol.locator("main figure svg").count() == 1
            auditor.audit((enrol, "second-factor enrolment"))
            enrol.fill('#totp-form input[name="code"]', pyotp.TOTP(enrol.locator("#totp-secret").inner_text()).now())
            enrol.click('#totp-form button[type="submit"]')
            enrol.wait_for_selector("#recovery-codes")
            enrol.wait_for_load_state("load")
            auditor.audit((enrol, "recovery codes"))
            report_id = delivered.result()
            officer.context.add_cookies(cookies["demo-officer"].result())
            security = new_page(browser, server, cookies["demo-security"].result())
            pages.append(security)
            admin = new_page(browser, server, cookies["demo-admin"].result())
            pages.append(admin)
        device_id = server.db_rows("SELECT device_id FROM report WHERE id = ?", (report_id,))[0]["device_id"]
        # Its flight landed hours ago: the board and the review list draw a
        # landed flight's card differently, and it must stay as readable.
        server.db_change("UPDATE flight SET sta = ? WHERE id = (SELECT flight_id FROM report WHERE id = ?)",
                         (stamp(datetime.now(UTC) - timedelta(hours=3)), report_id))

        visit(auditor, (officer, "/triage/", "triage queue", 200),
              (security, "/review/", "review list", 200),
              (admin, "/admin/?report=no-such-report", "admin audit (search error)", 404))
        assert officer.locator(f'#queue [data-report-id="{report_id}"]').count() == 1

        officer.goto(f"/triage/reports/{report_id}")
        officer.click("#lock button")  # take the lock: the page comes back with a flash and the lock banner
        officer.wait_for_selector("#lock.mine")
        assert officer.locator("main .flash").count() == 1
        visit(auditor, (security, f"/review/reports/{report_id}", "review report", 200),
              (admin, f"/admin/reports/{report_id}", "admin report trail", 200))
        auditor.audit((officer, "triage report (locked, flash)"))

        visit(auditor, (officer, f"/triage/reports/{report_id}/nrm", "NRM sheet", 200),
              (security, "/review/crew", "crew and devices", 200),
              (admin, "/no-such-page", "404 page", 404))
        assert admin.locator("main h1").inner_text() == "Page not found"  # templates/error.html
        visit(auditor, (security, f"/review/devices/{device_id}/revoke", "revoke confirmation", 200),
              (admin, "/admin/users", "staff second factors", 200))
        flight_id = server.db_rows("SELECT flight_id FROM report WHERE id = ?", (report_id,))[0]["flight_id"]
        visit(auditor, (officer, f"/triage/flights/{flight_id}", "flight page", 200),
              (security, f"/review/reports/{report_id}/flight", "review flight page", 200))
        visit(auditor, (security, "/triage/", "403 page", 403),
              (admin, "/auth/recovery-codes", "new recovery codes", 200))
    finally:
        for page in pages:
            page.context.close()

    assert not auditor.serious(), json.dumps(auditor.found, indent=1, ensure_ascii=False)
