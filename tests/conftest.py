"""Shared fixtures, in the flaskr style: `app`, `client`, `runner`, `auth`.

Test keys come from the fixed vectors (so their envelopes verify) and are
loaded once per session; each test gets a fresh store in its own instance
folder. The store holds both suites' recipient keys: P-256 (envelope version
1) and X-Wing (version 2).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import create_app, envelope, keys
from crewreport.auth import create_user
from crewreport.cli import create_airline
from crewreport.db import get_db, init_db, transaction
from crewreport.second_factor import needs_second_factor
from crewreport.times import now, stamp

from .helpers import DEVICE_ID, PASSWORD, TOTP_SECRET, VECTORS, VECTORS_V2, AuthActions, KeySet, valid_body

USERS = {  # username: (role, airline)
    "crew": ("crew", "ZZ"),
    "security": ("airline_security", "ZZ"),
    "officer": ("border_force", None),
    "admin": ("admin", None),
    "crew-yy": ("crew", "YY"),
    "security-yy": ("airline_security", "YY"),
}


def free_disk() -> str:
    """Room left for the tests' files: a full disk fails the served tests in
    ways that look like bugs (reports and sign-ins refused; once in CI)."""
    return f"disk: {shutil.disk_usage(tempfile.gettempdir()).free // 2**20} MB free for temporary files"


def pytest_report_header(config: pytest.Config) -> str:
    return free_disk()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"{free_disk()} at the end")


@pytest.fixture(scope="session")
def keyset() -> KeySet:
    return KeySet()


def enroll(db: Any, device_id: str, username: str, key: ec.EllipticCurvePrivateKey) -> None:
    user = db.execute("SELECT id, airline FROM user WHERE username = ?", (username,)).fetchone()
    jwk = envelope.jwk_from_public_key(key.public_key())
    with transaction(db):
        db.execute("INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                   " VALUES (?, ?, ?, 'test', ?, ?, ?)",
                   (device_id, user["id"], user["airline"], json.dumps(jwk), envelope.thumbprint(jwk), now()))


def _config(folder: Path) -> dict[str, Any]:
    return {
        "TESTING": True,
        "SECRET_KEY": "test",
        "DATABASE": str(folder / "crewreport.sqlite"),
        "KEY_DIR": str(folder / "keys"),
        "WTF_CSRF_ENABLED": False,
        "PASSWORD_HASH_FAST": True,
    }


@pytest.fixture(scope="session")
def store_template(tmp_path_factory: pytest.TempPathFactory, keyset: KeySet) -> Path:
    """The test store and its key files, built once per session: building them
    takes dozens of durable commits, copying them a few milliseconds."""
    folder = tmp_path_factory.mktemp("store-template")
    app = create_app(_config(folder))
    with app.app_context():
        init_db()
        db = get_db()
        with transaction(db):
            keys.add_key(db, keys.BORDER_FORCE, keyset.border_force)
            keys.add_key(db, keys.RECEIPT, keyset.receipt)
        create_airline("ZZ", "Demo Airways", with_key=False)
        create_airline("YY", "Other Air", with_key=False)
        with transaction(db):
            keys.add_key(db, keys.airline_owner("ZZ"), keyset.airline_zz)
            keys.add_key(db, keys.airline_owner("YY"), keyset.airline_yy)
            keys.add_key(db, keys.BORDER_FORCE, keyset.border_force_v2)
            keys.add_key(db, keys.airline_owner("ZZ"), keyset.airline_zz_v2)
            keys.add_key(db, keys.airline_owner("YY"), keyset.airline_yy_v2)
        for username, (role, airline) in USERS.items():
            create_user(username, role, PASSWORD, airline,
                        TOTP_SECRET if needs_second_factor(role) else None)
        enroll(db, DEVICE_ID, "crew", keyset.device)
        enroll(db, "dev-yy", "crew-yy", keyset.device_yy)
        # Fold the WAL into the main file so that one file is the whole store.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder


@pytest.fixture
def app(tmp_path: Path, store_template: Path) -> Flask:
    """A fresh copy of the session's test store (with keys) in this test's folder."""
    shutil.copy2(store_template / "crewreport.sqlite", tmp_path / "crewreport.sqlite")
    shutil.copytree(store_template / "keys", tmp_path / "keys")  # keeps 0700 / 0600
    return create_app(_config(tmp_path))


@pytest.fixture
def v2_vectors_app(app: Flask) -> Flask:
    """The test app with device `dev-0001` holding the version 2 vectors'
    device key (the two vector files sign with different keys for that id)."""
    jwk = envelope.public_jwk_members(VECTORS_V2["keys"]["device"]["jwk"])
    with app.app_context():
        db = get_db()
        with transaction(db):
            db.execute("UPDATE device SET public_jwk = ?, kid = ? WHERE id = ?",
                       (json.dumps(jwk), envelope.thumbprint(jwk), DEVICE_ID))
    return app


@pytest.fixture
def vector_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's clock an hour after the fixed vectors were made (both
    files share one `created`): the intake bounds `created` by its clock."""
    from crewreport import report

    created = report.parse_time(VECTORS["cases"][0]["header"]["created"])
    assert created == report.parse_time(VECTORS_V2["cases"][0]["header"]["created"])
    monkeypatch.setattr(report, "server_now", lambda: created + timedelta(hours=1))


@pytest.fixture
def csrf_app(app: Flask) -> Flask:
    """The same app with CSRF protection on, for the tests that check it."""
    app.config["WTF_CSRF_ENABLED"] = True
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


@pytest.fixture
def make_envelope(keyset: KeySet) -> Callable[..., dict[str, Any]]:
    """Build a valid envelope from the ZZ test device; keyword arguments
    override header fields (`v=2` seals to the X-Wing keys), the body (`body`)
    or keys."""

    def build(body: dict[str, Any] | None = None, device: str = DEVICE_ID,
              device_key: ec.EllipticCurvePrivateKey | None = None,
              recipients: list[envelope.RecipientPrivateKey] | None = None,
              **header_changes: Any) -> dict[str, Any]:
        recipients = recipients or keyset.recipients(header_changes.get("v", 1))
        created = datetime.now(UTC)
        header = {"v": 1, "id": str(uuid.uuid4()), "device": device, "created": stamp(created),
                  "rcpt": [keyset.kid(k) for k in recipients], "airline": "ZZ", "flight": "ZZ101",
                  "dep": "LOS", "arr": "LHR", "sta": stamp(created + timedelta(hours=3)),
                  "urgency": "priority"}
        header.update(header_changes)
        return envelope.build(header, body if body is not None else valid_body(),
                              [k.public_key() for k in recipients], device_key or keyset.device)

    return build
