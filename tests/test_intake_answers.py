"""What the intake says and records, to the letter: each refusal's words (the
crew app shows them, and a tablet's user acts on them), the receipt's fields
(DESIGN.md section 4) and the audit rows of an accepted, a conflicting and a
refused report. test_intake.py checks the same paths by code; a mutation run
on intake.py showed the words, the receipt's field names and the audit rows'
actor, subject and detail went unchecked."""
from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope

from .helpers import DEVICE_ID, KeySet, events, hand_sealed, hand_signed, header_of, valid_body

Make = Callable[..., dict[str, Any]]
REFRESH = "refresh the tablet's keys."


def refused(client: FlaskClient, env: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code >= 400
    return dict(resp.get_json()["error"])


def detail(event: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(event["detail"]))


def test_a_receipt_carries_exactly_the_fields_of_the_contract(client: FlaskClient, app: Flask,
                                                               make_envelope: Make, keyset: KeySet) -> None:
    env = make_envelope()
    answer = client.post("/api/v1/reports", json=env).get_json()
    receipt = envelope.verify_receipt(answer, keyset.receipt.public_key())
    assert sorted(receipt) == ["envelope_sha256", "id", "received_at", "reference"]
    assert receipt["id"] == header_of(env)["id"]
    assert receipt["envelope_sha256"] == envelope.envelope_sha256(env)
    assert re.fullmatch(r"[3469ACDEFGHJKMNPQRTUVWXY]{3}-[3469ACDEFGHJKMNPQRTUVWXY]{3}", receipt["reference"])
    # The audit row of the receipt: who sent which report, and its reference.
    [event] = events(app, "report_received", f"report:{receipt['id']}")
    assert event["actor"] == f"device:{DEVICE_ID}" and detail(event) == {"reference": receipt["reference"]}


def test_a_conflict_is_answered_in_words_and_audited(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    first = make_envelope()
    report_id = header_of(first)["id"]
    assert client.post("/api/v1/reports", json=first).status_code == 201
    other = make_envelope(id=report_id, body=valid_body(narrative="Another story under the same id."))
    assert refused(client, other) == {"code": "conflict",
                                      "message": "A different report with this id was already received."}
    [event] = events(app, "intake_rejected", f"report:{report_id}")
    assert event["actor"] == f"device:{DEVICE_ID}" and detail(event) == {"code": "conflict"}


def test_a_signed_refusal_is_audited_with_its_code_and_size(client: FlaskClient, app: Flask,
                                                            make_envelope: Make) -> None:
    env = make_envelope(body=valid_body(narrative=" "))
    resp = client.post("/api/v1/reports", json=env)
    assert resp.status_code == 422
    [event] = events(app, "intake_rejected")
    assert event["actor"] == f"device:{DEVICE_ID}" and event["subject"] is None
    assert detail(event) == {"code": "invalid_report", "size": len(json.dumps(env).encode())}


def mixed_suites(env: dict[str, Any], keyset: KeySet) -> dict[str, Any]:
    """`env` (version 2) re-signed with its airline recipient named by the
    airline's version 1 key: the suite check refuses it before any opening."""
    header = header_of(env)
    header["rcpt"][1] = keyset.kid(keyset.airline_zz)
    return hand_signed(keyset, header, [envelope.b64u_decode(s) for s in env["sealed"]])


def test_refusals_say_what_to_do(client: FlaskClient, app: Flask, runner: Any, make_envelope: Make,
                                 keyset: KeySet) -> None:
    limit = app.config["MAX_ENVELOPE_BYTES"]
    big = make_envelope()
    big["sealed"][0] = "A" * (limit + 10)
    cases = [
        (big, "too_large", f"An envelope may be at most {limit // 1024} KiB."),
        (make_envelope(device="dev-nobody"), "unknown_device",
         "This device is not enrolled. Sign in on the ground to enroll it."),
        (make_envelope(recipients=[keyset.airline_zz, keyset.border_force]), "unknown_recipient",
         f"The first recipient must be the Border Force key; {REFRESH}"),
        (make_envelope(recipients=[keyset.border_force, keyset.airline_yy]), "unknown_recipient",
         "A recipient key is not one of this airline's keys."),
        (mixed_suites(make_envelope(v=2), keyset), "unknown_recipient",
         f"A version 2 envelope must be sealed to version 2 keys only; {REFRESH}"),
    ]
    for env, code, message in cases:
        assert refused(client, env) == {"code": code, "message": message}
    assert runner.invoke(args=["revoke-device", DEVICE_ID]).exit_code == 0
    assert refused(client, make_envelope()) == {
        "code": "revoked_device",
        "message": "This device was revoked by the airline. Tell the captain or call the 24-hour line."}


@pytest.mark.parametrize("version", [1, 2])
def test_an_airline_copy_that_differs_is_refused_in_words(client: FlaskClient, make_envelope: Make,
                                                          keyset: KeySet, version: int) -> None:
    header = header_of(make_envelope(v=version))
    border_force, airline = keyset.recipients(version)
    copies = [(border_force, valid_body()), (airline, valid_body(narrative="Another story for the airline."))]
    env = hand_signed(keyset, header, hand_sealed(header, [(key, json.dumps(body).encode()) for key, body in copies]))
    assert refused(client, env) == {"code": "invalid_report",
                                    "message": "The airline's copy of the report differs from Border Force's."}


def test_a_single_envelope_is_measured_as_sent(client: FlaskClient, app: Flask, make_envelope: Make) -> None:
    """One envelope a request is held to MAX_ENVELOPE_BYTES by the request's
    own length (a batch's by each envelope's compact JSON)."""
    sent = json.dumps(make_envelope(), indent=2).encode()
    app.config["MAX_ENVELOPE_BYTES"] = len(sent) - 1
    resp = client.post("/api/v1/reports", data=sent, content_type="application/json")
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"
    app.config["MAX_ENVELOPE_BYTES"] = len(sent)
    assert client.post("/api/v1/reports", data=sent, content_type="application/json").status_code == 201


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_single_envelope_is_measured_before_it_is_parsed(client: FlaskClient, chunked: bool) -> None:
    """Size is check 1 of docs/protocol.md, before structure: 400 KiB that
    is not JSON is `too_large`, by its Content-Length or, chunked, as read."""
    data = b"x" * (400 * 1024)
    if chunked:
        resp = client.post("/api/v1/reports", input_stream=io.BytesIO(data), content_type="application/json",
                           headers={"Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    else:
        resp = client.post("/api/v1/reports", data=data, content_type="application/json")
    assert (resp.status_code, resp.get_json()["error"]["code"]) == (413, "too_large")
