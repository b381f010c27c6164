"""The X-Wing (envelope version 2) key files: refused in words when they do
not match their kid, hold a P-256 key or two keys of the wrong kinds; what
they hold; and an instance made before version 2 gaining its X-Wing keys."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, mlkem, x25519
from flask import Flask

from crewreport import create_app, envelope, keys
from crewreport.db import get_db

from .helpers import VECTORS_V2, KeySet


def test_an_x_wing_file_that_does_not_match_its_kid_is_refused(app: Flask, keyset: KeySet) -> None:
    key_dir = app.config["KEY_DIR"]
    bf, zz = keyset.kid(keyset.border_force_v2), keyset.kid(keyset.airline_zz_v2)
    os.replace(os.path.join(key_dir, f"{zz}.pem"), os.path.join(key_dir, f"{bf}.pem"))
    app.extensions.pop("crewreport.keyring", None)
    with app.app_context(), pytest.raises(keys.KeysUnavailable, match="does not match its kid"):
        keys.keyring()


def test_a_p256_file_named_as_an_x_wing_key_is_refused(app: Flask, keyset: KeySet) -> None:
    key_dir = app.config["KEY_DIR"]
    bf_v1, bf_v2 = keyset.kid(keyset.border_force), keyset.kid(keyset.border_force_v2)
    os.replace(os.path.join(key_dir, f"{bf_v1}.pem"), os.path.join(key_dir, f"{bf_v2}.pem"))
    reason = r"cannot be read \(an X-Wing key file holds exactly two PEM blocks\)"
    with pytest.raises(keys.KeysUnavailable, match=reason):
        keys.read_private_key(bf_v2, key_dir, None, "v2")


@pytest.mark.parametrize("parts", [("mlkem", "p256"), ("p256", "x25519"), ("x25519", "mlkem")],
                         ids=["second-not-x25519", "first-not-ml-kem", "swapped"])
def test_an_x_wing_file_of_two_keys_of_the_wrong_kinds_is_refused(app: Flask, keyset: KeySet,
                                                                   parts: tuple[str, str]) -> None:
    """Two PEM blocks are not enough: the first must be the ML-KEM-768 part and
    the second the X25519 part, and the operator is told so (serve prints it)."""
    kinds: dict[str, mlkem.MLKEM768PrivateKey | x25519.X25519PrivateKey | ec.EllipticCurvePrivateKey] = {
        "mlkem": keyset.border_force_v2.mlkem, "x25519": keyset.border_force_v2.x25519, "p256": keyset.border_force}
    pem = b"".join(kinds[p].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()) for p in parts)
    key_dir, kid = app.config["KEY_DIR"], keyset.kid(keyset.border_force_v2)
    Path(key_dir, f"{kid}.pem").write_bytes(pem)
    reason = r"cannot be read \(an X-Wing key file holds an ML-KEM-768 key, then an X25519 key\)"
    with pytest.raises(keys.KeysUnavailable, match=reason):
        keys.read_private_key(kid, key_dir, None, "v2")


def test_x_wing_key_files_hold_the_seeds_parts(app: Flask, keyset: KeySet) -> None:
    """The stored parts are the ones SHAKE256(seed) gives: the key published
    from them is the vectors' key."""
    kid = keyset.kid(keyset.border_force_v2)
    key = keys.read_private_key(kid, app.config["KEY_DIR"], None, "v2")
    assert envelope.recipient_jwk(key.public_key()) == envelope.xwing.thumbprint_members(
        VECTORS_V2["keys"]["border_force"]["jwk"])
    assert envelope.thumbprint(envelope.recipient_jwk(key.public_key())) == VECTORS_V2["keys"]["border_force"]["kid"]


def test_an_instance_made_before_version_2_gains_x_wing_keys_on_init_db(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrade: the store migrates, init-db adds one v2 key per recipient
    owner, and every older key (and report) stays exactly as it was."""
    from crewreport import db as dbmod
    from crewreport.cli import create_airline

    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys"),
                      "KEY_PASSPHRASE": "upgrade passphrase"})
    shipped = dbmod.migrations()
    suite_migration = next(n for n, name, _ in shipped if name.endswith("_key_suite.sql"))
    # The code as it was before version 2: migrations up to the suite column,
    # keys made without a suite.
    monkeypatch.setattr(dbmod, "migrations", lambda: shipped[:suite_migration - 1])
    with app.app_context():
        dbmod.init_db()
        conn = get_db()
        for owner in ("border_force", "receipt", "airline:ZZ"):
            key = keys.new_key("v1")
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            jwk = envelope.jwk_from_public_key(key.public_key())
            kid = envelope.thumbprint(jwk)
            keys.write_private_key(key, kid, str(tmp_path / "keys"), b"upgrade passphrase")
            if owner == "airline:ZZ":
                conn.execute("INSERT INTO airline VALUES ('ZZ', 'Demo Airways', '2026-01-01T00:00:00Z')")
            conn.execute("INSERT INTO service_key (kid, owner, public_jwk, created_at) VALUES (?, ?, ?, ?)",
                         (kid, owner, json.dumps(jwk), "2026-01-01T00:00:00Z"))
        conn.commit()
        before = [tuple(r) for r in conn.execute(
            "SELECT kid, owner, public_jwk, created_at, retired_at FROM service_key ORDER BY kid")]
    monkeypatch.setattr(dbmod, "migrations", lambda: shipped)

    result = app.test_cli_runner().invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert "X-Wing" in result.output
    with app.app_context():
        conn = get_db()
        after = [tuple(r) for r in conn.execute(
            "SELECT kid, owner, public_jwk, created_at, retired_at FROM service_key WHERE suite = 'v1' ORDER BY kid")]
        v2 = sorted(r["owner"] for r in conn.execute(
            "SELECT owner FROM service_key WHERE suite = 'v2' AND retired_at IS NULL"))
        ring = keys.keyring()
        published = keys.published(conn)
    assert after == before
    assert v2 == ["airline:ZZ", "border_force"]
    assert sorted(ring.suite.values()) == ["v1", "v1", "v1", "v2", "v2"]
    assert [(r["owner"], r["suite"]) for r in published["recipients"]] == [
        ("border_force", "v1"), ("airline:ZZ", "v1"), ("border_force", "v2"), ("airline:ZZ", "v2")]
    # Idempotent: a second run makes nothing new.
    again = app.test_cli_runner().invoke(args=["init-db"])
    assert again.exit_code == 0 and "X-Wing" not in again.output
    with app.app_context():
        assert get_db().execute("SELECT count(*) FROM service_key").fetchone()[0] == 5
        create_airline("YY", "Other Air")  # a new airline gets both suites at once
        assert sorted(r["suite"] for r in get_db().execute(
            "SELECT suite FROM service_key WHERE owner = 'airline:YY'")) == ["v1", "v2"]
