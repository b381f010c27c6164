"""Version 2 envelopes (X-Wing) through the intake, beside version 1: the
vectors, suites never mixed, nothing stored on refusal; and every surface that
opens a report (officer page, NRM sheet, CSV, airline review, retention)."""
from __future__ import annotations

import base64
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import envelope
from crewreport.db import get_db, transaction
from crewreport.times import stamp

from .helpers import VECTORS_V2, AuthActions, KeySet, Make, count, deliver, largest_body, store_bytes, valid_body

CASES = {c["name"]: c for c in VECTORS_V2["cases"]}


def report_count(app: Flask) -> int:
    return count(app, "SELECT count(*) FROM report")


def header_of(env: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(env["protected"] + "==="))


def deliver_as_is(client: FlaskClient, env: dict[str, Any]) -> str:
    """Post an envelope built earlier; the stored report's id."""
    resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code == 201, resp.get_json()
    return str(header_of(env)["id"])


@pytest.mark.parametrize("name", sorted(CASES))
def test_vectors_through_the_intake(v2_vectors_app: Flask, keyset: KeySet, name: str, vector_clock: None) -> None:
    case = CASES[name]
    resp = v2_vectors_app.test_client().post("/api/v1/reports", json=case["envelope"])
    if case["expect"] == "ok":
        assert resp.status_code == 201, resp.get_json()
        receipt = envelope.verify_receipt(resp.get_json(), keyset.receipt.public_key())
        assert receipt["id"] == case["header"]["id"]
        assert receipt["envelope_sha256"] == envelope.envelope_sha256(case["envelope"])
        assert report_count(v2_vectors_app) == 1
    else:
        body = resp.get_json()
        assert (body["error"]["code"], resp.status_code) == (case["expect"], {
            "bad_signature": 401, "undecryptable": 422, "unknown_recipient": 422}[case["expect"]])
        assert body["error"]["message"]
        assert report_count(v2_vectors_app) == 0


def test_version_2_is_stored_as_received_without_plaintext(client: FlaskClient, app: Flask,
                                                           make_envelope: Make) -> None:
    env = make_envelope(v=2)
    first = client.post("/api/v1/reports", json=env)
    assert first.status_code == 201
    again = client.post("/api/v1/reports", json=env)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    with app.app_context():
        row = get_db().execute("SELECT * FROM report").fetchone()
    assert json.loads(row["envelope"]) == env and json.loads(row["rcpt"]) == header_of(env)["rcpt"]
    raw = store_bytes(app)
    assert b"passports" not in raw and b"grey hoodie" not in raw


