"""Reports grouped by arriving flight, for the officers' board and airline
security's review alike.

An arriving flight is one row of the `flight` table. Crew on different
tablets give its arrival minutes apart (the moving map, an announcement,
their own clock), so the intake puts a report on the flight of the same
airline and number landing at the same airport within SAME_FLIGHT of the
report's arrival (`place`), or on a new one. The flight's `sta` is the freshest estimate: that
of the report made last (a delay announced since the first note moves it),
not of the one received last, which may have waited in an offline tablet's
outbox since take-off or come from a tablet whose clock is slow; each report
keeps the `sta` its tablet signed.

The order is bounded by what the server saw, not only by what a tablet
claims. Flights still to land come first, soonest first (then child
involvement, where the caller may rank by it, then urgency), and with them,
at the very top, flights that landed less than JUST_LANDED ago with a report
received before landing: officers may still meet those passengers at the
gate. Below them the flights that have landed, most recent first; last the
late arrivals, flights whose every report reached the intake after the
landing it claims, newest receipt first. A report received after its `sta`
can therefore never sit above a flight still to land, however far in the
past a tablet puts `sta`.

The flights of the selected reports are grouped over FROM (each report with
its flight as `f`): a filter on `f.sta` selects by the flight's arrival.

Only fixed SQL fragments are put together here; every value is bound.
"""
from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from .display import URGENCY_LABELS, countdown_text
from .report import URGENCIES
from .times import parse_utc, stamp

SECTIONS = {0: "upcoming", 1: "landed", 2: "late"}
SECTION_LABELS = {"upcoming": "Still to land or just landed", "landed": "Landed",
                  "late": "Arrived after landing"}
# A flight with more reports than this lists its newest ones on the board and
# the rest on its own page: one busy (or misbehaving) tablet cannot make every
# officer's board page unreadable.
LISTED_PER_FLIGHT = 12
# How long after landing a flight still counts as urgent (and as "within 6 h"
# and the like on the board's windows): officers may still reach the gate.
JUST_LANDED = timedelta(hours=1)
NEVER = "9999-12-31T23:59:59Z"  # later than any report's received_at
# Two reports of one airline's flight number whose arrivals are this close are
# of one arriving flight: wider than any two crews' estimates of one landing,
# narrower than the gap to the same flight number's next arrival (a day).
SAME_FLIGHT = timedelta(hours=3)
FROM = " FROM report r JOIN flight f ON f.id = r.flight_id"
# A report made, by its tablet's clock, more than this after the intake
# received it comes from a tablet whose clock is fast (estimated).
CLOCK_SLACK = timedelta(minutes=1)


@dataclass
class Flight:
    """One arriving flight and the reports of it that the caller selected."""

    id: int
    airline: str
    flight: str
    sta: str
    arr: str
    count: int
    urgency: str
    child: bool
    section: str
    countdown: str
    reports: list[dict[str, Any]] = field(default_factory=list)
    # What the caller's readers may know of the work on it (filled by the caller).
    decision: str = ""
    holders: list[str] = field(default_factory=list)
    new: bool = False

    @property
    def urgency_label(self) -> str:
        return URGENCY_LABELS[self.urgency]

    @property
    def section_label(self) -> str:
        return SECTION_LABELS[self.section]

    @property
    def more(self) -> int:
        """Reports of this flight not listed on the board (see LISTED_PER_FLIGHT)."""
        return self.count - len(self.reports)


def place(db: sqlite3.Connection, airline: str, flight: str, arr: str, sta: str, made: str | None = None) -> int:
    """The id of the arriving flight a new report is on, inside the caller's
    write transaction: the nearest flight of that airline and number landing
    at that airport within SAME_FLIGHT, or a new flight (one number landing
    at two airports, as a flight with a domestic leg does, is two arriving
    flights: two places to meet). The flight takes the report's `sta` as its
    own when the report is its freshest estimate: `made` (`estimated`) no
    earlier than that of the estimate it holds.

    `made` is when the report was made as far as the server can bound it
    (`estimated`); now by default."""
    at = parse_utc(sta)
    made = stamp(datetime.now(UTC)) if made is None else made
    near = db.execute("SELECT id, sta, estimated FROM flight WHERE airline = ? AND flight = ? AND arr = ?"
                      " AND sta BETWEEN ? AND ?",
                      (airline, flight, arr, stamp(at - SAME_FLIGHT), stamp(at + SAME_FLIGHT))).fetchall()
    if not near:
        return int(db.execute("INSERT INTO flight (airline, flight, arr, sta, estimated) VALUES (?, ?, ?, ?, ?)"
                              " RETURNING id", (airline, flight, arr, sta, made)).fetchall()[0][0])
    # The nearest arrival; of two as near, the newer flight.
    found = min(near, key=lambda f: (abs(parse_utc(f["sta"]) - at), -f["id"]))
    if made >= found["estimated"]:
        # Each report's commit writes every page it changed: the arrival's
        # index (flight_arrival) only changes when the arrival does.
        if sta != found["sta"]:
            db.execute("UPDATE flight SET sta = ?, estimated = ? WHERE id = ?", (sta, made, found["id"]))
        elif made != found["estimated"]:
            db.execute("UPDATE flight SET estimated = ? WHERE id = ?", (made, found["id"]))
    return int(found["id"])


