"""The triage board: filters from the query string, a page of arriving
flights with their reports (values always bound, never interpolated; the
grouping and its order are `crewreport.flights`), rows decorated for display,
what is new since an officer's last look, and the CSV export's rows and cells."""
from __future__ import annotations

import math
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import flights, report
from ..db import transaction
from ..display import STATUS_LABELS, URGENCY_LABELS, lead_time
from ..times import stamp
from ..unavailable import SIDE_WRITE_WAIT, skipped_when_unavailable

WINDOWS = {
    "all": "Any time",
    "6h": "Landing within 6 h",
    "24h": "Landing within 24 h",
    "upcoming": "Not yet landed",
    "past": "Landed",
}
# Decided flights stay on the board (greyed once landed) this long after landing.
LANDED_VISIBLE = timedelta(hours=2)
STATUS_FILTERS = {"board": "Open, and decided until 2 h after landing", "open": "Open (not closed)",
                  "any": "Any status", "closed": "Closed", **STATUS_LABELS}
PER_PAGE = 25  # flights per board page
# A report's received_at is stamped when its receipt is signed, before the
# write lock (intake.prepare): it may reach the store up to the write wait
# (db.WRITE_WAIT, 30 s; twice that under `serve` for one that joins a group
# commit while the group before it waits) later, after a look at the board
# that it is not on. So the open board counts as just arrived (and alerts on)
# a report it never listed that was received at most this long before its
# previous look, not one that was merely reopened or moved onto the page
# (`arrivals_after`).
ARRIVAL_SLACK = timedelta(minutes=2)
CSV_MAX_ROWS = 10000
# `sta` and `minutes_before_landing` are the report's own (what its tablet
# signed); `flight_sta` is its flight's arrival now, the board's (a delay
# announced since may have moved it). Added last: older sheets keep their columns.
CSV_FIELDS = ("reference", "id", "airline", "flight", "dep", "arr", "sta", "urgency", "status",
              "assignee", "received_at", "minutes_before_landing", "child", "flight_sta")


