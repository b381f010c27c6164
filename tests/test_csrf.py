"""CSRF on: sign-in, sign-out and enrollment need the token; the intake,
whose credential is the envelope's signature, does not."""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope

from .helpers import PASSWORD, AuthActions, signed_in, totp_code


def page_token(client: FlaskClient, path: str = "/auth/login") -> str:
    html = client.get(path).get_data(as_text=True)
    meta = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert meta, "every HTML page carries the CSRF meta tag"
    field = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    return field.group(1) if field else meta.group(1)


def login(client: FlaskClient, username: str, token: str | None) -> Any:
    data = {"username": username, "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    return client.post("/auth/login", data=data)


def new_jwk() -> dict[str, str]:
    return envelope.jwk_from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())


def test_sign_in_without_token_refused(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    client.get("/auth/login")
    resp = login(client, "officer", None)
    assert resp.status_code == 400
    assert not signed_in(client)
    resp = login(client, "officer", "forged-token")
    assert resp.status_code == 400
    assert not signed_in(client)


def test_sign_in_with_token_from_the_page(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    resp = login(client, "crew", page_token(client))
    assert resp.status_code == 302
    assert signed_in(client)


def test_the_code_step_needs_the_token_too(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    code_page = login(client, "officer", page_token(client))
    assert code_page.status_code == 200 and 'id="totp-form"' in code_page.get_data(as_text=True)
    resp = client.post("/auth/login", data={"code": totp_code()})
    assert resp.status_code == 400 and not signed_in(client)
    assert AuthActions(client).code_step(code_page).status_code == 302
    assert signed_in(client)


def test_token_from_another_session_refused(csrf_app: Flask) -> None:
    victim, attacker = csrf_app.test_client(), csrf_app.test_client()
    stolen = page_token(attacker)
    victim.get("/auth/login")
    assert login(victim, "officer", stolen).status_code == 400
    assert not signed_in(victim)


def crew_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert login(client, "crew", page_token(client)).status_code == 302
    return client


def test_enrollment_needs_header_token(csrf_app: Flask) -> None:
    client = crew_client(csrf_app)
    body = {"public_key": new_jwk(), "label": "tablet"}
    resp = client.post("/api/v1/devices", json=body)
    assert resp.status_code == 400
    assert resp.is_json, resp.get_data(as_text=True)[:200]
    assert resp.get_json()["error"]["code"] == "csrf_failed"
    assert resp.get_json()["error"]["message"]
    resp = client.post("/api/v1/devices", json=body, headers={"X-CSRFToken": "nonsense"})
    assert resp.status_code == 400 and resp.is_json
    token = client.get("/auth/session").get_json()["csrf_token"]
    resp = client.post("/api/v1/devices", json=body, headers={"X-CSRFToken": token})
    assert resp.status_code == 201, resp.get_json()


def test_intake_is_exempt_and_cookieless(csrf_app: Flask, make_envelope: Callable[..., dict[str, Any]]) -> None:
    client = csrf_app.test_client()
    resp = client.post("/api/v1/reports", json=make_envelope())
    assert resp.status_code == 201, resp.get_json()
    resp = client.post("/api/v1/reports/batch", json={"envelopes": [make_envelope()]})
    assert resp.status_code == 200
    assert "receipt" in resp.get_json()["results"][0]
    assert client.get_cookie("crewreport_session") is None
    assert "Set-Cookie" not in resp.headers


def test_logout_requires_token(csrf_app: Flask) -> None:
    client = crew_client(csrf_app)
    resp = client.post("/auth/logout")
    assert resp.status_code == 400
    assert signed_in(client)
    token = client.get("/auth/session").get_json()["csrf_token"]
    resp = client.post("/auth/logout", data={"csrf_token": token})
    assert resp.status_code == 302
    assert not signed_in(client)


def test_password_change_requires_token(csrf_app: Flask) -> None:
    client = crew_client(csrf_app)
    resp = client.post("/auth/password", data={"current_password": PASSWORD, "new_password": "x" * 20})
    assert resp.status_code == 400
    assert signed_in(client)


# Over HTTPS Flask-WTF also requires a same-origin Referer on every form post
# (WTF_CSRF_SSL_STRICT, kept on): the pages' Referrer-Policy must let a
# browser send one to its own origin, and only there.
HTTPS = "https://localhost"


def browser_referer(page: Any, url: str) -> dict[str, str]:
    """The Referer a browser sends on a same-origin request from `page`: none
    when its policy (header or meta tag) is no-referrer."""
    policies = [page.headers.get("Referrer-Policy", "")]
    policies += re.findall(r'<meta name="referrer" content="([^"]+)"', page.get_data(as_text=True))
    return {} if "no-referrer" in policies else {"Referer": url}


def form_token(page: Any) -> str:
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.get_data(as_text=True))
    assert found, "the form carries its token"
    return found.group(1)


def test_forms_work_over_https_as_a_browser_posts_them(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    page = client.get("/auth/login", base_url=HTTPS)
    token = form_token(page)
    form = {"username": "crew", "password": PASSWORD, "csrf_token": token}
    # The strict check stays on: a post with no Referer at all is refused...
    assert client.post("/auth/login", base_url=HTTPS, data=form).status_code == 400
    # ...and the one a browser sends from the page goes through.
    resp = client.post("/auth/login", base_url=HTTPS, data=form, headers=browser_referer(page, HTTPS + "/auth/login"))
    assert resp.status_code == 302, resp.get_data(as_text=True)[:300]
    assert client.get("/auth/session", base_url=HTTPS).get_json()["signed_in"]
    # Nothing of a page's address leaves the site.
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_enrollment_works_over_https_from_the_crew_app(csrf_app: Flask) -> None:
    client = csrf_app.test_client()
    page = client.get("/auth/login", base_url=HTTPS)
    token = form_token(page)
    assert client.post("/auth/login", base_url=HTTPS, headers={"Referer": HTTPS + "/auth/login"},
                       data={"username": "crew", "password": PASSWORD, "csrf_token": token}).status_code == 302
    shell = client.get("/", base_url=HTTPS)
    assert shell.status_code == 200
    token = client.get("/auth/session", base_url=HTTPS).get_json()["csrf_token"]
    body = {"public_key": new_jwk(), "label": "tablet"}
    refused = client.post("/api/v1/devices", base_url=HTTPS, json=body, headers={"X-CSRFToken": token})
    assert refused.status_code == 400 and refused.get_json()["error"]["code"] == "csrf_failed"
    resp = client.post("/api/v1/devices", base_url=HTTPS, json=body,
                       headers={"X-CSRFToken": token, **browser_referer(shell, HTTPS + "/")})
    assert resp.status_code == 201, resp.get_json()


def test_a_new_session_carries_its_csrf_token_from_sign_in(app: Flask) -> None:
    """The crew app asks /auth/session from more than one place at once after
    sign-in (the crew shell no longer makes a token): each answer must give the
    same token, or the enrolment posts one its cookie no longer holds (WebKit
    in full runs: "The CSRF token is missing or stale")."""
    client = app.test_client()
    assert AuthActions(client).login("crew").status_code == 302
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None
    tokens = []
    for _ in range(2):  # two requests sent at once, each with the cookie of the sign-in
        tab = app.test_client()
        tab.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie.value)
        tokens.append(tab.get("/auth/session").get_json()["csrf_token"])
    assert tokens[0] == tokens[1]
