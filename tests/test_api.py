"""`GET /api/v1/keys` and `POST /api/v1/devices` (DESIGN.md section 4), and a
freshly enrolled device's envelope going through the intake."""
from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import envelope
from crewreport.db import get_db
from crewreport.times import stamp

from .helpers import DEVICE_ID, VECTORS_V2, AuthActions, KeySet, Make, count, utcnow, valid_body


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rfc7638(jwk: dict[str, Any]) -> str:
    """The thumbprint computed here from the RFC's text, not via the app's helper:
    the required members in lexicographic order (EC: crv kty x y; AKP: alg kty pub)."""
    if jwk["kty"] == "AKP":
        members = '{{"alg":"{}","kty":"{}","pub":"{}"}}'.format(jwk["alg"], jwk["kty"], jwk["pub"])
    else:
        members = '{{"crv":"{}","kty":"{}","x":"{}","y":"{}"}}'.format(jwk["crv"], jwk["kty"], jwk["x"], jwk["y"])
    return b64u(hashlib.sha256(members.encode("ascii")).digest())


def has_private_member(value: Any) -> bool:
    if isinstance(value, dict):
        return "d" in value or any(has_private_member(v) for v in value.values())
    if isinstance(value, list):
        return any(has_private_member(v) for v in value)
    return False


def check_jwk(jwk: dict[str, Any]) -> None:
    assert set(jwk) == {"kty", "crv", "x", "y"}
    assert (jwk["kty"], jwk["crv"]) == ("EC", "P-256")
    envelope.public_key_from_jwk(jwk)


def check_x_wing_jwk(jwk: dict[str, Any]) -> None:
    """Section 3b: {kty AKP, alg X-Wing, pub: b64u(pk_M || pk_X)}, 1184 + 32 bytes."""
    assert set(jwk) == {"kty", "alg", "pub"}
    assert (jwk["kty"], jwk["alg"]) == ("AKP", "X-Wing")
    assert len(base64.urlsafe_b64decode(jwk["pub"] + "=" * (-len(jwk["pub"]) % 4))) == 1216
    envelope.recipient_key_from_jwk(jwk)


def test_published_keys_shape(client: FlaskClient) -> None:
    resp = client.get("/api/v1/keys")
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == {"recipients", "receipt_key"}
    # Each suite's keys, Border Force first; P-256 first, so that a crew app
    # from before version 2 (it takes the first key of each owner) finds its own.
    assert [(r["owner"], r["suite"]) for r in body["recipients"]] == [
        ("border_force", "v1"), ("airline:YY", "v1"), ("airline:ZZ", "v1"),
        ("border_force", "v2"), ("airline:YY", "v2"), ("airline:ZZ", "v2")]
    for entry in body["recipients"]:
        assert set(entry) == {"kid", "owner", "suite", "jwk"}
        (check_jwk if entry["suite"] == "v1" else check_x_wing_jwk)(entry["jwk"])
        assert entry["kid"] == rfc7638(entry["jwk"])
    assert set(body["receipt_key"]) == {"kid", "jwk"}
    check_jwk(body["receipt_key"]["jwk"])
    assert body["receipt_key"]["kid"] == rfc7638(body["receipt_key"]["jwk"])
    assert not has_private_member(body)
    assert len({r["kid"] for r in body["recipients"]} | {body["receipt_key"]["kid"]}) == 7


def test_published_keys_match_the_test_keys(client: FlaskClient, keyset: Any) -> None:
    body = client.get("/api/v1/keys").get_json()
    kids = {(r["owner"], r["suite"]): r["kid"] for r in body["recipients"]}
    assert kids["border_force", "v1"] == keyset.kid(keyset.border_force)
    assert kids["airline:ZZ", "v1"] == keyset.kid(keyset.airline_zz)
    assert kids["border_force", "v2"] == VECTORS_V2["keys"]["border_force"]["kid"]
    assert kids["airline:ZZ", "v2"] == VECTORS_V2["keys"]["airline_ZZ"]["kid"]
    assert body["receipt_key"]["kid"] == keyset.kid(keyset.receipt)


