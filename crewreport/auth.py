"""Sign-in, sign-out, sessions and roles.

Passwords are argon2id hashes. Sessions are Flask's signed cookie carrying a
random token whose hash is a row of `user_session`: signing out deletes the
row, so a copied cookie is worthless afterwards, and a password change
deletes every session of that user everywhere.
"""
from __future__ import annotations

import functools
import hashlib
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import click
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.cli import with_appcontext
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from . import audit
from .db import get_db, init_db, transaction
from .forms import LoginForm, LogoutForm, PasswordChangeForm
from .times import now, stamp

bp = Blueprint("auth", __name__, url_prefix="/auth")
login_manager = LoginManager()
login_manager.login_view = "auth.login"
login_manager.login_message = "Please sign in."
login_manager.session_protection = "basic"

ROLES = ("crew", "airline_security", "border_force", "admin")
HOME = {"crew": "crew.index", "airline_security": "review.index",
        "border_force": "triage.index", "admin": "admin.index"}
F = TypeVar("F", bound=Callable[..., Any])
MIN_PASSWORD = 12  # the same rule as the web forms (forms.py)


class User(UserMixin):
    def __init__(self, row: Any, token: str) -> None:
        self.id_number: int = row["id"]
        self.username: str = row["username"]
        self.role: str = row["role"]
        self.airline: str | None = row["airline"]
        self.token = token

    def get_id(self) -> str:
        return f"{self.id_number}:{self.token}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


@login_manager.user_loader
def load_user(value: str) -> User | None:
    number, _, token = value.partition(":")
    if not number.isdigit() or not token:
        return None
    row = get_db().execute(
        "SELECT u.* FROM user_session s JOIN user u ON u.id = s.user_id"
        " WHERE s.token_sha256 = ? AND s.user_id = ? AND s.expires_at > ? AND u.active = 1",
        (token_hash(token), int(number), now())).fetchone()
    return User(row, token) if row else None


def start_session(db: Any, row: Any) -> User:
    """A new server-side session for `row`; expired ones are cleared on the way."""
    token = secrets.token_urlsafe(32)
    at = datetime.now(UTC)
    expires = at + current_app.permanent_session_lifetime
    db.execute("DELETE FROM user_session WHERE expires_at <= ?", (now(),))
    db.execute("INSERT INTO user_session (token_sha256, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
               (token_hash(token), row["id"], now(), stamp(expires)))
    return User(row, token)


@login_manager.unauthorized_handler
def unauthorized() -> Any:
    if request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json":
        return jsonify(error={"code": "unauthenticated", "message": "Sign in first."}), 401
    return redirect(url_for("auth.login", next=request.path))


def role_required(*roles: str) -> Callable[[F], F]:
    """Signed in, with one of `roles`; anyone else gets 403 (or sign-in)."""
    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


def hasher() -> PasswordHasher:
    # Tests use a cheap profile (config PASSWORD_HASH_FAST); production keeps
    # argon2-cffi's RFC 9106 low-memory defaults (argon2id, 46 MiB, t=1... p=4).
    if current_app.config.get("PASSWORD_HASH_FAST"):
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


def hash_password(password: str) -> str:
    return hasher().hash(password)


def check_password(stored: str, password: str) -> bool:
    try:
        return hasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


# A real hash to spend the same time on when the username is unknown.
_DUMMY: dict[str, str] = {}


def _dummy_hash() -> str:
    key = "fast" if current_app.config.get("PASSWORD_HASH_FAST") else "real"
    if key not in _DUMMY:
        _DUMMY[key] = hash_password("not a password of anyone's")
    return _DUMMY[key]


def throttled(username: str, address: str) -> bool:
    """Too many recent failures for this account from this address, or too
    many for the account from anywhere, or from this address for any account.

    The pair limit is the tight one, so a stranger elsewhere cannot lock an
    officer out with five bad guesses; the looser per-account and per-address
    limits still bound guessing spread over many addresses or many accounts.
    """
    window = timedelta(seconds=current_app.config["LOGIN_WINDOW_SECONDS"])
    since = stamp(datetime.now(UTC) - window)
    db = get_db()

    def failures(where: str, *args: str) -> int:
        return db.execute(f"SELECT count(*) FROM login_failure WHERE {where} AND at > ?",  # noqa: S608 - `where` is one of three fixed conditions; values are ? parameters
                          (*args, since)).fetchone()[0]

    limit = current_app.config["LOGIN_MAX_FAILURES"]
    return (failures("username = ? AND address = ?", username, address) >= limit
            or failures("username = ?", username) >= 4 * limit
            or failures("address = ?", address) >= 4 * limit)


def create_user(username: str, role: str, password: str, airline: str | None = None) -> int:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not 1 <= len(username) <= 64 or username != username.strip():
        raise ValueError("the username must be 1 to 64 characters, without surrounding spaces")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    if (role in ("crew", "airline_security")) != (airline is not None):
        raise ValueError("crew and airline_security users need --airline; others must not have one")
    db = get_db()
    if airline and not db.execute("SELECT 1 FROM airline WHERE code = ?", (airline,)).fetchone():
        raise ValueError(f"no airline {airline}")
    if db.execute("SELECT 1 FROM user WHERE username = ?", (username,)).fetchone():
        raise ValueError(f"user {username} exists")
    with transaction(db):
        cur = db.execute(
            "INSERT INTO user (username, password_hash, role, airline, created_at) VALUES (?, ?, ?, ?, ?)",
            (username, hash_password(password), role, airline, now()))
        audit.record("user_created", subject=f"user:{username}", db=db, role=role, airline=airline)
    if cur.lastrowid is None:  # an INSERT into a rowid table always has one
        raise RuntimeError("sqlite gave no rowid for the new user")
    return cur.lastrowid


