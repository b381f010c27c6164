"""Border Force triage over the Flask test client: the queue (order, filters,
pages, refresh, new marks, speed by index), the report page (decrypt and
audit), the workflow (transitions, reasons, assignment, notes, the lock),
exports, the access matrix and CSRF."""
from __future__ import annotations

import csv
import glob
import io
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import triage
from crewreport.auth import create_user
from crewreport.db import get_db, transaction

from .conftest import PASSWORD, TOTP_SECRET, AuthActions, valid_body

Make = Callable[..., dict[str, Any]]
ROW_IDS = re.compile(r'<tr data-report-id="([0-9a-f-]{36})"')


# -- helpers (imported by the other test modules of this issue) ----------------------

def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def deliver(client: FlaskClient, make_envelope: Make, **kwargs: Any) -> str:
    """Post an envelope to the intake and return the stored report's id."""
    env = make_envelope(**kwargs)
    resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code == 201, resp.get_json()
    return json.loads(__import__("base64").urlsafe_b64decode(env["protected"] + "==="))["id"]


def update_report(app: Flask, report_id: str, **columns: Any) -> None:
    """Set report columns directly (times in the past, status, ...)."""
    with app.app_context():
        db = get_db()
        with transaction(db):
            sets = ", ".join(f"{k} = ?" for k in columns)
            db.execute(f"UPDATE report SET {sets} WHERE id = ?", (*columns.values(), report_id))


def row(app: Flask, report_id: str) -> dict[str, Any] | None:
    with app.app_context():
        r = get_db().execute("SELECT * FROM report WHERE id = ?", (report_id,)).fetchone()
        return dict(r) if r else None


def events(app: Flask, action: str, subject: str | None = None) -> list[dict[str, Any]]:
    with app.app_context():
        sql, params = "SELECT * FROM audit_event WHERE action = ?", [action]
        if subject:
            sql += " AND subject = ?"
            params.append(subject)
        return [dict(r) for r in get_db().execute(sql + " ORDER BY id", params)]


def count(app: Flask, sql: str, *params: Any) -> int:
    with app.app_context():
        return get_db().execute(sql, params).fetchone()[0]


def store_bytes(app: Flask) -> bytes:
    """Every byte of the store on disk: the database, its WAL and shm."""
    return b"".join(open(p, "rb").read() for p in glob.glob(app.config["DATABASE"] + "*"))


def queue_ids(client: FlaskClient, query: str = "status=any") -> list[str]:
    resp = client.get(f"/triage/?{query}")
    assert resp.status_code == 200
    return ROW_IDS.findall(resp.get_data(as_text=True))


def add_officer(app: Flask, username: str = "officer2") -> None:
    with app.app_context():
        create_user(username, "border_force", PASSWORD, totp_secret=TOTP_SECRET)


def login_as(client: FlaskClient, username: str) -> None:
    client.post("/auth/logout")
    resp = AuthActions(client).login(username)
    assert resp.status_code == 302, f"sign-in as {username} failed"


def text(resp: Any) -> str:
    return resp.get_data(as_text=True)


def utcnow() -> datetime:
    """Now, taken when a test runs (a module-level time goes stale in a long run)."""
    return datetime.now(timezone.utc)


# -- the queue -----------------------------------------------------------------------------

def test_queue_orders_by_landing_then_urgency_then_arrival(client: FlaskClient, app: Flask,
                                                           make_envelope: Make, auth: AuthActions) -> None:
    later = deliver(client, make_envelope, sta=iso(utcnow() + timedelta(hours=5)), urgency="immediate")
    soon_routine = deliver(client, make_envelope, sta=iso(utcnow() + timedelta(hours=2)), urgency="routine")
    soon_immediate = deliver(client, make_envelope, sta=iso(utcnow() + timedelta(hours=2)), urgency="immediate")
    soon_immediate_2 = deliver(client, make_envelope, sta=iso(utcnow() + timedelta(hours=2)), urgency="immediate")
    update_report(app, soon_immediate, received_at=iso(utcnow() - timedelta(minutes=5)))
    auth.login("officer")
    assert queue_ids(client) == [soon_immediate, soon_immediate_2, soon_routine, later]


