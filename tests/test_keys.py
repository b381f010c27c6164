"""Service keys: PEM files 0600 in KEY_DIR, passphrase encryption, a clear
503 when they cannot be read, and rotation that keeps old reports openable."""
from __future__ import annotations

import json
import logging
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import create_app, envelope, keys
from crewreport.db import get_db, init_db

from .helpers import KeySet, Make, current_kids, events, header_of


def mode(path: str | Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def pem_labels(text: str) -> list[str]:
    return [line[11:-5] for line in text.splitlines() if line.startswith("-----BEGIN ")]


def test_private_keys_are_pem_0600(app: Flask) -> None:
    key_dir = app.config["KEY_DIR"]
    assert mode(key_dir) == 0o700
    with app.app_context():
        rows = [(r["kid"], r["suite"]) for r in get_db().execute("SELECT kid, suite FROM service_key")]
    assert {suite for _, suite in rows} == {"v1", "v2"}
    assert sorted(os.listdir(key_dir)) == sorted(f"{kid}.pem" for kid, _ in rows)
    for kid, suite in rows:
        path = os.path.join(key_dir, f"{kid}.pem")
        assert mode(path) == 0o600
        text = Path(path).read_text("ascii")
        # PKCS#8, no passphrase set (the label is built so that no tracked file
        # looks like it holds a private key); an X-Wing key is its two parts.
        assert pem_labels(text) == ["PRIVATE KEY"] * (2 if suite == "v2" else 1)
        assert keys.read_private_key(kid, key_dir, None, suite) is not None


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
    with passphrase_app.app_context():
        suites = {r["kid"]: r["suite"] for r in get_db().execute("SELECT kid, suite FROM service_key")}
    # Border Force P-256 and X-Wing, and the receipt key.
    assert sorted(suites.values()) == ["v1", "v1", "v2"]
    assert sorted(os.listdir(key_dir)) == sorted(f"{kid}.pem" for kid in suites)
    for kid, suite in suites.items():
        text = Path(key_dir, f"{kid}.pem").read_text("ascii")
        assert pem_labels(text) == ["ENCRYPTED PRIVATE KEY"] * (2 if suite == "v2" else 1)
        assert mode(Path(key_dir, f"{kid}.pem")) == 0o600
        with pytest.raises(keys.KeysUnavailable, match="CREWREPORT_KEY_PASSPHRASE"):
            keys.read_private_key(kid, key_dir, None, suite)
        assert keys.read_private_key(kid, key_dir, b"the right passphrase", suite) is not None
    with passphrase_app.app_context():
        ring = keys.keyring()
    assert set(ring.current) == {keys.BORDER_FORCE, keys.RECEIPT}
    assert ring.suite == suites
    assert sorted(ring.private) == sorted(k for k, s in suites.items() if s == "v1")
    assert sorted(ring.xwing) == sorted(k for k, s in suites.items() if s == "v2")


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
    assert len(pems) == 3
    assert all(set(pem_labels(pem)) == {"ENCRYPTED PRIVATE KEY"} for pem in pems)


def test_a_pem_that_does_not_match_its_kid_is_refused(app: Flask, keyset: KeySet) -> None:
    key_dir = app.config["KEY_DIR"]
    bf, zz = keyset.kid(keyset.border_force), keyset.kid(keyset.airline_zz)
    os.replace(os.path.join(key_dir, f"{zz}.pem"), os.path.join(key_dir, f"{bf}.pem"))
    app.extensions.pop("crewreport.keyring", None)
    with app.app_context(), pytest.raises(keys.KeysUnavailable):
        keys.keyring()


def stored_envelope(app: Flask, report_id: str) -> dict[str, Any]:
    with app.app_context():
        return json.loads(get_db().execute("SELECT envelope FROM report WHERE id = ?", (report_id,)).fetchone()[0])


def report_id(env: dict[str, Any]) -> str:
    return header_of(env)["id"]


@pytest.mark.parametrize(("owner", "index"), [("border_force", 0), ("airline:ZZ", 1)])
@pytest.mark.parametrize("version", [1, 2])
def test_rotation_keeps_old_reports_openable(app: Flask, client: FlaskClient, runner: FlaskCliRunner,
                                             make_envelope: Make, keyset: KeySet, owner: str, index: int,
                                             version: int) -> None:
    suite, other = ("v1", "v2") if version == 1 else ("v2", "v1")
    before, before_other = current_kids(client, suite), current_kids(client, other)
    old_kid = before[owner]
    sealed_earlier = make_envelope(v=version)
    assert client.post("/api/v1/reports", json=sealed_earlier).status_code == 201
    in_flight = make_envelope(v=version)  # sealed before the rotation, delivered after it

    result = runner.invoke(args=["rotate-key", owner, "--suite", suite])
    assert result.exit_code == 0, result.output
    after = current_kids(client, suite)
    assert after[owner] != old_kid
    assert {k: v for k, v in after.items() if k != owner} == {k: v for k, v in before.items() if k != owner}
    assert current_kids(client, other) == before_other  # the other suite's keys are untouched
    assert os.path.exists(os.path.join(app.config["KEY_DIR"], f"{old_kid}.pem"))

    resp = client.post("/api/v1/reports", json=in_flight)
    assert resp.status_code == 201, resp.get_json()
    with app.app_context():
        ring = keys.keyring()
        assert ring.suite[after[owner]] == suite and ring.suite[old_kid] == suite
        for env in (sealed_earlier, in_flight):
            parsed = envelope.parse(stored_envelope(app, report_id(env)))
            assert parsed.header["rcpt"][index] == old_kid
            body = envelope.open_body(parsed, index, ring.recipient_key(old_kid))
            assert body["reporter"]["crew_id"] == "C1234"

    # A report sealed to the new keys, as an updated tablet would, is accepted too.
    recipients = [r for r in client.get("/api/v1/keys").get_json()["recipients"]
                  if r["owner"] in ("border_force", "airline:ZZ") and r["suite"] == suite]
    with app.app_context():
        ring = keys.keyring()
        new_private = [ring.recipient_key(r["kid"]) for r in recipients]
    assert [keyset.kid(k) for k in new_private] == [after["border_force"], after["airline:ZZ"]]
    resp = client.post("/api/v1/reports", json=make_envelope(recipients=new_private, v=version))
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


def test_receipt_key_is_never_x_wing(app: Flask, client: FlaskClient, runner: FlaskCliRunner) -> None:
    """Receipts are signed, and X-Wing only opens: neither the command nor
    the function beneath it makes a v2 receipt key."""
    before = current_kids(client)
    result = runner.invoke(args=["rotate-key", "receipt", "--suite", "v2"])
    assert result.exit_code == 1 and "v1 (P-256) key only" in result.output
    result = runner.invoke(args=["rotate-key", "border_force", "--suite", "v3"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    with app.app_context():
        with pytest.raises(ValueError, match="^the receipt key signs: it is a P-256 \\(v1\\) key$"):
            keys.add_key(get_db(), keys.RECEIPT, suite="v2")
    assert current_kids(client) == before


def test_no_key_is_added_under_another_passphrase(passphrase_app: Flask) -> None:
    """An upgrade run without the instance's passphrase refuses clearly instead
    of writing an X-Wing key the service could not read (or one in clear)."""
    with passphrase_app.app_context():
        conn = get_db()
        conn.execute("DELETE FROM service_key WHERE suite = 'v2'")  # as before version 2
        conn.commit()
    for wrong in (None, "another passphrase"):
        passphrase_app.config["KEY_PASSPHRASE"] = wrong
        for args in (["init-db"], ["rotate-key", "border_force", "--suite", "v2"]):
            result = passphrase_app.test_cli_runner().invoke(args=args)
            assert result.exit_code == 1 and "CREWREPORT_KEY_PASSPHRASE" in result.output, result.output
            assert "Traceback" not in result.output
        with passphrase_app.app_context():
            assert get_db().execute("SELECT count(*) FROM service_key WHERE suite = 'v2'").fetchone()[0] == 0
    passphrase_app.config["KEY_PASSPHRASE"] = "the right passphrase"
    result = passphrase_app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0 and "X-Wing" in result.output, result.output
    with passphrase_app.app_context():
        kid = get_db().execute("SELECT kid FROM service_key WHERE suite = 'v2'").fetchone()[0]
    text = Path(passphrase_app.config["KEY_DIR"], f"{kid}.pem").read_text("ascii")
    assert pem_labels(text) == ["ENCRYPTED PRIVATE KEY"] * 2


def test_the_key_folder_is_made_0700_whatever_the_umask(tmp_path: Path) -> None:
    """The folder's own mode keeps other users out, not the umask of whoever
    ran the first command: under umask 000 it is still 0700, its files 0600."""
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys")})
    old = os.umask(0)
    try:
        with app.app_context():
            init_db()
            made = keys.ensure_keys(get_db())
    finally:
        os.umask(old)
    assert mode(tmp_path / "keys") == 0o700
    assert sorted(os.listdir(tmp_path / "keys")) == sorted(f"{kid}.pem" for kid in made)
    assert {mode(tmp_path / "keys" / name) for name in os.listdir(tmp_path / "keys")} == {0o600}


@pytest.mark.parametrize("suite", ["v1", "v2"])
def test_a_new_key_is_in_the_audit_chain(app: Flask, runner: FlaskCliRunner, suite: str) -> None:
    """Who made which key, for whom and of which suite: the audit trail must say
    when a key that can open reports appeared."""
    result = runner.invoke(args=["rotate-key", "airline:ZZ", "--suite", suite])
    assert result.exit_code == 0, result.output
    with app.app_context():
        kid = keys.current_kid(get_db(), "airline:ZZ", suite)
    rows = events(app, "key_added", f"key:{kid}")
    assert [(r["actor"], json.loads(r["detail"])) for r in rows] == [
        ("system", {"owner": "airline:ZZ", "suite": suite})]


def test_the_keyring_is_loaded_once_until_the_keys_change(app: Flask, runner: FlaskCliRunner,
                                                          keyset: KeySet) -> None:
    """Reading every key file (and, with a passphrase, deriving its key) is
    slow: a process keeps its keyring until a key is added or retired. Each
    owner's current key of each suite is where the intake and triage look."""
    with app.app_context():
        ring = keys.keyring()
        assert keys.keyring() is ring
    assert ring.current == {"border_force": keyset.kid(keyset.border_force), "receipt": keyset.kid(keyset.receipt),
                            "airline:ZZ": keyset.kid(keyset.airline_zz), "airline:YY": keyset.kid(keyset.airline_yy)}
    assert ring.current_v2 == {"border_force": keyset.kid(keyset.border_force_v2),
                               "airline:ZZ": keyset.kid(keyset.airline_zz_v2),
                               "airline:YY": keyset.kid(keyset.airline_yy_v2)}
    assert ring.text_key() == keyset.kid(keyset.border_force_v2)
    assert runner.invoke(args=["rotate-key", "airline:YY", "--suite", "v2"]).exit_code == 0
    with app.app_context():
        rotated = keys.keyring()
        new_kid = keys.current_kid(get_db(), "airline:YY", "v2")
    assert rotated is not ring
    assert rotated.current == ring.current
    assert rotated.current_v2 == {**ring.current_v2, "airline:YY": new_kid}


OtherKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


@pytest.mark.parametrize("make", [lambda: ec.generate_private_key(ec.SECP384R1()),
                                  ed25519.Ed25519PrivateKey.generate], ids=["p384", "ed25519"])
def test_a_v1_key_file_of_another_kind_is_refused_in_words(app: Flask, keyset: KeySet,
                                                           make: Callable[[], OtherKey]) -> None:
    """A key of another curve or algorithm in a P-256 key's file is named as
    such (serve prints it at start-up), not as a kid mismatch or a crash."""
    key = make()
    key_dir, kid = app.config["KEY_DIR"], keyset.kid(keyset.border_force)
    path = Path(key_dir, f"{kid}.pem")
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    with pytest.raises(keys.KeysUnavailable) as raised:
        keys.read_private_key(kid, key_dir, None, "v1")
    assert raised.value.message == f"private key file {path} is not a P-256 key"


@pytest.mark.parametrize("suite", ["v1", "v2"])
def test_a_wrong_passphrase_is_named_in_the_words_serve_prints(passphrase_app: Flask, suite: str) -> None:
    """Which file, why it failed, and the setting to check: `serve` prints this
    line when the intake will answer 503."""
    key_dir = passphrase_app.config["KEY_DIR"]
    with passphrase_app.app_context():
        kid = keys.current_kid(get_db(), keys.BORDER_FORCE, suite)
    assert kid is not None
    with pytest.raises(keys.KeysUnavailable) as raised:
        keys.read_private_key(kid, key_dir, b"a wrong passphrase", suite)
    path = re.escape(os.path.join(key_dir, f"{kid}.pem"))
    assert re.fullmatch(rf"private key file {path} cannot be read \(.+\); is CREWREPORT_KEY_PASSPHRASE right\?",
                        raised.value.message), raised.value.message


def test_an_empty_passphrase_is_no_passphrase(app: Flask) -> None:
    """CREWREPORT_KEY_PASSPHRASE= (set, but empty) encrypts nothing: the
    warning is due, and a required passphrase is still missing."""
    app.config["KEY_PASSPHRASE"] = ""
    with app.app_context():
        assert keys.unencrypted_warning() is not None
        app.config["REQUIRE_KEY_PASSPHRASE"] = True
        with pytest.raises(keys.KeysUnavailable, match="CREWREPORT_KEY_PASSPHRASE is not"):
            keys.unencrypted_warning()


@pytest.mark.parametrize("owner", ["border_force", "receipt"])
def test_no_current_key_says_which_and_how_to_make_one(app: Flask, owner: str) -> None:
    """With every key of an owner retired the intake cannot work: the operator
    is told whose key is missing and the command that makes one."""
    with app.app_context():
        conn = get_db()
        conn.execute("UPDATE service_key SET retired_at = '2026-01-01T00:00:00Z' WHERE owner = ?", (owner,))
        conn.commit()
        with pytest.raises(keys.KeysUnavailable) as raised:
            keys.keyring()
    assert raised.value.message == (f"there is no current {owner} key "
                                    f"(run `flask --app crewreport demo` or `rotate-key {owner}`)")


@pytest.mark.parametrize("cause", ["permission", "folder"])
def test_a_key_file_that_cannot_be_opened_gives_the_503(app: Flask, client: FlaskClient, keyset: KeySet,
                                                        monkeypatch: pytest.MonkeyPatch, cause: str) -> None:
    """docs/operations.md: a missing, unreadable or wrongly encrypted key file
    gives the intake's 503 and a line naming the file, never a 500 (nor a
    traceback from `serve`). The usual unreadable one is a file `sudo flask
    rotate-key` left to root; a mode cannot stop root, who may run these
    tests, so here its open is refused by hand."""
    key_dir, kid = app.config["KEY_DIR"], keyset.kid(keyset.airline_zz)
    path = os.path.join(key_dir, f"{kid}.pem")
    if cause == "folder":
        os.remove(path)
        os.mkdir(path)
    else:
        def denied(name: str, *args: Any, **kwargs: Any) -> Any:
            if name == path:
                raise PermissionError(13, "Permission denied", name)
            return open(name, *args, **kwargs)

        monkeypatch.setattr(keys, "open", denied, raising=False)
    reason = "Is a directory" if cause == "folder" else "Permission denied"
    app.extensions.pop("crewreport.keyring", None)
    with app.app_context(), pytest.raises(keys.KeysUnavailable) as raised:
        keys.keyring()
    assert raised.value.message == f"private key file {path} cannot be read ({reason})"
    resp = client.post("/api/v1/reports", json={"protected": "e30", "sealed": ["AA"], "signature": "AA"})
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "service_unavailable"


def test_a_key_file_is_written_whole_then_its_folder_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut must not leave a key row naming a file the folder lost, nor half a key
    file; a file already at the name (however readable) is replaced by a 0600 one."""
    key_dir = tmp_path / "keys"
    key_dir.mkdir(mode=0o700)
    kid = "kid-written-whole"
    (key_dir / f"{kid}.pem").write_bytes(b"left over, readable by all")
    (key_dir / f"{kid}.pem").chmod(0o644)
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        synced.append("folder" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(keys.os, "fsync", spy)
    path = keys.write_private_key(ec.generate_private_key(ec.SECP256R1()), kid, str(key_dir), None)
    assert synced == ["file", "folder"]
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert isinstance(serialization.load_pem_private_key(Path(path).read_bytes(), None), ec.EllipticCurvePrivateKey)
    assert sorted(p.name for p in key_dir.iterdir()) == [f"{kid}.pem"]  # nothing written aside is left
