"""The triage routes: the flight board and its refresh, the CSV export, the
report page, the officers' actions on a report and the NRM prompt sheet
(a flight's page and its decision are in `flight`)."""
from __future__ import annotations

import csv
import io
import sqlite3
from datetime import UTC, datetime
from typing import Any

from flask import Response, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from .. import audit, flights, keys, report
from ..auth import role_required
from ..db import get_db, transaction
from ..display import STATUS_LABELS, URGENCY_LABELS, countdown_text, display_body, lead_time, when
from ..forms import FORM_EXPIRED, ActionForm, AssignForm, NoteForm, StatusForm
from ..safe_methods import from_another_site, get_only, looked
from ..sealed_text import NOTE_INFO
from ..times import now, parse_utc, stamp
from . import bp
from .queue import (
    CSV_FIELDS,
    CSV_MAX_ROWS,
    STATUS_FILTERS,
    WINDOWS,
    Filters,
    airports,
    arrivals_after,
    csv_row,
    export_rows,
    last_seen,
    load_board,
    mark_seen,
)
from .workflow import (
    OPEN,
    STATUSES,
    TRANSITIONS,
    Refused,
    acting_on,
    changed_by,
    get_report,
    history,
    keep_lock,
    last_change,
    let_go,
    lock_holder,
    move,
    notes,
    officers,
    renew_lock,
    seal_for_border_force,
    sent_twice,
    username,
)


@bp.get("/")
@role_required("border_force")
def index() -> Any:
    """The flight board; it refreshes itself from `queue_json`."""
    db = get_db()
    filters = Filters.from_args(request.args)
    at = datetime.now(UTC)
    since = request.args.get("since")
    if not (since and report.UTC_Z.match(since)):
        since = last_seen(db, current_user.id_number, filters.view())
    queue = load_board(db, filters, current_user.id_number, at, since)
    # Later pages keep the first page's `since` (the pager carries it); a HEAD is no look.
    if filters.page == 1 and looked():
        mark_seen(db, current_user.id_number, filters.view(), stamp(at))
    return render_template("triage/index.html", queue=queue, filters=filters, since=since or "",
                           now=stamp(at), arrivals_after=arrivals_after(at), airports=airports(db), windows=WINDOWS,
                           status_filters=STATUS_FILTERS, urgencies=URGENCY_LABELS,
                           alert_minutes=current_app.config["BOARD_ALERT_MINUTES"])


@bp.get("/queue.json")
@role_required("border_force")
def queue_json() -> Any:
    """The current page of flights as an HTML fragment in JSON, for the refresh."""
    db = get_db()
    filters = Filters.from_args(request.args)
    at = datetime.now(UTC)
    since = request.args.get("since")
    if not (since and report.UTC_Z.match(since)):
        since = None
    queue = load_board(db, filters, current_user.id_number, at, since)
    html = render_template("triage/_board.html", queue=queue, filters=filters)
    pager = render_template("triage/_pager.html", queue=queue, filters=filters, since=since or "")
    return jsonify(html=html, pager=pager, total=queue.total, reports=queue.reports, page=queue.page,
                   pages=queue.pages, now=stamp(at), arrivals_after=arrivals_after(at),
                   ids=[r["id"] for r in queue.rows])


@bp.get("/export.csv")
@get_only
@role_required("border_force")
def export_csv() -> Any:
    """The queue's cleartext header fields (same filters, every page) as CSV;
    never for a link on another site, which would put the queue on the
    officer's disk and an export they never asked for in the audit trail."""
    db = get_db()
    filters = Filters.from_args(request.args)
    if from_another_site():
        flash("Not exported: the export was asked for from another site. "
              "To export this view, use Export CSV on this page.")
        return redirect(url_for("triage.index", **filters.query_args(page=None)), code=303)
    at = datetime.now(UTC)
    rows = export_rows(db, filters, current_user.id_number, at)
    if rows is None:
        flash(f"Not exported: these filters select more than {CSV_MAX_ROWS:,} reports. "
              "Narrow them (a status, an arrival airport, a time window) and export again.")
        return redirect(url_for("triage.index", **filters.query_args(page=None)), code=303)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow(csv_row(r))
    audit.record("queue_exported", subject="queue", format="csv", rows=len(rows),
                 filters=filters.query_args(page=None))
    filename = f"crewreport-queue-{at.strftime('%Y%m%dT%H%MZ')}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def open_body(row: sqlite3.Row) -> dict[str, Any]:
    """Decrypt with the Border Force key; 503 when the keys are not readable."""
    try:
        ring = keys.keyring()
    except keys.KeysUnavailable:
        abort(503, "The Border Force key is not available; the report cannot be opened.")
    return report.open_stored(row, ring, keys.BORDER_FORCE)


def mark_opened(db: sqlite3.Connection, report_id: str) -> None:
    """The first time an officer reads a report: the tablet may learn it was seen."""
    with transaction(db):
        db.execute("UPDATE report SET first_opened_at = ? WHERE id = ? AND first_opened_at IS NULL",
                   (now(), report_id))


