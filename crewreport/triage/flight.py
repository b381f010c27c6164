"""One arriving flight: its page (every report of it, any status) and the
decision for all its open reports at once.

A decision moves exactly the open reports the officer was shown (the form
carries their ids, each with the status it showed). If the flight changed
since the page was loaded (a new report, one closed, reopened or decided by
another officer meanwhile), nothing moves: the page comes back with what
changed marked. Reports that another officer holds are not moved,
and are named; every move has its own history entry (the one reason, sealed
per report) and its own audit event.
"""
from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from .. import audit, keys, report
from ..auth import role_required, session_alive
from ..db import get_db, transaction
from ..display import STATUS_LABELS, URGENCY_LABELS, countdown_text, when
from ..forms import FlightDecisionForm
from ..report import URGENCIES
from ..times import parse_utc, stamp
from . import bp
from .queue import decorate
from .workflow import FLIGHT_DECISIONS, OPEN, last_change, lock_holder, move, username


def flight_row(db: sqlite3.Connection, flight_id: int) -> sqlite3.Row:
    """The arriving flight; 404 for an id that is no flight's."""
    row = db.execute("SELECT * FROM flight WHERE id = ?", (flight_id,)).fetchone()
    if row is None:
        abort(404)
    return row


def flight_reports(db: sqlite3.Connection, flight_id: int) -> list[sqlite3.Row]:
    """Every report of the flight, oldest first; 404 for a flight with none."""
    rows = db.execute("SELECT r.*, f.sta AS flight_sta, a.username AS assignee, l.username AS lock_user"
                      " FROM report r JOIN flight f ON f.id = r.flight_id"
                      " LEFT JOIN user a ON a.id = r.assignee_id LEFT JOIN user l ON l.id = r.lock_user_id"
                      " WHERE r.flight_id = ? ORDER BY r.received_at, r.rowid", (flight_id,)).fetchall()
    if not rows:
        abort(404)
    return rows


def shown_reports(value: str) -> dict[str, str | None]:
    """The open reports the page showed, each with the status it showed
    ("id:status" each; None for a bare id, as a page from before statuses
    were carried sends, which then counts as changed)."""
    shown: dict[str, str | None] = {}
    for token in value.split():
        report_id, _, status = token.partition(":")
        shown[report_id] = status or None
    return shown


def decision_form(form: FlightDecisionForm | None = None) -> FlightDecisionForm:
    form = form or FlightDecisionForm(formdata=None)
    form.decision.choices = [(s, STATUS_LABELS[s]) for s in FLIGHT_DECISIONS]
    return form


def flight_page(flight_id: int, form: FlightDecisionForm | None = None,
                status: int = 200, changed: set[str] | None = None, message: str | None = None) -> Any:
    db = get_db()
    at = datetime.now(UTC)
    stamp_now = stamp(at)
    arriving = flight_row(db, flight_id)
    seen_change = last_change(db, flight_id=flight_id)  # before the rows: see last_change
    rows = [decorate(r, current_user.id_number, stamp_now, None) for r in flight_reports(db, flight_id)]
    open_rows = [r for r in rows if r["status"] in OPEN]
    form = decision_form(form)
    form.report_ids.data = " ".join(f"{r['id']}:{r['status']}" for r in open_rows)
    form.changes_seen.data = str(seen_change)
    form.confirm.data = False
    top = min(report.URGENCY_RANK[r["urgency"]] for r in rows)
    return render_template(
        "triage/flight.html", rows=rows, open_rows=open_rows, form=form, changed=changed or set(),
        message=message, flight_id=flight_id, airline=arriving["airline"], flight=arriving["flight"],
        sta=arriving["sta"], arr=arriving["arr"],
        child=any(r["child"] for r in rows), urgency=URGENCY_LABELS[URGENCIES[top]], urgency_code=URGENCIES[top],
        countdown=countdown_text(arriving["sta"], at), landed=parse_utc(arriving["sta"]) < at), status


@bp.get("/flights/<int:flight_id>")
@role_required("border_force")
def flight_view(flight_id: int) -> Any:
    """The flight's reports (headers only: nothing is decrypted here) and its decision form."""
    return flight_page(flight_id)