def test_rfc7638_example() -> None:
    """The thumbprint function against RFC 7638 section 3.1's layout, for EC."""
    jwk = {"kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
           "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}
    assert envelope.thumbprint(jwk) == rfc7638(jwk)
    assert envelope.thumbprint({**jwk, "kid": "ignored", "use": "sig"}) == rfc7638(jwk)


def signed_in(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    assert AuthActions(client).login(username).status_code == 302
    return client


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def enroll(client: FlaskClient, key: ec.EllipticCurvePrivateKey, label: str = "Galley tablet") -> Any:
    return client.post("/api/v1/devices",
                       json={"public_key": envelope.jwk_from_public_key(key.public_key()), "label": label})


def test_enrollment(app: Flask, keyset: Any) -> None:
    client = signed_in(app, "crew")
    key = new_key()
    resp = enroll(client, key)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert set(body) == {"device_id", "airline", "recipients", "receipt_key"}
    assert body["airline"] == "ZZ"
    assert [(r["owner"], r["suite"]) for r in body["recipients"]] == [
        ("border_force", "v1"), ("airline:ZZ", "v1"), ("border_force", "v2"), ("airline:ZZ", "v2")]
    assert [r["kid"] for r in body["recipients"]] == [
        keyset.kid(k) for k in (keyset.border_force, keyset.airline_zz, keyset.border_force_v2, keyset.airline_zz_v2)]
    assert body["receipt_key"]["kid"] == keyset.kid(keyset.receipt)
    assert not has_private_member(body)
    with app.app_context():
        row = get_db().execute("SELECT * FROM device WHERE id = ?", (body["device_id"],)).fetchone()
    assert row["airline"] == "ZZ" and row["label"] == "Galley tablet" and row["revoked_at"] is None
    assert row["kid"] == rfc7638(json.loads(row["public_jwk"]))
    # The same key again, by the same user: the same device, 200.
    again = enroll(client, key)
    assert again.status_code == 200
    assert again.get_json()["device_id"] == body["device_id"]
    # Another crew member of another airline presenting that key: refused.
    other = enroll(signed_in(app, "crew-yy"), key)
    assert other.status_code == 409 and other.get_json()["error"]["code"] == "conflict"


def test_other_airline_gets_its_own_recipients(app: Flask, keyset: Any) -> None:
    body = enroll(signed_in(app, "crew-yy"), new_key()).get_json()
    assert body["airline"] == "YY"
    assert [r["kid"] for r in body["recipients"]] == [
        keyset.kid(k) for k in (keyset.border_force, keyset.airline_yy, keyset.border_force_v2, keyset.airline_yy_v2)]


@pytest.mark.parametrize("username", ["security", "officer", "admin"])
def test_enrollment_is_for_crew_only(app: Flask, username: str) -> None:
    resp = enroll(signed_in(app, username), new_key())
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_enrollment_needs_sign_in(client: FlaskClient) -> None:
    resp = enroll(client, new_key())
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthenticated"


def _jwk() -> dict[str, Any]:
    return envelope.jwk_from_public_key(new_key().public_key())


def _bad_jwks() -> dict[str, Any]:
    good = _jwk()
    priv = new_key()
    with_d = {**envelope.jwk_from_public_key(priv.public_key()),
              "d": b64u(priv.private_numbers().private_value.to_bytes(32, "big"))}
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    return {
        "wrong_curve": {"kty": "EC", "crv": "P-384", "x": b64u(p384.x.to_bytes(48, "big")),
                        "y": b64u(p384.y.to_bytes(48, "big"))},
        "p256_label_on_p384_numbers": {"kty": "EC", "crv": "P-256", "x": b64u(p384.x.to_bytes(48, "big")),
                                       "y": b64u(p384.y.to_bytes(48, "big"))},
        "private_key": with_d,
        "off_curve": {**good, "y": b64u((int.from_bytes(base64.urlsafe_b64decode(good["y"] + "=="),
                                                        "big") ^ 1).to_bytes(32, "big"))},
        "short_x": {**good, "x": good["x"][:-2]},
        "long_x": {**good, "x": b64u(b"\0" + base64.urlsafe_b64decode(good["x"] + "="))},
        "padded_x": {**good, "x": good["x"] + "="},
        "x_not_text": {**good, "x": 12345},
        "missing_y": {k: v for k, v in good.items() if k != "y"},
        "rsa": {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
        "okp": {"kty": "OKP", "crv": "Ed25519", "x": b64u(b"\1" * 32)},
        "not_an_object": "a string",
        "a_list": [good],
        "null": None,
        "point_at_zero": {**good, "x": b64u(b"\0" * 32), "y": b64u(b"\0" * 32)},
    }


@pytest.mark.parametrize("case", sorted(_bad_jwks()))
def test_enrollment_bad_key(app: Flask, case: str) -> None:
    resp = signed_in(app, "crew").post("/api/v1/devices", json={"public_key": _bad_jwks()[case], "label": "x"})
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["code"] == "malformed"
    with app.app_context():
        assert get_db().execute("SELECT count(*) FROM device").fetchone()[0] == 2


@pytest.mark.parametrize("body", [
    {"public_key": "JWK", "label": 5},
    {"label": "no key"},
    {"public_key": None, "label": "x", "extra": 1},
    [1, 2],
    "text",
    {"label": "x" * 101, "public_key": None},
    {"label": ["x"], "public_key": None},
    {"label": "\ud800", "public_key": None},
    {"label": "tab\tand\nnewline", "public_key": None},
    {"label": "delete\x7f", "public_key": None},
    {"label": "c1 control\x9f", "public_key": None},
])
def test_enrollment_bad_body(app: Flask, body: Any) -> None:
    if isinstance(body, dict) and "public_key" in body and body["public_key"] is None:
        body = {**body, "public_key": _jwk()}
    resp = signed_in(app, "crew").post("/api/v1/devices", json=body)
    assert resp.status_code == 400, resp.get_json()
    assert resp.get_json()["error"]["code"] == "malformed"


@pytest.mark.parametrize("label", ["x" * 100, "Galley\u00a0tablet", "Pont sup\u00e9rieur \u2708"])
def test_enrollment_keeps_a_label_at_its_limits(app: Flask, label: str) -> None:
    """100 characters, a no-break space, any printable text: kept as given."""
    assert enroll(signed_in(app, "crew"), new_key(), label).status_code == 201
    with app.app_context():
        assert get_db().execute("SELECT label FROM device ORDER BY rowid DESC LIMIT 1").fetchone()[0] == label


def test_enrollment_not_json(app: Flask) -> None:
    client = signed_in(app, "crew")
    for data, ctype in ((b"{", "application/json"), (b"public_key=x", "application/x-www-form-urlencoded")):
        resp = client.post("/api/v1/devices", data=data, content_type=ctype)
        assert resp.status_code == 400 and resp.get_json()["error"]["code"] == "malformed"


def test_enrollment_is_audited(app: Flask) -> None:
    device_id = enroll(signed_in(app, "crew"), new_key()).get_json()["device_id"]
    with app.app_context():
        rows = get_db().execute("SELECT * FROM audit_event WHERE action = 'device_enrolled'").fetchall()
    assert len(rows) == 1
    assert rows[0]["subject"] == f"device:{device_id}" and rows[0]["actor"] == "user:crew"


def fresh_envelope(answer: dict[str, Any], key: ec.EllipticCurvePrivateKey, version: int = 2) -> dict[str, Any]:
    """What a tablet builds from its enrollment answer alone, with the keys of one suite."""
    created = datetime.now(UTC)
    chosen = [r for r in answer["recipients"] if r["suite"] == f"v{version}"]
    header = {"v": version, "id": str(uuid.uuid4()), "device": answer["device_id"], "created": stamp(created),
              "rcpt": [r["kid"] for r in chosen], "airline": answer["airline"],
              "flight": f"{answer['airline']}75", "dep": "ACC", "arr": "LGW",
              "sta": stamp(created + timedelta(hours=6)), "urgency": "routine"}
    recipients = [envelope.recipient_key_from_jwk(r["jwk"]) for r in chosen]
    return envelope.build(header, valid_body(), recipients, key)


@pytest.mark.parametrize("version", [1, 2])
def test_freshly_enrolled_device_reports_until_revoked(app: Flask, runner: FlaskCliRunner, version: int) -> None:
    key = new_key()
    answer = enroll(signed_in(app, "crew"), key).get_json()
    client = app.test_client()
    resp = client.post("/api/v1/reports", json=fresh_envelope(answer, key, version))
    assert resp.status_code == 201, resp.get_json()
    receipt = envelope.verify_receipt(resp.get_json(), envelope.public_key_from_jwk(answer["receipt_key"]["jwk"]))
    assert receipt["reference"]
    result = runner.invoke(args=["revoke-device", answer["device_id"]])
    assert result.exit_code == 0, result.output
    resp = client.post("/api/v1/reports", json=fresh_envelope(answer, key, version))
    assert resp.status_code == 403 and resp.get_json()["error"]["code"] == "revoked_device"
    # Re-enrolling a revoked key does not bring it back.
    again = enroll(signed_in(app, "crew"), key)
    assert again.status_code == 409


def test_keys_unavailable_when_none(tmp_path: Any) -> None:
    from crewreport import create_app
    from crewreport.db import init_db

    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE": str(tmp_path / "s.sqlite"),
                      "KEY_DIR": str(tmp_path / "k")})
    with app.app_context():
        init_db()
    resp = app.test_client().get("/api/v1/keys")
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "service_unavailable"


def test_device_state_tells_a_tablet_it_was_revoked(client: FlaskClient, runner: Any) -> None:
    """No cookie needed: a tablet asks on start, before its crew write a note."""
    assert client.get("/api/v1/devices/dev-0001").get_json() == {"device_id": "dev-0001", "state": "active"}
    assert runner.invoke(args=["revoke-device", "dev-0001"]).exit_code == 0
    assert client.get("/api/v1/devices/dev-0001").get_json() == {"device_id": "dev-0001", "state": "revoked"}
    resp = client.get("/api/v1/devices/dev-nobody")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "unknown_device"
    assert "no-store" in resp.headers["Cache-Control"]


def test_a_revoked_tablets_asking_leaves_its_last_use(app: Flask, client: FlaskClient, runner: Any) -> None:
    """The start-up check counts as an active tablet's use (once a day); a
    revoked tablet's, or an unknown id's, writes nothing."""
    assert runner.invoke(args=["revoke-device", DEVICE_ID]).exit_code == 0
    assert client.get(f"/api/v1/devices/{DEVICE_ID}").get_json()["state"] == "revoked"
    assert client.get("/api/v1/devices/dev-nobody").status_code == 404
    assert count(app, "SELECT count(*) FROM device WHERE last_seen_at IS NOT NULL") == 0


def test_a_store_that_cannot_take_the_last_use_still_answers(app: Flask, client: FlaskClient,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Recording the use is secondary: a busy or full store must not turn the
    answer (is this tablet revoked?) into a 500."""
    def busy(db: Any, **_: Any) -> Any:  # transaction(db, wait=...)
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr("crewreport.api.transaction", busy)
    resp = client.get(f"/api/v1/devices/{DEVICE_ID}")
    assert resp.status_code == 200 and resp.get_json()["state"] == "active"
    assert count(app, "SELECT count(*) FROM device WHERE last_seen_at IS NOT NULL") == 0


def status_question(keyset: KeySet) -> dict[str, str]:
    """A signed status request (DESIGN 4a) of the enrolled test device."""
    protected = envelope.b64u_encode(json.dumps({"device": DEVICE_ID, "ids": [], "at": stamp(utcnow())}).encode())
    return {"protected": protected,
            "signature": envelope.b64u_encode(envelope.sign_raw(keyset.device, protected.encode("ascii")))}


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
@pytest.mark.parametrize("path", ["/api/v1/reports", "/api/v1/reports/batch", "/api/v1/reports/status",
                                  "/api/v1/devices"])
def test_a_body_in_another_encoding_than_utf8_is_malformed(app: Flask, make_envelope: Make, keyset: KeySet,
                                                           path: str, encoding: str) -> None:
    """docs/api.md: all JSON is UTF-8. json.loads on bytes would guess
    UTF-16 or skip a BOM, where another reader of the same bytes may not."""
    env = make_envelope()
    body = {"/api/v1/reports": env, "/api/v1/reports/batch": {"envelopes": [env]},
            "/api/v1/reports/status": status_question(keyset),
            "/api/v1/devices": {"public_key": envelope.jwk_from_public_key(new_key().public_key())}}[path]
    client = signed_in(app, "crew")  # enrollment's credential; the intake reads no cookie
    stored = "SELECT (SELECT count(*) FROM report) + (SELECT count(*) FROM device)"
    before = count(app, stored)
    resp = client.post(path, data=json.dumps(body).encode(encoding), content_type="application/json")
    assert (resp.status_code, resp.get_json().get("error", {}).get("code")) == (400, "malformed")
    assert count(app, stored) == before
    # The same body in UTF-8 is taken: the refusal is for the encoding alone.
    resp = client.post(path, data=json.dumps(body).encode(), content_type="application/json")
    assert resp.status_code in (200, 201) and "error" not in json.dumps(resp.get_json())
