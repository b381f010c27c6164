"""The session cookie: Flask's signed cookie, `Secure` whenever the request
came over HTTPS, never renewed on a static file's answer (which caches may
keep and give to anyone), and no work for requests that carry none.

Flask builds a signing serializer (a key derivation) on every request before
it looks for the cookie; a tablet's API requests never carry one, and each
paid for that on the intake's hot path. The answer is the same: an empty,
new session.
"""
from __future__ import annotations

from flask import Flask, Request, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions; no cookie, no serializer."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key or self.get_cookie_name(app) in request.cookies:
            return super().open_session(app, request)
        return self.session_class()

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        # A static file's answer may be kept by a shared cache: it must not
        # carry anyone's session, and it changes none.
        if request.path.startswith("/static/") and not session.modified:
            return False
        return super().should_set_cookie(app, session)
