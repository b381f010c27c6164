"""The signed-in user's own account: a new password, new recovery codes.

Both ask for the password again, so a session left open in a browser is not
enough to take the account over; those password checks count as failed
sign-ins (crewreport.throttle), so an open session is no way round the
throttle either. New recovery codes also take a fresh code from the app,
throttled, audited and counted towards second_factor.MAX_WRONG_CODES as at
the sign-in's code step.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, session, url_for
from flask_login import current_user, logout_user

from . import audit, second_factor, throttle
from .auth import HOME, TOO_MANY, check_password, login_manager, retry_after, set_password
from .db import get_db, transaction
from .forms import PasswordChangeForm, RecoveryCodesForm

bp = Blueprint("account", __name__, url_prefix="/auth")
CODES_STOPPED_RENEWING = ("Too many wrong codes have been typed for this account, so its authenticator's codes are "
                          "no longer taken, here or at sign-in. Sign out and sign in with one of your recovery "
                          "codes (which starts them again), or ask an administrator to reset your second factor.")


def password_again(field: Any) -> Any | None:
    """The signed-in user's row when `field` holds their password; else None,
    with the field's error said (a failure counted, or the throttle's refusal)."""
    db = get_db()
    row = db.execute("SELECT * FROM user WHERE id = ?", (current_user.id_number,)).fetchone()
    attempt = throttle.attempt(row["username"], row["id"], audit.client_address())
    if throttle.refused(db, attempt):
        field.errors.append(TOO_MANY)
        return None
    if check_password(row["password_hash"], field.data):
        return row
    with transaction(db):
        throttle.record_failure(db, attempt)
        audit.record("password_check_failed", db=db, subject=f"user:{row['username']}",
                     address=audit.client_address())
    field.errors.append("That is not your current password.")
    return None


def refused(field: Any) -> bool:
    return TOO_MANY in field.errors


@bp.route("/password", methods=("GET", "POST"))
def password() -> Any:
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    form = PasswordChangeForm()
    if form.validate_on_submit() and (row := password_again(form.current_password)) is not None:
        db = get_db()
        with transaction(db):
            set_password(row["id"], form.new_password.data, db=db)
            audit.record("password_changed", db=db, subject=f"user:{row['username']}")
        logout_user()
        session.clear()
        flash("Password changed. Every session was signed out; sign in again.")
        return redirect(url_for("auth.login"))
    status = 429 if refused(form.current_password) else 200
    return render_template("auth/password.html", form=form), status, retry_after() if status == 429 else {}


@bp.route("/recovery-codes", methods=("GET", "POST"))
def recovery_codes() -> Any:
    """Ten new recovery codes in place of the old ones (used up, or seen)."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not second_factor.needs_second_factor(current_user.role):
        abort(403)
    db, form = get_db(), RecoveryCodesForm()
    user_id = current_user.id_number
    if form.validate_on_submit() and (row := password_again(form.current_password)) is not None:
        actor, address = f"user:{row['username']}", audit.client_address()
        attempt = throttle.attempt(row["username"], user_id, address)
        if throttle.refused(db, attempt, "code"):
            audit.record_throttled("second_factor_throttled", actor, address)
            form.code.errors.append(TOO_MANY)
        else:
            with transaction(db):
                # The same count as the sign-in's code step (auth.code_step):
                # else this page would be a way round it.
                stopped = second_factor.codes_stopped(db, user_id)
                codes = (second_factor.new_recovery_codes(db, user_id) if not stopped and
                         second_factor.check_totp(db, user_id, "".join(form.code.data.split())) else None)
                if codes:
                    second_factor.clear_wrong_codes(db, user_id)
                    audit.record("recovery_codes_renewed", db=db, subject=actor)
                else:
                    throttle.record_failure(db, attempt, "code")
                    audit.record("second_factor_failed", actor=actor, db=db, address=address)
                    stopped = second_factor.count_wrong_code(db, user_id, actor, address)
            if codes:
                return render_template("auth/recovery_codes.html", codes=codes, renewed=True,
                                       home=url_for(HOME[current_user.role]))
            form.code.errors.append(CODES_STOPPED_RENEWING if stopped else
                                    "That code is not right or was used already; "
                                    "enter the newest one from the app.")
    status = 429 if refused(form.current_password) or refused(form.code) else 200
    return (render_template("auth/renew_recovery_codes.html", form=form,
                            left=second_factor.recovery_codes_left(db, user_id)),
            status, retry_after() if status == 429 else {})
