"""One report in Border Force triage over the Flask test client: the report
page (decrypt and audit), the workflow (transitions, reasons, assignment,
notes, the lock), the NRM sheet, the access matrix and CSRF."""
from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport.db import get_db, transaction
from crewreport.times import parse_utc, stamp

from .helpers import (
    AuthActions,
    KeySet,
    Make,
    add_officer,
    count,
    csrf_login,
    deliver,
    events,
    login_as,
    page_token,
    row,
    store_bytes,
    text,
    update_report,
    utcnow,
    valid_body,
)

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


def test_hidden_characters_in_the_crews_text_are_shown_not_acted_on(client: FlaskClient, app: Flask,
                                                                      make_envelope: Make, auth: AuthActions) -> None:
    """A right-to-left override would show a name or crew id reversed; a NUL or
    ESC has no place on a page. Each is written as its escape, as the logs
    write it, on every page that shows the body; tabs, line breaks and
    ordinary marks are kept."""
    body = valid_body(narrative="He said\u202e gnihton\x1b[2J.\nSecond line\u200f.",
                      people=[{"role": "possible_victim", "description": "Coat\u2066 hidden\u2069"}],
                      languages=["Ar\x00abic"], reporter={"crew_id": "C1\u202e99", "name": "Ann\u202eevil"},
                      share_identity_with_airline=True)
    rid = deliver(client, make_envelope, body=body)
    auth.login("officer")
    for path in (f"/triage/reports/{rid}", f"/triage/reports/{rid}/nrm"):
        page = text(client.get(path))
        assert "He said\\u202e gnihton\\x1b[2J.\nSecond line\u200f." in page, path
        for hidden in ("\u202e", "\x1b", "\x00", "\u2066", "\u2069"):
            assert hidden not in page, (path, hidden)
    page = text(client.get(f"/triage/reports/{rid}"))
    assert "C1\\u202e99" in page and "Ann\\u202eevil" in page
    assert "Coat\\u2066 hidden\\u2069" in page and "Ar\\x00abic" in page
    login_as(client, "security")  # the airline's own copy, with the identity shared
    page = text(client.get(f"/review/reports/{rid}"))
    assert "He said\\u202e gnihton" in page and "C1\\u202e99" in page and "\u202e" not in page
    # the tablet's label, chosen at enrolment, is the crew's text too
    device_id = row(app, rid)["device_id"]  # type: ignore[index]
    with app.app_context():
        with transaction(get_db()) as db:
            db.execute("UPDATE device SET label = ? WHERE id = ?", ("Tab\u202elet", device_id))
    pages = {"/review/crew": text(client.get("/review/crew")),
             f"/review/devices/{device_id}/revoke": text(client.get(f"/review/devices/{device_id}/revoke"))}
    login_as(client, "officer")
    pages[f"/triage/reports/{rid}"] = text(client.get(f"/triage/reports/{rid}"))
    for path, page in pages.items():
        assert "Tab\\u202elet" in page and "\u202e" not in page, path


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
    opened_or_changed = "action IN ('report_opened', 'status_changed', 'note_added')"
    assert count(app, f"SELECT count(*) FROM audit_event WHERE {opened_or_changed}") == 0


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


