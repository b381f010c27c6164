"""The API description at /api/v1/openapi.json matches the implementation:
Schemathesis generates requests from it (a bounded, derandomized number per
operation) and every answer must be a documented status, content type and
schema, and never a 5xx."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from crewreport import envelope
from tests.helpers import KeySet, header_of, valid_body

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance, checks.response_headers_conformance]


DOCUMENT = json.loads((Path(__file__).resolve().parent.parent / "crewreport" / "openapi.json").read_text())
Make = Callable[..., dict[str, Any]]
OPERATIONS = [(path, method.upper()) for path, ops in DOCUMENT["paths"].items() for method in ops]


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_api_matches_its_description(app: Flask, path: str, method: str) -> None:
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=25, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def each(case: Any) -> None:
        case.call_and_validate(checks=CHECKS)

    each()


def test_the_document_is_openapi_3_1_and_lists_every_api_route(app: Flask) -> None:
    document = app.test_client().get("/api/v1/openapi.json").get_json()
    assert document["openapi"] == "3.1.0"
    documented = {(path, method.upper()) for path, ops in document["paths"].items() for method in ops}
    routes = {(rule.rule.replace("<device_id>", "{device_id}"), method) for rule in app.url_map.iter_rules()
              if rule.rule.startswith("/api/v1/") for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}}
    assert routes == documented


def documented(app: Flask, path: str, method: str, resp: Any) -> Any:
    """`resp` is a status the document lists for this operation, and its body
    and headers match what the document says; its JSON is returned."""
    statuses = DOCUMENT["paths"][path][method.lower()]["responses"]
    assert str(resp.status_code) in statuses, (path, method, resp.status_code, resp.get_data(as_text=True))
    operation = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)[path][method]
    operation.validate_response(resp)
    answer = resp.get_json()
    if resp.status_code >= 400:
        code = answer["error"]["code"]
        spec = json.dumps(statuses[str(resp.status_code)])
        assert f'"{code}"' in spec or code in json.dumps(DOCUMENT["components"]["responses"]), (code, spec)
    return answer


def test_every_intake_outcome_is_documented(app: Flask, client: FlaskClient, runner: Any,
                                            make_envelope: Make, keyset: KeySet) -> None:
    """Real envelopes for each outcome of the intake: receipts, repeats and
    each error code, in the shape and with the status the document gives."""
    post = "/api/v1/reports", "POST"
    env = make_envelope()
    assert documented(app, *post, client.post(post[0], json=env)) is not None
    documented(app, *post, client.post(post[0], json=env))  # 200, the same receipt
    header = header_of(env)
    cases = {
        409: make_envelope(id=header["id"]),
        400: make_envelope(v=99),
        401: make_envelope(device="dev-unknown"),
        422: make_envelope(body=valid_body(narrative="")),
    }
    for status, bad in cases.items():
        resp = client.post(post[0], json=bad)
        assert resp.status_code == status
        documented(app, *post, resp)
    assert documented(app, *post, client.post(post[0], json={"protected": 1}))["error"]["code"] == "malformed"
    batch = "/api/v1/reports/batch", "POST"
    results = documented(app, *batch, client.post(batch[0], json={"envelopes": [make_envelope(), cases[401]]}))
    assert "receipt" in results["results"][0] and results["results"][1]["error"]["code"] == "unknown_device"
    documented(app, *batch, client.post(batch[0], json={"envelopes": [env] * 101}))  # 413
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 0
    limited = client.post(post[0], json=make_envelope())
    assert limited.status_code == 429 and limited.headers["Retry-After"].isdigit()
    documented(app, *post, limited)
    documented(app, *batch, client.post(batch[0], json={"envelopes": []}))
    app.config["RATELIMIT_INTAKE_PER_ADDRESS"] = 1200
    assert runner.invoke(args=["revoke-device", header["device"]]).exit_code == 0
    assert documented(app, *post, client.post(post[0], json=make_envelope()))["error"]["code"] == "revoked_device"


def test_every_enrollment_outcome_is_documented(app: Flask, client: FlaskClient, auth: Any) -> None:
    devices = "/api/v1/devices", "POST"
    jwk = envelope.jwk_from_public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
    documented(app, *devices, client.post(devices[0], json={"public_key": jwk}))  # 401
    auth.login("officer")
    documented(app, *devices, client.post(devices[0], json={"public_key": jwk}))  # 403
    auth.logout()
    auth.login("crew")
    first = documented(app, *devices, client.post(devices[0], json={"public_key": jwk, "label": "t"}))
    documented(app, *devices, client.post(devices[0], json={"public_key": jwk}))  # 200
    documented(app, *devices, client.post(devices[0], json={"public_key": {"kty": "EC"}}))  # 400
    state = "/api/v1/devices/{device_id}", "GET"
    assert documented(app, *state, client.get(f"/api/v1/devices/{first['device_id']}"))["state"] == "active"
    documented(app, *state, client.get("/api/v1/devices/dev-nobody"))  # 404
    app.config["RATELIMIT_ENROLL_PER_USER"] = 0
    app.config["RATELIMIT_DEVICE_STATE_PER_ADDRESS"] = 0
    for path, method, resp in ((*devices, client.post(devices[0], json={"public_key": jwk})),
                               (*state, client.get(f"/api/v1/devices/{first['device_id']}"))):
        assert resp.status_code == 429, (path, resp.get_json())
        assert documented(app, path, method, resp)["error"]["code"] == "rate_limited"
    documented(app, "/api/v1/keys", "GET", client.get("/api/v1/keys"))