@bp.post("/flights/<int:flight_id>/decision")
@role_required("border_force")
def decide_flight(flight_id: int) -> Any:
    """Decide for every open report of the flight the officer was shown."""
    db = get_db()
    arriving = flight_row(db, flight_id)
    flight_reports(db, flight_id)  # 404 before anything else
    form = decision_form(FlightDecisionForm())
    if not form.validate_on_submit():
        return flight_page(flight_id, form, 400, message="Nothing was changed.")
    shown = shown_reports(form.report_ids.data)
    target, reason = form.decision.data, form.reason.data.strip()
    ring = keys.keyring()
    at = datetime.now(UTC)
    moved, already, held = [], [], []
    named = f"{arriving['airline']}/{arriving['flight']}/{arriving['sta']}"
    with transaction(db):
        if not session_alive(db):  # deactivated, or signed out everywhere, since the request began
            return flight_page(flight_id, form, 401, message="You were signed out meanwhile. Nothing was changed.")
        rows = flight_reports(db, flight_id)
        open_ids = {r["id"] for r in rows if r["status"] in OPEN}
        # Still open, but not as shown: another officer decided it meanwhile
        # (or decided and reopened it: a status change after the page's last).
        seen = int(form.changes_seen.data) if form.changes_seen.data else None
        since = set() if seen is None else {h[0] for h in db.execute(
            "SELECT DISTINCT h.report_id FROM report r JOIN report_status_history h ON h.report_id = r.id"
            " WHERE r.flight_id = ? AND h.id > ?", (flight_id, seen))}
        restated = {r["id"] for r in rows if r["id"] in open_ids & shown.keys()
                    and (shown[r["id"]] != r["status"] or r["id"] in since)}
        changed = (open_ids - shown.keys()) | (shown.keys() - open_ids) | restated
        if not changed:
            for r in rows:
                if r["status"] not in OPEN:
                    continue
                holder = lock_holder(r, stamp(at))
                if holder is not None and holder != current_user.id_number:
                    held.append(f"{r['reference']} (held by {username(db, holder)} until {when(r['lock_expires_at'])})")
                elif r["status"] == target:
                    already.append(r["reference"])
                else:
                    move(db, ring, r, target, reason, at, flight=named)
                    moved.append(r["reference"])
            audit.record("flight_decided", subject=f"flight:{flight_id}", db=db, flight=named, to=target,
                         moved=len(moved), held=len(held))
    if changed:
        new = [r["reference"] for r in rows if r["id"] in open_ids - shown.keys()]
        gone = [r["reference"] for r in rows if r["id"] in shown.keys() - open_ids]
        decided = [f"{r['reference']} (now {STATUS_LABELS[r['status']]})" for r in rows if r["id"] in restated]
        parts = []
        if new:
            parts.append(f"{len(new)} report{'s' if len(new) > 1 else ''} arrived or reopened since you loaded "
                         f"the page: {', '.join(new)}")
        if gone:
            parts.append(f"closed meanwhile: {', '.join(gone)}")
        if decided:
            parts.append(f"decided meanwhile: {', '.join(decided)}")
        # Ids the form carries that name no report of this flight (edited, or
        # from another flight's page) are counted, not echoed back.
        if foreign := len(shown.keys() - {r["id"] for r in rows}):
            parts.append(f"the form lists {foreign} report{'s' if foreign > 1 else ''} not on this flight")
        lead = "The flight changed while you had it open" if new or gone or decided else \
            "The form is not this flight's list"
        return flight_page(flight_id, form, 409, changed=changed,
                           message=f"{lead} ({'; '.join(parts)}). Nothing was changed. Read the list again, "
                                   "then decide.")
    label = STATUS_LABELS[target]
    summary = [f"{arriving['flight']}: {len(moved)} report{'' if len(moved) == 1 else 's'} moved to {label}."]
    if already:
        summary.append(f"Already {label}: {', '.join(already)}.")
    if held:
        summary.append(f"Not changed, another officer holds them: {'; '.join(held)}. "
                       "Ask them, or decide once the lock is released.")
    flash(" ".join(summary))
    return redirect(url_for("triage.flight_view", flight_id=flight_id), code=303)


@bp.route("/flights/<airline>/<flight>/<sta>", methods=["GET"])
@bp.route("/flights/<airline>/<flight>/<sta>/decision", methods=["POST"])
@role_required("border_force")
def named_flight(airline: str, flight: str, sta: str) -> Any:
    """A flight's page or decision at the address it had before flights had
    ids (a bookmark, or a page open across the upgrade): the flight of the
    reports with that airline, number and sta. A decision is sent on with
    307, which keeps its form (and its check that nothing changed)."""
    if not (report.AIRLINE.match(airline) and report.FLIGHT.match(flight) and report.UTC_Z.match(sta)):
        abort(404)
    found = get_db().execute("SELECT flight_id FROM report WHERE airline = ? AND flight = ? AND sta = ?"
                             " ORDER BY received_at DESC LIMIT 1", (airline, flight, sta)).fetchone()
    if found is None:
        abort(404)
    if request.method == "POST":
        return redirect(url_for("triage.decide_flight", flight_id=found[0]), code=307)
    return redirect(url_for("triage.flight_view", flight_id=found[0]), code=302)


def flight_url(flight_id: int) -> str:
    """The flight's page, from any template that lists a flight."""
    return url_for("triage.flight_view", flight_id=flight_id)


bp.add_app_template_global(flight_url, "flight_url")
