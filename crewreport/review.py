"""Airline security review (`/review`, role `airline_security`).

Everything here is scoped to the signed-in user's airline in the SQL itself
(`... AND airline = ?`): another airline's report, user or device is simply
not found (404), by any URL. Content is opened with the airline's own key
(current or retired) only when that key was a recipient; the reporter's
identity (and the device, which would name them) only when the reporter
chose to share it.
"""
from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import audit, envelope, flights, keys, lifecycle, report
from .auth import create_user, end_sessions, role_required, set_password
from .db import get_db, transaction
from .display import display_body, lead_time
from .forms import FORM_EXPIRED, ActionForm, CrewCreateForm, PasswordResetForm
from .safe_methods import get_only
from .times import now, stamp

bp = Blueprint("review", __name__, url_prefix="/review")

# What an airline may know of Border Force's work: coarse, never the detail.
COARSE_STATUS = {
    "received": "Received",
    "assessing": "Being assessed",
    "meet_aircraft": "Being assessed",
    "no_further_action": "Closed",
    "referred": "Closed",
}
PER_PAGE = 25  # flights per page
REVIEW_COLUMNS = ("r.id, r.reference, r.airline, r.flight, r.dep, r.arr, r.sta, r.urgency, r.status, r.received_at,"
                  " f.sta AS flight_sta")
# How recently a device was used, only this coarsely: a minute-exact "last
# seen" next to a report's minute-exact delivery time would name the crew
# member behind a report whose reporter chose not to be named.
ACTIVE_DAYS = 30


def airline() -> str:
    """The signed-in user's airline (airline_security users always have one)."""
    code = current_user.airline
    if not code:
        abort(403)
    return code


def own_report(db: sqlite3.Connection, report_id: str) -> sqlite3.Row:
    """A report of this user's airline, or 404 — never 403, which would confirm it exists."""
    row = db.execute("SELECT * FROM report WHERE id = ? AND airline = ?", (report_id, airline())).fetchone()
    if row is None:
        abort(404)
    return row


@bp.get("/")
@role_required("airline_security")
def index() -> Any:
    """The airline's reports grouped by arriving flight, in the officers'
    board order (without child ranking: the flag comes from the sealed body,
    which the airline may not have been sent), with delivery and coarse status."""
    db = get_db()
    code = airline()
    at = datetime.now(UTC)
    # The airline's flights (the intake puts a report only on a flight of its
    # own airline): found by flight_arrival, then their reports by
    # report_flight, never the wide rows. The reports listed are also checked
    # by their own airline.
    where, params = " WHERE f.airline = ?", [code]
    try:
        page = max(1, min(int(request.args.get("page") or 1), 100000))
    except ValueError:
        page = 1
    found, total, reports, _ = flights.load_flights(db, where, params, at, page=page, per_page=PER_PAGE,
                                                    child_first=False)
    if not found and page > 1:
        total = flights.count_flights(db, where, params)
        page = max(1, math.ceil(total / PER_PAGE))
        found, total, reports, _ = flights.load_flights(db, where, params, at, page=page, per_page=PER_PAGE,
                                                        child_first=False)
    flights.load_reports(db, found, REVIEW_COLUMNS, "", where + " AND r.airline = ?", [*params, code])
    for f in found:
        f.child = False  # never shown here (see above)
        f.reports = [review_line(r) for r in f.reports]
    return render_template("review/index.html", flights=found, total=total, reports=reports, page=page,
                           pages=max(1, math.ceil(total / PER_PAGE)), airline=code)


def review_line(r: dict[str, Any] | sqlite3.Row) -> dict[str, Any]:
    """A report as the airline's lists show it: Border Force's status in
    outline, and how long before its flight's landing it came."""
    line = dict(r)
    line["coarse"] = COARSE_STATUS[line["status"]]
    line["lead_text"], line["late"] = lead_time(line["received_at"], line["flight_sta"])[1:]
    return line


@bp.get("/reports/<report_id>/flight")
@role_required("airline_security")
def flight_page(report_id: str) -> Any:
    """Every report of the flight one of the airline's reports is on: the
    list shows only the newest of a busy flight (flights.LISTED_PER_FLIGHT).
    Addressed by a report of the airline's own, never by the flight's id: the
    ids are one sequence for every airline, whose gaps would count the
    flights other airlines' crews reported on. Another airline's report is
    404 after one lookup, as a missing one is."""
    db = get_db()
    code = airline()
    flight_id = own_report(db, report_id)["flight_id"]
    # The flight as the list's card shows it (section, highest urgency, countdown).
    [arriving], *_ = flights.load_flights(db, " WHERE r.flight_id = ? AND r.airline = ?", [flight_id, code],
                                          datetime.now(UTC), page=1, per_page=1, child_first=False)
    rows = db.execute(f"SELECT {REVIEW_COLUMNS}{flights.FROM} WHERE r.flight_id = ? AND r.airline = ?"
                      " ORDER BY r.received_at, r.rowid", (flight_id, code)).fetchall()
    return render_template("review/flight.html", flight=arriving, reports=[review_line(r) for r in rows],
                           airline=code)


