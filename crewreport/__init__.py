"""crewreport: discreet, offline, end-to-end encrypted reports from cabin crew."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, render_template, request
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import BadHost, HTTPException

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
TEXT_SETTINGS = ("SECRET_KEY", "KEY_PASSPHRASE", "HOTLINE")
csrf = CSRFProtect()

# The crew app's CSP: no inline script, no third-party origin. `wasm-unsafe-eval`
# is not needed: @hpke/core uses WebCrypto only.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def asset_folder(name: str) -> Path:
    """`templates` or `static`: the copy a wheel carries inside the package (see
    setup.py), else the repository's own (a checkout or an editable install)."""
    shipped = PACKAGE / name
    return shipped if shipped.is_dir() else ROOT / name


def default_instance() -> str | None:
    """`instance/` at the root of a checkout; for an installed wheel, Flask's
    own default (`<prefix>/var/crewreport-instance`), never site-packages."""
    return str(ROOT / "instance") if not (PACKAGE / "templates").is_dir() else None


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Application factory (the flaskr layout): settings, store, blueprints."""
    instance = os.environ.get("CREWREPORT_INSTANCE") or default_instance()
    app = Flask(
        __name__,
        instance_path=os.path.abspath(instance) if instance else None,
        instance_relative_config=True,
        template_folder=str(asset_folder("templates")),
        static_folder=str(asset_folder("static")),
    )
    app.config.from_mapping(
        SECRET_KEY=None,
        DATABASE=os.path.join(app.instance_path, "crewreport.sqlite"),
        KEY_DIR=os.path.join(app.instance_path, "keys"),
        KEY_PASSPHRASE=None,
        # True: refuse to write or use private keys without KEY_PASSPHRASE
        # (intake answers 503, `serve` and the key commands exit).
        REQUIRE_KEY_PASSPHRASE=False,
        # Set by `serve` for its workers once it has shown the unencrypted-keys
        # warning itself, so the log says it once, not once per worker.
        KEY_WARNING_SHOWN=False,
        # An envelope of the largest report the schema allows (every field at
        # its limit in characters JSON escapes to 6 bytes, sealed twice, base64url) is about
        # 250 KiB; a batch request carries at most MAX_BATCH of them, and the
        # tablet splits its batches at about 2 MiB.
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        MAX_ENVELOPE_BYTES=320 * 1024,
        MAX_BATCH=100,
        HOTLINE="0300 123 7000",
        LANDING_WARNING_MINUTES=30,
        # The officers' board alerts on a new report for a flight landing
        # within this many minutes (as well as on Immediate and child reports).
        BOARD_ALERT_MINUTES=60,
        LOGIN_MAX_FAILURES=5,
        LOGIN_WINDOW_SECONDS=900,
        # The longest a tablet may stay offline with notes queued: a report
        # `created` longer ago than this is refused (`invalid_report`): a note
        # queued for months still counts. (A resend of a report purged since
        # is refused whatever its age: intake.purged.)
        MAX_OFFLINE_DAYS=365,
        LOCK_MINUTES=15,
        RETENTION_DAYS=365,
        # Whether GET /api/v1/keys and enrollment still list the P-256 (v1)
        # recipient keys. Turn off once every tablet seals version 2 (see
        # docs/protocol.md, version 2); the intake keeps accepting version 1 either way.
        PUBLISH_V1_KEYS=True,
        # Behind a TLS-terminating proxy, how many proxies to trust for the
        # client address and scheme (0: none). Sign-in throttling, the intake
        # rate limit and the Secure cookie flag all depend on getting this right.
        PROXY_COUNT=0,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="crewreport_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
    )
    if test_config is None:
        app.config.from_pyfile("config.py", silent=True)
        app.config.from_prefixed_env("CREWREPORT")
        # from_prefixed_env reads values as JSON: a passphrase "20250101" would
        # become an int and "0" or "false" a falsy value that silently turns key
        # encryption off. Secrets and phone numbers are always plain text.
        for name in TEXT_SETTINGS:
            if f"CREWREPORT_{name}" in os.environ:
                app.config[name] = os.environ[f"CREWREPORT_{name}"]
    else:
        app.config.from_mapping(test_config)
    os.makedirs(app.instance_path, mode=0o700, exist_ok=True)
    if not app.config["SECRET_KEY"]:
        app.config["SECRET_KEY"] = _instance_secret(app.instance_path)
    from . import logs

    logs.configure()

    csrf.init_app(app)

    from . import auth, cli, db, display, keys, ratelimit, static_files

    ratelimit.init_app(app)
    static_files.init_app(app)
    db.init_app(app)
    display.init_app(app)
    auth.init_app(app)
    keys.init_app(app)
    cli.init_app(app)

    from . import account, admin, api, crew, review, triage

    app.register_blueprint(auth.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(crew.bp)
    app.register_blueprint(review.bp)
    app.register_blueprint(triage.bp)
    app.register_blueprint(admin.bp)

    if app.config["PROXY_COUNT"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        count = int(app.config["PROXY_COUNT"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count)  # type: ignore[method-assign]
    app.after_request(security_headers)
    app.register_error_handler(HTTPException, error_page)
    from . import unavailable

    unavailable.init_app(app)
    return app


# Who each staff surface is for, in the words of the error page.
AUDIENCE = {"triage": "Border Force officers", "review": "airline security teams", "admin": "administrators",
            "crew": "cabin crew", "auth": "signed-in staff"}
ROLE_NAMES = {"crew": "cabin crew", "airline_security": "airline security", "border_force": "Border Force officer",
              "admin": "administrator"}


def error_page(exc: HTTPException) -> Any:
    """Errors as pages of the app (with its CSRF meta and navigation) in its
    own words; under /api/ in the API's JSON error shape, even when no route
    matched."""
    from . import api

    if request.path == "/api" or request.path.startswith("/api/"):
        return api.http_error(exc)
    if isinstance(request.routing_exception, BadHost):
        # A Host that is no host name (an empty label, one over 63 bytes):
        # Werkzeug cannot bind the URL map to it, so no page of the app (which
        # all build URLs) can be drawn. Whatever went wrong first, say that.
        return Response("Bad request: the Host header is not a valid host name.\n", 400, mimetype="text/plain",
                        headers={"Cache-Control": "no-store"})
    from flask_login import current_user

    from .auth import HOME

    signed_in = current_user.is_authenticated
    home = HOME[current_user.role] if signed_in else "auth.login"
    headers = api.exception_headers(exc)
    retry = None
    if exc.code == 429:
        retry = _retry_after(exc)
        headers = [(name, value) for name, value in headers if name.lower() != "retry-after"]
        headers.append(("Retry-After", str(retry)))
    return render_template("error.html", error=exc, home=home, retry_minutes=-(-retry // 60) if retry else None,
                           audience=AUDIENCE.get(request.blueprint or ""),
                           role_name=ROLE_NAMES.get(current_user.role) if signed_in else None), \
        exc.code or 500, headers


def _retry_after(exc: HTTPException) -> int:
    """Seconds until a rate-limited person may try again (at least one minute)."""
    value = getattr(exc, "retry_after", None)
    if value is None and exc.response is not None:
        value = exc.response.headers.get("Retry-After")
    try:
        return max(60, int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 60


def _instance_secret(instance_path: str) -> str:
    """One random session secret per instance, kept in a 0600 file, so restarts
    and gunicorn workers agree without a secret in the repository."""
    import secrets

    path = os.path.join(instance_path, "secret_key")
    try:
        with open(path, encoding="ascii") as f:
            value = f.read().strip()
        if value:
            return value
    except FileNotFoundError:
        pass
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(value)
    return value


SECURITY_HEADERS = (
    ("Content-Security-Policy", CSP),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    # Same-origin: no address of a page leaves the site, and over HTTPS the
    # CSRF check gets the same-origin Referer it requires of every form post.
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


def security_headers(response: Response) -> Response:
    """Headers every response gets unless a view set its own; the sensitive
    pages also forbid caching. (One pass over the headers: this runs on every
    intake request, where eight separate look-ups showed in profiles.)"""
    wanted = list(SECURITY_HEADERS)
    if request.is_secure:
        wanted.append(HSTS)
    # Everything is personal or sensitive unless its view says how to cache
    # it (the static files and the crew shell do): never stored by a browser
    # or proxy. An error page under /static/ names who is signed in.
    wanted.append(("Cache-Control", "no-store"))
    present = {name.lower() for name in response.headers.keys()}
    response.headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response
