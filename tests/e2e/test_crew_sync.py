"""Delivery over a slow link costs no round trip it does not need: the
tablet's device check runs beside a delivery, never before it."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    poll,
    sign_in,
    submit,
    wait_enrolled,
    wait_ready,
    wait_states,
)

pytestmark = pytest.mark.e2e

# The device check is due before every pass (as after a flight longer than its interval).
CHECK_ALWAYS_DUE = "window.__CABIN_NOTES_CONFIG = {backoffBase: 500, backoffMax: 1500, deviceCheckInterval: 1};"


def is_device_check(request: Any) -> bool:
    return request.method == "GET" and "/api/v1/devices/" in request.url


@pytest.fixture
def page_only(browser: Any, server: LiveServer) -> Iterator[Any]:
    """A context without service workers: the page's own delivery, not Background Sync's."""
    ctx = browser.new_context(base_url=server.url, service_workers="block")
    ctx.add_init_script(CHECK_ALWAYS_DUE)
    ctx.set_default_timeout(20000)
    yield ctx
    ctx.close()


def test_a_note_is_delivered_while_the_device_check_is_still_unanswered(page_only: Any, server: LiveServer) -> None:
    context = page_only
    page = context.new_page()
    checks_done: list[str] = []
    context.on("requestfinished", lambda r: checks_done.append(r.url) if is_device_check(r) else None)
    sign_in(page, server)
    wait_enrolled(page)
    wait_ready(page)
    poll(page, "() => true", lambda _: len(checks_done) >= 1, message="the start's device check answered")

    held: list[Any] = []  # device checks from now on get no answer until the note is delivered
    context.route("**/api/v1/devices/*", lambda route: held.append(route) if is_device_check(route.request)
                  else route.continue_())
    fill_minimal(page, "Passenger in 12C keeps looking at the man in 12D before answering.")
    submit(page, 1)
    try:
        wait_states(page, "delivered", 1, timeout=20)
        assert held, "the pass asked about the device (it was due)"
    finally:
        for route in held:
            route.continue_()
        context.unroute("**/api/v1/devices/*")
