"""Border Force triage (`/triage`, role `border_force`): the queue, the report
page, the workflow (status with reasons, assignment, notes, an expiring lock)
and the exports.

Plaintext exists only in memory while a page is rendered: report bodies are
opened from the stored envelope on every view (each view is audited), and
what officers type (notes, status reasons) is sealed with HPKE to the current
Border Force key before it reaches the store.
"""
from __future__ import annotations

import csv
import io
import math
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from flask import (Blueprint, Response, abort, current_app, flash, jsonify, redirect,
                   render_template, request, url_for)
from flask_login import current_user

from . import audit, catalogue, envelope, keys, report
from .auth import role_required
from .db import get_db, now, transaction
from .forms import ActionForm, AssignForm, NoteForm, StatusForm

bp = Blueprint("triage", __name__, url_prefix="/triage")

STATUSES = ("received", "assessing", "meet_aircraft", "no_further_action", "referred")
STATUS_LABELS = {
    "received": "Received", "assessing": "Assessing", "meet_aircraft": "Meet aircraft",
    "no_further_action": "No further action", "referred": "Referred",
}
# The workflow. Every step needs a reason; closed reports can be reopened
# (back to assessing), and a "meet aircraft" decision is followed by its outcome.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "received": ("assessing",),
    "assessing": ("meet_aircraft", "no_further_action", "referred"),
    "meet_aircraft": ("no_further_action", "referred", "assessing"),
    "no_further_action": ("assessing",),
    "referred": ("assessing",),
}
CLOSED = ("no_further_action", "referred")
OPEN = ("received", "assessing", "meet_aircraft")
URGENCY_LABELS = {"immediate": "Immediate", "priority": "Priority", "routine": "Routine"}
WINDOWS = {
    "all": "Any time",
    "6h": "Landing within 6 h",
    "24h": "Landing within 24 h",
    "upcoming": "Not yet landed",
    "past": "Landed",
}
STATUS_FILTERS = {"open": "Open (not closed)", "any": "Any status", "closed": "Closed",
                  **STATUS_LABELS}
# Reports that landed less than this long ago still count as "within 6 h" etc.:
# officers may still reach the gate.
GRACE = timedelta(hours=1)
PER_PAGE = 50
CSV_MAX_ROWS = 10000
NOTE_INFO = b"crewreport/note/v1:"
REASON_INFO = b"crewreport/reason/v1:"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


# -- times -------------------------------------------------------------------------

def parse_utc(value: str) -> datetime:
    """The store's time strings back to aware datetimes."""
    # fromisoformat reads the Z since 3.11, some 30 times faster than strptime:
    # it runs several times per row of a 10,000-row export.
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or len(value) != 20:
        raise ValueError(f"not a stored UTC time: {value!r}")
    return parsed


def stamp(dt: datetime) -> str:
    """An aware datetime in the store's format (sorts as text)."""
    return dt.astimezone(timezone.utc).strftime(TIME_FORMAT)


