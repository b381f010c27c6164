"""Shared fixtures, in the flaskr style: `app`, `client`, `runner`, `auth`.

Test keys come from the fixed vectors (so their envelopes verify) and are
loaded once per session; each test gets a fresh store in its own instance
folder.
"""
from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

import pyotp
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from crewreport import create_app, envelope, keys
from crewreport.auth import create_user
from crewreport.second_factor import needs_second_factor
from crewreport.cli import create_airline
from crewreport.db import get_db, init_db, now, transaction

VECTORS = json.loads((Path(__file__).parent / "vectors" / "envelope-v1.json").read_text("utf-8"))
PASSWORD = "correct horse battery staple"
# The known second factor of every staff user of the test store (RFC 6238).
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
USERS = {  # username: (role, airline)
    "crew": ("crew", "ZZ"),
    "security": ("airline_security", "ZZ"),
    "officer": ("border_force", None),
    "admin": ("admin", None),
    "crew-yy": ("crew", "YY"),
    "security-yy": ("airline_security", "YY"),
}
DEVICE_ID = VECTORS["keys"]["device"]["device_id"]


class KeySet:
    """The session's private keys: vectors' Border Force, ZZ and device keys,
    plus generated ones for airline YY, the receipt key and a YY device."""

    def __init__(self) -> None:
        k = VECTORS["keys"]
        self.border_force = envelope.private_key_from_jwk(k["border_force"]["jwk"])
        self.airline_zz = envelope.private_key_from_jwk(k["airline_ZZ"]["jwk"])
        self.device = envelope.private_key_from_jwk(k["device"]["jwk"])
        self.airline_yy = ec.generate_private_key(ec.SECP256R1())
        self.receipt = ec.generate_private_key(ec.SECP256R1())
        self.device_yy = ec.generate_private_key(ec.SECP256R1())

    def kid(self, key: ec.EllipticCurvePrivateKey) -> str:
        return envelope.thumbprint(envelope.jwk_from_public_key(key.public_key()))


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
        for username, (role, airline) in USERS.items():
            create_user(username, role, PASSWORD, airline,
                        TOTP_SECRET if needs_second_factor(role) else None)
        enroll(db, DEVICE_ID, "crew", keyset.device)
        enroll(db, "dev-yy", "crew-yy", keyset.device_yy)
        # Fold the WAL into the main file so that one file is the whole store.
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return folder


@pytest.fixture
def app(tmp_path: Path, store_template: Path) -> Iterator[Flask]:
    """A fresh copy of the session's test store (with keys) in this test's folder."""
    shutil.copy2(store_template / "crewreport.sqlite", tmp_path / "crewreport.sqlite")
    shutil.copytree(store_template / "keys", tmp_path / "keys")  # keeps 0700 / 0600
    yield create_app(_config(tmp_path))


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


def totp_code(secret: str = TOTP_SECRET, steps_ahead: int = 0) -> str:
    """The code of the current 30 s step, or of one a step later (a code is good
    once, and the server also takes the next step's for clocks a little ahead)."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def code_due(resp: Any) -> bool:
    return resp.status_code == 200 and b'id="totp-form"' in resp.data


def enrolment_secret(resp: Any) -> str | None:
    """The secret an enrolment page shows (a user with no known secret)."""
    found = re.search(r'id="totp-secret"[^>]*>([A-Z2-7]+)<', resp.get_data(as_text=True))
    return found.group(1) if found else None


class AuthActions:
    """Sign in as the users of the test store, through the code step for staff."""

    def __init__(self, client: FlaskClient) -> None:
        self._client = client

    def login(self, username: str = "officer", password: str = PASSWORD, *,
              secret: str = TOTP_SECRET, **kwargs: Any) -> Any:
        """The answer to the last step: the password's, or the code's when one
        was due (at enrolment, with the secret the page shows)."""
        resp = self._client.post("/auth/login", data={"username": username, "password": password}, **kwargs)
        return self.code_step(resp, enrolment_secret(resp) or secret, **kwargs) if code_due(resp) else resp

    def code_step(self, resp: Any, secret: str = TOTP_SECRET, **kwargs: Any) -> Any:
        """Answer a code page (with its CSRF token); a code of this step used
        already, then next step's."""
        for ahead in (0, 1):
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', resp.get_data(as_text=True))
            data = {"code": totp_code(secret, ahead), **({"csrf_token": token.group(1)} if token else {})}
            resp = self._client.post("/auth/login", data=data, **kwargs)
            if not code_due(resp):
                break
        return resp

    def logout(self) -> Any:
        return self._client.post("/auth/logout")


@pytest.fixture
def auth(client: FlaskClient) -> AuthActions:
    return AuthActions(client)


def iso(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def valid_body(**changes: Any) -> dict[str, Any]:
    body = {"observed_at": iso(datetime.now(timezone.utc)), "indicators": ["docs_held_by_other"],
            "people": [{"role": "possible_victim", "seat": "32B", "age_range": "12_17",
                        "description": "Quiet girl in a grey hoodie"}],
            "narrative": "Man in 32C holds both passports and answers for her.",
            "captain_informed": True, "reporter": {"crew_id": "C1234"}}
    body.update(changes)
    return body


@pytest.fixture
def make_envelope(keyset: KeySet) -> Callable[..., dict[str, Any]]:
    """Build a valid envelope from the ZZ test device; keyword arguments
    override header fields (`header_*`), the body (`body`) or keys."""

    def build(body: dict[str, Any] | None = None, device: str = DEVICE_ID,
              device_key: ec.EllipticCurvePrivateKey | None = None,
              recipients: list[ec.EllipticCurvePrivateKey] | None = None,
              **header_changes: Any) -> dict[str, Any]:
        recipients = recipients or [keyset.border_force, keyset.airline_zz]
        created = datetime.now(timezone.utc)
        header = {"v": 1, "id": str(uuid.uuid4()), "device": device, "created": iso(created),
                  "rcpt": [keyset.kid(k) for k in recipients], "airline": "ZZ", "flight": "ZZ101",
                  "dep": "LOS", "arr": "LHR", "sta": iso(created + timedelta(hours=3)),
                  "urgency": "priority"}
        header.update(header_changes)
        return envelope.build(header, body if body is not None else valid_body(),
                              [k.public_key() for k in recipients], device_key or keyset.device)

    return build
