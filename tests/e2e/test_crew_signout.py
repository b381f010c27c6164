"""Least privilege on an unattended tablet: once enrolled, the app signs the
web session out (the device key is all that reporting needs), and reports
still deliver."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import LiveServer, fill_minimal, poll, sign_in, submit, wait_enrolled, wait_states

pytestmark = pytest.mark.e2e

SESSION = "async () => (await fetch('/auth/session', {credentials: 'same-origin', cache: 'no-store'})).json()"


def test_enrollment_signs_the_web_session_out_and_reports_still_deliver(page: Any, server: LiveServer) -> None:
    sign_outs = server.db_rows("SELECT count(*) AS n FROM audit_event WHERE action = 'sign_out'")[0]["n"]
    sign_in(page, server)
    wait_enrolled(page)
    session = poll(page, SESSION, lambda s: s and s["signed_in"] is False, message="signed out after enrollment")
    assert "username" not in session
    assert server.db_rows("SELECT count(*) AS n FROM audit_event WHERE action = 'sign_out'")[0]["n"] == sign_outs + 1
    assert "signed out" in page.inner_text("#device-message")
    # staff pages need a sign-in again in this browser
    page.goto(server.url + "/auth/password")
    assert "/auth/login" in page.url

    page.goto(server.url + "/")
    wait_enrolled(page)
    fill_minimal(page, "Sent with the device key only.")
    submit(page, 1)
    report_id = wait_states(page, "delivered", 1)[0][0]
    assert server.db_rows("SELECT id FROM report WHERE id = ?", (report_id,))
    assert poll(page, SESSION)["signed_in"] is False
