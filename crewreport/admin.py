"""Administrator pages (`/admin`, role `admin`): the integrity of the audit
chain, recent events, the audit trail of one report (which outlives the
report itself when retention purges it), and staff second factors. A view
verifies only the events added since the last verified one
(audit.verify_since_checkpoint) and says when the whole chain last passed a
full check."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import audit, lifecycle, second_factor
from .auth import end_sessions, role_required
from .db import get_db, transaction
from .display import STATUS_LABELS
from .forms import FORM_EXPIRED, ActionForm

bp = Blueprint("admin", __name__, url_prefix="/admin")
RECENT = 50


def shown(rows: list[Any]) -> list[dict[str, Any]]:
    """Events with their detail parsed for display."""
    out = []
    for r in rows:
        try:
            detail = json.loads(r["detail"])
        except ValueError:
            detail = {"unparsed": r["detail"]}
        out.append({**dict(r), "detail": detail})
    return out


@bp.get("/")
@role_required("admin")
def index() -> Any:
    """Chain integrity and the latest events; a look-up by report id or reference."""
    db = get_db()
    query = (request.args.get("report") or "").strip()
    missing = None
    if query:
        row = db.execute("SELECT id FROM report WHERE id = ? OR reference = ?",
                         (query, as_reference(query))).fetchone()
        if row or audit.events_for(db, f"report:{query}"):  # a purged report keeps its trail
            return redirect(url_for("admin.report_trail", report_id=row["id"] if row else query), code=303)
        missing = query
    chain = audit.verify_since_checkpoint(db)
    recent = db.execute("SELECT * FROM audit_event ORDER BY id DESC LIMIT ?", (RECENT,)).fetchall()
    return (render_template("admin/index.html", chain=chain, events=shown(recent), missing=missing),
            404 if missing else 200)


def as_reference(text: str) -> str:
    """A reference as people type it: any case, with or without the hyphen."""
    compact = "".join(c for c in text.upper() if c.isalnum())
    return f"{compact[:3]}-{compact[3:]}" if len(compact) == 6 else text.upper()


@bp.get("/reports/<report_id>")
@role_required("admin")
def report_trail(report_id: str) -> Any:
    """Every audit event about one report, and whether the whole chain holds."""
    db = get_db()
    events = audit.events_for(db, f"report:{report_id}")
    row = db.execute("SELECT id, reference, flight, dep, arr, sta, status FROM report WHERE id = ?",
                     (report_id,)).fetchone()
    if row is None and not events:
        abort(404)
    return render_template("admin/report.html", report_id=report_id, r=row, events=shown(events),
                           chain=audit.verify_since_checkpoint(db), status_labels=STATUS_LABELS)


def staff_page(status: int = 200) -> Any:
    db = get_db()
    users = db.execute(
        "SELECT u.id, u.username, u.role, u.airline, u.active, u.deactivated_at, by_.username AS deactivated_by_name,"  # noqa: S608 - only ? marks joined in
        " t.confirmed_at, t.wrong_codes,"
        " (SELECT count(*) FROM recovery_code r WHERE r.user_id = u.id AND r.used_at IS NULL) AS codes_left"
        " FROM user u LEFT JOIN user_totp t ON t.user_id = u.id LEFT JOIN user by_ ON by_.id = u.deactivated_by"
        f" WHERE u.role IN ({', '.join('?' * len(second_factor.STAFF_ROLES))}) ORDER BY u.role, u.username",
        second_factor.STAFF_ROLES).fetchall()
    return render_template("admin/users.html", users=users, action_form=ActionForm(formdata=None),
                           max_wrong_codes=second_factor.MAX_WRONG_CODES), status


@bp.get("/users")
@role_required("admin")
def users() -> Any:
    """Staff accounts: whether each is active and has set up a second factor."""
    return staff_page()


@bp.post("/users/<int:user_id>/second-factor/reset")
@role_required("admin")
def reset_second_factor(user_id: int) -> Any:
    """Forget a staff user's TOTP secret and recovery codes (a lost phone):
    their sessions end and they enrol again at their next sign-in. Audited."""
    db = get_db()
    placeholders = ", ".join("?" * len(second_factor.STAFF_ROLES))
    user = db.execute(f"SELECT id, username FROM user WHERE id = ? AND role IN ({placeholders})",  # noqa: S608 - ? marks only
                      (user_id, *second_factor.STAFF_ROLES)).fetchone()
    if user is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        flash(FORM_EXPIRED)
        return staff_page(400)
    with transaction(db):
        second_factor.reset(db, user["id"])
        end_sessions(db, user["id"])
        audit.record("second_factor_reset", subject=f"user:{user['username']}", db=db)
    flash(f"Second factor of {user['username']} reset: they set up a new one at their next sign-in.")
    return redirect(url_for("admin.users"), code=303)


# -- switching a staff account off and on (crewreport/lifecycle.py says what that does) -----------

SWITCHED = {"deactivate": "deactivated", "reactivate": "reactivated"}


def staff_user(user_id: int) -> Any:
    """A staff account, or 404 (crew are their airline's to manage)."""
    placeholders = ", ".join("?" * len(second_factor.STAFF_ROLES))
    user = get_db().execute(f"SELECT id, username, role, active, deactivated_at FROM user"  # noqa: S608 - ? marks only
                            f" WHERE id = ? AND role IN ({placeholders})",
                            (user_id, *second_factor.STAFF_ROLES)).fetchone()
    if user is None:
        abort(404)
    return user


@bp.get("/users/<int:user_id>/deactivate", defaults={"action": "deactivate"})
@bp.get("/users/<int:user_id>/reactivate", defaults={"action": "reactivate"})
@role_required("admin")
def confirm_account(user_id: int, action: str) -> Any:
    """Ask once more, saying what it does: an officer's locks and assignments go."""
    user = staff_user(user_id)
    return render_template("admin/account.html", u=user, action=action, own=user_id == current_user.id_number,
                           assigned=lifecycle.assigned(get_db(), user_id), action_form=ActionForm(formdata=None))


@bp.post("/users/<int:user_id>/deactivate", defaults={"action": "deactivate"})
@bp.post("/users/<int:user_id>/reactivate", defaults={"action": "reactivate"})
@role_required("admin")
def switch_account(user_id: int, action: str) -> Any:
    """Switch a staff account off or on again. Never one's own (an admin
    would lock themselves out mid-task), never the last active administrator;
    a double submit changes it once (409 the second time, one event)."""
    user = staff_user(user_id)
    if not ActionForm().validate_on_submit():
        flash(FORM_EXPIRED)
        return staff_page(400)
    if action == "deactivate" and user_id == current_user.id_number:
        flash("You cannot deactivate your own account; another administrator can.")
        return staff_page(400)
    db = get_db()
    try:
        done = (lifecycle.deactivate(db, user_id, current_user.id_number) if action == "deactivate"
                else lifecycle.reactivate(db, user_id))
    except lifecycle.LastAdmin:
        flash(f"{user['username']} is the last active administrator: not deactivated.")
        return staff_page(409)
    if not done:
        flash(f"{user['username']} was already {SWITCHED[action]}.")
        return staff_page(409)
    flash(f"{user['username']} {SWITCHED[action]}"
          + (": signed out everywhere; their report locks and assignments were let go." if action == "deactivate"
             else ": they sign in with the password and second factor they had."))
    return redirect(url_for("admin.users"), code=303)