def build_forms(db: sqlite3.Connection, row: sqlite3.Row, seen_change: int) -> dict[str, Any]:
    status_form = StatusForm(formdata=None, from_change=str(seen_change))
    status_form.status.choices = [(s, STATUS_LABELS[s]) for s in TRANSITIONS[row["status"]]]
    assign_form = AssignForm(formdata=None, assignee=row["assignee_id"] or 0)
    assign_form.assignee.choices = [(0, "Nobody")] + [(o["id"], o["username"]) for o in officers(db)]
    return {"status_form": status_form, "assign_form": assign_form,
            "note_form": NoteForm(formdata=None), "action_form": ActionForm(formdata=None)}


@bp.get("/reports/<report_id>")
@get_only
@role_required("border_force")
def report_page(report_id: str) -> Any:
    """Open (decrypt, audit) and show one report with its workflow."""
    db = get_db()
    seen_change = last_change(db, report_id)  # before the row: see last_change
    row = get_report(db, report_id)
    body = open_body(row)
    audit.record("report_opened", subject=f"report:{report_id}")
    mark_opened(db, report_id)
    ring = keys.keyring()
    at = now()
    device = db.execute("SELECT d.*, u.username FROM device d LEFT JOIN user u ON u.id = d.user_id"
                        " WHERE d.id = ?", (row["device_id"],)).fetchone()
    holder = lock_holder(row, at)
    same_flight = db.execute("SELECT id, reference, urgency, status, received_at, child FROM report"
                             " WHERE flight_id = ? ORDER BY received_at, rowid", (row["flight_id"],)).fetchall()
    flight_sta = flights.arrival(db, row["flight_id"])
    # How long before the flight's landing the report came (as the board says it).
    lead = lead_time(row["received_at"], flight_sta)
    return render_template(
        "triage/report.html", r=row, body=display_body(body), device=device, same_flight=same_flight,
        open_on_flight=sum(r["status"] in OPEN for r in same_flight),
        history=history(db, ring, row), notes=notes(db, ring, report_id),
        holder=holder, holder_name=username(db, holder), mine=holder == current_user.id_number,
        assignee=username(db, row["assignee_id"]), lead=lead, status_labels=STATUS_LABELS,
        flight_sta=flight_sta, countdown=countdown_text(flight_sta, parse_utc(at)), **build_forms(db, row, seen_change))


def refused(report_id: str, message: str, status: int = 409) -> Any:
    """A refused action: a clear message, nothing changed, a way back."""
    return render_template("triage/refused.html", message=message, report_id=report_id), status


@bp.errorhandler(Refused)
def show_refusal(exc: Refused) -> Any:
    return refused(exc.report_id, exc.message, exc.status)


def form_errors(form: Any) -> str:
    return " ".join(e for errors in form.errors.values() for e in errors) or "The form was not valid."


def back(report_id: str) -> Any:
    return redirect(url_for("triage.report_page", report_id=report_id), code=303)


@bp.post("/reports/<report_id>/status")
@role_required("border_force")
def change_status(report_id: str) -> Any:
    """One step of the workflow, with its reason sealed into the history."""
    db = get_db()
    get_report(db, report_id)
    form = StatusForm()
    form.status.choices = [(s, STATUS_LABELS[s]) for s in STATUSES]
    if not form.validate_on_submit():
        return refused(report_id, form_errors(form) + " Nothing was changed.", 400)
    ring = keys.keyring()
    target = form.status.data
    at = datetime.now(UTC)
    with acting_on(db, report_id, at) as row:
        if (form.from_status.data and form.from_status.data != row["status"]) or \
                (form.from_change.data and form.from_change.data != str(last_change(db, report_id))):
            raise Refused(report_id, f"{changed_by(db, report_id)} changed this report to "
                                     f"{STATUS_LABELS[row['status']]} after this page was loaded. Look again "
                                     "before deciding. Nothing was changed.")
        if target not in TRANSITIONS[row["status"]]:
            allowed = ", ".join(STATUS_LABELS[s] for s in TRANSITIONS[row["status"]])
            raise Refused(report_id, f"A report that is {STATUS_LABELS[row['status']]} cannot go to "
                                     f"{STATUS_LABELS[target]}; it can go to: {allowed}. Nothing was changed.")
        move(db, ring, row, target, form.reason.data.strip(), at)
        renew_lock(db, report_id, at)
    flash(f"Status changed to {STATUS_LABELS[target]}.")
    return back(report_id)


