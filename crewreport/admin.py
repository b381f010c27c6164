"""Administrator pages (`/admin`, role `admin`): the integrity of the audit
chain, recent events, and the audit trail of one report (which outlives the
report itself when retention purges it)."""
from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, abort, redirect, render_template, request, url_for

from . import audit
from .auth import role_required
from .db import get_db
from .display import STATUS_LABELS

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
    chain = audit.verify_chain(db)
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
                           chain=audit.verify_chain(db), status_labels=STATUS_LABELS)
