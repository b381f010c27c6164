"""Service keys: PEM files 0600 in KEY_DIR, passphrase encryption, a clear
503 when they cannot be read, and rotation that keeps old reports openable."""
from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import create_app, envelope, keys
from crewreport.db import get_db, init_db

from .helpers import KeySet, Make


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_private_keys_are_pem_0600(app: Flask) -> None:
    key_dir = app.config["KEY_DIR"]
    assert mode(key_dir) == 0o700
    with app.app_context():
        kids = [r["kid"] for r in get_db().execute("SELECT kid FROM service_key")]
    assert sorted(os.listdir(key_dir)) == sorted(f"{kid}.pem" for kid in kids)
    for kid in kids:
        path = os.path.join(key_dir, f"{kid}.pem")
        assert mode(path) == 0o600
        text = Path(path).read_text("ascii")
        # PKCS#8, no passphrase set (the label is built so that no tracked file
        # looks like it holds a private key).
        assert text.splitlines()[0] == "-----BEGIN {}-----".format("PRIVATE KEY")
        assert keys.read_private_key(kid, key_dir, None) is not None


@pytest.fixture
def passphrase_app(tmp_path: Path) -> Flask:
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys"),
                      "KEY_PASSPHRASE": "the right passphrase"})
    with app.app_context():
        init_db()
        keys.ensure_keys(get_db())
    return app


def test_passphrase_encrypts_the_pem(passphrase_app: Flask) -> None:
    key_dir = passphrase_app.config["KEY_DIR"]
    files = os.listdir(key_dir)
    assert len(files) == 2
    for name in files:
        text = Path(key_dir, name).read_text("ascii")
        assert text.splitlines()[0] == "-----BEGIN {}-----".format("ENCRYPTED PRIVATE KEY")
        assert mode(Path(key_dir, name)) == 0o600
        with pytest.raises(keys.KeysUnavailable, match="CREWREPORT_KEY_PASSPHRASE"):
            keys.read_private_key(name[:-4], key_dir, None)
    with passphrase_app.app_context():
        ring = keys.keyring()
    assert set(ring.current) == {keys.BORDER_FORCE, keys.RECEIPT}


