"""The HTTP client's staff sign-in (`send-test-report`, the served tests):
a second-factor code is good once, so a client that signs in a third time
within one step waits for a fresh code rather than failing."""
from __future__ import annotations

from typing import Any

import pyotp
import pytest

from crewreport import client as client_module
from crewreport.client import Client

from .helpers import TOTP_SECRET

FORM = '<form id="totp-form"><input name="csrf_token" type="hidden" value="t"></form>'
LOGIN = '<form><input name="csrf_token" type="hidden" value="t"></form>'


class FakeServer:
    """Takes each code once, as the real one does; the clock is the test's."""

    def __init__(self, used: set[str], start: float) -> None:
        self.used, self.clock = used, start
        self.codes: list[str] = []
        self.signed_in = False

    def time(self) -> float:
        return self.clock

    def sleep(self, seconds: float) -> None:
        self.clock += seconds

    def request(self, method: str, path: str, form: dict[str, str] | None = None, **_: Any) -> tuple[int, Any]:
        if path == "/auth/session":
            return 200, {"signed_in": self.signed_in}
        if method == "GET":
            return 200, LOGIN
        if form and "code" in form:
            self.codes.append(form["code"])
            totp = pyotp.TOTP(TOTP_SECRET)
            good = form["code"] not in self.used and totp.verify(form["code"], for_time=int(self.clock), valid_window=1)
            self.used.add(form["code"])
            self.signed_in = good
            return 200, "signed in" if good else FORM
        return 200, FORM


@pytest.mark.parametrize("used_steps", [0, 1, 2])
def test_staff_sign_in_waits_for_a_fresh_code_when_the_step_is_spent(monkeypatch: pytest.MonkeyPatch,
                                                                      used_steps: int) -> None:
    start = 1_800_000_010.0  # 10 s into a step
    totp = pyotp.TOTP(TOTP_SECRET)
    server = FakeServer({totp.at(start + 30 * k) for k in range(used_steps)}, start)
    monkeypatch.setattr(client_module.time, "time", server.time)
    monkeypatch.setattr(client_module.time, "sleep", server.sleep)
    c = Client("http://127.0.0.1:9")
    monkeypatch.setattr(c, "request", server.request)
    c.sign_in("demo-officer", "pw", TOTP_SECRET)
    assert len(server.codes) == used_steps + 1
    # a fresh code only after waiting for its step (never a wait when one was free)
    assert server.clock == (start if used_steps < 2 else start + 20.5)