def test_batches_carry_both_versions(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    envs = [make_envelope(v=1), make_envelope(v=2), make_envelope(v=2, urgency="soon")]
    results = client.post("/api/v1/reports/batch", json={"envelopes": envs}).get_json()["results"]
    assert "receipt" in results[0] and "receipt" in results[1]
    assert results[2]["error"]["code"] == "invalid_report"
    assert report_count(app) == 2


@pytest.mark.parametrize(("version", "rcpt"), [
    (2, ["border_force", "airline_zz_v2"]),     # a P-256 Border Force key in a version 2 envelope
    (2, ["border_force_v2", "airline_zz"]),     # a P-256 airline key in a version 2 envelope
    (1, ["border_force_v2", "airline_zz_v2"]),  # X-Wing keys in a version 1 envelope
    (1, ["border_force", "airline_zz_v2"]),
])
def test_suites_never_mix(client: FlaskClient, app: Flask, keyset: KeySet, version: int, rcpt: list[str]) -> None:
    """Each key is sealed to in its own suite, so only the suite check can refuse."""
    keys = [getattr(keyset, name) for name in rcpt]
    created = datetime.now(UTC)
    header = {"v": version, "id": "5b0c7d1e-2f3a-4b5c-8d6e-7f8a9b0c1d2e", "device": "dev-0001",
              "created": stamp(created), "rcpt": [keyset.kid(k) for k in keys], "airline": "ZZ",
              "flight": "ZZ101", "dep": "LOS", "arr": "LHR", "sta": stamp(created + timedelta(hours=3)),
              "urgency": "priority"}
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    info = envelope.hpke_info(header_bytes, version)
    plaintext = json.dumps(valid_body()).encode()
    protected = envelope.b64u_encode(header_bytes)
    sealed = [envelope.b64u_encode(envelope.seal(plaintext, k.public_key(), info)) for k in keys]
    sig = envelope.sign_raw(keyset.device, envelope.signing_input(protected, sealed))
    resp = client.post("/api/v1/reports", json={"protected": protected, "sealed": sealed,
                                                "signature": envelope.b64u_encode(sig)})
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "unknown_recipient"
    assert report_count(app) == 0


def test_a_version_2_report_opens_for_officers_nrm_and_csv(client: FlaskClient, app: Flask, make_envelope: Make,
                                                          auth: AuthActions) -> None:
    v1 = deliver(client, make_envelope, v=1, flight="ZZ1")
    v2 = deliver(client, make_envelope, v=2, flight="ZZ2", body=valid_body(narrative="Sealed with X-Wing: Zoë in 32B."))
    auth.login("officer")
    page = client.get(f"/triage/reports/{v2}").get_data(as_text=True)
    assert "Sealed with X-Wing: Zoë in 32B." in page and "Quiet girl in a grey hoodie" in page
    assert "Man in 32C holds both passports" in client.get(f"/triage/reports/{v1}").get_data(as_text=True)
    nrm = client.get(f"/triage/reports/{v2}/nrm").get_data(as_text=True)
    assert 'data-nrm-subject="child"' in nrm and "Sealed with X-Wing" in nrm
    # Notes and reasons on a version 2 report are sealed and shown like any other.
    client.post(f"/triage/reports/{v2}/notes", data={"text": "NOTE-ON-V2"})
    client.post(f"/triage/reports/{v2}/status", data={"status": "assessing", "reason": "REASON-ON-V2"})
    page = client.get(f"/triage/reports/{v2}").get_data(as_text=True)
    assert "NOTE-ON-V2" in page and "REASON-ON-V2" in page
    assert b"NOTE-ON-V2" not in store_bytes(app) and b"X-Wing: Zo" not in store_bytes(app)
    rows = list(csv.reader(io.StringIO(client.get("/triage/export.csv?status=any").get_data(as_text=True))))
    assert sorted(r[1] for r in rows[1:]) == sorted([v1, v2])


def test_a_version_2_report_opens_for_its_airline(client: FlaskClient, app: Flask, make_envelope: Make,
                                                 keyset: KeySet, auth: AuthActions) -> None:
    shared = deliver(client, make_envelope, v=2)
    not_sealed_to_them = deliver(client, make_envelope, v=2, recipients=[keyset.border_force_v2])
    auth.login("security")
    assert "holds both passports" in client.get(f"/review/reports/{shared}").get_data(as_text=True)
    page = client.get(f"/review/reports/{not_sealed_to_them}").get_data(as_text=True)
    assert "not sealed to your airline" in page and "passports" not in page


def test_a_version_2_report_opens_after_its_keys_are_rotated(client: FlaskClient, app: Flask, make_envelope: Make,
                                                            runner: FlaskCliRunner, auth: AuthActions) -> None:
    rid = deliver(client, make_envelope, v=2)
    for owner in ("border_force", "airline:ZZ"):
        assert runner.invoke(args=["rotate-key", owner, "--suite", "v2"]).exit_code == 0
    auth.login("officer")
    assert "holds both passports" in client.get(f"/triage/reports/{rid}").get_data(as_text=True)
    auth.logout()
    auth.login("security")
    assert "holds both passports" in client.get(f"/review/reports/{rid}").get_data(as_text=True)


def test_retention_purges_version_2_reports_like_any_other(client: FlaskClient, app: Flask, make_envelope: Make,
                                                           runner: FlaskCliRunner) -> None:
    old = deliver(client, make_envelope, v=2)
    kept = deliver(client, make_envelope, v=2)
    with app.app_context():
        db = get_db()
        sealed = json.loads(db.execute("SELECT envelope FROM report WHERE id = ?", (old,)).fetchone()[0])["sealed"][0]
        with transaction(db):
            db.execute("UPDATE report SET status = 'referred', closed_at = '2020-01-01T00:00:00Z' WHERE id = ?", (old,))
    result = runner.invoke(args=["purge"])
    assert result.exit_code == 0 and "Purged 1 report" in result.output
    with app.app_context():
        assert [r[0] for r in get_db().execute("SELECT id FROM report")] == [kept]
    assert sealed[:80].encode() not in store_bytes(app)


def test_v1_keys_retired_from_publication_still_open_what_tablets_seal_to_them(
        client: FlaskClient, app: Flask, make_envelope: Make, auth: AuthActions) -> None:
    """Once every tablet seals version 2, the v1 keys stop being published;
    a tablet that cached them before (or a note queued days earlier) is still
    received and opens for officers."""
    queued_earlier = make_envelope(v=1)
    app.config["PUBLISH_V1_KEYS"] = False
    published = client.get("/api/v1/keys").get_json()
    assert {r["suite"] for r in published["recipients"]} == {"v2"}
    assert published["receipt_key"]["kid"]  # the receipt key is not a recipient key: still there
    auth.login("crew")
    jwk = envelope.jwk_from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    answer = client.post("/api/v1/devices", json={"public_key": jwk, "label": "new"}).get_json()
    assert [(r["owner"], r["suite"]) for r in answer["recipients"]] == [("border_force", "v2"), ("airline:ZZ", "v2")]
    auth.logout()
    rid = deliver_as_is(client, queued_earlier)
    auth.login("officer")
    assert "holds both passports" in client.get(f"/triage/reports/{rid}").get_data(as_text=True)


@pytest.mark.parametrize("ch", ["\x01", "\U0001F600"])
def test_the_largest_report_the_schema_allows_fits_version_2(client: FlaskClient, app: Flask, make_envelope: Make,
                                                             ch: str) -> None:
    """Version 2 adds 1055 bytes of encapsulation per copy: the size limit
    still covers every report the schema allows."""
    body = largest_body(ch)
    env = make_envelope(body=body, v=2)
    assert len(json.dumps(env, separators=(",", ":"))) <= app.config["MAX_ENVELOPE_BYTES"]
    assert client.post("/api/v1/reports", json=env).status_code == 201