@bp.get("/reports/<report_id>")
@get_only
@role_required("airline_security")
def report_page(report_id: str) -> Any:
    """One report: header and delivery always; content when the airline was a recipient."""
    db = get_db()
    row = own_report(db, report_id)
    flight_sta = flights.arrival(db, row["flight_id"])
    body = None
    reason = None
    try:
        ring = keys.keyring()
        body = report.open_stored(row, ring, keys.airline_owner(row["airline"]))
    except report.NotRecipient:
        reason = "This report was not sealed to your airline's key, so its content cannot be shown here."
    except keys.KeysUnavailable:
        reason = "Your airline's key is not available on the server just now."
    except (envelope.EnvelopeError, ValueError):
        # Intake checks that the airline's copy matches Border Force's; this is
        # for stores from before that check, or damage: say so, never a 500.
        reason = "Your airline's copy of this report cannot be opened. Border Force holds its own copy."
    audit.record("report_opened", subject=f"report:{report_id}", surface="review",
                 content=body is not None)
    shared = bool(body and body.get("share_identity_with_airline") is True)
    return render_template("review/report.html", r=row, body=display_body(body) if body else None,
                           reason=reason, shared=shared, coarse=COARSE_STATUS[row["status"]],
                           flight_sta=flight_sta, lead=lead_time(row["received_at"], flight_sta))


# -- crew administration ------------------------------------------------------------------

def crew_page(create_form: CrewCreateForm | None = None, status: int = 200) -> Any:
    """The airline's crew accounts and devices, with the forms that act on them."""
    db = get_db()
    code = airline()
    users = db.execute("SELECT u.id, u.username, u.active, u.created_at, u.deactivated_at,"
                       " by_.username AS deactivated_by_name, by_.role AS deactivated_by_role FROM user u"
                       " LEFT JOIN user by_ ON by_.id = u.deactivated_by"
                       " WHERE u.airline = ? AND u.role = 'crew' ORDER BY u.username", (code,)).fetchall()
    devices = db.execute("SELECT d.id, d.label, d.enrolled_at, d.last_seen_at, d.revoked_at,"
                         " u.username, rb.username AS revoked_by_name FROM device d"
                         " JOIN user u ON u.id = d.user_id LEFT JOIN user rb ON rb.id = d.revoked_by"
                         " WHERE d.airline = ? ORDER BY d.revoked_at IS NOT NULL, d.enrolled_at DESC",
                         (code,)).fetchall()
    cutoff = stamp(datetime.now(UTC) - timedelta(days=ACTIVE_DAYS))
    devices = [dict(d, activity=activity(d["last_seen_at"], cutoff)) for d in devices]
    return render_template("review/crew.html", users=users, devices=devices, airline=code,
                           create_form=create_form or CrewCreateForm(formdata=None),
                           reset_form=PasswordResetForm(formdata=None),
                           action_form=ActionForm(formdata=None)), status


def activity(last_seen_at: str | None, cutoff: str) -> str:
    if last_seen_at is None:
        return "Never used"
    return f"Used in the last {ACTIVE_DAYS} days" if last_seen_at >= cutoff else f"Not used for over {ACTIVE_DAYS} days"


@bp.get("/crew")
@role_required("airline_security")
def crew() -> Any:
    return crew_page()


@bp.post("/crew")
@role_required("airline_security")
def create_crew() -> Any:
    """A new crew account for this airline (never any other role or airline),
    named in the airline's namespace, `CODE/name`: only this airline's crew
    can hold such a name, so the answer never depends on accounts elsewhere
    (a "taken" for a name of another airline would let anyone probe them)."""
    form = CrewCreateForm()
    if not form.validate_on_submit():
        return crew_page(form, 400)
    username = f"{airline()}/{form.username.data.strip()}"
    try:
        create_user(username, "crew", form.password.data, airline())
    except ValueError:  # the form rules out every other reason
        form.username.errors.append(f"Your airline already has a crew account {username}; choose another name.")
        return crew_page(form, 409)
    flash(f"Crew account created: they sign in as {username}.")
    return redirect(url_for("review.crew"), code=303)


@bp.post("/crew/<int:user_id>/password")
@role_required("airline_security")
def reset_password(user_id: int) -> Any:
    """Set a new password for one of this airline's crew; it signs them out everywhere."""
    db = get_db()
    user = db.execute("SELECT id, username FROM user WHERE id = ? AND airline = ? AND role = 'crew'",
                      (user_id, airline())).fetchone()
    if user is None:
        abort(404)
    form = PasswordResetForm()
    if not form.validate_on_submit():
        flash(f"Password of {user['username']} not reset: " + " ".join(e for es in form.errors.values() for e in es))
        return crew_page(None, 400)
    with transaction(db):
        set_password(user["id"], form.new_password.data, db=db)
        audit.record("password_reset", subject=f"user:{user['username']}", db=db)
    flash(f"Password of {user['username']} reset; their sessions were signed out.")
    return redirect(url_for("review.crew"), code=303)


