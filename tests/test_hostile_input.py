"""Requests built to be read two ways or to exhaust the server: a field named
twice in the signed header, in the report body or in the request, and a body
too large for its limit sent without Content-Length (chunked)."""
from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import envelope
from tests.helpers import KeySet, valid_body

Make = Callable[..., dict[str, Any]]


def sealed_as(keyset: KeySet, header_bytes: bytes, plaintext: bytes) -> dict[str, Any]:
    """An envelope over these exact header and body bytes, sealed to Border
    Force and airline ZZ and signed by the enrolled test device."""
    info = envelope.hpke_info(header_bytes)
    protected = envelope.b64u_encode(header_bytes)
    sealed = [envelope.b64u_encode(envelope.SUITE.encrypt(plaintext, k.public_key(), info=info))
              for k in (keyset.border_force, keyset.airline_zz)]
    signature = envelope.sign_raw(keyset.device, envelope.signing_input(protected, sealed))
    return {"protected": protected, "sealed": sealed, "signature": envelope.b64u_encode(signature)}


def parts(env: dict[str, Any]) -> tuple[bytes, bytes]:
    header = envelope.b64u_decode(env["protected"])
    return header, json.dumps(valid_body(), separators=(",", ":")).encode()


def report_count(app: Flask) -> int:
    from crewreport.db import get_db

    with app.app_context():
        return int(get_db().execute("SELECT COUNT(*) FROM report").fetchone()[0])


def test_a_header_field_named_twice_is_malformed(client: FlaskClient, app: Flask,
                                                 make_envelope: Make, keyset: KeySet) -> None:
    """Which copy wins differs between parsers; the signed header must read one way only."""
    header, body = parts(make_envelope())
    assert header.endswith(b'"urgency":"priority"}')
    twice = header[:-1] + b',"urgency":"routine"}'
    resp = client.post("/api/v1/reports", json=sealed_as(keyset, twice, body))
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "malformed"
    assert "twice" in resp.get_json()["error"]["message"]
    # The same bytes without the second copy are accepted: the refusal is for the duplicate.
    assert client.post("/api/v1/reports", json=sealed_as(keyset, header, body)).status_code == 201
    assert report_count(app) == 1


def test_a_body_field_named_twice_is_an_invalid_report(client: FlaskClient, app: Flask,
                                                       make_envelope: Make, keyset: KeySet) -> None:
    header, body = parts(make_envelope())
    twice = body[:-1] + b',"narrative":"Something else entirely."}'
    resp = client.post("/api/v1/reports", json=sealed_as(keyset, header, twice))
    assert resp.status_code == 422 and resp.get_json()["error"]["code"] == "invalid_report"
    assert report_count(app) == 0


@pytest.mark.parametrize("path", ["/api/v1/reports", "/api/v1/reports/batch"])
def test_a_request_field_named_twice_is_malformed(client: FlaskClient, make_envelope: Make, path: str) -> None:
    env = make_envelope()
    inner = json.dumps(env)
    raw = inner[:-1] + ', "signature": "AAAA"}'
    if path.endswith("batch"):
        raw = '{"envelopes": [' + inner + '], "envelopes": []}'
    resp = client.post(path, data=raw, content_type="application/json")
    assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "malformed"


@pytest.mark.parametrize("path", ["/api/v1/reports", "/api/v1/reports/batch"])
def test_an_oversized_chunked_body_is_too_large(client: FlaskClient, app: Flask, path: str) -> None:
    """No Content-Length (a server that de-chunks says so with
    wsgi.input_terminated): the body is cut at the limit, and answered 413."""
    limit = app.config["MAX_CONTENT_LENGTH"]
    data = b'{"envelopes": [' + b" " * (limit + 1024 * 1024) + b"]}"
    resp = client.post(path, input_stream=io.BytesIO(data), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "too_large"


def test_a_small_chunked_body_is_read(client: FlaskClient, make_envelope: Make) -> None:
    """Chunked bodies under the limit are served as any other."""
    data = json.dumps(make_envelope()).encode()
    resp = client.post("/api/v1/reports", input_stream=io.BytesIO(data), content_type="application/json",
                       headers={"Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.status_code == 201, resp.get_json()
