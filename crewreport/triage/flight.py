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

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from .. import audit, keys, report
from ..auth import role_required
from ..db import get_db, transaction
from ..display import STATUS_LABELS, URGENCY_LABELS, countdown_text, when
from ..forms import FlightDecisionForm
from ..report import URGENCIES
from ..times import parse_utc, stamp
from . import bp
from .queue import decorate
from .workflow import FLIGHT_DECISIONS, OPEN, lock_holder, move, username


def flight_reports(db: sqlite3.Connection, airline: str, flight: str, sta: str) -> list[sqlite3.Row]:
    """Every report of the flight, oldest first; 404 for a flight with none
    (or a key that is not a flight's)."""
    if not (report.AIRLINE.match(airline) and report.FLIGHT.match(flight) and report.UTC_Z.match(sta)):
        abort(404)
    rows = db.execute("SELECT r.*, a.username AS assignee, l.username AS lock_user FROM report r"
                      " LEFT JOIN user a ON a.id = r.assignee_id LEFT JOIN user l ON l.id = r.lock_user_id"
                      " WHERE r.airline = ? AND r.flight = ? AND r.sta = ? ORDER BY r.received_at, r.rowid",
                      (airline, flight, sta)).fetchall()
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


def flight_page(airline: str, flight: str, sta: str, form: FlightDecisionForm | None = None,
                status: int = 200, changed: set[str] | None = None, message: str | None = None) -> Any:
    db = get_db()
    at = datetime.now(UTC)
    stamp_now = stamp(at)
    rows = [decorate(r, current_user.id_number, stamp_now, None) for r in flight_reports(db, airline, flight, sta)]
    open_rows = [r for r in rows if r["status"] in OPEN]
    form = decision_form(form)
    form.report_ids.data = " ".join(f"{r['id']}:{r['status']}" for r in open_rows)
    form.confirm.data = False
    top = min(report.URGENCY_RANK[r["urgency"]] for r in rows)
    return render_template(
        "triage/flight.html", rows=rows, open_rows=open_rows, form=form, changed=changed or set(),
        message=message, airline=airline, flight=flight, sta=sta, arr=" / ".join(dict.fromkeys(r["arr"] for r in rows)),
        child=any(r["child"] for r in rows), urgency=URGENCY_LABELS[URGENCIES[top]], urgency_code=URGENCIES[top],
        countdown=countdown_text(sta, at), landed=parse_utc(sta) < at), status


@bp.get("/flights/<airline>/<flight>/<sta>")
@role_required("border_force")
def flight_view(airline: str, flight: str, sta: str) -> Any:
    """The flight's reports (headers only: nothing is decrypted here) and its decision form."""
    return flight_page(airline, flight, sta)


@bp.post("/flights/<airline>/<flight>/<sta>/decision")
@role_required("border_force")
def decide_flight(airline: str, flight: str, sta: str) -> Any:
    """Decide for every open report of the flight the officer was shown."""
    db = get_db()
    flight_reports(db, airline, flight, sta)  # 404 before anything else
    form = decision_form(FlightDecisionForm())
    if not form.validate_on_submit():
        return flight_page(airline, flight, sta, form, 400, message="Nothing was changed.")
    shown = shown_reports(form.report_ids.data)
    target, reason = form.decision.data, form.reason.data.strip()
    ring = keys.keyring()
    at = datetime.now(UTC)
    moved, already, held = [], [], []
    with transaction(db):
        rows = flight_reports(db, airline, flight, sta)
        open_ids = {r["id"] for r in rows if r["status"] in OPEN}
        # Still open, but not as shown: another officer decided it meanwhile.
        restated = {r["id"] for r in rows if r["id"] in open_ids & shown.keys() and shown[r["id"]] != r["status"]}
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
                    move(db, ring, r, target, reason, at, flight=f"{airline}/{flight}/{sta}")
                    moved.append(r["reference"])
            audit.record("flight_decided", subject=f"flight:{airline}/{flight}/{sta}", db=db, to=target,
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
        return flight_page(airline, flight, sta, form, 409, changed=changed,
                           message=f"{lead} ({'; '.join(parts)}). Nothing was changed. Read the list again, "
                                   "then decide.")
    label = STATUS_LABELS[target]
    summary = [f"{flight}: {len(moved)} report{'' if len(moved) == 1 else 's'} moved to {label}."]
    if already:
        summary.append(f"Already {label}: {', '.join(already)}.")
    if held:
        summary.append(f"Not changed, another officer holds them: {'; '.join(held)}. "
                       "Ask them, or decide once the lock is released.")
    flash(" ".join(summary))
    return redirect(url_for("triage.flight_view", airline=airline, flight=flight, sta=sta), code=303)


def flight_url(airline: str, flight: str, sta: str) -> str:
    """The flight's page, from any template that lists a flight."""
    return url_for("triage.flight_view", airline=airline, flight=flight, sta=sta)


bp.add_app_template_global(flight_url, "flight_url")