def arrival(db: sqlite3.Connection, flight_id: int) -> str:
    """The flight's arrival (its freshest estimate), which a report's own
    `sta` may differ from: what a report's pages count its lead time from."""
    return str(db.execute("SELECT sta FROM flight WHERE id = ?", (flight_id,)).fetchone()[0])


def estimated(created: str, received_at: str) -> str:
    """When a report was made, as far as the server can bound it, for
    `place`: its `created`, never after its receipt (a tablet clock a few
    seconds fast); '' (older than any estimate) when `created` is later than
    the receipt by more than CLOCK_SLACK. That tablet's clock is proven fast,
    so an arrival it worked out from "lands in" is late by as much: it gives a
    flight its arrival only until any other report does. (The SQL of
    migration 0009 says the same for reports stored before it.)"""
    if parse_utc(created) - parse_utc(received_at) > CLOCK_SLACK:
        return ""
    return min(created, received_at)


def group_sql(where: str, *, child_first: bool) -> str:
    """The flights of the selected reports, in board order, with the number
    of flights alongside (a window over the groups) for the pager.

    Parameters: now, now less JUST_LANDED, the time reports count as new
    from, then the `where` parameters, then LIMIT and OFFSET (group_args).
    `child_first` is False for readers who may not learn which reports
    involve a child (the flag comes from the sealed body)."""
    child = "max(r.child) DESC, " if child_first else ""
    return (
        "SELECT f.id, f.airline, f.flight, f.arr, f.sta, count(*) AS n,"  # noqa: S608 - fixed fragments
        " min(r.urgency_rank) AS top_rank, max(r.child) AS child,"
        " CASE WHEN f.sta >= ? THEN 0 WHEN min(r.received_at) > f.sta THEN 2 WHEN f.sta >= ? THEN 0 ELSE 1 END"
        " AS section,"
        " count(*) OVER () AS flights, sum(count(*)) OVER () AS reports,"
        " sum(sum(r.received_at >= ?)) OVER () AS new_reports"
        + FROM + where +
        " GROUP BY r.flight_id"
        " ORDER BY section, CASE WHEN section = 0 THEN f.sta END,"
        " CASE WHEN section = 1 THEN f.sta END DESC,"
        " CASE WHEN section = 2 THEN max(r.received_at) END DESC, "
        + child + "min(r.urgency_rank), f.airline, f.flight, f.id LIMIT ? OFFSET ?")


def group_args(at: datetime, params: list[Any], *, page: int, per_page: int, since: str | None = None) -> list[Any]:
    """The parameters of `group_sql`, in its order (no report is new without `since`)."""
    return [stamp(at), stamp(at - JUST_LANDED), since or NEVER, *params, per_page, (page - 1) * per_page]


def load_flights(db: sqlite3.Connection, where: str, params: list[Any], at: datetime, *,
                 page: int, per_page: int, child_first: bool,
                 since: str | None = None) -> tuple[list[Flight], int, int, int]:
    """One page of flights (without their reports), the number of flights, of
    reports selected, and of those received since `since` (0, 0, 0 on a page
    past the last)."""
    rows = db.execute(group_sql(where, child_first=child_first),
                      group_args(at, params, page=page, per_page=per_page, since=since)).fetchall()
    flights = [Flight(id=r["id"], airline=r["airline"], flight=r["flight"], sta=r["sta"],
                      arr=r["arr"],
                      count=r["n"], urgency=URGENCIES[r["top_rank"]], child=bool(r["child"]),
                      section=SECTIONS[r["section"]], countdown=countdown_text(r["sta"], at))
               for r in rows]
    if not rows:
        return flights, 0, 0, 0
    return flights, rows[0]["flights"], rows[0]["reports"], rows[0]["new_reports"]


def count_flights(db: sqlite3.Connection, where: str, params: list[Any]) -> int:
    """How many flights the selection has (for a page past the last one)."""
    return db.execute("SELECT count(DISTINCT r.flight_id)" + FROM + where, params).fetchone()[0]  # noqa: S608 - fixed fragments


def load_reports(db: sqlite3.Connection, flights: list[Flight], columns: str, joins: str, where: str,
                 params: list[Any]) -> None:
    """Fill each flight's `reports` (the selected ones), newest last; at most
    LISTED_PER_FLIGHT per flight, the newest."""
    if not flights:
        return
    ids = ", ".join("?" for _ in flights)
    cond = (" AND " if where else " WHERE ") + f"r.flight_id IN ({ids})"
    sql = (f"SELECT * FROM (SELECT {columns}, r.flight_id, row_number() OVER (PARTITION BY r.flight_id"  # noqa: S608 - fixed fragments and ? values
           " ORDER BY r.received_at DESC, r.rowid DESC) AS nth, r.rowid AS row_order"
           f"{FROM}{joins}{where}{cond})"
           " WHERE nth <= ? ORDER BY received_at, row_order")
    by_id = {f.id: f for f in flights}
    for r in db.execute(sql, [*params, *(f.id for f in flights), LISTED_PER_FLIGHT]):
        by_id[r["flight_id"]].reports.append(dict(r))
