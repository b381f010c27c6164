"""Issue 3, test 1: enroll, lose the server, report offline, get it back,
and see both reports delivered exactly once, sealed to the text typed."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    open_report,
    sign_in,
    submit,
    wait_enrolled,
    wait_ready,
    wait_service_worker,
    wait_states,
)

pytestmark = pytest.mark.e2e


def test_offline_reports_are_delivered_once_when_the_server_returns(page: Any, server: LiveServer) -> None:
    sign_in(page, server)
    wait_enrolled(page)
    wait_service_worker(page)

    server.stop()
    page.reload()  # the app still loads, from the service worker's cache
    wait_ready(page)
    assert page.title() == "Cabin Notes"

    typed = {
        "ZZ101": "Girl about 14 in 32B does not know where she is going; man in 32C holds both passports.",
        "ZZ102": "Young man in 14A is scared, says his employer keeps his papers — 乗客は怯えている.",
    }
    for n, (flight, narrative) in enumerate(typed.items(), start=1):
        fill_minimal(page, narrative, flight=flight)
        submit(page, n)
    states = wait_states(page, "queued", 2)
    assert {s[1] for s in states} == {"queued"}

    server.start()
    delivered = wait_states(page, "delivered", 2, timeout=30)
    assert all("Reference" in text for _, _, text in delivered)

    for report_id, _, text in delivered:
        rows = server.db_rows("SELECT id, reference FROM report WHERE id = ?", (report_id,))
        assert len(rows) == 1
        assert rows[0]["reference"] in text
        header, body = open_report(server, report_id)
        assert body["narrative"] == typed[header["flight"]]
        assert body["people"] == [] and body["indicators"] == []
        assert body["captain_informed"] is False
        assert body["reporter"] == {"crew_id": "demo-crew"}
    # the queued copies are gone; only the receipts stay
    records = page.evaluate("async () => (await import('/static/js/outbox/store.js')).listReports()")
    assert all(r["state"] == "delivered" and "envelope" not in r and r["receipt"]["reference"] for r in records)
