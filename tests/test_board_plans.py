"""The board's and the airline list's queries at 10 000 reports: no timing,
but their plans read indexes, never a sort step or the wide rows, with
statistics or without (benchmarks/queue.py times them)."""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from crewreport import flights
from crewreport.db import get_db
from crewreport.triage import queue

from .helpers import AuthActions, Make, board_flights, bulk_insert, deliver, text

# The report column each export filter selects by (status aside: the open
# and closed lists are most of the store, read by report_queue on purpose).
FILTERED = {"arr": "arr", "urgency": "urgency_rank", "mine": "assignee_id"}


def test_queue_with_10000_reports_reads_in_index_order(client: FlaskClient, app: Flask,
                                                       make_envelope: Make, auth: AuthActions) -> None:
    """No timing: the plans show the export read from an index in order (no
    sort step), and the board's grouping read from an index alone (never the
    wide rows), so their cost stays that of reading an index."""
    first = deliver(client, make_envelope)
    bulk_insert(app, 10000, template_id=first)
    at = datetime.now(UTC)
    # The airport and urgency filters have no index of their own (migration
    # 0010: each would cost every new report a page of its commit): the
    # export reads them in report_queue's order, the board from report_flight.
    export_cases = {
        "": "report_queue",
        "arr=MAN": "report_queue",
        "arr=MAN&urgency=immediate": "report_queue",
        "status=assessing": "report_status",
        "urgency=immediate": "report_queue",
        "window=6h": "report_queue",
        "window=past": "report_queue",
        "status=open": "report_queue",
        "mine=1": "report_assignee",
    }
    board_cases = {
        "status=board": "COVERING INDEX report_flight", "status=open": "COVERING INDEX report_flight",
        "status=any": "COVERING INDEX report_flight", "child=1": "COVERING INDEX report_flight",
        "arr=MAN": "COVERING INDEX report_flight", "urgency=priority": "COVERING INDEX report_flight",
        "status=assessing": "INDEX report_status", "mine=1": "INDEX report_assignee",
    }
    with app.app_context():
        db = get_db()
        # Production never runs ANALYZE: the plans must hold without statistics,
        # and still hold once someone has.
        for analyzed in (False, True):
            if analyzed:
                db.execute("ANALYZE")
            for query, index in export_cases.items():
                args = dict(p.split("=") for p in query.split("&") if p)
                args.setdefault("status", "any")
                sql, params = queue.queue_sql(queue.Filters.from_args(args), 1, at)
                plan = " | ".join(r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + sql + " LIMIT 50", params))
                assert f"USING INDEX {index}" in plan, (query, analyzed, plan)
                assert "TEMP B-TREE" not in plan, (query, analyzed, plan)
                # The filter's column is in the index walked, so a report it
                # leaves out is skipped there, never by reading its wide row
                # (the envelope): an airport's export must not read the store.
                columns = {c["name"] for c in db.execute("SELECT name FROM pragma_index_info(?)", (index,))}
                assert {FILTERED[k] for k in args if k in FILTERED} <= columns, (query, analyzed, columns)
            for query, index in board_cases.items():
                where, params = queue.Filters.from_args(dict([query.split("=")])).where(1, at)
                sql = flights.group_sql(where, child_first=True)
                plan = " | ".join(r["detail"] for r in db.execute(
                    "EXPLAIN QUERY PLAN " + sql, flights.group_args(at, params, page=1, per_page=25)))
                # without statistics the filter's own index; after ANALYZE SQLite may
                # prefer walking report_flight in group order: an index, never a sort for GROUP BY
                assert f"USING {index}" in plan or (analyzed and "INDEX report_flight" in plan), (query, analyzed, plan)
                assert not re.search(r"SCAN r( \||$)", plan), (query, analyzed, plan)
    auth.login("officer")
    resp = client.get("/triage/?status=any&page=100")
    assert resp.status_code == 200
    assert len(board_flights(text(resp))) == queue.PER_PAGE  # one report per flight here
    assert "Page 100 of 401" in text(resp)
    reports = client.get("/triage/queue.json?status=any").get_json()
    assert reports["total"] == 10001 and reports["reports"] == 10001



def test_airline_review_with_10000_reports_groups_from_indexes_alone(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions, monkeypatch: Any) -> None:
    """Airline security's list groups its airline's reports by flight as the
    board does: from indexes alone, never the wide rows (envelopes) of every
    report of the airline, with statistics or without."""
    first = deliver(client, make_envelope)
    bulk_insert(app, 10000, template_id=first)
    asked: list[tuple[str, list[Any]]] = []
    load_flights = flights.load_flights

    def recording(db: Any, where: str, params: list[Any], *args: Any, **kwargs: Any) -> Any:
        asked.append((where, list(params)))
        return load_flights(db, where, params, *args, **kwargs)

    monkeypatch.setattr(flights, "load_flights", recording)
    auth.login("security")
    page = text(client.get("/review/"))
    assert "10001 reports on 10001 flights" in " ".join(page.split())
    [(where, params)] = asked
    at = datetime.now(UTC)
    with app.app_context():
        db = get_db()
        for analyzed in (False, True):
            if analyzed:
                db.execute("ANALYZE")
            for sql, args in ((flights.group_sql(where, child_first=False),
                               flights.group_args(at, params, page=1, per_page=25)),
                              ("SELECT count(DISTINCT r.flight_id)" + flights.FROM + where, params)):
                plan = " | ".join(r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + sql, args))
                assert "COVERING INDEX report_flight" in plan, (analyzed, plan)
                assert not re.search(r"(SCAN|SEARCH) r( \||$| USING INDEX)", plan), (analyzed, plan)
