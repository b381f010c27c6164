"""What a tablet may learn about its own reports: one coarse state per id,
authenticated by the device signature alone, never a word of the case, and
`unknown` for anything that is not the asking device's."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import envelope, report_status
from crewreport.report_status import MAX_IDS
from crewreport.times import stamp

from .helpers import (
    DEVICE_ID,
    AuthActions,
    KeySet,
    Make,
    deliver,
    login_as,
    store_before,
    text,
    update_report,
    utcnow,
)

URL = "/api/v1/reports/status"


def question(device: str, ids: list[Any], key: ec.EllipticCurvePrivateKey, at: str | None = None,
             **extra: Any) -> dict[str, str]:
    """A signed status request, as the tablet builds it."""
    protected = envelope.b64u_encode(json.dumps({"device": device, "ids": ids, "at": at or stamp(utcnow()),
                                                 **extra}).encode("utf-8"))
    return {"protected": protected,
            "signature": envelope.b64u_encode(envelope.sign_raw(key, protected.encode("ascii")))}


def ask(client: FlaskClient, keyset: KeySet, ids: list[Any], **kwargs: Any) -> Any:
    return client.post(URL, json=question(DEVICE_ID, ids, keyset.device, **kwargs))


def states(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [r["state"] for r in resp.get_json()["results"]]


def error_code(resp: Any) -> tuple[int, str]:
    return resp.status_code, resp.get_json()["error"]["code"]


def test_states_follow_the_officers_work(client: FlaskClient, app: Flask, make_envelope: Make,
                                         keyset: KeySet, auth: AuthActions) -> None:
    ids = [deliver(client, make_envelope) for _ in range(5)]
    assert states(ask(client, keyset, ids)) == ["received"] * 5
    auth.login("officer")
    assert client.get(f"/triage/reports/{ids[0]}").status_code == 200  # opened: seen
    assert client.get(f"/triage/reports/{ids[1]}/nrm").status_code == 200  # its sheet: seen too
    update_report(app, ids[2], status="meet_aircraft")
    update_report(app, ids[3], status="referred")
    update_report(app, ids[4], status="no_further_action")
    auth.logout()
    assert states(ask(client, keyset, ids)) == ["seen", "seen", "acting", "acting", "closed"]
    update_report(app, ids[4], status="assessing")
    assert states(ask(client, keyset, ids[4:])) == ["seen"]


def test_review_opening_is_not_seen_by_border_force(client: FlaskClient, make_envelope: Make,
                                                    keyset: KeySet, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope)
    auth.login("security")
    assert client.get(f"/review/reports/{rid}").status_code == 200
    auth.logout()
    assert states(ask(client, keyset, [rid])) == ["received"]


def test_other_devices_and_missing_ids_answer_unknown_in_order(client: FlaskClient, make_envelope: Make,
                                                               keyset: KeySet) -> None:
    mine = deliver(client, make_envelope)
    theirs = deliver(client, make_envelope, device="dev-yy", device_key=keyset.device_yy, airline="YY",
                     flight="YY12", recipients=[keyset.border_force, keyset.airline_yy])
    missing = "3b0c3c1e-96a4-4d7e-9d1c-0d6b8c1e2f3a"
    resp = ask(client, keyset, [theirs, mine, missing, "not-a-uuid", mine])
    assert resp.get_json() == {"results": [
        {"id": theirs, "state": "unknown"}, {"id": mine, "state": "received"},
        {"id": missing, "state": "unknown"}, {"id": "not-a-uuid", "state": "unknown"},
        {"id": mine, "state": "received"}]}
    # The other device learns the same about ours.
    resp = client.post(URL, json=question("dev-yy", [mine, theirs], keyset.device_yy))
    assert states(resp) == ["unknown", "received"]
    assert states(ask(client, keyset, [])) == []


@pytest.mark.parametrize("minutes", [-6, 6, -60 * 24 * 30])
def test_a_stale_or_early_question_is_refused(client: FlaskClient, make_envelope: Make, keyset: KeySet,
                                              minutes: int) -> None:
    rid = deliver(client, make_envelope)
    resp = ask(client, keyset, [rid], at=stamp(utcnow() + timedelta(minutes=minutes)))
    assert error_code(resp) == (400, "malformed")
    assert rid not in text(resp)
    assert states(ask(client, keyset, [rid], at=stamp(utcnow() - timedelta(minutes=4)))) == ["received"]


def test_a_revoked_device_is_refused(client: FlaskClient, make_envelope: Make, keyset: KeySet,
                                     runner: FlaskCliRunner) -> None:
    rid = deliver(client, make_envelope)
    assert runner.invoke(args=["revoke-device", DEVICE_ID]).exit_code == 0
    resp = ask(client, keyset, [rid])
    assert error_code(resp) == (403, "revoked_device") and rid not in text(resp)


def test_unsigned_foreign_signed_and_unknown_devices(client: FlaskClient, make_envelope: Make,
                                                     keyset: KeySet) -> None:
    rid = deliver(client, make_envelope)
    signed = question(DEVICE_ID, [rid], keyset.device)
    # signed by another enrolled device's key, claiming ours
    forged = question(DEVICE_ID, [rid], keyset.device_yy)
    assert error_code(client.post(URL, json=forged)) == (401, "bad_signature")
    # a signature of the wrong length, or one over other bytes
    assert error_code(client.post(URL, json={**signed, "signature": envelope.b64u_encode(b"x" * 63)})) \
        == (401, "bad_signature")
    other = question(DEVICE_ID, [], keyset.device)
    assert error_code(client.post(URL, json={**signed, "signature": other["signature"]})) == (401, "bad_signature")
    # no signature at all
    assert error_code(client.post(URL, json={"protected": signed["protected"]})) == (400, "malformed")
    assert error_code(client.post(URL, json=question("dev-nobody", [rid], keyset.device))) \
        == (401, "unknown_device")


BAD_BODIES: dict[str, Any] = {
    "list": [], "string": "x", "number": 1, "null": None, "empty": {},
    "extra field": {"protected": "e30", "signature": "AA", "more": 1},
    "non-string protected": {"protected": 1, "signature": "AA"},
    "padded base64": {"protected": "e30=", "signature": "AA"},
    "not json inside": {"protected": envelope.b64u_encode(b"\xff\xfe"), "signature": "AA"},
    "array inside": {"protected": envelope.b64u_encode(b"[]"), "signature": "AA"},
    "deep nesting": {"protected": envelope.b64u_encode(b"[" * 100000), "signature": "AA"},
}


@pytest.mark.parametrize("case", list(BAD_BODIES))
def test_malformed_requests_get_malformed_and_store_nothing(app: Flask, client: FlaskClient, case: str) -> None:
    before = count_rows(app)
    resp = client.post(URL, json=BAD_BODIES[case])
    assert error_code(resp) == (400, "malformed")
    assert count_rows(app) == before


@pytest.mark.parametrize("fields", [
    {"ids": "one"}, {"ids": [1]}, {"ids": [""]}, {"ids": ["x" * 65]}, {"ids": [None]},
    {"at": "2026-12-01 14:35"}, {"at": 0}, {"at": "2026-13-45T99:00:00Z"}, {"device": 7}, {"extra": True},
])
def test_malformed_questions(app: Flask, client: FlaskClient, keyset: KeySet, fields: dict[str, Any]) -> None:
    base = {"device": DEVICE_ID, "ids": [], "at": stamp(utcnow())}
    base.update(fields)
    protected = envelope.b64u_encode(json.dumps(base).encode())
    body = {"protected": protected,
            "signature": envelope.b64u_encode(envelope.sign_raw(keyset.device, protected.encode()))}
    before = count_rows(app)
    assert error_code(client.post(URL, json=body)) == (400, "malformed")
    assert count_rows(app) == before


def test_not_json_and_too_many_ids(app: Flask, client: FlaskClient, keyset: KeySet) -> None:
    assert error_code(client.post(URL, data="{", content_type="application/json")) == (400, "malformed")
    assert error_code(client.post(URL, data="ids=1", content_type="application/x-www-form-urlencoded")) \
        == (400, "malformed")
    ids = [f"id-{i}" for i in range(MAX_IDS)]
    assert len(states(ask(client, keyset, ids))) == MAX_IDS
    assert error_code(ask(client, keyset, ids + ["one-more"])) == (413, "too_large")


def test_no_officer_reason_or_note_ever_reaches_the_tablet(client: FlaskClient, app: Flask,
                                                           make_envelope: Make, keyset: KeySet) -> None:
    rid = deliver(client, make_envelope)
    login_as(client, "officer")
    assert client.post(f"/triage/reports/{rid}/notes", data={"text": "NOTE-MARKER at stand 12"}).status_code == 303
    for target, reason in (("assessing", "REASON-MARKER one"), ("meet_aircraft", "REASON-MARKER two")):
        resp = client.post(f"/triage/reports/{rid}/status", data={"status": target, "reason": reason})
        assert resp.status_code == 303
    client.post("/auth/logout")
    resp = ask(client, keyset, [rid])
    assert resp.get_json() == {"results": [{"id": rid, "state": "acting"}]}
    raw = text(resp)
    for secret in ("officer", "MARKER", "stand", "meet_aircraft", "assessing"):
        assert secret not in raw
    assert "Set-Cookie" not in resp.headers


def test_no_cookie_and_no_csrf_token_needed(csrf_app: Flask, make_envelope: Make, keyset: KeySet) -> None:
    client = csrf_app.test_client()
    rid = deliver(client, make_envelope)
    assert states(ask(client, keyset, [rid])) == ["received"]


def test_a_question_writes_nothing_but_the_rate_counter(app: Flask, client: FlaskClient, make_envelope: Make,
                                                        keyset: KeySet) -> None:
    rid = deliver(client, make_envelope)
    before = count_rows(app)
    assert states(ask(client, keyset, [rid])) == ["received"]
    assert count_rows(app) == before


def count_rows(app: Flask) -> dict[str, Any]:
    """Every table's rows (but the rate limiter's counter), to show nothing was stored."""
    from crewreport.db import get_db

    with app.app_context():
        db = get_db()
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {t: [tuple(r) for r in db.execute(f"SELECT * FROM {t}")]
                for t in tables if t != "intake_window"}


def test_an_older_store_learns_what_officers_already_opened(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrading backfills the first Border Force opening from the audit trail
    (airline security's openings do not count); the child flag of reports
    stored before it existed stays 0, as it cannot be known without decrypting."""
    from crewreport import db

    t = "2026-01-01T00:00:00Z"
    conn = store_before(Path(tmp_path), monkeypatch, "_board.sql", t)
    for rid in ("r-1", "r-2", "r-3", "r-4"):
        conn.execute("INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
                     " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
                     " receipt_signature, status_changed_at) VALUES (?, ?, 'dev-1', 'ZZ', 'ZZ1', 'CDG', 'LHR',"
                     " ?, 'routine', 2, ?, '[]', '{}', 'abc', ?, 'rc', 'sg', ?)", (rid, "REF" + rid, t, t, t, t))
    opened = [("2026-01-02T10:00:00Z", "report_opened", "r-1", "{}"),
              ("2026-01-03T10:00:00Z", "report_opened", "r-1", "{}"),
              ("2026-01-02T11:00:00Z", "report_opened", "r-2", '{"content":true,"surface":"review"}'),
              ("2026-01-02T12:00:00Z", "report_exported", "r-3", '{"format":"nrm_sheet"}')]
    for n, (at, action, rid, detail) in enumerate(opened):
        conn.execute("INSERT INTO audit_event (at, actor, action, subject, detail, prev_hash, hash)"
                     " VALUES (?, 'officer', ?, ?, ?, ?, ?)", (at, action, f"report:{rid}", detail, "0" * 64, f"h{n}"))
    conn.commit()
    db.migrate(conn)
    rows = {r["id"]: (r["first_opened_at"], r["child"]) for r in conn.execute("SELECT * FROM report")}
    assert rows == {"r-1": ("2026-01-02T10:00:00Z", 0), "r-2": (None, 0), "r-3": ("2026-01-02T12:00:00Z", 0),
                    "r-4": (None, 0)}
    assert [report_status.coarse_state("received", rows[r][0]) for r in sorted(rows)] == \
        ["seen", "received", "seen", "received"]


def test_a_question_asked_at_a_time_with_milliseconds_is_answered(client: FlaskClient, keyset: KeySet,
                                                                   make_envelope: Make) -> None:
    """The tablet's clock as JavaScript gives it (toISOString()) is a valid `at`."""
    rid = deliver(client, make_envelope)
    moment = utcnow()
    at = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    assert states(ask(client, keyset, [rid], at=at)) == ["received"]
