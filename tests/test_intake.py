"""The intake over the Flask test client: every error code, idempotency,
batches, receipts (DESIGN.md sections 3 and 4)."""
from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope
from crewreport.db import get_db

from .helpers import VECTORS, KeySet, Make, hand_sealed, hand_signed, header_of, largest_body, store_bytes, valid_body

CASES = {c["name"]: c for c in VECTORS["cases"]}


def post(client: FlaskClient, env: Any) -> Any:
    return client.post("/api/v1/reports", json=env)


def report_count(app: Flask) -> int:
    with app.app_context():
        return get_db().execute("SELECT count(*) FROM report").fetchone()[0]


def verify(answer: dict[str, Any], keyset: KeySet) -> dict[str, Any]:
    return envelope.verify_receipt(answer, keyset.receipt.public_key())


@pytest.mark.parametrize("name", sorted(CASES))
def test_vectors_through_the_intake(client: FlaskClient, app: Flask, keyset: KeySet, name: str,
                                    vector_clock: None) -> None:
    case = CASES[name]
    resp = post(client, case["envelope"])
    if case["expect"] == "ok":
        assert resp.status_code == 201
        receipt = verify(resp.get_json(), keyset)
        assert receipt["id"] == case["header"]["id"]
        assert receipt["envelope_sha256"] == envelope.envelope_sha256(case["envelope"])
        assert report_count(app) == 1
    else:
        body = resp.get_json()
        assert body["error"]["code"] == case["expect"]
        assert body["error"]["message"]
        assert 400 <= resp.status_code < 500
        assert report_count(app) == 0


def test_stored_envelope_is_as_received_and_has_no_plaintext(client: FlaskClient, app: Flask,
                                                             make_envelope: Make) -> None:
    env = make_envelope()
    assert post(client, env).status_code == 201
    with app.app_context():
        row = get_db().execute("SELECT * FROM report").fetchone()
    assert json.loads(row["envelope"]) == env
    assert (row["flight"], row["arr"], row["urgency"], row["airline"]) == ("ZZ101", "LHR", "priority", "ZZ")
    raw = store_bytes(app)
    assert b"passports" not in raw and b"grey hoodie" not in raw


def test_identical_repeat_gets_the_same_receipt(client: FlaskClient, app: Flask, make_envelope: Make,
                                                keyset: KeySet) -> None:
    env = make_envelope()
    first = post(client, env)
    second = post(client, env)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json() == second.get_json()
    assert report_count(app) == 1