def test_wrong_passphrase_gives_a_clear_503(passphrase_app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    passphrase_app.config["KEY_PASSPHRASE"] = "a wrong passphrase"
    passphrase_app.extensions.pop("crewreport.keyring", None)
    with passphrase_app.app_context(), pytest.raises(keys.KeysUnavailable, match="cannot be read"):
        keys.keyring()
    caplog.set_level(logging.ERROR)
    client = passphrase_app.test_client()
    for path, body in (("/api/v1/reports", {"protected": "e30", "sealed": ["AA"], "signature": "AA"}),
                       ("/api/v1/reports/batch", {"envelopes": []})):
        resp = client.post(path, json=body)
        assert resp.status_code == 503
        error = resp.get_json()["error"]
        assert error["code"] == "service_unavailable" and error["message"]
    assert "intake refused" in caplog.text and "CREWREPORT_KEY_PASSPHRASE" in caplog.text
    with passphrase_app.app_context():
        assert get_db().execute("SELECT count(*) FROM report").fetchone()[0] == 0


def test_passphrase_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREWREPORT_INSTANCE", str(tmp_path))
    monkeypatch.setenv("CREWREPORT_KEY_PASSPHRASE", "from the environment")
    app = create_app()
    assert app.config["KEY_PASSPHRASE"] == "from the environment"
    assert app.config["KEY_DIR"] == str(tmp_path / "keys")


@pytest.mark.parametrize("value", ["20250101", "0", "false", "null", '"quoted"'])
def test_passphrase_from_environment_is_always_text(value: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """from_prefixed_env parses JSON: "0" must not become a falsy int that
    silently writes unencrypted keys."""
    monkeypatch.setenv("CREWREPORT_INSTANCE", str(tmp_path))
    monkeypatch.setenv("CREWREPORT_KEY_PASSPHRASE", value)
    monkeypatch.setenv("CREWREPORT_HOTLINE", "999")
    app = create_app()
    assert app.config["KEY_PASSPHRASE"] == value
    assert app.config["HOTLINE"] == "999"
    with app.app_context():
        init_db()
        keys.ensure_keys(get_db())
    pems = [open(os.path.join(tmp_path, "keys", n), encoding="ascii").read() for n in os.listdir(tmp_path / "keys")]
    assert len(pems) == 2 and all("ENCRYPTED PRIVATE KEY" in pem for pem in pems)


def test_a_pem_that_does_not_match_its_kid_is_refused(app: Flask, keyset: KeySet) -> None:
    key_dir = app.config["KEY_DIR"]
    bf, zz = keyset.kid(keyset.border_force), keyset.kid(keyset.airline_zz)
    os.replace(os.path.join(key_dir, f"{zz}.pem"), os.path.join(key_dir, f"{bf}.pem"))
    app.extensions.pop("crewreport.keyring", None)
    with app.app_context(), pytest.raises(keys.KeysUnavailable):
        keys.keyring()


def current_kids(client: FlaskClient) -> dict[str, str]:
    body = client.get("/api/v1/keys").get_json()
    return {**{r["owner"]: r["kid"] for r in body["recipients"]}, "receipt": body["receipt_key"]["kid"]}


def stored_envelope(app: Flask, report_id: str) -> dict[str, Any]:
    with app.app_context():
        return json.loads(get_db().execute("SELECT envelope FROM report WHERE id = ?", (report_id,)).fetchone()[0])


def report_id(env: dict[str, Any]) -> str:
    return json.loads(envelope.b64u_decode(env["protected"]))["id"]


@pytest.mark.parametrize(("owner", "index"), [("border_force", 0), ("airline:ZZ", 1)])
def test_rotation_keeps_old_reports_openable(app: Flask, client: FlaskClient, runner: FlaskCliRunner,
                                             make_envelope: Make, keyset: KeySet, owner: str, index: int) -> None:
    before = current_kids(client)
    old_kid = before[owner]
    sealed_earlier = make_envelope()
    assert client.post("/api/v1/reports", json=sealed_earlier).status_code == 201
    in_flight = make_envelope()  # sealed before the rotation, delivered after it

    result = runner.invoke(args=["rotate-key", owner])
    assert result.exit_code == 0, result.output
    after = current_kids(client)
    assert after[owner] != old_kid
    assert {k: v for k, v in after.items() if k != owner} == {k: v for k, v in before.items() if k != owner}
    assert os.path.exists(os.path.join(app.config["KEY_DIR"], f"{old_kid}.pem"))

    resp = client.post("/api/v1/reports", json=in_flight)
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():
        ring = keys.keyring()
        assert ring.current[owner] == after[owner]
        for env in (sealed_earlier, in_flight):
            parsed = envelope.parse(stored_envelope(app, report_id(env)))
            assert parsed.header["rcpt"][index] == old_kid
            body = envelope.open_body(parsed, index, ring.private[old_kid])
            assert body["reporter"]["crew_id"] == "C1234"

    # A report sealed to the new keys, as an updated tablet would, is accepted too.
    recipients = [r for r in client.get("/api/v1/keys").get_json()["recipients"]
                  if r["owner"] in ("border_force", "airline:ZZ")]
    with app.app_context():
        ring = keys.keyring()
        new_private = [ring.private[r["kid"]] for r in recipients]
    resp = client.post("/api/v1/reports", json=make_envelope(recipients=new_private))
    assert resp.status_code == 201, resp.get_json()


def test_receipt_key_rotation(client: FlaskClient, runner: FlaskCliRunner, make_envelope: Make, keyset: KeySet) -> None:
    assert runner.invoke(args=["rotate-key", "receipt"]).exit_code == 0
    body = client.get("/api/v1/keys").get_json()
    new_receipt = envelope.public_key_from_jwk(body["receipt_key"]["jwk"])
    answer = client.post("/api/v1/reports", json=make_envelope()).get_json()
    envelope.verify_receipt(answer, new_receipt)
    with pytest.raises(ValueError, match="does not verify"):
        envelope.verify_receipt(answer, keyset.receipt.public_key())


@pytest.mark.parametrize("owner", ["nobody", "airline:QQ", "airline:", "BORDER_FORCE", "receipt:x"])
def test_rotate_key_bad_owner(client: FlaskClient, runner: FlaskCliRunner, owner: str) -> None:
    before = current_kids(client)
    result = runner.invoke(args=["rotate-key", owner])
    assert result.exit_code == 1
    assert "Error" in result.output and "Traceback" not in result.output
    assert current_kids(client) == before
