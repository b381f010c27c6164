"""The session cookie: Flask's signed cookie, `Secure` whenever the request
came over HTTPS, and no work for requests that carry none.

Flask builds a signing serializer (a key derivation) on every request before
it looks for the cookie; a tablet's API requests never carry one, and each
paid for that on the intake's hot path. The answer is the same: an empty,
new session.
"""
from __future__ import annotations

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; no cookie, no serializer."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key or self.get_cookie_name(app) in request.cookies:
            return super().open_session(app, request)
        return self.session_class()
