"""The Border Force queue over the Flask test client: order, filters, pages,
the refresh and its new marks, reading in index order at 10,000 reports, and
the CSV export with its formula guard."""
from __future__ import annotations

import csv
import io
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db, transaction
from crewreport.times import stamp
from crewreport.triage import queue

from .helpers import AuthActions, Make, deliver, events, row, text, update_report, utcnow

ROW_IDS = re.compile(r'<tr data-report-id="([0-9a-f-]{36})"')


def queue_ids(client: FlaskClient, query: str = "status=any") -> list[str]:
    resp = client.get(f"/triage/?{query}")
    assert resp.status_code == 200
    return ROW_IDS.findall(resp.get_data(as_text=True))


# -- the queue -----------------------------------------------------------------------------

def test_queue_orders_by_landing_then_urgency_then_arrival(client: FlaskClient, app: Flask,
                                                           make_envelope: Make, auth: AuthActions) -> None:
    soon = stamp(utcnow() + timedelta(hours=2))  # one landing time, even if a second ticks between deliveries
    later = deliver(client, make_envelope, sta=stamp(utcnow() + timedelta(hours=5)), urgency="immediate")
    soon_routine = deliver(client, make_envelope, sta=soon, urgency="routine")
    soon_immediate = deliver(client, make_envelope, sta=soon, urgency="immediate")
    soon_immediate_2 = deliver(client, make_envelope, sta=soon, urgency="immediate")
    update_report(app, soon_immediate, received_at=stamp(utcnow() - timedelta(minutes=5)))
    auth.login("officer")
    assert queue_ids(client) == [soon_immediate, soon_immediate_2, soon_routine, later]


