"""The service's key pairs: Border Force recipient, airline security
recipients, and the receipt-signing key.

Private keys are PEM files `keys/<kid>.pem` in the instance folder (mode 0600,
PKCS#8, encrypted with `CREWREPORT_KEY_PASSPHRASE` when it is set); the
`service_key` table records whose each key is and which is current. Rotating
retires the old key but keeps its file: reports sealed to it still open.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

import click
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flask import Flask, current_app
from flask.cli import with_appcontext

from . import audit
from .db import get_db, transaction
from .envelope import jwk_from_public_key, thumbprint
from .times import now

log = logging.getLogger(__name__)

BORDER_FORCE = "border_force"
RECEIPT = "receipt"


def airline_owner(code: str) -> str:
    return f"airline:{code}"


class KeysUnavailable(Exception):
    """The intake cannot work: a key is missing or cannot be read."""


@dataclass
class Keyring:
    """Every private key the service holds, loaded once per process."""

    private: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)  # owner -> kid
    stamp: tuple[Any, ...] = ()

    def current_key(self, owner: str) -> ec.EllipticCurvePrivateKey:
        return self.private[self.current[owner]]

    def is_border_force(self, kid: str) -> bool:
        return self.owner.get(kid) == BORDER_FORCE


def _passphrase() -> bytes | None:
    value = current_app.config.get("KEY_PASSPHRASE")
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise KeysUnavailable("KEY_PASSPHRASE must be text")
    return value.encode("utf-8")


def _key_dir() -> str:
    return current_app.config["KEY_DIR"]


def unencrypted_warning() -> str | None:
    """None when private keys are kept encrypted; otherwise the warning to
    show. Under REQUIRE_KEY_PASSPHRASE a missing passphrase is KeysUnavailable:
    nothing then writes or uses a key in clear."""
    if _passphrase() is not None:
        return None
    if current_app.config.get("REQUIRE_KEY_PASSPHRASE"):
        raise KeysUnavailable("CREWREPORT_REQUIRE_KEY_PASSPHRASE is set but CREWREPORT_KEY_PASSPHRASE is not: "
                              "refusing to write or use private keys unencrypted")
    return (f"WARNING: private keys in {_key_dir()} are written and kept UNENCRYPTED: whoever can read that "
            "folder or a copy of it can open every report. Set CREWREPORT_KEY_PASSPHRASE (and "
            "CREWREPORT_REQUIRE_KEY_PASSPHRASE=true to refuse to run without one).")


def warn_or_refuse() -> None:
    """For the commands that make keys or serve: the warning on stderr, or a
    clear refusal (exit status 1) when a passphrase is required and missing."""
    try:
        warning = unencrypted_warning()
    except KeysUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if warning:
        click.secho(warning, err=True, fg="red", bold=True)


def write_private_key(key: ec.EllipticCurvePrivateKey, kid: str, key_dir: str,
                      passphrase: bytes | None) -> str:
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                  else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path = os.path.join(key_dir, f"{kid}.pem")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
        f.flush()
        os.fsync(f.fileno())
    return path


def read_private_key(kid: str, key_dir: str, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    path = os.path.join(key_dir, f"{kid}.pem")
    try:
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=passphrase)
    except FileNotFoundError:
        raise KeysUnavailable(f"private key file {path} is missing") from None
    except (ValueError, TypeError) as exc:
        raise KeysUnavailable(f"private key file {path} cannot be read ({exc}); "
                              "is CREWREPORT_KEY_PASSPHRASE right?") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise KeysUnavailable(f"private key file {path} is not a P-256 key")
    if thumbprint(jwk_from_public_key(key.public_key())) != kid:
        raise KeysUnavailable(f"private key file {path} does not match its kid")
    return key


def add_key(db: sqlite3.Connection, owner: str, key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """Store a key pair for `owner` and make it current (the rotation step).

    Inside the caller's transaction; the PEM is written before the row, so a
    row never points at a file that is not there.
    """
    key = key or ec.generate_private_key(ec.SECP256R1())
    jwk = jwk_from_public_key(key.public_key())
    kid = thumbprint(jwk)
    write_private_key(key, kid, _key_dir(), _passphrase())
    stamp = now()
    db.execute("UPDATE service_key SET retired_at = ? WHERE owner = ? AND retired_at IS NULL",
               (stamp, owner))
    db.execute("INSERT INTO service_key (kid, owner, public_jwk, created_at) VALUES (?, ?, ?, ?)",
               (kid, owner, json.dumps(jwk), stamp))
    audit.record("key_added", actor="system", subject=f"key:{kid}", db=db, owner=owner)
    return kid


def ensure_keys(db: sqlite3.Connection) -> list[str]:
    """Create the Border Force and receipt keys if there are none yet."""
    made = []
    with transaction(db):
        for owner in (BORDER_FORCE, RECEIPT):
            if not current_kid(db, owner):
                made.append(add_key(db, owner))
    return made


def current_kid(db: sqlite3.Connection, owner: str) -> str | None:
    row = db.execute("SELECT kid FROM service_key WHERE owner = ? AND retired_at IS NULL",
                     (owner,)).fetchone()
    return row["kid"] if row else None


_lock = threading.Lock()


def keyring() -> Keyring:
    """The process's keyring, reloaded only when the key table has changed."""
    db = get_db()
    stamp = tuple(db.execute(
        "SELECT count(*), max(created_at), count(retired_at) FROM service_key").fetchone())
    cache: Keyring | None = current_app.extensions.get("crewreport.keyring")
    if cache is not None and cache.stamp == stamp:
        return cache
    with _lock:
        if (warning := unencrypted_warning()) is not None:  # KeysUnavailable when required
            log.warning(warning)
        ring = Keyring(stamp=stamp)
        for row in db.execute("SELECT kid, owner, retired_at FROM service_key"):
            ring.private[row["kid"]] = read_private_key(row["kid"], _key_dir(), _passphrase())
            ring.owner[row["kid"]] = row["owner"]
            if row["retired_at"] is None:
                ring.current[row["owner"]] = row["kid"]
        for owner in (BORDER_FORCE, RECEIPT):
            if owner not in ring.current:
                raise KeysUnavailable(f"there is no current {owner} key "
                                      f"(run `flask --app crewreport demo` or `rotate-key {owner}`)")
        current_app.extensions["crewreport.keyring"] = ring
        return ring


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    return {"kid": row["kid"], "owner": row["owner"], "jwk": json.loads(row["public_jwk"])}