@bp.post("/reports/<report_id>/assign")
@role_required("border_force")
def assign(report_id: str) -> Any:
    """Assign the report to an officer, or to nobody."""
    db = get_db()
    get_report(db, report_id)
    form = AssignForm()
    form.assignee.choices = [(0, "Nobody")] + [(o["id"], o["username"]) for o in officers(db)]
    if not form.validate_on_submit():
        return refused(report_id, "Choose an officer from the list. Nothing was changed.", 400)
    assignee = form.assignee.data or None
    at = datetime.now(UTC)
    with acting_on(db, report_id, at) as row:
        shown = form.from_assignee.data
        if shown and shown != str(row["assignee_id"] or 0):
            now_with = username(db, row["assignee_id"]) or "nobody"
            raise Refused(report_id, f"Someone assigned this report to {now_with} while you had it open. "
                                     "Look again before assigning it. Nothing was changed.")
        if assignee and assignee not in {o["id"] for o in officers(db)}:
            # The list was read before the write lock: deactivated since.
            raise Refused(report_id, f"{username(db, assignee)} was deactivated meanwhile and cannot be "
                                     "assigned reports. Nothing was changed.")
        db.execute("UPDATE report SET assignee_id = ? WHERE id = ?", (assignee, report_id))
        if assignee == current_user.id_number:
            renew_lock(db, report_id, at)  # taking it on: working on it now
        elif lock_holder(row, stamp(at)) == current_user.id_number:
            # Handing it over: the one it goes to must be able to act at once.
            let_go(db, report_id)
        audit.record("report_assigned", subject=f"report:{report_id}", db=db,
                     assignee=username(db, assignee))
    flash(f"Assigned to {username(db, assignee)}." if assignee else "Unassigned.")
    return back(report_id)


@bp.post("/reports/<report_id>/notes")
@role_required("border_force")
def add_note(report_id: str) -> Any:
    """A note, sealed to the Border Force key before it is stored."""
    db = get_db()
    get_report(db, report_id)
    form = NoteForm()
    if not form.validate_on_submit():
        return refused(report_id, form_errors(form) + " The note was not saved.", 400)
    ring = keys.keyring()
    at = datetime.now(UTC)
    note = form.text.data.strip()
    with acting_on(db, report_id, at, not_done="The note was not saved.") as row:
        if sent_twice(db, ring, report_id, note, at):
            raise Refused(report_id, "You saved this note a moment ago (the form was sent twice); "
                                     "it is kept once. Nothing was changed.")
        kid, sealed = seal_for_border_force(ring, note, report_id, NOTE_INFO)
        cur = db.execute("INSERT INTO report_note (report_id, at, author_id, kid, sealed) VALUES (?, ?, ?, ?, ?)",
                         (report_id, stamp(at), current_user.id_number, kid, sealed))
        keep_lock(db, row, at)
        audit.record("note_added", subject=f"report:{report_id}", db=db, note=cur.lastrowid)
    flash("Note added.")
    return back(report_id)


def lock_form(report_id: str) -> sqlite3.Connection:
    """The store, once the report exists and the lock form's token is good
    (else `Refused`: nothing changed)."""
    db = get_db()
    get_report(db, report_id)
    if not ActionForm().validate_on_submit():
        raise Refused(report_id, FORM_EXPIRED, 400)
    return db


@bp.post("/reports/<report_id>/lock")
@role_required("border_force")
def take_lock(report_id: str) -> Any:
    """Take (or extend) the lock: the other officers see who is working on it."""
    db = lock_form(report_id)
    at = datetime.now(UTC)
    with acting_on(db, report_id, at):
        expires = renew_lock(db, report_id, at)
        audit.record("report_locked", subject=f"report:{report_id}", db=db, until=expires)
    flash(f"You hold the lock until {when(expires)}.")
    return back(report_id)


@bp.post("/reports/<report_id>/unlock")
@role_required("border_force")
def release_lock(report_id: str) -> Any:
    """Release the lock; only its holder can."""
    db = lock_form(report_id)
    at = stamp(datetime.now(UTC))
    with transaction(db):
        row = get_report(db, report_id)
        if lock_holder(row, at) != current_user.id_number:
            raise Refused(report_id, "You do not hold the lock on this report. Nothing was changed.")
        let_go(db, report_id)
        audit.record("report_unlocked", subject=f"report:{report_id}", db=db)
    flash("Lock released.")
    return back(report_id)


@bp.get("/reports/<report_id>/nrm")
@get_only
@role_required("border_force")
def nrm_sheet(report_id: str) -> Any:
    """A printable prompt sheet for the online NRM form; nothing is sent anywhere."""
    db = get_db()
    row = get_report(db, report_id)
    body = open_body(row)
    audit.record("report_exported", subject=f"report:{report_id}", format="nrm_sheet")
    mark_opened(db, report_id)
    # The flight's arrival, and how long before it the report came, as the report page says.
    flight_sta = flights.arrival(db, row["flight_id"])
    return render_template("triage/nrm.html", r=row, body=display_body(body), flight_sta=flight_sta,
                           lead=lead_time(row["received_at"], flight_sta), printed_at=now(),
                           status_labels=STATUS_LABELS)