def test_queue_filters(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    lhr = deliver(client, make_envelope, arr="LHR", urgency="priority", sta=stamp(utcnow() + timedelta(hours=3)))
    man = deliver(client, make_envelope, arr="MAN", urgency="routine", sta=stamp(utcnow() + timedelta(hours=12)))
    gone = deliver(client, make_envelope, arr="LGW", urgency="immediate", sta=stamp(utcnow() + timedelta(hours=1)))
    update_report(app, gone, sta=stamp(utcnow() - timedelta(hours=30)), status="referred", closed_at=stamp(utcnow()))
    auth.login("officer")
    assert set(queue_ids(client, "status=any")) == {lhr, man, gone}
    assert queue_ids(client, "") == [lhr, man]  # default: open reports only
    assert queue_ids(client, "status=any&arr=man") == [man]
    assert queue_ids(client, "status=closed") == [gone]
    assert queue_ids(client, "status=received") == [lhr, man]
    assert queue_ids(client, "status=any&urgency=immediate") == [gone]
    assert queue_ids(client, "status=any&window=6h") == [lhr]
    assert queue_ids(client, "status=any&window=24h") == [lhr, man]
    assert queue_ids(client, "status=any&window=upcoming") == [lhr, man]
    assert queue_ids(client, "status=any&window=past") == [gone]
    assert queue_ids(client, "status=any&mine=1") == []
    with app.app_context():
        officer = get_db().execute("SELECT id FROM user WHERE username = 'officer'").fetchone()["id"]
    update_report(app, man, assignee_id=officer)
    assert queue_ids(client, "status=any&mine=1") == [man]
    # unknown values are dropped, said so, and never reach SQL
    resp = client.get("/triage/?status=x';DROP TABLE report;--&arr=12345&window=forever")
    assert resp.status_code == 200
    assert "Ignored an unrecognised value for: arrival airport, status, time window" in text(resp)
    assert set(ROW_IDS.findall(text(resp))) == {lhr, man}


def test_queue_shows_countdown_urgency_assignee_and_late_arrival(client: FlaskClient, app: Flask,
                                                                 make_envelope: Make, auth: AuthActions) -> None:
    ontime = deliver(client, make_envelope, flight="ZZ7", sta=stamp(utcnow() + timedelta(hours=3)))
    late = deliver(client, make_envelope, flight="ZZ8", sta=stamp(utcnow() - timedelta(hours=1)))
    auth.login("officer")
    page = text(client.get("/triage/"))
    ontime_row = re.search(rf'<tr data-report-id="{ontime}".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    late_row = re.search(rf'<tr data-report-id="{late}".*?</tr>', page, re.S).group(0)  # type: ignore[union-attr]
    assert "lands in 2 h 59 min" in ontime_row or "lands in 3 h 00 min" in ontime_row
    assert "before landing" in ontime_row and "After landing" not in ontime_row
    assert "landed 1 h" in late_row and ">Late<" in late_row and "after landing" in late_row
    assert "is-late" in late_row.split(">")[0] and "is-late" not in ontime_row.split(">")[0]
    assert f'datetime="{row(app, ontime)["sta"]}"' in ontime_row  # type: ignore[index]
    assert "LOS → LHR" in ontime_row and "Priority" in ontime_row


def test_queue_pages(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    first = deliver(client, make_envelope)
    bulk_insert(app, queue.PER_PAGE + 5, template_id=first)
    auth.login("officer")
    page1 = queue_ids(client, "status=any")
    page2 = queue_ids(client, "status=any&page=2")
    assert len(page1) == queue.PER_PAGE and len(page2) == 6
    assert not set(page1) & set(page2)
    assert "Page 2 of 2" in text(client.get("/triage/?status=any&page=2"))
    assert queue_ids(client, "status=any&page=99") == page2  # clamped to the last page


def test_refresh_endpoint_and_new_since_last_look(client: FlaskClient, app: Flask,
                                                  make_envelope: Make, auth: AuthActions) -> None:
    old = deliver(client, make_envelope)
    update_report(app, old, received_at=stamp(utcnow() - timedelta(minutes=10)))
    auth.login("officer")
    first = text(client.get("/triage/"))
    assert "is-new" not in first  # first look: nothing to compare with
    with app.app_context():
        seen = get_db().execute("SELECT queue_seen_at FROM officer_seen").fetchone()[0]
    fresh = deliver(client, make_envelope)
    update_report(app, fresh, received_at=stamp(datetime.now(UTC) + timedelta(seconds=2)))
    data = client.get(f"/triage/queue.json?status=open&since={seen}").get_json()
    assert set(data["ids"]) == {old, fresh} and data["total"] == 2
    assert f'data-report-id="{fresh}" class="urgency-priority status-received is-new"' in data["html"]
    assert f'data-report-id="{old}" class="urgency-priority status-received"' in data["html"]
    second = text(client.get("/triage/"))
    assert re.search(rf'data-report-id="{fresh}"[^>]*is-new', second)
    assert not re.search(rf'data-report-id="{old}"[^>]*is-new', second)
    assert 'data-refresh-url="/triage/queue.json?' in second
    assert f'<input type="hidden" name="since" value="{seen}">' in second  # kept across filter changes
    filtered = text(client.get(f"/triage/?status=any&since={seen}"))
    assert re.search(rf'data-report-id="{fresh}"[^>]*is-new', filtered)
    assert 'src="/static/js/triage.js"' in second


def bulk_insert(app: Flask, n: int, template_id: str) -> list[str]:
    """Copies of one stored report under new ids, with spread landing times
    (no crypto: for queue size and speed only)."""
    ids = []
    with app.app_context():
        db = get_db()
        t = dict(db.execute("SELECT * FROM report WHERE id = ?", (template_id,)).fetchone())
        rows = []
        for i in range(n):
            rid = str(uuid.uuid4())
            ids.append(rid)
            rows.append({**t, "id": rid, "reference": f"B{i:07d}", "arr": ("LHR", "MAN", "LGW", "EDI")[i % 4],
                         "urgency_rank": i % 3, "urgency": ("immediate", "priority", "routine")[i % 3],
                         "sta": stamp(utcnow() + timedelta(minutes=7 * i - 600)),
                         "status": ("received", "assessing", "referred")[i % 3]})
        cols = list(t)
        with transaction(db):
            db.executemany(f"INSERT INTO report ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                           [tuple(r[c] for c in cols) for r in rows])
    return ids


def test_queue_with_10000_reports_reads_in_index_order(client: FlaskClient, app: Flask,
                                                       make_envelope: Make, auth: AuthActions) -> None:
    """No timing: the plan shows each common query read from an index in order
    (no full scan and no sort step), so its cost does not grow with the store."""
    first = deliver(client, make_envelope)
    bulk_insert(app, 10000, template_id=first)
    at = datetime.now(UTC)
    cases = {
        "": "report_queue",
        "arr=MAN": "report_arr",
        "status=assessing": "report_status",
        "urgency=immediate": "report_urgency",
        "window=6h": "report_queue",
        "window=past": "report_queue",
        "status=open": "report_queue",
        "mine=1": "report_assignee",
    }
    with app.app_context():
        db = get_db()
        # Production never runs ANALYZE: the plans must hold without statistics,
        # and still hold once someone has.
        for analyzed in (False, True):
            if analyzed:
                db.execute("ANALYZE")
            for query, index in cases.items():
                args = dict(p.split("=") for p in query.split("&") if p)
                args.setdefault("status", "any")
                sql, params = queue.queue_sql(queue.Filters.from_args(args), 1, at)
                plan = " | ".join(r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + sql + " LIMIT 50", params))
                assert f"USING INDEX {index}" in plan, (query, analyzed, plan)
                assert "TEMP B-TREE" not in plan, (query, analyzed, plan)
    auth.login("officer")
    resp = client.get("/triage/?status=any&page=100")
    assert resp.status_code == 200
    assert len(ROW_IDS.findall(text(resp))) == queue.PER_PAGE
    assert "Page 100 of 201" in text(resp)


# -- the export -------------------------------------------------------------------------------

def test_csv_export_of_the_queue(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    a = deliver(client, make_envelope, sta=stamp(utcnow() + timedelta(hours=2)), arr="MAN")
    b = deliver(client, make_envelope, sta=stamp(utcnow() + timedelta(hours=1)))
    update_report(app, a, flight="=HYPERLINK(\"http://x\")", dep="+1", arr="@SUM")  # hostile cells
    auth.login("officer")
    resp = client.get("/triage/export.csv?status=any")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(resp))))
    assert rows[0] == list(queue.CSV_FIELDS)
    assert [r[1] for r in rows[1:]] == [b, a]
    hostile = rows[2]
    assert hostile[3] == "'=HYPERLINK(\"http://x\")" and hostile[4] == "'+1" and hostile[5] == "'@SUM"
    assert all(not cell.startswith(("=", "+", "@")) for r in rows for cell in r)
    assert "narrative" not in text(resp) and "passports" not in text(resp)
    assert 58 <= int(rows[1][11]) <= 60  # minutes before landing
    exported = events(app, "queue_exported")
    assert len(exported) == 1 and json.loads(exported[0]["detail"])["rows"] == 2


def test_csv_cell_guard() -> None:
    assert queue.csv_cell("=1+1") == "'=1+1"
    assert queue.csv_cell("-2") == "'-2"
    assert queue.csv_cell("\t=x") == "'\t=x"
    assert queue.csv_cell("LHR") == "LHR"
    assert queue.csv_cell(-20) == -20