@bp.get("/devices/<device_id>/revoke")
@role_required("airline_security")
def confirm_revoke(device_id: str) -> Any:
    """Revoking is final for that tablet: show which one, then ask once more."""
    device = get_db().execute(
        "SELECT d.id, d.label, d.enrolled_at, d.revoked_at, u.username FROM device d"
        " JOIN user u ON u.id = d.user_id WHERE d.id = ? AND d.airline = ?",
        (device_id, airline())).fetchone()
    if device is None:
        abort(404)
    return render_template("review/revoke.html", d=device, action_form=ActionForm(formdata=None))


@bp.post("/devices/<device_id>/revoke")
@role_required("airline_security")
def revoke_device(device_id: str) -> Any:
    """Revoke a tablet of this airline: the intake refuses its envelopes from
    now on, and its crew member is signed out everywhere, so that a tablet
    still holding their session cannot be set up again without the password
    (the crew app's "set up again" asks for a sign-in only when there is no
    session)."""
    db = get_db()
    device = db.execute("SELECT id, user_id, revoked_at FROM device WHERE id = ? AND airline = ?",
                        (device_id, airline())).fetchone()
    if device is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        flash(FORM_EXPIRED)
        return crew_page(None, 400)
    revoked = False
    if not device["revoked_at"]:
        with transaction(db):
            # Only if no one did since the look above (the other POST of a
            # double click): one revocation, one audit event.
            revoked = db.execute("UPDATE device SET revoked_at = ?, revoked_by = ? WHERE id = ?"
                                 " AND revoked_at IS NULL", (now(), current_user.id_number, device_id)).rowcount > 0
            if revoked:
                end_sessions(db, device["user_id"])
                audit.record("device_revoked", subject=f"device:{device_id}", db=db)
    if not revoked:
        flash(f"Device {device_id} was already revoked.")
        return crew_page(None, 409)
    flash(f"Device {device_id} revoked: its reports are refused from now on, and its crew member was signed out.")
    return redirect(url_for("review.crew"), code=303)


# -- switching a crew account off and on (crewreport/lifecycle.py says what that does) -----------

SWITCHED = {"deactivate": "deactivated", "reactivate": "reactivated"}


def own_crew(user_id: int) -> sqlite3.Row:
    """A crew account of this airline, or 404 (another airline's, or staff)."""
    user = get_db().execute("SELECT u.id, u.username, u.active, u.deactivated_at, by_.role AS deactivated_by_role"
                            " FROM user u LEFT JOIN user by_ ON by_.id = u.deactivated_by"
                            " WHERE u.id = ? AND u.airline = ? AND u.role = 'crew'", (user_id, airline())).fetchone()
    if user is None:
        abort(404)
    return user


@bp.get("/crew/<int:user_id>/deactivate", defaults={"action": "deactivate"})
@bp.get("/crew/<int:user_id>/reactivate", defaults={"action": "reactivate"})
@role_required("airline_security")
def confirm_account(user_id: int, action: str) -> Any:
    """Ask once more, saying what it does: the tablets that will still deliver."""
    user = own_crew(user_id)
    return render_template("review/account.html", u=user, action=action,
                           tablets=lifecycle.tablets(get_db(), user_id), action_form=ActionForm(formdata=None))


@bp.post("/crew/<int:user_id>/deactivate", defaults={"action": "deactivate"})
@bp.post("/crew/<int:user_id>/reactivate", defaults={"action": "reactivate"})
@role_required("airline_security")
def switch_account(user_id: int, action: str) -> Any:
    """Switch one of this airline's crew accounts off (signed out everywhere,
    no sign-in; their tablets still deliver) or on again. A double submit
    changes it once: the second answer is 409 and records nothing."""
    user = own_crew(user_id)
    if not ActionForm().validate_on_submit():
        flash(FORM_EXPIRED)
        return crew_page(None, 400)
    db = get_db()
    try:
        done = (lifecycle.deactivate(db, user_id, current_user.id_number) if action == "deactivate"
                else lifecycle.reactivate(db, user_id, by_airline=True))
    except lifecycle.OperatorsOnly:
        flash(f"{user['username']} was switched off by the service operators: "
              "ask the service operators to switch it on again.")
        return crew_page(None, 403)
    if not done:
        flash(f"{user['username']} was already {SWITCHED[action]}.")
        return crew_page(None, 409)
    if action == "reactivate":
        flash(f"{user['username']} reactivated: they sign in with the password they had.")
    else:
        left = len(lifecycle.tablets(db, user_id))
        flash(f"{user['username']} deactivated and signed out everywhere."
              + (f" Their {left} tablet(s) still deliver; revoke any that should send nothing more." if left else ""))
    return redirect(url_for("review.crew"), code=303)