def set_password(user_id: int, password: str, *, db: Any = None) -> None:
    """New hash, and every open session of the user ends."""
    db = db or get_db()
    db.execute("UPDATE user SET password_hash = ? WHERE id = ?", (hash_password(password), user_id))
    db.execute("DELETE FROM user_session WHERE user_id = ?", (user_id,))


def safe_next(target: str) -> str | None:
    """`target` if it is a path on this site, else None.

    Browsers drop tabs and newlines from URLs and read a backslash as a slash,
    so "/<TAB>/evil.example" or "/<BACKSLASH>evil.example" would leave the site: refuse any
    control character or backslash, not just a leading `//`.
    """
    if not target.startswith("/") or target.startswith("//"):
        return None
    if "\\" in target or any(ord(c) < 0x20 or ord(c) == 0x7F for c in target):
        return None
    parts = urlsplit(target)
    return target if not (parts.scheme or parts.netloc) else None


@bp.route("/login", methods=("GET", "POST"))
def login() -> Any:
    form = LoginForm()
    if form.validate_on_submit():
        username = form.username.data.strip()
        address = audit.client_address()
        db = get_db()
        row = db.execute("SELECT * FROM user WHERE username = ? AND active = 1", (username,)).fetchone()
        # What was typed is recorded only when it names an account: a password
        # typed into the username box must not live on in the audit log.
        actor = f"user:{row['username']}" if row else "unknown-user"
        if throttled(username, address):
            audit.record("sign_in_throttled", actor=actor, address=address)
            form.username.errors.append("Too many failed attempts. Wait 15 minutes and try again.")
            return (render_template("auth/login.html", form=form), 429,
                    {"Retry-After": str(current_app.config["LOGIN_WINDOW_SECONDS"])})
        ok = check_password(row["password_hash"] if row else _dummy_hash(), form.password.data)
        if not (row and ok):
            with transaction(db):
                db.execute("INSERT INTO login_failure (username, address, at) VALUES (?, ?, ?)",
                           (username, address, now()))
                audit.record("sign_in_failed", actor=actor, db=db, address=address)
            form.password.errors.append("Username or password is not right.")
            return render_template("auth/login.html", form=form), 200
        # Renew the session: nothing from before sign-in survives it.
        session.clear()
        with transaction(db):
            user = start_session(db, row)
            db.execute("DELETE FROM login_failure WHERE username = ? AND address = ?", (username, address))
            audit.record("sign_in", actor=f"user:{user.username}", db=db, address=address)
        login_user(user)
        session.permanent = True
        return redirect(safe_next(request.args.get("next", "")) or url_for(HOME[user.role]))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=("POST",))
def logout() -> Any:
    form = LogoutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        db = get_db()
        with transaction(db):
            db.execute("DELETE FROM user_session WHERE token_sha256 = ?", (token_hash(current_user.token),))
            audit.record("sign_out", db=db)
        logout_user()
        session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/session")
def session_info() -> Any:
    """Who is signed in, and a fresh CSRF token: the cached crew shell asks this."""
    if not current_user.is_authenticated:
        return jsonify(signed_in=False, csrf_token=generate_csrf())
    return jsonify(signed_in=True, username=current_user.username, role=current_user.role,
                   airline=current_user.airline, csrf_token=generate_csrf())


@bp.route("/password", methods=("GET", "POST"))
def password() -> Any:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    form = PasswordChangeForm()
    if form.validate_on_submit():
        db = get_db()
        row = db.execute("SELECT * FROM user WHERE id = ?", (current_user.id_number,)).fetchone()
        if not check_password(row["password_hash"], form.current_password.data):
            form.current_password.errors.append("That is not your current password.")
        else:
            with transaction(db):
                set_password(row["id"], form.new_password.data, db=db)
                audit.record("password_changed", db=db, subject=f"user:{row['username']}")
            logout_user()
            session.clear()
            flash("Password changed. Every session was signed out; sign in again.")
            return redirect(url_for("auth.login"))
    return render_template("auth/password.html", form=form)


class SessionInterface(SecureCookieSessionInterface):
    """`Secure` on the session cookie whenever the request came over HTTPS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


@click.command("create-user")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice(ROLES))
@click.option("--airline", default=None, help="IATA code; required for crew and airline_security")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@with_appcontext
def create_user_command(username: str, role: str, airline: str | None, password: str) -> None:
    """Create a user."""
    init_db()
    try:
        create_user(username, role, password, airline.upper() if airline else None)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Created {role} {username}.")


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.session_interface = SessionInterface()
    app.permanent_session_lifetime = timedelta(hours=12)
    app.cli.add_command(create_user_command)