def test_queue_filters(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    lhr = deliver(client, make_envelope, arr="LHR", urgency="priority", sta=iso(utcnow() + timedelta(hours=3)))
    man = deliver(client, make_envelope, arr="MAN", urgency="routine", sta=iso(utcnow() + timedelta(hours=12)))
    gone = deliver(client, make_envelope, arr="LGW", urgency="immediate", sta=iso(utcnow() + timedelta(hours=1)))
    update_report(app, gone, sta=iso(utcnow() - timedelta(hours=30)), status="referred", closed_at=iso(utcnow()))
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
    ontime = deliver(client, make_envelope, flight="ZZ7", sta=iso(utcnow() + timedelta(hours=3)))
    late = deliver(client, make_envelope, flight="ZZ8", sta=iso(utcnow() - timedelta(hours=1)))
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
    bulk_insert(app, triage.PER_PAGE + 5, template_id=first)
    auth.login("officer")
    page1 = queue_ids(client, "status=any")
    page2 = queue_ids(client, "status=any&page=2")
    assert len(page1) == triage.PER_PAGE and len(page2) == 6
    assert not set(page1) & set(page2)
    assert "Page 2 of 2" in text(client.get("/triage/?status=any&page=2"))
    assert queue_ids(client, "status=any&page=99") == page2  # clamped to the last page


def test_refresh_endpoint_and_new_since_last_look(client: FlaskClient, app: Flask,
                                                  make_envelope: Make, auth: AuthActions) -> None:
    old = deliver(client, make_envelope)
    update_report(app, old, received_at=iso(utcnow() - timedelta(minutes=10)))
    auth.login("officer")
    first = text(client.get("/triage/"))
    assert "is-new" not in first  # first look: nothing to compare with
    with app.app_context():
        seen = get_db().execute("SELECT queue_seen_at FROM officer_seen").fetchone()[0]
    fresh = deliver(client, make_envelope)
    update_report(app, fresh, received_at=iso(datetime.now(timezone.utc) + timedelta(seconds=2)))
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
                         "sta": iso(utcnow() + timedelta(minutes=7 * i - 600)),
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
    at = datetime.now(timezone.utc)
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
                sql, params = triage.queue_sql(triage.Filters.from_args(args), 1, at)
                plan = " | ".join(r["detail"] for r in db.execute("EXPLAIN QUERY PLAN " + sql + " LIMIT 50", params))
                assert f"USING INDEX {index}" in plan, (query, analyzed, plan)
                assert "TEMP B-TREE" not in plan, (query, analyzed, plan)
    auth.login("officer")
    resp = client.get("/triage/?status=any&page=100")
    assert resp.status_code == 200
    assert len(ROW_IDS.findall(text(resp))) == triage.PER_PAGE
    assert "Page 100 of 201" in text(resp)


# -- the report page ------------------------------------------------------------------------

def test_report_page_decrypts_shows_everything_and_audits_each_open(client: FlaskClient, app: Flask,
                                                                     make_envelope: Make, auth: AuthActions) -> None:
    body = valid_body(narrative="Zoë in 32B: “I don't know where we're going” <script>x</script>",
                      languages=["Portuguese"], phase_of_flight="cruise",
                      reporter={"crew_id": "C1234", "name": "Sam Crew"})
    rid = deliver(client, make_envelope, body=body)
    auth.login("officer")
    resp = client.get(f"/triage/reports/{rid}")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    page = text(resp)
    assert "Zoë in 32B: “I don&#39;t know where we&#39;re going” &lt;script&gt;x&lt;/script&gt;" in page
    assert 'data-code="docs_held_by_other"' in page
    assert "Quiet girl in a grey hoodie" in page and "32B" in page and "possible victim" in page
    assert 'id="captain-informed">Yes' in page
    assert "C1234" in page and "Sam Crew" in page
    assert row(app, rid)["device_id"] in page  # type: ignore[index]
    assert row(app, rid)["reference"] in page and "Portuguese" in page  # type: ignore[index]
    assert "A child may be involved" in page
    assert "Received" in page and "Delivered by the crew device." in page
    client.get(f"/triage/reports/{rid}")
    opened = events(app, "report_opened", f"report:{rid}")
    assert len(opened) == 2 and opened[0]["actor"] == "user:officer"
    assert "narrative" not in opened[0]["detail"] and "Zoë" not in opened[0]["detail"]


def test_label_of_each_indicator_is_shown(client: FlaskClient, app: Flask, make_envelope: Make,
                                          auth: AuthActions) -> None:
    from crewreport.catalogue import LABELS

    rid = deliver(client, make_envelope)
    auth.login("officer")
    page = text(client.get(f"/triage/reports/{rid}"))
    from markupsafe import escape
    assert str(escape(LABELS["docs_held_by_other"])) in page


REPORT_POSTS = ("status", "assign", "notes", "lock", "unlock")


def test_unknown_report_is_404_everywhere(client: FlaskClient, app: Flask, auth: AuthActions) -> None:
    auth.login("officer")
    missing = str(uuid.uuid4())
    for path in (f"/triage/reports/{missing}", f"/triage/reports/{missing}/nrm", "/triage/reports/..%2F..%2Fetc"):
        assert client.get(path).status_code == 404, path
    for action in REPORT_POSTS:
        resp = client.post(f"/triage/reports/{missing}/{action}",
                           data={"status": "assessing", "reason": "x", "text": "x", "assignee": "0"})
        assert resp.status_code == 404, action
    assert count(app, "SELECT count(*) FROM audit_event WHERE action IN ('report_opened', 'status_changed', 'note_added')") == 0


# -- workflow -------------------------------------------------------------------------------

def change(client: FlaskClient, rid: str, status: str, reason: str = "because") -> Any:
    return client.post(f"/triage/reports/{rid}/status", data={"status": status, "reason": reason})


def test_status_workflow_with_reasons_and_a_way_back(client: FlaskClient, app: Flask,
                                                     make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("officer")
    assert change(client, rid, "assessing", "Looking at the passenger list").status_code == 303
    assert row(app, rid)["status"] == "assessing" and row(app, rid)["closed_at"] is None  # type: ignore[index]
    assert change(client, rid, "referred", "Referred to the NRM").status_code == 303
    r = row(app, rid)
    assert r["status"] == "referred" and r["closed_at"] is not None  # type: ignore[index]
    assert change(client, rid, "assessing", "New information from the airline").status_code == 303
    assert row(app, rid)["status"] == "assessing" and row(app, rid)["closed_at"] is None  # type: ignore[index]
    assert change(client, rid, "meet_aircraft", "Meet at stand 23").status_code == 303
    assert change(client, rid, "no_further_action", "Family travelling together").status_code == 303
    page = text(client.get(f"/triage/reports/{rid}"))
    for reason in ("Looking at the passenger list", "Referred to the NRM", "New information from the airline",
                   "Meet at stand 23", "Family travelling together"):
        assert reason in page
    trail = [json.loads(e["detail"]) for e in events(app, "status_changed", f"report:{rid}")]
    assert [(t["from"], t["to"]) for t in trail] == [
        ("received", "assessing"), ("assessing", "referred"), ("referred", "assessing"),
        ("assessing", "meet_aircraft"), ("meet_aircraft", "no_further_action")]
    assert all("reason" not in t for t in trail)


@pytest.mark.parametrize("start,target", [
    ("received", "referred"), ("received", "meet_aircraft"), ("received", "no_further_action"),
    ("received", "received"), ("assessing", "received"), ("referred", "no_further_action"),
    ("no_further_action", "meet_aircraft"),
])
def test_illegal_transitions_are_refused_and_change_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                                            auth: AuthActions, start: str, target: str) -> None:
    rid = deliver(client, make_envelope)
    update_report(app, rid, status=start)
    before = row(app, rid)
    auth.login("officer")
    resp = change(client, rid, target, "try it")
    assert resp.status_code == 409
    assert "cannot go to" in text(resp) and "Nothing was changed" in text(resp)
    assert row(app, rid) == before
    assert count(app, "SELECT count(*) FROM report_status_history") == 0
    assert events(app, "status_changed") == []


def test_a_stale_page_cannot_overwrite_another_officers_decision(client: FlaskClient, app: Flask,
                                                                 make_envelope: Make, auth: AuthActions) -> None:
    """B loads the report while it is assessing; A decides meet_aircraft and
    releases the lock; B's old form must not silently close it."""
    rid = deliver(client, make_envelope)
    update_report(app, rid, status="assessing")
    auth.login("officer")
    page = text(client.get(f"/triage/reports/{rid}"))
    assert 'name="from_status"' in page and 'value="assessing"' in page
    update_report(app, rid, status="meet_aircraft")  # officer A, meanwhile
    before = row(app, rid)
    resp = client.post(f"/triage/reports/{rid}/status",
                       data={"status": "no_further_action", "reason": "seen enough", "from_status": "assessing"})
    assert resp.status_code == 409
    assert "Meet aircraft" in text(resp) and "Nothing was changed" in text(resp)
    assert row(app, rid) == before
    resp = client.post(f"/triage/reports/{rid}/status",
                       data={"status": "no_further_action", "reason": "seen enough", "from_status": "meet_aircraft"})
    assert resp.status_code == 303 and row(app, rid)["status"] == "no_further_action"  # type: ignore[index]


@pytest.mark.parametrize("data,message", [
    ({"status": "assessing", "reason": ""}, "Give a reason"),
    ({"status": "assessing", "reason": "   "}, "Give a reason"),
    ({"status": "assessing", "reason": "\u200b"}, "Give a reason"),  # zero-width space
    ({"status": "assessing", "reason": "\u200d\ufeff ."}, "Give a reason"),
    ({"status": "assessing"}, "Give a reason"),
    ({"status": "closed_forever", "reason": "x"}, "Not a valid choice"),
    ({"status": "assessing", "reason": "x" * 1001}, "1000"),
])
def test_bad_status_forms_are_refused(client: FlaskClient, app: Flask, make_envelope: Make,
                                      auth: AuthActions, data: dict[str, str], message: str) -> None:
    rid = deliver(client, make_envelope)
    before = row(app, rid)
    auth.login("officer")
    resp = client.post(f"/triage/reports/{rid}/status", data=data)
    assert resp.status_code == 400
    assert message in text(resp) and "Nothing was changed" in text(resp)
    assert row(app, rid) == before


def test_assign_to_an_officer(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    add_officer(app)
    with app.app_context():
        ids = {r["username"]: r["id"] for r in get_db().execute("SELECT id, username FROM user")}
    auth.login("officer")
    assert client.post(f"/triage/reports/{rid}/assign", data={"assignee": ids["officer2"]}).status_code == 303
    assert row(app, rid)["assignee_id"] == ids["officer2"]  # type: ignore[index]
    assert "officer2" in text(client.get("/triage/"))
    assert json.loads(events(app, "report_assigned", f"report:{rid}")[0]["detail"]) == {"assignee": "officer2"}
    # only officers can be assignees; garbage is refused and changes nothing
    for bad in (ids["crew"], ids["admin"], 99999, "x"):
        resp = client.post(f"/triage/reports/{rid}/assign", data={"assignee": bad})
        assert resp.status_code == 400 and "Choose an officer" in text(resp)
        assert row(app, rid)["assignee_id"] == ids["officer2"]  # type: ignore[index]
    assert client.post(f"/triage/reports/{rid}/assign", data={"assignee": 0}).status_code == 303
    assert row(app, rid)["assignee_id"] is None  # type: ignore[index]


def test_notes_are_sealed_at_rest_and_shown_to_officers(client: FlaskClient, app: Flask,
                                                        make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("officer")
    note = "NOTEMARK-7f3a: passenger met at gate 12, interpreter requested"
    reason = "REASONMARK-91c2: checking the passenger list"
    assert client.post(f"/triage/reports/{rid}/notes", data={"text": note}).status_code == 303
    assert change(client, rid, "assessing", reason).status_code == 303
    page = text(client.get(f"/triage/reports/{rid}"))
    assert note in page and reason in page
    with app.app_context():
        stored = dict(get_db().execute("SELECT * FROM report_note").fetchone())
        get_db().execute("PRAGMA wal_checkpoint(FULL)")
    assert stored["kid"] and stored["sealed"] and "NOTEMARK" not in json.dumps(stored)
    raw = store_bytes(app)
    for secret in (b"NOTEMARK", b"REASONMARK", b"interpreter", b"passenger list"):
        assert secret not in raw
    assert b"passengers" not in raw  # and the report narrative never was in clear
    added = events(app, "note_added", f"report:{rid}")
    assert len(added) == 1 and "NOTEMARK" not in added[0]["detail"]


def test_a_sealed_note_is_bound_to_its_report(app: Flask, client: FlaskClient, make_envelope: Make) -> None:
    from crewreport import keys
    with app.app_context():
        ring = keys.keyring()
        kid, sealed = triage.seal_text(ring, "hello", "report-a", triage.NOTE_INFO)
        assert triage.open_text(ring, kid, sealed, "report-a", triage.NOTE_INFO) == "hello"
        assert triage.open_text(ring, kid, sealed, "report-b", triage.NOTE_INFO) == "[cannot be opened]"


@pytest.mark.parametrize("note,status", [("x" * 2001, 400), ("", 400), ("   \n ", 400), ("x" * 2000, 303)])
def test_note_length_bounds(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                            note: str, status: int) -> None:
    rid = deliver(client, make_envelope)
    auth.login("officer")
    resp = client.post(f"/triage/reports/{rid}/notes", data={"text": note})
    assert resp.status_code == status
    stored = count(app, "SELECT count(*) FROM report_note")
    if status == 400:
        assert stored == 0 and "The note was not saved" in text(resp)
        assert "2000" in text(resp) or "empty" in text(resp)
    else:
        assert stored == 1


def test_the_lock_keeps_a_second_officer_out_until_it_expires(client: FlaskClient, app: Flask,
                                                              make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    add_officer(app)
    auth.login("officer")
    assert client.post(f"/triage/reports/{rid}/lock").status_code == 303
    r = row(app, rid)
    expires = datetime.strptime(r["lock_expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)  # type: ignore[index]
    assert timedelta(minutes=14) < expires - datetime.now(timezone.utc) <= timedelta(minutes=15)
    assert "You hold the lock" in text(client.get(f"/triage/reports/{rid}"))

    login_as(client, "officer2")
    page = text(client.get(f"/triage/reports/{rid}"))
    assert "officer is working on this report" in page
    assert "🔒 officer" in text(client.get("/triage/"))
    before = row(app, rid)
    for action, data in (("status", {"status": "assessing", "reason": "mine now"}),
                         ("notes", {"text": "my note"}), ("assign", {"assignee": 0}),
                         ("lock", {}), ("unlock", {})):
        resp = client.post(f"/triage/reports/{rid}/{action}", data=data)
        assert resp.status_code == 409, action
        assert ("officer is working on this report" in text(resp)) or ("do not hold the lock" in text(resp))
    assert row(app, rid) == before
    assert count(app, "SELECT count(*) FROM report_note") == 0
    assert events(app, "status_changed") == []

    # expired: the second officer may act, and takes the lock by acting
    update_report(app, rid, lock_expires_at=iso(utcnow() - timedelta(minutes=1)))
    assert change(client, rid, "assessing", "taking over").status_code == 303
    with app.app_context():
        holder = get_db().execute("SELECT u.username FROM report r JOIN user u ON u.id = r.lock_user_id"
                                  " WHERE r.id = ?", (rid,)).fetchone()[0]
    assert holder == "officer2"
    assert client.post(f"/triage/reports/{rid}/unlock").status_code == 303
    assert row(app, rid)["lock_user_id"] is None  # type: ignore[index]
    assert [e["action"] for e in events(app, "report_locked")] == ["report_locked"]
    assert len(events(app, "report_unlocked")) == 1


# -- exports ------------------------------------------------------------------------------------

def test_nrm_prompt_sheet(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope, flight="ZZ44", arr="MAN")
    auth.login("officer")
    resp = client.get(f"/triage/reports/{rid}/nrm")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    page = text(resp)
    assert "ZZ44" in page and "LOS → MAN" in page
    assert "Man in 32C holds both passports and answers for her." in page
    assert 'id="nrm-child">Child' in page and 'id="nrm-consent">Not yet known' in page
    assert 'data-code="docs_held_by_other"' in page and "Quiet girl in a grey hoodie" in page
    assert "<form" not in page.split('<main id="main">')[1]  # nothing to submit anywhere
    exported = events(app, "report_exported", f"report:{rid}")
    assert len(exported) == 1 and json.loads(exported[0]["detail"]) == {"format": "nrm_sheet"}
    adult = deliver(client, make_envelope, body=valid_body(people=[{"role": "possible_victim", "age_range": "25_39"}]))
    assert 'id="nrm-child">Adult' in text(client.get(f"/triage/reports/{adult}/nrm"))


def test_csv_export_of_the_queue(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    a = deliver(client, make_envelope, sta=iso(utcnow() + timedelta(hours=2)), arr="MAN")
    b = deliver(client, make_envelope, sta=iso(utcnow() + timedelta(hours=1)))
    update_report(app, a, flight="=HYPERLINK(\"http://x\")", dep="+1", arr="@SUM")  # hostile cells
    auth.login("officer")
    resp = client.get("/triage/export.csv?status=any")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text(resp))))
    assert rows[0] == list(triage.CSV_FIELDS)
    assert [r[1] for r in rows[1:]] == [b, a]
    hostile = rows[2]
    assert hostile[3] == "'=HYPERLINK(\"http://x\")" and hostile[4] == "'+1" and hostile[5] == "'@SUM"
    assert all(not cell.startswith(("=", "+", "@")) for r in rows for cell in r)
    assert "narrative" not in text(resp) and "passports" not in text(resp)
    assert 58 <= int(rows[1][11]) <= 60  # minutes before landing
    exported = events(app, "queue_exported")
    assert len(exported) == 1 and json.loads(exported[0]["detail"])["rows"] == 2


def test_csv_cell_guard() -> None:
    assert triage.csv_cell("=1+1") == "'=1+1"
    assert triage.csv_cell("-2") == "'-2"
    assert triage.csv_cell("\t=x") == "'\t=x"
    assert triage.csv_cell("LHR") == "LHR"
    assert triage.csv_cell(-20) == -20


# -- access and CSRF ------------------------------------------------------------------------------

def triage_routes(rid: str) -> list[tuple[str, str]]:
    return [("GET", "/triage/"), ("GET", "/triage/queue.json"), ("GET", "/triage/export.csv"),
            ("GET", f"/triage/reports/{rid}"), ("GET", f"/triage/reports/{rid}/nrm")] + [
        ("POST", f"/triage/reports/{rid}/{a}") for a in REPORT_POSTS]


@pytest.mark.parametrize("who", [None, "crew", "security", "admin", "security-yy", "officer"])
def test_access_matrix(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                       who: str | None) -> None:
    rid = deliver(client, make_envelope)
    if who:
        auth.login(who)
    for method, path in triage_routes(rid):
        resp = client.open(path, method=method, data={"status": "assessing", "reason": "r", "text": "t", "assignee": 0})
        if who is None:
            assert resp.status_code == 302 and "/auth/login" in resp.headers["Location"], (method, path)
        elif who == "officer":
            assert resp.status_code in (200, 303, 409), (method, path, resp.status_code)
        else:
            assert resp.status_code == 403, (who, method, path)
    if who != "officer":
        assert row(app, rid)["status"] == "received"  # type: ignore[index]
        assert events(app, "report_opened") == []


def csrf_login(client: FlaskClient, username: str) -> None:
    page = text(client.get("/auth/login"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    resp = client.post("/auth/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert AuthActions(client).code_step(resp).status_code == 302


def page_token(client: FlaskClient, path: str) -> str:
    return re.search(r'<meta name="csrf-token" content="([^"]+)"', text(client.get(path))).group(1)  # type: ignore[union-attr]


def test_csrf_is_enforced_on_every_triage_post(csrf_app: Flask, make_envelope: Make) -> None:
    client = csrf_app.test_client()
    rid = deliver(client, make_envelope)
    csrf_login(client, "officer")
    before = row(csrf_app, rid)
    for action in REPORT_POSTS:
        resp = client.post(f"/triage/reports/{rid}/{action}",
                           data={"status": "assessing", "reason": "forged", "text": "forged", "assignee": 0})
        assert resp.status_code == 400, action
        assert "CSRF" in text(resp)
    assert row(csrf_app, rid) == before
    assert count(csrf_app, "SELECT count(*) FROM report_note") == 0
    token = page_token(client, f"/triage/reports/{rid}")
    resp = client.post(f"/triage/reports/{rid}/status",
                       data={"status": "assessing", "reason": "real", "csrf_token": token})
    assert resp.status_code == 303 and row(csrf_app, rid)["status"] == "assessing"  # type: ignore[index]