def recipients_for(db: sqlite3.Connection, airline: str | None) -> list[dict[str, Any]]:
    """Current recipient keys in `rcpt` order: Border Force, then the airline's."""
    owners = [BORDER_FORCE] + ([airline_owner(airline)] if airline else [])
    found = []
    for owner in owners:
        row = db.execute("SELECT * FROM service_key WHERE owner = ? AND retired_at IS NULL",
                         (owner,)).fetchone()
        if row:
            found.append(_entry(row))
    return found


def published(db: sqlite3.Connection) -> dict[str, Any]:
    """The body of GET /api/v1/keys: current keys only."""
    rows = db.execute(
        "SELECT * FROM service_key WHERE retired_at IS NULL AND owner != ? "
        "ORDER BY owner != ?, owner", (RECEIPT, BORDER_FORCE)).fetchall()
    receipt = db.execute("SELECT * FROM service_key WHERE owner = ? AND retired_at IS NULL",
                         (RECEIPT,)).fetchone()
    return {
        "recipients": [_entry(r) for r in rows],
        "receipt_key": {"kid": receipt["kid"], "jwk": json.loads(receipt["public_jwk"])} if receipt else None,
    }


@click.command("rotate-key")
@click.argument("owner")
@with_appcontext
def rotate_key_command(owner: str) -> None:
    """Make a new current key for OWNER (border_force, receipt or airline:XX)."""
    db = get_db()
    if owner.startswith("airline:"):
        if not db.execute("SELECT 1 FROM airline WHERE code = ?", (owner[8:],)).fetchone():
            raise click.ClickException(f"no airline {owner[8:]}")
    elif owner not in (BORDER_FORCE, RECEIPT):
        raise click.ClickException("OWNER is border_force, receipt or airline:XX")
    warn_or_refuse()
    with transaction(db):
        kid = add_key(db, owner)
    click.echo(f"New current {owner} key {kid}; older keys are kept to open old reports.")


def init_app(app: Flask) -> None:
    app.cli.add_command(rotate_key_command)