@dataclass
class Filters:
    """The queue's filters, from the query string; unknown values are dropped
    (and said so), never passed to SQL."""

    arr: str = ""
    status: str = "board"
    urgency: str = "any"
    mine: bool = False
    child: bool = False
    window: str = "all"
    page: int = 1
    ignored: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: Mapping[str, str]) -> Filters:
        f = cls()
        arr = (args.get("arr") or "").strip().upper()
        if arr and report.AIRPORT.match(arr):
            f.arr = arr
        elif arr:
            f.ignored.append("arrival airport")
        status = args.get("status") or "board"
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
        f.child = args.get("child") in ("1", "on", "true")
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

    def view(self) -> str:
        """Which view of the board this is, page aside ('' for the whole
        board): each view has its own "new since your last look" mark."""
        shown = {"arr": self.arr, "status": self.status, "urgency": self.urgency, "mine": self.mine,
                 "child": self.child, "window": self.window}
        default = {"arr": "", "status": "board", "urgency": "any", "mine": False, "child": False, "window": "all"}
        return "&".join(f"{k}={v}" for k, v in shown.items() if v != default[k])

    def where(self, user_id: int, at: datetime) -> tuple[str, list[Any]]:
        """SQL conditions and parameters; only fixed fragments, values bound."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.arr:
            # No index of its own (migration 0010): the export reads it from
            # the index it walks in its order, the board from report_flight.
            # The + keeps SQLite from taking r.arr in the ORDER BY as settled
            # by the equality, which would cost the export a sort for its rowid.
            clauses.append("+r.arr = ?")
            params.append(self.arr)
        # The unary + keeps SQLite off the status index for these lists: left
        # to itself (no ANALYZE statistics, as in production) it reads by
        # status and sorts every open report to show 50; without the index
        # it walks report_queue already in queue order (benchmarks/queue.py).
        if self.status == "board":
            clauses.append("(+r.status IN ('received', 'assessing', 'meet_aircraft') OR f.sta >= ?)")
            params.append(stamp(at - LANDED_VISIBLE))
        elif self.status == "open":
            clauses.append("+r.status IN ('received', 'assessing', 'meet_aircraft')")
        elif self.status == "closed":
            clauses.append("+r.status IN ('no_further_action', 'referred')")
        elif self.status != "any":
            clauses.append("r.status = ?")
            params.append(self.status)
        if self.urgency != "any":
            # No index of its own (migration 0010); the + keeps the export
            # in report_queue's order without a sort step for its right part.
            clauses.append("+r.urgency_rank = ?")
            params.append(report.URGENCY_RANK[self.urgency])
        if self.mine:
            clauses.append("r.assignee_id = ?")
            params.append(user_id)
        if self.child:
            clauses.append("r.child = 1")
        if self.window in ("6h", "24h"):
            hours = 6 if self.window == "6h" else 24
            clauses.append("f.sta BETWEEN ? AND ?")
            params += [stamp(at - flights.JUST_LANDED), stamp(at + timedelta(hours=hours))]
        elif self.window == "upcoming":
            clauses.append("f.sta >= ?")
            params.append(stamp(at))
        elif self.window == "past":
            clauses.append("f.sta < ?")
            params.append(stamp(at))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def query_args(self, **changes: Any) -> dict[str, Any]:
        """The filters as query-string arguments (for links and the refresh)."""
        args: dict[str, Any] = {"status": self.status, "urgency": self.urgency, "window": self.window}
        if self.arr:
            args["arr"] = self.arr
        if self.mine:
            args["mine"] = "1"
        if self.child:
            args["child"] = "1"
        if self.page > 1:
            args["page"] = self.page
        args.update(changes)
        return {k: v for k, v in args.items() if v is not None}


QUEUE_COLUMNS = (
    "r.id, r.reference, r.airline, r.flight, r.dep, r.arr, r.sta, r.urgency, r.status,"
    " r.received_at, r.assignee_id, r.lock_user_id, r.lock_expires_at, r.child, f.sta AS flight_sta,"
    " a.username AS assignee, l.username AS lock_user"
)
QUEUE_JOINS = " LEFT JOIN user a ON a.id = r.assignee_id LEFT JOIN user l ON l.id = r.lock_user_id"
# The export's order, report_queue's (migration 0010): arr before rowid only
# orders reports of one sta, urgency and second of receipt, and lets the
# airport filter skip another airport's reports in the index.
QUEUE_ORDER = " ORDER BY r.sta, r.urgency_rank, r.received_at, r.arr, r.rowid"


def queue_sql(filters: Filters, user_id: int, at: datetime) -> tuple[str, list[Any]]:
    """The page query (without LIMIT), exposed so a test can EXPLAIN it."""
    where, params = filters.where(user_id, at)
    return f"SELECT {QUEUE_COLUMNS}{flights.FROM}{QUEUE_JOINS}{where}{QUEUE_ORDER}", params


def decorate(r: Mapping[str, Any] | sqlite3.Row, user_id: int, stamp_now: str, since: str | None) -> dict[str, Any]:
    """A report row with what the board shows of it: how long before its
    flight's landing (the flight's `sta`, not the report's own, which an
    announced delay may have overtaken) it was received."""
    row = dict(r)
    row["lead_seconds"], row["lead_text"], row["late"] = lead_time(r["received_at"], r["flight_sta"])
    row["new"] = bool(since) and r["received_at"] >= since
    row["lock_active"] = bool(r["lock_user_id"] and (r["lock_expires_at"] or "") > stamp_now)
    row["locked_by_other"] = row["lock_active"] and r["lock_user_id"] != user_id
    row["status_label"] = STATUS_LABELS[r["status"]]
    return row


def decision(reports: list[dict[str, Any]]) -> str:
    """The flight's decision in words, from its listed reports' statuses."""
    statuses = [r["status"] for r in reports]
    if statuses and all(s == statuses[0] for s in statuses):
        return STATUS_LABELS[statuses[0]]
    counts = {s: statuses.count(s) for s in dict.fromkeys(statuses)}
    return "Mixed: " + ", ".join(f"{n} {STATUS_LABELS[s]}" for s, n in counts.items())


def holders(reports: list[dict[str, Any]]) -> list[str]:
    """Who has the flight: its reports' assignees and lock holders, once each."""
    names = [r[k] for r in reports for k in ("assignee", "lock_user")
             if r[k] and (k == "assignee" or r["lock_active"])]
    return list(dict.fromkeys(names))


