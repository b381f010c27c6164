"""Sign-in, sign-out, sessions and roles.

Passwords are argon2id hashes; staff (every role but crew) then give a TOTP
or recovery code (second_factor.py), and failed attempts of either step are
throttled (throttle.py). Sessions are Flask's signed cookie carrying a
random token whose hash is a row of `user_session`: signing out deletes the
row, so a copied cookie is worthless afterwards, and a password change
deletes every session of that user everywhere.
"""
from __future__ import annotations

import functools
import hashlib
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import (
    Blueprint,
    Flask,
    abort,
    current_app,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import generate_csrf

from . import audit, second_factor, throttle
from .db import get_db, transaction
from .forms import CodeForm, LoginForm, LogoutForm
from .sessions import SessionInterface
from .times import now, stamp
from .unavailable import skipped_when_unavailable

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
PENDING = "pending_sign_in"  # session key: whose password was right, awaiting a code
PENDING_SECONDS = 300
TOO_MANY = "Too many failed attempts. Wait 15 minutes and try again."
CODES_STOPPED = ("Too many wrong codes have been typed for this account, so its authenticator's codes are no "
                 "longer taken. Sign in with one of your recovery codes, or ask an administrator to reset "
                 "your second factor.")


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


def session_alive(db: Any) -> bool:
    """Whether this request's session still exists: an action that claims a
    report checks it under the write lock, since a sign-out in another tab
    may have let go of the signed-in user's locks since the request began."""
    return db.execute("SELECT 1 FROM user_session WHERE token_sha256 = ? AND expires_at > ?",
                      (token_hash(current_user.token), now())).fetchone() is not None


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


def create_user(username: str, role: str, password: str, airline: str | None = None,
                totp_secret: str | None = None) -> int:
    """A new user; `totp_secret` (staff only) sets a known second factor, else
    staff enrol one at their first sign-in.

    A username with a slash, `CODE/name`, is an airline's crew namespace: only
    crew of airline CODE may hold one, so the names airline security creates
    there can never collide with anyone outside their own airline.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not 1 <= len(username) <= 64 or username != username.strip():
        raise ValueError("the username must be 1 to 64 characters, without surrounding spaces")
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"the password must be at least {MIN_PASSWORD} characters")
    if (role in ("crew", "airline_security")) != (airline is not None):
        raise ValueError("crew and airline_security users need --airline; others must not have one")
    namespace, slash, _ = username.partition("/")
    if slash and not (role == "crew" and namespace.upper() == airline):
        raise ValueError("a username with '/' is CODE/name, for crew of airline CODE only")
    if totp_secret is not None and not second_factor.needs_second_factor(role):
        raise ValueError("crew sign in with a password only; --totp-secret is for staff")
    secret = second_factor.valid_secret(totp_secret) if totp_secret is not None else None
    db = get_db()
    if airline and not db.execute("SELECT 1 FROM airline WHERE code = ?", (airline,)).fetchone():
        raise ValueError(f"no airline {airline}")
    exists = "SELECT 1 FROM user WHERE username = ?"
    if db.execute(exists, (username,)).fetchone():
        raise ValueError(f"user {username} exists")
    password_hash = hash_password(password)  # slow: before the write lock, not under it
    with transaction(db):
        # Again under the write lock: the other POST of a double click may
        # have made it since (the UNIQUE constraint would answer with a 500).
        if db.execute(exists, (username,)).fetchone():
            raise ValueError(f"user {username} exists")
        cur = db.execute(
            "INSERT INTO user (username, password_hash, role, airline, created_at) VALUES (?, ?, ?, ?, ?)",
            (username, password_hash, role, airline, now()))
        if cur.lastrowid is None:  # an INSERT into a rowid table always has one
            raise RuntimeError("sqlite gave no rowid for the new user")
        if secret is not None:
            second_factor.set_secret(db, cur.lastrowid, secret, confirmed=True)
        audit.record("user_created", subject=f"user:{username}", db=db, role=role, airline=airline)
    return cur.lastrowid


def set_password(user_id: int, password: str, *, db: Any = None) -> None:
    """New hash, and every open session of the user ends. The failed sign-ins
    counted against the old password go too: a crew member who forgot it and
    had a new one set by their security team would otherwise be refused it
    ("wait 15 minutes") from the tablet they tried on, on the ground before a
    flight. Guesses at the old password tell nothing of the new one."""
    db = db or get_db()
    db.execute("UPDATE user SET password_hash = ? WHERE id = ?", (hash_password(password), user_id))
    username = db.execute("SELECT username FROM user WHERE id = ?", (user_id,)).fetchone()[0]
    db.execute("DELETE FROM login_failure WHERE account = ? AND step = 'password'", (throttle.account_key(username),))
    end_sessions(db, user_id)


def end_sessions(db: Any, user_id: int, reason: str = "signed_out") -> None:
    """Sign the user out everywhere, inside the caller's transaction; `reason`
    goes on the audit event of each report lock let go."""
    db.execute("DELETE FROM user_session WHERE user_id = ?", (user_id,))
    release_locks(db, user_id, reason)


def release_locks(db: Any, user_id: int, reason: str = "signed_out") -> None:
    """Let go of the report locks of someone signed in nowhere any more: an
    officer who signs out at the end of a shift must not keep the others off
    an urgent report until the lock runs out."""
    for (report_id,) in db.execute("SELECT id FROM report WHERE lock_user_id = ?", (user_id,)).fetchall():
        db.execute("UPDATE report SET lock_user_id = NULL, lock_expires_at = NULL WHERE id = ?", (report_id,))
        audit.record("report_unlocked", subject=f"report:{report_id}", db=db, reason=reason)


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


def renew_session() -> None:
    """Nothing from before this step survives it (and no CSRF token cached for it)."""
    session.clear()
    g.pop("csrf_token", None)


def retry_after() -> dict[str, str]:
    return {"Retry-After": str(current_app.config["LOGIN_WINDOW_SECONDS"])}


@bp.route("/login", methods=("GET", "POST"))
def login() -> Any:
    """Password, then for staff a code: the code step posts `code` back here."""
    if request.method == "POST" and "code" in request.form:
        return code_step()
    form = LoginForm()
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    username = form.username.data.strip()
    address = audit.client_address()
    db = get_db()
    row = db.execute("SELECT * FROM user WHERE username = ?", (username,)).fetchone()
    # What was typed is recorded only when it names an account: a password
    # typed into the username box must not live on in the audit log.
    actor = f"user:{row['username']}" if row else "unknown-user"
    attempt = throttle.attempt(username, row["id"] if row else None, address)
    if throttle.refused(db, attempt):
        audit.record_throttled("sign_in_throttled", actor, address)
        form.username.errors.append(TOO_MANY)
        return render_template("auth/login.html", form=form), 429, retry_after()
    # Counted before it is checked: a store that cannot count this attempt
    # (its disk full, read-only) answers 503 before anything depends on the
    # password, so no one can try passwords uncounted meanwhile, and a right
    # one is never told from a wrong one by the answer (200 vs 503).
    with transaction(db):
        counted = throttle.record_failure(db, attempt)
    ok = check_password(row["password_hash"] if row else _dummy_hash(), form.password.data)
    if not (row and ok and row["active"]):
        # Only the right password learns that the account is switched off.
        audit.record("sign_in_failed", actor=actor, db=db, address=address,
                     **({"reason": "deactivated"} if row and ok else {}))
        form.password.errors.append(deactivated(row["role"]) if row and ok else "Username or password is not right.")
        return render_template("auth/login.html", form=form), 200
    target = safe_next(request.args.get("next", ""))
    if not second_factor.needs_second_factor(row["role"]):
        with transaction(db):
            user = begin_session(db, row, attempt)  # whose clear_failures takes the count back
        return complete(db, user, row, target)
    renew_session()
    pending = {"user": row["id"], "at": int(time.time()), "next": target}
    with transaction(db):
        throttle.uncount(db, counted)
        if not second_factor.enrolled(db, row["id"]):
            pending["enrol"] = second_factor.begin_enrolment(db, row["id"])
    session[PENDING] = pending
    return code_page(db, row, CodeForm(formdata=None))


def deactivated(role: str) -> str:
    """What the right password of a switched-off account is told: whom to ask."""
    return ("This account is deactivated, so it cannot sign in. Speak to "
            + ("your airline's security team." if role == "crew" else "an administrator."))


def code_page(db: Any, row: Any, form: CodeForm, status: int = 200,
              headers: dict[str, str] | None = None) -> Any:
    """The code step: `#totp-form`, with the QR code first when enrolling."""
    context: dict[str, Any] = {"form": form, "username": row["username"]}
    secret = second_factor.pending_secret(db, row["id"])
    if secret is not None:
        uri = second_factor.provisioning_uri(row["username"], secret)
        context.update(enrolling=True, secret=secret, qr=second_factor.qr_svg(uri))
    return render_template("auth/totp.html", **context), status, headers or {}


def code_step() -> Any:
    """Check a TOTP or recovery code for the user whose password was right."""
    pending: dict[str, Any] = session.get(PENDING) or {}
    db = get_db()
    row = None
    if isinstance(pending, dict) and time.time() - pending.get("at", 0) <= PENDING_SECONDS:
        row = db.execute("SELECT * FROM user WHERE id = ? AND active = 1", (pending.get("user"),)).fetchone()
    enrolling = row is not None and not second_factor.enrolled(db, row["id"])
    if row is None or (enrolling and pending.get("enrol") != second_factor.enrolment_fingerprint(db, row["id"])):
        # Expired, never started, or (enrolling) another sign-in began a new set-up since.
        session.pop(PENDING, None)
        flash("That sign-in took too long or was started again elsewhere. Sign in again.")
        return redirect(url_for("auth.login"), code=303)
    form = CodeForm()
    if not form.validate_on_submit():
        return code_page(db, row, form, 400)
    address = audit.client_address()
    actor = f"user:{row['username']}"
    attempt = throttle.attempt(row["username"], row["id"], address)
    if throttle.refused(db, attempt, "code"):
        audit.record_throttled("second_factor_throttled", actor, address)
        form.code.errors.append(TOO_MANY)
        return code_page(db, row, form, 429, retry_after())
    code = "".join(form.code.data.split())
    codes: list[str] = []
    user = None
    # One transaction: a session the store cannot take leaves the code unused.
    with transaction(db):
        stopped = not enrolling and second_factor.codes_stopped(db, row["id"])
        method = "totp" if not stopped and second_factor.check_totp(db, row["id"], code) else None
        if method is None and not enrolling and second_factor.use_recovery_code(db, row["id"], code):
            method = "recovery_code"
            audit.record("recovery_code_used", actor=actor, db=db, subject=actor,
                         left=second_factor.recovery_codes_left(db, row["id"]))
        if method is None:
            throttle.record_failure(db, attempt, "code")
            audit.record("second_factor_failed", actor=actor, db=db, address=address)
            stopped = not enrolling and second_factor.count_wrong_code(db, row["id"], actor, address)
        else:
            second_factor.clear_wrong_codes(db, row["id"])
            if enrolling:
                codes = second_factor.new_recovery_codes(db, row["id"])
                audit.record("second_factor_enrolled", actor=actor, db=db, subject=actor)
            user = begin_session(db, row, attempt, method)
    if user is None:
        form.code.errors.append(CODES_STOPPED if stopped else
                                "That code is not right, or it was used already: wait for the next one.")
        return code_page(db, row, form)
    return complete(db, user, row, pending.get("next"), method, codes)


def begin_session(db: Any, row: Any, attempt: throttle.Attempt, method: str | None = None) -> User:
    """A new session for `row` and its audit event, in the caller's transaction."""
    user = start_session(db, row)
    throttle.clear_failures(db, attempt)
    audit.record("sign_in", actor=f"user:{user.username}", db=db, address=audit.client_address(),
                 **({"second_factor": method} if method else {}))
    return user


def complete(db: Any, user: User, row: Any, target: str | None,
             method: str | None = None, codes: list[str] | None = None) -> Any:
    """Signed in as `user` (whose session is stored); new recovery codes are shown once, on the way."""
    renew_session()
    login_user(user)
    session.permanent = True
    # The new session's CSRF token, made now: requests sent at once after this
    # (the crew app's) would otherwise each make one, and keep the last cookie.
    generate_csrf()
    home = target or url_for(HOME[user.role])
    if method == "recovery_code":
        flash(f"Recovery code used: {second_factor.recovery_codes_left(db, row['id'])} left. "
              "An administrator can reset your second factor if you lose your authenticator.")
    response = make_response(render_template("auth/recovery_codes.html", codes=codes, home=home)
                             if codes else redirect(home))
    throttle.remember_device(response, row["id"])
    return response


@bp.route("/logout", methods=("POST",))
def logout() -> Any:
    form = LogoutForm()
    if form.validate_on_submit() and current_user.is_authenticated:
        db = get_db()
        # A store that cannot take writes keeps the session's row (unused
        # from now on: its token lived in this browser's cookie only) and
        # the audit misses the event; the person is signed out all the same,
        # which matters more on a shared tablet or desk.
        with skipped_when_unavailable("the sign-out's record"), transaction(db):
            db.execute("DELETE FROM user_session WHERE token_sha256 = ?", (token_hash(current_user.token),))
            audit.record("sign_out", db=db)
            user_id = current_user.id_number
            if db.execute("SELECT 1 FROM user_session WHERE user_id = ? AND expires_at > ?",
                          (user_id, now())).fetchone() is None:
                release_locks(db, user_id)
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


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    app.session_interface = SessionInterface()
    app.permanent_session_lifetime = timedelta(hours=12)