def span(seconds: float) -> str:
    """A duration the way an officer says it: '2 h 05 min', '3 d 4 h'."""
    minutes = int(abs(seconds) // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


@bp.app_template_filter("when")
def when_filter(value: str | None) -> str:
    """'Tue 01 Dec 14:35Z' from a stored time; UTC, as control rooms use."""
    if not value:
        return "—"
    try:
        # Stored times are UTC with a Z; a body's observed_at may carry an offset.
        return report.parse_time(value).strftime("%a %d %b %H:%MZ")
    except ValueError:
        return value


@bp.app_template_filter("span")
def span_filter(seconds: float) -> str:
    return span(seconds)


def lead_time(received_at: str, sta: str) -> tuple[float, str, bool]:
    """How long before landing the report arrived: (seconds, text, late?)."""
    seconds = (parse_utc(sta) - parse_utc(received_at)).total_seconds()
    if seconds >= 0:
        return seconds, f"{span(seconds)} before landing", False
    return seconds, f"{span(seconds)} after landing", True


def countdown_text(sta: str, at: datetime) -> str:
    """The server-rendered fallback for the live countdown."""
    seconds = (parse_utc(sta) - at).total_seconds()
    return f"lands in {span(seconds)}" if seconds >= 0 else f"landed {span(seconds)} ago"


# -- sealing what officers type ------------------------------------------------------

def seal_text(ring: keys.Keyring, text: str, report_id: str, info: bytes) -> tuple[str, str]:
    """(kid, b64u(enc || ct)) of `text` sealed to the current Border Force key,
    bound to the report by the HPKE info so it cannot be moved to another."""
    kid = ring.current[keys.BORDER_FORCE]
    public = ring.private[kid].public_key()
    sealed = envelope.SUITE.encrypt(text.encode("utf-8"), public, info=info + report_id.encode("ascii"))
    return kid, envelope.b64u_encode(sealed)


def open_text(ring: keys.Keyring, kid: str, sealed: str, report_id: str, info: bytes) -> str:
    """The clear text of a sealed note or reason, or a marker if it cannot open."""
    key = ring.private.get(kid)
    if key is None:
        return "[cannot be opened: its key is not held]"
    try:
        plain = envelope.SUITE.decrypt(envelope.b64u_decode(sealed), key,
                                       info=info + report_id.encode("ascii"))
    except Exception:  # noqa: BLE001 - any failure is shown, never fatal
        return "[cannot be opened]"
    return plain.decode("utf-8", "replace")


# -- the queue -------------------------------------------------------------------------

@dataclass
class Filters:
    """The queue's filters, from the query string; unknown values are dropped
    (and said so), never passed to SQL."""

    arr: str = ""
    status: str = "open"
    urgency: str = "any"
    mine: bool = False
    window: str = "all"
    page: int = 1
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> "Filters":
        f = cls()
        arr = (args.get("arr") or "").strip().upper()
        if arr and report.AIRPORT.match(arr):
            f.arr = arr
        elif arr:
            f.ignored.append("arrival airport")
        status = args.get("status") or "open"
        if status in STATUS_FILTERS:
            f.status = status
        else:
            f.ignored.append("status")
        urgency = args.get("urgency") or "any"
        if urgency == "any" or urgency in URGENCY_LABELS:
            f.urgency = urgency
        else:
            f.ignored.append("urgency")
        f.mine = args.get("mine") in ("1", "on", "true")
        window = args.get("window") or "all"
        if window in WINDOWS:
            f.window = window
        else:
            f.ignored.append("time window")
        try:
            f.page = max(1, min(int(args.get("page") or 1), 100000))
        except ValueError:
            f.ignored.append("page")
        return f

    def where(self, user_id: int, at: datetime) -> tuple[str, list[Any]]:
        """SQL conditions and parameters; only fixed fragments, values bound."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.arr:
            clauses.append("r.arr = ?")
            params.append(self.arr)
        # The unary + keeps SQLite off the status index for these lists: left
        # to itself (no ANALYZE statistics, as in production) it reads by
        # status and sorts every open report to show 50; without the index
        # it walks report_queue already in queue order (benchmarks/queue.py).
        if self.status == "open":
            clauses.append("+r.status IN ('received', 'assessing', 'meet_aircraft')")
        elif self.status == "closed":
            clauses.append("+r.status IN ('no_further_action', 'referred')")
        elif self.status != "any":
            clauses.append("r.status = ?")
            params.append(self.status)
        if self.urgency != "any":
            clauses.append("r.urgency_rank = ?")
            params.append(report.URGENCY_RANK[self.urgency])
        if self.mine:
            clauses.append("r.assignee_id = ?")
            params.append(user_id)
        if self.window in ("6h", "24h"):
            hours = 6 if self.window == "6h" else 24
            clauses.append("r.sta BETWEEN ? AND ?")
            params += [stamp(at - GRACE), stamp(at + timedelta(hours=hours))]
        elif self.window == "upcoming":
            clauses.append("r.sta >= ?")
            params.append(stamp(at))
        elif self.window == "past":
            clauses.append("r.sta < ?")
            params.append(stamp(at))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """The filters as query-string arguments (for links and the refresh)."""
        args: dict[str, Any] = {"status": self.status, "urgency": self.urgency, "window": self.window}
        if self.arr:
            args["arr"] = self.arr
        if self.mine:
            args["mine"] = "1"
        if self.page > 1:
            args["page"] = self.page
        args.update(changes)
        return {k: v for k, v in args.items() if v is not None}


QUEUE_COLUMNS = (
    "r.id, r.reference, r.airline, r.flight, r.dep, r.arr, r.sta, r.urgency, r.status,"
    " r.received_at, r.assignee_id, r.lock_user_id, r.lock_expires_at,"
    " a.username AS assignee, l.username AS lock_user"
)
QUEUE_ORDER = " ORDER BY r.sta, r.urgency_rank, r.received_at, r.rowid"


def queue_sql(filters: Filters, user_id: int, at: datetime) -> tuple[str, list[Any]]:
    """The page query (without LIMIT), exposed so a test can EXPLAIN it."""
    where, params = filters.where(user_id, at)
    sql = (f"SELECT {QUEUE_COLUMNS} FROM report r"
           " LEFT JOIN user a ON a.id = r.assignee_id"
           " LEFT JOIN user l ON l.id = r.lock_user_id" + where + QUEUE_ORDER)
    return sql, params


@dataclass
class QueuePage:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


def load_queue(db: sqlite3.Connection, filters: Filters, user_id: int, at: datetime,
               since: str | None, *, export: bool = False) -> QueuePage:
    """One page of the queue, each row decorated for display; or, for the
    export, every row up to CSV_MAX_ROWS."""
    where, params = filters.where(user_id, at)
    total = db.execute("SELECT count(*) FROM report r" + where, params).fetchone()[0]
    sql, params = queue_sql(filters, user_id, at)
    pages = max(1, math.ceil(total / PER_PAGE))
    page = min(filters.page, pages)
    if export:
        sql += " LIMIT ?"
        params = params + [CSV_MAX_ROWS]
    else:
        sql += " LIMIT ? OFFSET ?"
        params = params + [PER_PAGE, (page - 1) * PER_PAGE]
    stamp_now = stamp(at)
    rows = []
    for r in db.execute(sql, params):
        row = dict(r)
        row["lead_seconds"], row["lead_text"], row["late"] = lead_time(r["received_at"], r["sta"])
        if not export:
            row["countdown"] = countdown_text(r["sta"], at)
        row["new"] = bool(since) and r["received_at"] > since
        row["locked_by_other"] = bool(r["lock_user_id"] and r["lock_user_id"] != user_id
                                      and (r["lock_expires_at"] or "") > stamp_now)
        row["status_label"] = STATUS_LABELS[r["status"]]
        rows.append(row)
    return QueuePage(rows, total, page, pages)


def last_seen(db: sqlite3.Connection, user_id: int) -> str | None:
    row = db.execute("SELECT queue_seen_at FROM officer_seen WHERE user_id = ?", (user_id,)).fetchone()
    return row["queue_seen_at"] if row else None


def mark_seen(db: sqlite3.Connection, user_id: int, at: str) -> None:
    """Remember this look at the queue: what arrives later is 'new' next time."""
    with transaction(db):
        db.execute("INSERT INTO officer_seen (user_id, queue_seen_at) VALUES (?, ?)"
                   " ON CONFLICT (user_id) DO UPDATE SET queue_seen_at = excluded.queue_seen_at",
                   (user_id, at))


def airports(db: sqlite3.Connection) -> list[str]:
    """Arrival airports that have reports, for the filter (read from the index)."""
    return [r[0] for r in db.execute("SELECT DISTINCT arr FROM report ORDER BY arr")]


@bp.get("/")
@role_required("border_force")
def index() -> Any:
    """The queue page; it refreshes itself from `queue_json`."""
    db = get_db()
    filters = Filters.from_args(request.args)
    at = datetime.now(timezone.utc)
    since = request.args.get("since")
    if not (since and report.UTC_Z.match(since)):
        since = last_seen(db, current_user.id_number)
    queue = load_queue(db, filters, current_user.id_number, at, since)
    mark_seen(db, current_user.id_number, stamp(at))
    return render_template("triage/index.html", queue=queue, filters=filters, since=since or "",
                           now=stamp(at), airports=airports(db), windows=WINDOWS,
                           status_filters=STATUS_FILTERS, urgencies=URGENCY_LABELS)


@bp.get("/queue.json")
@role_required("border_force")
def queue_json() -> Any:
    """The current page of rows as an HTML fragment in JSON, for the refresh."""
    db = get_db()
    filters = Filters.from_args(request.args)
    at = datetime.now(timezone.utc)
    since = request.args.get("since")
    if not (since and report.UTC_Z.match(since)):
        since = None
    queue = load_queue(db, filters, current_user.id_number, at, since)
    html = render_template("triage/_rows.html", queue=queue, filters=filters)
    pager = render_template("triage/_pager.html", queue=queue, filters=filters, since=since or "")
    return jsonify(html=html, pager=pager, total=queue.total, page=queue.page, pages=queue.pages,
                   now=stamp(at), ids=[r["id"] for r in queue.rows])


def csv_cell(value: Any) -> Any:
    """Guard against formula injection: text a spreadsheet would evaluate
    (leading = + - @ tab CR) is prefixed with an apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


CSV_FIELDS = ("reference", "id", "airline", "flight", "dep", "arr", "sta", "urgency", "status",
              "assignee", "received_at", "minutes_before_landing")


@bp.get("/export.csv")
@role_required("border_force")
def export_csv() -> Any:
    """The queue's cleartext header fields (same filters, every page) as CSV."""
    db = get_db()
    filters = Filters.from_args(request.args)
    at = datetime.now(timezone.utc)
    rows = load_queue(db, filters, current_user.id_number, at, None, export=True).rows
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for r in rows:
        writer.writerow([csv_cell(v) for v in (
            r["reference"], r["id"], r["airline"], r["flight"], r["dep"], r["arr"], r["sta"],
            r["urgency"], r["status"], r["assignee"] or "", r["received_at"],
            int(r["lead_seconds"] // 60))])
    audit.record("queue_exported", subject="queue", format="csv", rows=len(rows),
                 filters=filters.query_args(page=None))
    filename = f"crewreport-queue-{at.strftime('%Y%m%dT%H%MZ')}.csv"
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


# -- one report ---------------------------------------------------------------------------

def get_report(db: sqlite3.Connection, report_id: str) -> sqlite3.Row:
    """The report row or 404 (ids are looked up, never interpolated)."""
    row = db.execute("SELECT * FROM report WHERE id = ?", (report_id,)).fetchone()
    if row is None:
        abort(404)
    return row


def open_body(row: sqlite3.Row) -> dict[str, Any]:
    """Decrypt with the Border Force key; 503 when the keys are not readable."""
    try:
        ring = keys.keyring()
    except keys.KeysUnavailable:
        abort(503, "The Border Force key is not available; the report cannot be opened.")
    return report.open_stored(row, ring, keys.BORDER_FORCE)


def lock_holder(row: sqlite3.Row, at: str) -> int | None:
    """Who holds the report's lock now (None when free or expired)."""
    if row["lock_user_id"] and (row["lock_expires_at"] or "") > at:
        return int(row["lock_user_id"])
    return None


def username(db: sqlite3.Connection, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    r = db.execute("SELECT username FROM user WHERE id = ?", (user_id,)).fetchone()
    return r["username"] if r else None


def officers(db: sqlite3.Connection) -> list[sqlite3.Row]:
    return db.execute("SELECT id, username FROM user WHERE role = 'border_force' AND active = 1"
                      " ORDER BY username").fetchall()


def display_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body with labels for indicator codes, for the templates."""
    return {
        **body,
        "indicator_labels": [(c, catalogue.label(c)) for c in body.get("indicators", [])],
        "child": report.involves_child(body),
    }


def history(db: sqlite3.Connection, ring: keys.Keyring, row: sqlite3.Row) -> list[dict[str, Any]]:
    """Status history with reasons opened; the first entry is the receipt."""
    entries: list[dict[str, Any]] = [{"at": row["received_at"], "actor": "intake", "from_status": None,
                                      "to_status": "received", "reason": "Delivered by the crew device."}]
    for h in db.execute("SELECT h.*, u.username FROM report_status_history h"
                        " LEFT JOIN user u ON u.id = h.actor_id WHERE h.report_id = ? ORDER BY h.id",
                        (row["id"],)):
        entries.append({"at": h["at"], "actor": h["username"], "from_status": h["from_status"],
                        "to_status": h["to_status"],
                        "reason": open_text(ring, h["reason_kid"], h["reason_sealed"], row["id"], REASON_INFO)})
    return entries


def notes(db: sqlite3.Connection, ring: keys.Keyring, report_id: str) -> list[dict[str, Any]]:
    return [{"at": n["at"], "author": n["username"],
             "text": open_text(ring, n["kid"], n["sealed"], report_id, NOTE_INFO)}
            for n in db.execute("SELECT n.*, u.username FROM report_note n LEFT JOIN user u"
                                " ON u.id = n.author_id WHERE n.report_id = ? ORDER BY n.id", (report_id,))]


def build_forms(db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
    status_form = StatusForm(formdata=None)
    status_form.status.choices = [(s, STATUS_LABELS[s]) for s in TRANSITIONS[row["status"]]]
    assign_form = AssignForm(formdata=None, assignee=row["assignee_id"] or 0)
    assign_form.assignee.choices = [(0, "Nobody")] + [(o["id"], o["username"]) for o in officers(db)]
    return {"status_form": status_form, "assign_form": assign_form,
            "note_form": NoteForm(formdata=None), "action_form": ActionForm(formdata=None)}


@bp.get("/reports/<report_id>")
@role_required("border_force")
def report_page(report_id: str) -> Any:
    """Open (decrypt, audit) and show one report with its workflow."""
    db = get_db()
    row = get_report(db, report_id)
    body = open_body(row)
    audit.record("report_opened", subject=f"report:{report_id}")
    ring = keys.keyring()
    at = now()
    device = db.execute("SELECT d.*, u.username FROM device d LEFT JOIN user u ON u.id = d.user_id"
                        " WHERE d.id = ?", (row["device_id"],)).fetchone()
    holder = lock_holder(row, at)
    lead = lead_time(row["received_at"], row["sta"])
    return render_template(
        "triage/report.html", r=row, body=display_body(body), device=device,
        history=history(db, ring, row), notes=notes(db, ring, report_id),
        holder=holder, holder_name=username(db, holder), mine=holder == current_user.id_number,
        assignee=username(db, row["assignee_id"]), lead=lead, status_labels=STATUS_LABELS,
        countdown=countdown_text(row["sta"], parse_utc(at)), **build_forms(db, row))


def refused(report_id: str, message: str, status: int = 409) -> Any:
    """A refused action: a clear message, nothing changed, a way back."""
    return render_template("triage/refused.html", message=message, report_id=report_id), status


class Refused(Exception):
    """An officer's action refused: shown with its message; nothing was changed."""

    def __init__(self, report_id: str, message: str, status: int = 409) -> None:
        super().__init__(message)
        self.report_id, self.message, self.status = report_id, message, status


@bp.errorhandler(Refused)
def show_refusal(exc: Refused) -> Any:
    return refused(exc.report_id, exc.message, exc.status)


@contextmanager
def acting_on(db: sqlite3.Connection, report_id: str, at: datetime,
              not_done: str = "Nothing was changed.") -> Iterator[sqlite3.Row]:
    """The write transaction of an officer's action on one report.

    The report is re-read under the write lock, so what is checked is what is
    changed; the action is refused (and rolled back) while another officer
    holds the report's lock.
    """
    with transaction(db):
        row = get_report(db, report_id)
        holder = lock_holder(row, stamp(at))
        if holder is not None and holder != current_user.id_number:
            raise Refused(report_id, f"{username(db, holder)} is working on this report (locked until "
                                     f"{when_filter(row['lock_expires_at'])}). {not_done}")
        yield row


def renew_lock(db: sqlite3.Connection, report_id: str, at: datetime) -> str:
    """Take or extend the lock for the current officer; returns its expiry."""
    expires = stamp(at + timedelta(minutes=current_app.config["LOCK_MINUTES"]))
    db.execute("UPDATE report SET lock_user_id = ?, lock_expires_at = ? WHERE id = ?",
               (current_user.id_number, expires, report_id))
    return expires


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
    at = datetime.now(timezone.utc)
    with acting_on(db, report_id, at) as row:
        if form.from_status.data and form.from_status.data != row["status"]:
            raise Refused(report_id, f"Someone changed this report to {STATUS_LABELS[row['status']]} "
                                     "while you had it open. Look again before deciding. Nothing was changed.")
        if target not in TRANSITIONS[row["status"]]:
            allowed = ", ".join(STATUS_LABELS[s] for s in TRANSITIONS[row["status"]])
            raise Refused(report_id, f"A report that is {STATUS_LABELS[row['status']]} cannot go to "
                                     f"{STATUS_LABELS[target]}; it can go to: {allowed}. Nothing was changed.")
        kid, sealed = seal_text(ring, form.reason.data.strip(), report_id, REASON_INFO)
        db.execute("UPDATE report SET status = ?, status_changed_at = ?, closed_at = ? WHERE id = ?",
                   (target, stamp(at), stamp(at) if target in CLOSED else None, report_id))
        db.execute("INSERT INTO report_status_history (report_id, at, actor_id, from_status, to_status,"
                   " reason_kid, reason_sealed) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (report_id, stamp(at), current_user.id_number, row["status"], target, kid, sealed))
        renew_lock(db, report_id, at)
        audit.record("status_changed", subject=f"report:{report_id}", db=db,
                     **{"from": row["status"], "to": target})
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
    at = datetime.now(timezone.utc)
    with acting_on(db, report_id, at):
        db.execute("UPDATE report SET assignee_id = ? WHERE id = ?", (assignee, report_id))
        renew_lock(db, report_id, at)
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
    at = datetime.now(timezone.utc)
    with acting_on(db, report_id, at, not_done="The note was not saved."):
        kid, sealed = seal_text(ring, form.text.data.strip(), report_id, NOTE_INFO)
        cur = db.execute("INSERT INTO report_note (report_id, at, author_id, kid, sealed) VALUES (?, ?, ?, ?, ?)",
                         (report_id, stamp(at), current_user.id_number, kid, sealed))
        renew_lock(db, report_id, at)
        audit.record("note_added", subject=f"report:{report_id}", db=db, note=cur.lastrowid)
    flash("Note added.")
    return back(report_id)


@bp.post("/reports/<report_id>/lock")
@role_required("border_force")
def take_lock(report_id: str) -> Any:
    """Take (or extend) the lock: the other officers see who is working on it."""
    db = get_db()
    get_report(db, report_id)
    if not ActionForm().validate_on_submit():
        return refused(report_id, "The form has expired; reload the page. Nothing was changed.", 400)
    at = datetime.now(timezone.utc)
    with acting_on(db, report_id, at):
        expires = renew_lock(db, report_id, at)
        audit.record("report_locked", subject=f"report:{report_id}", db=db, until=expires)
    flash(f"You hold the lock until {when_filter(expires)}.")
    return back(report_id)


@bp.post("/reports/<report_id>/unlock")
@role_required("border_force")
def release_lock(report_id: str) -> Any:
    """Release the lock; only its holder can."""
    db = get_db()
    get_report(db, report_id)
    if not ActionForm().validate_on_submit():
        return refused(report_id, "The form has expired; reload the page. Nothing was changed.", 400)
    at = stamp(datetime.now(timezone.utc))
    with transaction(db):
        row = get_report(db, report_id)
        if lock_holder(row, at) != current_user.id_number:
            raise Refused(report_id, "You do not hold the lock on this report. Nothing was changed.")
        db.execute("UPDATE report SET lock_user_id = NULL, lock_expires_at = NULL WHERE id = ?", (report_id,))
        audit.record("report_unlocked", subject=f"report:{report_id}", db=db)
    flash("Lock released.")
    return back(report_id)


@bp.get("/reports/<report_id>/nrm")
@role_required("border_force")
def nrm_sheet(report_id: str) -> Any:
    """A printable prompt sheet for the online NRM form; nothing is sent anywhere."""
    db = get_db()
    row = get_report(db, report_id)
    body = open_body(row)
    audit.record("report_exported", subject=f"report:{report_id}", format="nrm_sheet")
    return render_template("triage/nrm.html", r=row, body=display_body(body),
                           lead=lead_time(row["received_at"], row["sta"]), printed_at=now(),
                           status_labels=STATUS_LABELS)