@dataclass
class BoardPage:
    flights: list[flights.Flight]
    total: int  # flights
    reports: int
    page: int
    pages: int
    # New reports of the selection that this page does not list: a flight
    # that a new report moved to another page must not go unseen.
    new_elsewhere: int = 0

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [r for f in self.flights for r in f.reports]


def load_board(db: sqlite3.Connection, filters: Filters, user_id: int, at: datetime,
               since: str | None) -> BoardPage:
    """One page of the board: arriving flights in board order, each with its
    selected reports (newest last) decorated for display."""
    where, params = filters.where(user_id, at)
    page = filters.page
    found, total, reports, new = flights.load_flights(db, where, params, at, page=page, per_page=PER_PAGE,
                                                      child_first=True, since=since)
    if not found and page > 1:  # past the last page: show the last one
        total = flights.count_flights(db, where, params)
        page = max(1, math.ceil(total / PER_PAGE))
        found, total, reports, new = flights.load_flights(db, where, params, at, page=page, per_page=PER_PAGE,
                                                          child_first=True, since=since)
    flights.load_reports(db, found, QUEUE_COLUMNS, QUEUE_JOINS, where, params)
    stamp_now = stamp(at)
    for f in found:
        f.reports = [decorate(r, user_id, stamp_now, since) for r in f.reports]
        f.decision, f.holders = decision(f.reports), holders(f.reports)
        f.new = any(r["new"] for r in f.reports)
    board = BoardPage(found, total, reports, page, max(1, math.ceil(total / PER_PAGE)))
    board.new_elsewhere = new - sum(r["new"] for r in board.rows)
    return board


def arrivals_after(at: datetime) -> str:
    """For a look at the board at `at`: the next refresh counts a report as
    just arrived only if it was received at this time or later."""
    return stamp(at - ARRIVAL_SLACK)


def export_rows(db: sqlite3.Connection, filters: Filters, user_id: int, at: datetime) -> list[dict[str, Any]] | None:
    """Every selected report for the CSV export, or None when there are more
    than CSV_MAX_ROWS: an export is all of the selection or nothing, never a
    file that silently stops."""
    sql, params = queue_sql(filters, user_id, at)
    stamp_now = stamp(at)
    rows = db.execute(sql + " LIMIT ?", params + [CSV_MAX_ROWS + 1]).fetchall()
    if len(rows) > CSV_MAX_ROWS:
        return None
    return [decorate(r, user_id, stamp_now, None) for r in rows]


def last_seen(db: sqlite3.Connection, user_id: int, view: str) -> str | None:
    row = db.execute("SELECT queue_seen_at FROM officer_seen WHERE user_id = ? AND view = ?",
                     (user_id, view)).fetchone()
    return row["queue_seen_at"] if row else None


def mark_seen(db: sqlite3.Connection, user_id: int, view: str, at: str) -> None:
    """Remember this look at the view's first page: what arrives later is
    'new' there next time (`decorate` counts a report of the same second as
    new: it may have been stored just after the look read the board). Not
    when the store cannot take writes: the board is shown all the same."""
    with skipped_when_unavailable("the board's last look"), transaction(db, wait=SIDE_WRITE_WAIT):
        db.execute("INSERT INTO officer_seen (user_id, view, queue_seen_at) VALUES (?, ?, ?)"
                   " ON CONFLICT (user_id, view) DO UPDATE SET queue_seen_at = excluded.queue_seen_at",
                   (user_id, view, at))


def airports(db: sqlite3.Connection) -> list[str]:
    """Arrival airports that have reports, for the filter: those of the
    flights, since every flight has a report (read from flight_arr alone)."""
    return [r[0] for r in db.execute("SELECT DISTINCT arr FROM flight ORDER BY arr")]


def csv_cell(value: Any) -> Any:
    """Guard against formula injection: text a spreadsheet would evaluate
    (leading = + - @ tab CR) is prefixed with an apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def csv_row(row: Mapping[str, Any]) -> list[Any]:
    """One queue row as the export's cells, in CSV_FIELDS order, guarded."""
    return [csv_cell(v) for v in (
        row["reference"], row["id"], row["airline"], row["flight"], row["dep"], row["arr"], row["sta"],
        row["urgency"], row["status"], row["assignee"] or "", row["received_at"],
        int(lead_time(row["received_at"], row["sta"])[0] // 60), row["child"], row["flight_sta"])]
