"""Requests no browser of ours sends but anyone can: a form field sent as a
file part (or in a JSON body), a Host header that cannot be a name, ids past
SQLite's integer range, and a method a route does not take. Each gets a
clean 4xx in the app's words, never a 500, and nothing is stored."""
from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .helpers import AuthActions, Make, count, deliver, events, row, signed_in, text


class AsFile(str):
    """A form value sent as a multipart file part: what a form field must never be read as."""


def multipart(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each AsFile value as a file part of its own (made for each
    request: a test client closes the files it sent)."""
    return {name: (io.BytesIO(value.encode()), "field.txt") if isinstance(value, AsFile) else value
            for name, value in data.items()}


def crew_id(app: Flask) -> int:
    return count(app, "SELECT id FROM user WHERE username = 'crew'")


# (who signs in, path, form data with the file part, the field's own message, what must not have changed)
FileCase = tuple[str | None, Callable[[Flask, str], str], dict[str, Any], str, Callable[[Flask, str], Any]]
FILE_CASES: dict[str, FileCase] = {
    "login username": (None, lambda app, rid: "/auth/login",
                       {"username": AsFile("crew"), "password": "correct horse battery staple"},
                       "This field is required.", lambda app, rid: count(app, "SELECT count(*) FROM audit_event")),
    "note text": ("officer", lambda app, rid: f"/triage/reports/{rid}/notes", {"text": AsFile("a note")},
                  "A note cannot be empty.", lambda app, rid: count(app, "SELECT count(*) FROM report_note")),
    "status reason": ("officer", lambda app, rid: f"/triage/reports/{rid}/status",
                      {"status": "in_review", "reason": AsFile("because")},
                      "Give a reason for the change.", lambda app, rid: row(app, rid)["status"]),  # type: ignore[index]
    "own new password": ("crew", lambda app, rid: "/auth/password",
                         {"current_password": "correct horse battery staple",
                          "new_password": AsFile("a brand new password")},
                         "This field is required.", lambda app, rid: len(events(app, "password_changed"))),
    "crew username": ("security", lambda app, rid: "/review/crew",
                      {"username": AsFile("new-crew"), "password": "long enough password"},
                      "This field is required.", lambda app, rid: count(app, "SELECT count(*) FROM user")),
    "crew password reset": ("security", lambda app, rid: f"/review/crew/{crew_id(app)}/password",
                            {"new_password": AsFile("a brand new password")},
                            "This field is required.", lambda app, rid: len(events(app, "password_reset"))),
}


@pytest.mark.parametrize("case", FILE_CASES)
def test_a_form_field_sent_as_a_file_is_a_missing_field(client: FlaskClient, app: Flask, auth: AuthActions,
                                                        make_envelope: Make, case: str) -> None:
    who, path, data, message, state = FILE_CASES[case]
    report_id = deliver(client, make_envelope)
    if who:
        auth.login(who)
    before = state(app, report_id)
    resp = client.post(path(app, report_id), data=multipart(data), content_type="multipart/form-data")
    assert resp.status_code in (200, 400), resp.status_code
    assert message in text(resp)
    assert state(app, report_id) == before
    if who is None:
        assert not signed_in(client)


@pytest.mark.parametrize("body", [{"username": 5, "password": 7}, {"username": ["crew"], "password": {"a": 1}}])
def test_a_form_posted_as_json_is_not_read(client: FlaskClient, app: Flask, body: dict[str, Any]) -> None:
    resp = client.post("/auth/login", json=body)
    assert resp.status_code == 200 and "This field is required." in text(resp)
    assert not signed_in(client)


BAD_HOSTS = ["a..b", "a" * 64, "a" * 64 + ".example", "."]
PAGES = ["/auth/login", "/", "/triage/", "/review/crew", "/nothing-here", "/static/css/staff.css", "/sw.js"]


@pytest.mark.parametrize("host", BAD_HOSTS, ids=["empty label", "long label", "long first label", "dot"])
def test_a_host_that_is_no_host_name_is_a_clean_400(csrf_app: Flask, host: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    client = csrf_app.test_client()
    answers = [client.get(path, headers={"Host": host}) for path in PAGES]
    # a form post without its token fails CSRF before routing is looked at: still the same 400
    answers.append(client.post("/auth/login", data={"username": "crew"}, headers={"Host": host}))
    for resp in answers:
        assert resp.status_code == 400, (resp.request.path, resp.status_code)
        assert resp.mimetype == "text/plain" and "Host header" in text(resp)
        assert resp.headers["X-Frame-Options"] == "DENY" and resp.headers["Cache-Control"] == "no-store"
    api = client.get("/api/v1/keys", headers={"Host": host})
    assert api.status_code == 400 and api.get_json()["error"]["code"] == "malformed"
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL") or r.exc_info]


@pytest.mark.parametrize("user_id", ["9223372036854775808", "9223372036854775807", "99999999999999999999",
                                     "1" + "0" * 400])
def test_an_id_past_the_stores_integers_is_not_found(client: FlaskClient, app: Flask, auth: AuthActions,
                                                     user_id: str) -> None:
    auth.login("security")
    resp = client.post(f"/review/crew/{user_id}/password", data={"new_password": "a brand new password"})
    assert resp.status_code == 404 and "Page not found" in text(resp)
    client.post("/auth/logout")
    auth.login("admin")
    resp = client.post(f"/admin/users/{user_id}/second-factor/reset")
    assert resp.status_code == 404 and "Page not found" in text(resp)
    assert events(app, "password_reset") == [] and events(app, "second_factor_reset") == []


def test_the_int_converter_still_takes_the_largest_store_integer(app: Flask) -> None:
    adapter = app.url_map.bind("localhost")
    largest = 2**63 - 1
    assert adapter.match(f"/admin/users/{largest}/second-factor/reset", method="POST")[1] == {"user_id": largest}
    assert adapter.build("admin.reset_second_factor", {"user_id": largest}) == \
        f"/admin/users/{largest}/second-factor/reset"


@pytest.mark.parametrize(("method", "path", "allowed", "mimetype"), [
    ("GET", "/api/v1/reports", {"POST", "OPTIONS"}, "application/json"),
    ("PUT", "/", {"GET", "HEAD", "OPTIONS"}, "text/html"),
    ("DELETE", "/auth/login", {"GET", "HEAD", "OPTIONS", "POST"}, "text/html"),
])
def test_method_not_allowed_says_which_are(client: FlaskClient, method: str, path: str, allowed: set[str],
                                           mimetype: str) -> None:
    resp = client.open(path, method=method)
    assert resp.status_code == 405
    assert set(resp.headers["Allow"].split(", ")) == allowed
    assert resp.mimetype == mimetype and len(resp.headers.getlist("Content-Type")) == 1
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