def test_same_id_other_content_is_a_conflict(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    env = make_envelope()
    assert post(client, env).status_code == 201
    header = header_of(env)
    other = make_envelope(body=valid_body(narrative="Something else."), id=header["id"])
    resp = post(client, other)
    assert resp.status_code == 409
    assert resp.get_json()["error"]["code"] == "conflict"
    assert report_count(app) == 1
    with app.app_context():
        stored = get_db().execute("SELECT envelope FROM report").fetchone()[0]
    assert json.loads(stored) == env


def test_concurrent_identical_submissions_store_one_row(app: Flask, make_envelope: Make) -> None:
    env = make_envelope()
    barrier = threading.Barrier(6)
    results: list[tuple[int, Any]] = []

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        resp = post(client, env)
        results.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = sorted(s for s, _ in results)
    assert statuses == [200] * 5 + [201]
    assert len({json.dumps(b, sort_keys=True) for _, b in results}) == 1
    assert report_count(app) == 1


def test_batch_mixed_results_in_order(client: FlaskClient, app: Flask, make_envelope: Make, keyset: KeySet) -> None:
    good1, good2 = make_envelope(), make_envelope(urgency="immediate")
    envs = [good1, CASES["tampered_header"]["envelope"], {"nonsense": True}, good2, good1,
            make_envelope(flight="not a flight")]
    resp = client.post("/api/v1/reports/batch", json={"envelopes": envs})
    assert resp.status_code == 200
    results = resp.get_json()["results"]
    assert len(results) == len(envs)
    r1, r4, r5 = verify(results[0], keyset), verify(results[3], keyset), verify(results[4], keyset)
    assert r1["id"] != r4["id"] and r5 == r1
    assert [r.get("error", {}).get("code") for r in results] == [None, "bad_signature", "malformed", None, None,
                                                                 "invalid_report"]
    assert report_count(app) == 2


def test_batch_limits(client: FlaskClient, app: Flask) -> None:
    resp = client.post("/api/v1/reports/batch", json={"envelopes": [{}] * 101})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"
    body: Any
    for body in ({"envelopes": {}}, {"envelope": []}, [], "x"):
        resp = client.post("/api/v1/reports/batch", json=body)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "malformed"
    assert report_count(app) == 0


def test_receipt_reference_is_short_and_readable(client: FlaskClient, make_envelope: Make, keyset: KeySet) -> None:
    receipt = verify(post(client, make_envelope()).get_json(), keyset)
    ref = receipt["reference"]
    assert len(ref) == 7 and ref[3] == "-"
    assert not set(ref) & set("01OILSZB258")


@pytest.mark.parametrize(("data", "content_type"), [
    (b"not json", "application/json"),
    (b'{"protected": "AA"', "application/json"),
    (b"{}", "text/plain"),
    (b"", "application/json"),
])
def test_not_json_is_malformed(client: FlaskClient, app: Flask, data: bytes, content_type: str) -> None:
    resp = client.post("/api/v1/reports", data=data, content_type=content_type)
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "malformed"
    assert report_count(app) == 0


def test_too_large(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    env = make_envelope()
    env["sealed"][0] = "A" * (app.config["MAX_ENVELOPE_BYTES"] + 10)
    resp = post(client, env)
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"
    huge = b'{"x": "' + b"A" * (app.config["MAX_CONTENT_LENGTH"] + 10) + b'"}'
    resp = client.post("/api/v1/reports/batch", data=huge, content_type="application/json")
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"
    assert report_count(app) == 0


def test_unknown_device(client: FlaskClient, make_envelope: Make) -> None:
    resp = post(client, make_envelope(device="dev-nobody"))
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "unknown_device"


def test_revoked_device(client: FlaskClient, app: Flask, runner: Any, make_envelope: Make) -> None:
    result = runner.invoke(args=["revoke-device", "dev-0001"])
    assert result.exit_code == 0, result.output
    resp = post(client, make_envelope())
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "revoked_device"
    assert report_count(app) == 0


def test_wrong_device_key_is_bad_signature(client: FlaskClient, make_envelope: Make, keyset: KeySet) -> None:
    resp = post(client, make_envelope(device_key=keyset.device_yy))
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "bad_signature"


def test_signature_wrong_length(client: FlaskClient, make_envelope: Make) -> None:
    env = make_envelope()
    env["signature"] = envelope.b64u_encode(envelope.b64u_decode(env["signature"]) + b"\0")
    resp = post(client, env)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "bad_signature"


def test_recipients(client: FlaskClient, make_envelope: Make, keyset: KeySet) -> None:
    # First recipient not Border Force.
    resp = post(client, make_envelope(recipients=[keyset.airline_zz, keyset.border_force]))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "unknown_recipient"
    # Another airline's key.
    resp = post(client, make_envelope(recipients=[keyset.border_force, keyset.airline_yy]))
    assert resp.get_json()["error"]["code"] == "unknown_recipient"
    # Border Force alone is fine.
    assert post(client, make_envelope(recipients=[keyset.border_force])).status_code == 201


def test_airline_not_the_devices(client: FlaskClient, make_envelope: Make, keyset: KeySet) -> None:
    resp = post(client, make_envelope(airline="YY"))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_report"


@pytest.mark.parametrize("changes", [
    {"flight": "BA"}, {"flight": "ba75"}, {"dep": "LH"}, {"arr": "lhr"}, {"dep": "LHR", "arr": "LHR"},
    {"sta": "2026-12-01 14:35"}, {"sta": "2099-01-01T00:00:00Z"}, {"created": "yesterday"},
    {"urgency": "urgent"}, {"id": "not-a-uuid"}, {"id": "3F0B6A1E-5C7D-4E8F-9A0B-1C2D3E4F5A6B"},
    {"id": "3f0b6a1e-5c7d-1e8f-9a0b-1c2d3e4f5a6b"},
])
def test_header_values_out_of_form(client: FlaskClient, app: Flask, make_envelope: Make, changes: dict[str,
                                                                                                       str]) -> None:
    resp = post(client, make_envelope(**changes))
    assert resp.status_code == 422, changes
    assert resp.get_json()["error"]["code"] == "invalid_report"
    assert report_count(app) == 0


@pytest.mark.parametrize("changes", [
    {"narrative": ""}, {"narrative": "   "}, {"narrative": "x" * 5001}, {"narrative": 5},
    {"indicators": ["nationality"]}, {"indicators": "docs_held_by_other"},
    {"indicators": ["docs_held_by_other", "docs_held_by_other"]},
    {"people": [{"role": "victim"}]}, {"people": [{"seat": "32B"}]},
    {"people": [{"role": "other", "seat": "row 32"}]}, {"people": [{"role": "other", "nationality": "X"}]},
    {"people": [{"role": "other", "description": "d" * 501}]}, {"people": [{"role": "other"}] * 21},
    {"captain_informed": "yes"}, {"reporter": {}}, {"reporter": {"crew_id": "C1", "phone": "1"}},
    {"observed_at": "10:58"}, {"share_identity_with_airline": 1}, {"languages": ["en"] * 11},
    {"documents_held_by": "passport"}, {"phase_of_flight": "landing"}, {"passenger_name": "X"},
    {"child_involved": "yes"}, {"child_involved": 1},
])
def test_body_outside_schema(client: FlaskClient, app: Flask, make_envelope: Make, changes: dict[str, Any]) -> None:
    resp = post(client, make_envelope(body=valid_body(**changes)))
    assert resp.status_code == 422, changes
    assert resp.get_json()["error"]["code"] == "invalid_report"
    assert report_count(app) == 0


def test_full_body_with_every_optional_field(client: FlaskClient, make_envelope: Make) -> None:
    body = valid_body(languages=["Yoruba", "English"], documents_held_by="companion",
                      phase_of_flight="cruise", share_identity_with_airline=True, child_involved=True,
                      reporter={"crew_id": "C1234", "name": "A. Crew"},
                      people=[{"role": "possible_victim", "seat": "32B", "sex": "female",
                               "age_range": "12_17", "description": "grey hoodie"},
                              {"role": "possible_trafficker", "seat": "32C"}])
    assert post(client, make_envelope(body=body)).status_code == 201


def test_missing_keys_answer_503_without_storing(client: FlaskClient, app: Flask, make_envelope: Make,
                                                 caplog: Any) -> None:
    import os
    for name in os.listdir(app.config["KEY_DIR"]):
        os.rename(os.path.join(app.config["KEY_DIR"], name), os.path.join(app.config["KEY_DIR"], name + ".moved"))
    app.extensions.pop("crewreport.keyring", None)
    resp = post(client, make_envelope())
    assert resp.status_code == 503
    assert resp.get_json()["error"] == {
        "code": "service_unavailable",
        "message": "The service's keys are not available; nothing was accepted. Try again later."}
    said = [r.getMessage() for r in caplog.records if r.name == "crewreport.api"]
    assert len(said) == 1 and said[0].startswith("intake refused: ") and "missing" in said[0]  # the operator reads why
    assert report_count(app) == 0


def test_rejections_are_audited_without_payload(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    env = make_envelope(body=valid_body(narrative="secret words here", indicators=["bogus"]))
    assert post(client, env).status_code == 422
    with app.app_context():
        rows = get_db().execute("SELECT * FROM audit_event WHERE action = 'intake_rejected'").fetchall()
    assert len(rows) == 1
    detail = json.loads(rows[0]["detail"])
    assert detail["code"] == "invalid_report"
    assert "secret" not in rows[0]["detail"] and env["sealed"][0][:20] not in rows[0]["detail"]


def test_rate_limited(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 3
    codes = [post(client, make_envelope()).status_code for _ in range(5)]
    assert codes[:3] == [201, 201, 201]
    assert codes[3:] == [429, 429]
    assert post(client, make_envelope()).get_json()["error"]["code"] == "rate_limited"
    assert report_count(app) == 3


def test_airline_copy_must_match_border_force_copy(client: FlaskClient, app: Flask, make_envelope: Make,
                                                   keyset: KeySet) -> None:
    """The airline reads its own copy: a device must not tell it another story."""
    header = header_of(make_envelope())
    real = json.dumps(valid_body()).encode()
    other = json.dumps(valid_body(narrative="A different story.", share_identity_with_airline=True)).encode()

    def sent(*copies: tuple[envelope.RecipientPrivateKey, bytes]) -> Any:
        return post(client, hand_signed(keyset, header, hand_sealed(header, list(copies))))

    resp = sent((keyset.border_force, real), (keyset.airline_zz, other))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_report"
    # A copy sealed to another key than the airline's, which the header names.
    assert header["rcpt"][1] == keyset.kid(keyset.airline_zz)
    # It does not open: the same answer (api.md keeps `undecryptable` for Border
    # Force's copy), whatever else the header says (the copies are checked last).
    resp = sent((keyset.border_force, real), (keyset.airline_yy, real))
    assert resp.status_code == 422 and resp.get_json()["error"] == {
        "code": "invalid_report", "message": "The airline's copy of the report differs from Border Force's."}
    flight, header["flight"] = header["flight"], "nonsense"
    resp = sent((keyset.border_force, real), (keyset.airline_yy, real))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_report"
    header["flight"] = flight
    assert report_count(app) == 0
    # The same plaintext to both is accepted.
    assert sent((keyset.border_force, real), (keyset.airline_zz, real)).status_code == 201


def test_repeat_after_revocation_still_gets_its_receipt(client: FlaskClient, app: Flask, runner: Any,
                                                        make_envelope: Make) -> None:
    """The first answer may have been lost; the tablet must not mark a
    delivered report rejected because the airline revoked it since."""
    env = make_envelope()
    first = post(client, env)
    assert first.status_code == 201
    assert runner.invoke(args=["revoke-device", "dev-0001"]).exit_code == 0
    again = post(client, env)
    assert again.status_code == 200 and again.get_json() == first.get_json()
    fresh = post(client, make_envelope())
    assert fresh.status_code == 403 and fresh.get_json()["error"]["code"] == "revoked_device"
    assert report_count(app) == 1


def test_unsigned_junk_leaves_no_audit_rows(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    with app.app_context():
        before = get_db().execute("SELECT count(*) FROM audit_event").fetchone()[0]
    junk = [{"nonsense": i} for i in range(20)] + [make_envelope(device="dev-nobody")]
    assert client.post("/api/v1/reports/batch", json={"envelopes": junk}).status_code == 200
    with app.app_context():
        after = get_db().execute("SELECT count(*) FROM audit_event").fetchone()[0]
    assert after == before


@pytest.mark.parametrize("ch", ["\x01", "\U0001F600", "é"])
def test_the_largest_report_the_schema_allows_is_accepted(client: FlaskClient, app: Flask, make_envelope: Make,
                                                          ch: str) -> None:
    """Every field at its limit, in characters that cost the most bytes: the
    size limit must never refuse a report the schema allows."""
    body = largest_body(ch)
    env = make_envelope(body=body)
    assert len(json.dumps(env, separators=(",", ":"))) <= app.config["MAX_ENVELOPE_BYTES"]
    assert post(client, env).status_code == 201
    assert client.post("/api/v1/reports/batch", json={"envelopes": [env] * 3}).status_code == 200


def test_references_are_six_letters_of_the_radio_alphabet_every_letter_in_every_place() -> None:
    """Easy to read over a radio (no 0/O, 1/I/L, 5/S, 2/Z, 8/B), and drawn
    uniformly: each of the 24 letters turns up in each of the six places."""
    from crewreport.intake import REFERENCE_ALPHABET, new_reference

    pattern = re.compile(f"[{REFERENCE_ALPHABET}]{{3}}-[{REFERENCE_ALPHABET}]{{3}}")
    drawn = [new_reference() for _ in range(2400)]
    assert all(pattern.fullmatch(r) for r in drawn)
    places = [{r.replace("-", "")[i] for r in drawn} for i in range(6)]
    assert all(seen == set(REFERENCE_ALPHABET) for seen in places)
    assert len(set(drawn)) > 2390  # 24**6 of them: repeats are rare


def test_an_envelope_in_a_batch_is_measured_as_compact_json(client: FlaskClient, app: Flask,
                                                           make_envelope: Make) -> None:
    """Each envelope of a batch is held to MAX_ENVELOPE_BYTES on its own, by
    the length of its compact JSON: one at the limit is taken, one a byte
    over is refused `too_large` alone."""
    env, small = make_envelope(), make_envelope(body=valid_body(narrative="Short."))
    compact = len(json.dumps(env, separators=(",", ":")))
    assert len(json.dumps(small, separators=(",", ":"))) < compact
    app.config["MAX_ENVELOPE_BYTES"] = compact - 1
    results = client.post("/api/v1/reports/batch", json={"envelopes": [env, small]}).get_json()["results"]
    assert results[0]["error"]["code"] == "too_large" and "receipt" in results[1]
    app.config["MAX_ENVELOPE_BYTES"] = compact
    results = client.post("/api/v1/reports/batch", json={"envelopes": [env]}).get_json()["results"]
    assert "receipt" in results[0]
    assert report_count(app) == 2


def test_a_reference_drawn_twice_is_drawn_again(client: FlaskClient, app: Flask, make_envelope: Make,
                                                keyset: KeySet, monkeypatch: pytest.MonkeyPatch) -> None:
    """References are UNIQUE: a draw that is already taken is drawn again and
    the receipt signed again for the new one (what the tablet shows is what
    is stored)."""
    from crewreport import intake

    taken = verify(post(client, make_envelope()).get_json(), keyset)["reference"]
    draws = iter([taken] * (intake.REFERENCE_ATTEMPTS - 1) + ["ACD-EFG"])  # the last attempt allowed wins
    monkeypatch.setattr(intake, "new_reference", lambda: next(draws))
    resp = post(client, make_envelope())
    assert resp.status_code == 201
    receipt = verify(resp.get_json(), keyset)
    assert receipt["reference"] == "ACD-EFG"
    with app.app_context():
        stored = get_db().execute("SELECT reference, receipt FROM report WHERE id = ?", (receipt["id"],)).fetchone()
    assert tuple(stored) == ("ACD-EFG", resp.get_json()["receipt"])
    assert next(draws, None) is None


def test_a_reference_that_keeps_colliding_stores_nothing(client: FlaskClient, app: Flask, make_envelope: Make,
                                                         keyset: KeySet, monkeypatch: pytest.MonkeyPatch) -> None:
    from crewreport import intake

    taken = verify(post(client, make_envelope()).get_json(), keyset)["reference"]
    drawn: list[str] = []

    def draw() -> str:
        drawn.append(taken)
        return taken

    monkeypatch.setattr(intake, "new_reference", draw)
    app.config["PROPAGATE_EXCEPTIONS"] = False
    resp = post(client, make_envelope())
    assert resp.status_code == 500 and b"receipt" not in resp.data
    assert report_count(app) == 1 and len(drawn) == intake.REFERENCE_ATTEMPTS