@pytest.mark.parametrize(("start", "target"), [
    ("received", "referred"), ("received", "no_further_action"),
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


NO_REASON = "Give a reason for the change. Nothing was changed."


@pytest.mark.parametrize(("data", "message"), [
    ({"status": "assessing", "reason": ""}, NO_REASON),
    ({"status": "assessing", "reason": "   "}, NO_REASON),
    ({"status": "assessing", "reason": "\u200b"}, NO_REASON),  # zero-width space
    ({"status": "assessing", "reason": "\u200d\ufeff ."}, NO_REASON),
    ({"status": "assessing"}, NO_REASON),
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
    # the report page's form starts from who holds it now
    assert f'<option selected value="{ids["officer2"]}">' in text(client.get(f"/triage/reports/{rid}"))
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


@pytest.mark.parametrize(("note", "status"), [("x" * 2001, 400), ("", 400), ("   \n ", 400), ("\u200b\u200d", 400),
                                               ("x" * 2000, 303)])
def test_note_length_bounds(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions,
                            note: str, status: int) -> None:
    rid = deliver(client, make_envelope)
    auth.login("officer")
    resp = client.post(f"/triage/reports/{rid}/notes", data={"text": note})
    assert resp.status_code == status
    stored = count(app, "SELECT count(*) FROM report_note")
    if status == 400:
        why = "A note may be at most 2000 characters." if len(note) > 2000 else "A note cannot be empty."
        assert stored == 0 and f"{why} The note was not saved." in text(resp)
    else:
        assert stored == 1


def test_the_lock_keeps_a_second_officer_out_until_it_expires(client: FlaskClient, app: Flask,
                                                              make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    add_officer(app)
    auth.login("officer")
    assert client.post(f"/triage/reports/{rid}/lock").status_code == 303
    r = row(app, rid)
    expires = parse_utc(r["lock_expires_at"])  # type: ignore[index]
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert "You hold the lock" in text(client.get(f"/triage/reports/{rid}"))

    # another browser: the holder stays signed in (signing out lets go of the lock)
    client = app.test_client()
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
    update_report(app, rid, lock_expires_at=stamp(utcnow() - timedelta(minutes=1)))
    assert change(client, rid, "assessing", "taking over").status_code == 303
    with app.app_context():
        holder = get_db().execute("SELECT u.username FROM report r JOIN user u ON u.id = r.lock_user_id"
                                  " WHERE r.id = ?", (rid,)).fetchone()[0]
    assert holder == "officer2"
    assert client.post(f"/triage/reports/{rid}/unlock").status_code == 303
    assert row(app, rid)["lock_user_id"] is None  # type: ignore[index]
    assert [e["action"] for e in events(app, "report_locked")] == ["report_locked"]
    assert len(events(app, "report_unlocked")) == 1


# -- the NRM sheet ------------------------------------------------------------------------------------

def test_nrm_prompt_sheet(client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope, flight="ZZ44", arr="MAN")
    auth.login("officer")
    resp = client.get(f"/triage/reports/{rid}/nrm")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"
    page = text(resp)
    assert "ZZ44" in page and "LOS → MAN" in page
    assert "Man in 32C holds both passports and answers for her." in page
    assert 'data-nrm-subject="child">Child' in page and 'id="nrm-consent">Not yet known' in page
    assert 'data-code="docs_held_by_other"' in page and "Quiet girl in a grey hoodie" in page
    assert "<form" not in page.split('<main id="main">')[1]  # nothing to submit anywhere
    exported = events(app, "report_exported", f"report:{rid}")
    assert len(exported) == 1 and json.loads(exported[0]["detail"]) == {"format": "nrm_sheet"}
    adult = deliver(client, make_envelope, body=valid_body(people=[{"role": "possible_victim", "age_range": "25_39"}]))
    assert 'data-nrm-subject="adult">Adult' in text(client.get(f"/triage/reports/{adult}/nrm"))


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


def test_notes_and_reasons_are_sealed_post_quantum_and_older_ones_still_open(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions, keyset: KeySet) -> None:
    """With a version 2 Border Force key, what officers type is sealed to it
    (X-Wing), as the reports are; a note sealed to the P-256 key before the
    instance had one still opens."""
    from crewreport.sealed_text import NOTE_INFO, seal_text

    rid = deliver(client, make_envelope)
    with app.app_context():
        db = get_db()
        older = seal_text(keyset.border_force.public_key(), "OLDNOTE-51d0 written before version 2", rid, NOTE_INFO)
        db.execute("INSERT INTO report_note (report_id, at, author_id, kid, sealed) VALUES (?, ?, NULL, ?, ?)",
                   (rid, stamp(datetime.now(UTC) - timedelta(days=1)), keyset.kid(keyset.border_force), older))
    auth.login("officer")
    assert client.post(f"/triage/reports/{rid}/notes", data={"text": "NEWNOTE-7c21"}).status_code == 303
    assert change(client, rid, "assessing", "NEWREASON-0b9e").status_code == 303
    page = text(client.get(f"/triage/reports/{rid}"))
    assert "OLDNOTE-51d0" in page and "NEWNOTE-7c21" in page and "NEWREASON-0b9e" in page
    v2_kid = keyset.kid(keyset.border_force_v2)
    with app.app_context():
        db = get_db()
        kids = [r["kid"] for r in db.execute("SELECT kid FROM report_note ORDER BY id")]
        reason_kid = db.execute("SELECT reason_kid FROM report_status_history").fetchone()[0]
        suite = db.execute("SELECT suite, owner FROM service_key WHERE kid = ?", (v2_kid,)).fetchone()
    assert kids == [keyset.kid(keyset.border_force), v2_kid] and reason_kid == v2_kid
    assert tuple(suite) == ("v2", "border_force")
