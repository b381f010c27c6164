"""The service's key pairs: Border Force recipient, airline security
recipients, and the receipt-signing key.

Private keys are PEM files `keys/<kid>.pem` in the instance folder (mode 0600,
PKCS#8, encrypted with `CREWREPORT_KEY_PASSPHRASE` when it is set); the
`service_key` table records whose each key is, of which suite, and which is
current. Rotating retires the old key but keeps its file: reports sealed to
it still open.

Suites (DESIGN.md section 3b): every recipient owner has a current `v1` key
(P-256) and a current `v2` key (X-Wing, whose file holds its two PKCS#8 parts);
the receipt key is `v1` only. A tablet seals to the `v2` keys when it can.
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

from . import audit, xwing
from .cli_text import TEXT
from .db import get_db, transaction
from .envelope import RecipientPrivateKey, recipient_jwk, suite_version, thumbprint
from .private_files import write_private
from .times import now

log = logging.getLogger(__name__)

BORDER_FORCE = "border_force"
RECEIPT = "receipt"
V1, V2 = "v1", "v2"  # the `suite` of a key: envelope version 1 (P-256) or 2 (X-Wing)
SUITES = (V1, V2)


def airline_owner(code: str) -> str:
    return f"airline:{code}"


class KeysUnavailable(click.ClickException):
    """The intake cannot work: a key is missing or cannot be read. A
    ClickException, so that an admin command ends with one clear line."""


@dataclass
class Keyring:
    """Every private key the service holds, loaded once per process."""

    private: dict[str, ec.EllipticCurvePrivateKey] = field(default_factory=dict)  # P-256 (v1)
    xwing: dict[str, xwing.PrivateKey] = field(default_factory=dict)  # X-Wing (v2)
    owner: dict[str, str] = field(default_factory=dict)
    suite: dict[str, str] = field(default_factory=dict)  # kid -> "v1" | "v2"
    # owner -> kid of its current P-256 (v1) key (the receipt key signs with it).
    current: dict[str, str] = field(default_factory=dict)
    # owner -> kid of its current X-Wing (v2) key, for owners that have one.
    current_v2: dict[str, str] = field(default_factory=dict)
    stamp: tuple[Any, ...] = ()

    def current_key(self, owner: str) -> ec.EllipticCurvePrivateKey:
        return self.private[self.current[owner]]

    def recipient_key(self, kid: str) -> RecipientPrivateKey:
        """The private key of recipient `kid`, of either suite; KeyError if not held."""
        return self.xwing[kid] if kid in self.xwing else self.private[kid]

    def held(self, kid: str) -> RecipientPrivateKey | None:
        """The private key `kid` of either suite, None if it is not held (any more)."""
        return self.xwing.get(kid) or self.private.get(kid)

    def text_key(self) -> str:
        """The kid officers' notes and reasons are sealed to: the current
        Border Force X-Wing key where there is one (post-quantum), else its
        P-256 key."""
        return self.current_v2.get(BORDER_FORCE) or self.current[BORDER_FORCE]

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


def warn_or_refuse(*, warn: bool = True) -> None:
    """For the commands that make keys or serve: the warning on stderr, or a
    clear refusal (exit status 1) when a passphrase is required and missing.
    `warn=False` only refuses (a command that may not write a key at all)."""
    try:
        warning = unencrypted_warning()
    except KeysUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    if warning and warn:
        click.secho(warning, err=True, fg="red", bold=True)


def log_unencrypted_warning() -> None:
    """The warning in a server process's log, unless `serve` already said it
    once on starting (KEY_WARNING_SHOWN): two workers need not repeat it."""
    if current_app.config.get("KEY_WARNING_SHOWN"):
        unencrypted_warning()  # still refuses when a passphrase is required
    elif (warning := unencrypted_warning()) is not None:
        log.warning(warning)


def write_private_key(key: RecipientPrivateKey, kid: str, key_dir: str,
                      passphrase: bytes | None) -> str:
    os.makedirs(key_dir, mode=0o700, exist_ok=True)
    if isinstance(key, xwing.PrivateKey):
        pem = xwing.private_key_to_pem(key, passphrase)
    else:
        encryption = (serialization.BestAvailableEncryption(passphrase) if passphrase
                      else serialization.NoEncryption())
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path = os.path.join(key_dir, f"{kid}.pem")
    write_private(path, pem, replace=True)
    return path


def read_private_key(kid: str, key_dir: str, passphrase: bytes | None,
                     suite: str = V1) -> RecipientPrivateKey:
    """The key `kid` of `suite`, checked against its kid; KeysUnavailable otherwise."""
    path = os.path.join(key_dir, f"{kid}.pem")
    key: Any
    try:
        with open(path, "rb") as f:
            data = f.read()
        if suite == V2:
            key = xwing.private_key_from_pem(data, passphrase)
        else:
            key = serialization.load_pem_private_key(data, password=passphrase)
    except FileNotFoundError:
        raise KeysUnavailable(f"private key file {path} is missing") from None
    except OSError as exc:  # not the service user's to read (a file made under sudo), a folder, ...
        raise KeysUnavailable(f"private key file {path} cannot be read ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise KeysUnavailable(f"private key file {path} cannot be read ({exc}); "
                              "is CREWREPORT_KEY_PASSPHRASE right?") from None
    if suite == V1 and (not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1"):
        raise KeysUnavailable(f"private key file {path} is not a P-256 key")
    if thumbprint(recipient_jwk(key.public_key())) != kid:
        raise KeysUnavailable(f"private key file {path} does not match its kid")
    return key


def new_key(suite: str) -> RecipientPrivateKey:
    return xwing.generate_private_key() if suite == V2 else ec.generate_private_key(ec.SECP256R1())


def add_key(db: sqlite3.Connection, owner: str, key: RecipientPrivateKey | None = None,
            suite: str | None = None) -> str:
    """Store a key pair for `owner` and make it its current key of that suite
    (the rotation step); the suite follows from the key when one is given.

    Inside the caller's transaction; the PEM is written before the row, so a
    row never points at a file that is not there.
    """
    check_passphrase(db)
    key = key or new_key(suite or V1)
    suite = f"v{suite_version(key)}"
    if owner == RECEIPT and suite != V1:
        raise ValueError("the receipt key signs: it is a P-256 (v1) key")
    jwk = recipient_jwk(key.public_key())
    kid = thumbprint(jwk)
    write_private_key(key, kid, _key_dir(), _passphrase())
    stamp = now()
    db.execute("UPDATE service_key SET retired_at = ? WHERE owner = ? AND suite = ? AND retired_at IS NULL",
               (stamp, owner, suite))
    db.execute("INSERT INTO service_key (kid, owner, suite, public_jwk, created_at) VALUES (?, ?, ?, ?, ?)",
               (kid, owner, suite, json.dumps(jwk), stamp))
    audit.record("key_added", actor="system", subject=f"key:{kid}", db=db, owner=owner, suite=suite)
    return kid


def check_passphrase(db: sqlite3.Connection) -> None:
    """The configured passphrase must open the keys already there before a new
    one is written with it: a command run without (or with another)
    CREWREPORT_KEY_PASSPHRASE would otherwise add a key the service cannot
    read beside the others, or an unencrypted one beside encrypted ones."""
    row = db.execute("SELECT kid FROM service_key WHERE owner = ? ORDER BY created_at DESC LIMIT 1",
                     (RECEIPT,)).fetchone()
    if row is not None:
        read_private_key(row["kid"], _key_dir(), _passphrase())


def ensure_keys(db: sqlite3.Connection) -> list[str]:
    """Create the Border Force and receipt keys if there are none yet, and
    the X-Wing (v2) keys an upgraded instance lacks."""
    made = []
    with transaction(db):
        for owner in (BORDER_FORCE, RECEIPT):
            if not current_kid(db, owner):
                made.append(add_key(db, owner))
    return made + add_missing_v2_keys(db)


def add_missing_v2_keys(db: sqlite3.Connection) -> list[str]:
    """Give every recipient owner with a current v1 key a v2 (X-Wing) key too.

    The upgrade step for instances made before version 2: old keys are left
    as they are (tablets still sealing to them keep being accepted).
    """
    made = []
    with transaction(db):
        owners = [r["owner"] for r in db.execute(
            "SELECT owner FROM service_key WHERE suite = ? AND retired_at IS NULL AND owner != ?"
            " ORDER BY owner != ?, owner", (V1, RECEIPT, BORDER_FORCE))]
        for owner in owners:
            if not current_kid(db, owner, V2):
                made.append(add_key(db, owner, suite=V2))
    return made


def current_kid(db: sqlite3.Connection, owner: str, suite: str = V1) -> str | None:
    row = db.execute("SELECT kid FROM service_key WHERE owner = ? AND suite = ? AND retired_at IS NULL",
                     (owner, suite)).fetchone()
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
        log_unencrypted_warning()  # KeysUnavailable when a passphrase is required
        ring = Keyring(stamp=stamp)
        for row in db.execute("SELECT kid, owner, suite, retired_at FROM service_key"):
            key = read_private_key(row["kid"], _key_dir(), _passphrase(), row["suite"])
            if isinstance(key, xwing.PrivateKey):
                ring.xwing[row["kid"]] = key
            else:
                ring.private[row["kid"]] = key
            ring.owner[row["kid"]] = row["owner"]
            ring.suite[row["kid"]] = row["suite"]
            if row["retired_at"] is None:
                (ring.current if row["suite"] == V1 else ring.current_v2)[row["owner"]] = row["kid"]
        for owner in (BORDER_FORCE, RECEIPT):
            if owner not in ring.current:
                raise KeysUnavailable(f"there is no current {owner} key "
                                      f"(run `flask --app crewreport demo` or `rotate-key {owner}`)")
        current_app.extensions["crewreport.keyring"] = ring
        return ring


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    return {"kid": row["kid"], "owner": row["owner"], "suite": row["suite"],
            "jwk": json.loads(row["public_jwk"])}


def recipients_for(db: sqlite3.Connection, airline: str | None) -> list[dict[str, Any]]:
    """Current recipient keys, each suite's in `rcpt` order (Border Force,
    then the airline's): the v1 keys first, so that a crew app older than
    version 2, which takes the first key of each owner, still finds P-256."""
    owners = [BORDER_FORCE] + ([airline_owner(airline)] if airline else [])
    found = []
    for suite in published_suites():
        for owner in owners:
            row = db.execute("SELECT * FROM service_key WHERE owner = ? AND suite = ? AND retired_at IS NULL",
                             (owner, suite)).fetchone()
            if row:
                found.append(_entry(row))
    return found


def published_suites() -> tuple[str, ...]:
    """The suites whose recipient keys tablets are told about: v1 only until
    an operator retires it from publication (PUBLISH_V1_KEYS = false)."""
    return SUITES if current_app.config.get("PUBLISH_V1_KEYS", True) else (V2,)


def published(db: sqlite3.Connection) -> dict[str, Any]:
    """The body of GET /api/v1/keys: current keys only, v1 before v2."""
    rows = [r for r in db.execute(
        "SELECT * FROM service_key WHERE retired_at IS NULL AND owner != ? "
        "ORDER BY suite, owner != ?, owner", (RECEIPT, BORDER_FORCE)) if r["suite"] in published_suites()]
    receipt = db.execute("SELECT * FROM service_key WHERE owner = ? AND retired_at IS NULL",
                         (RECEIPT,)).fetchone()
    return {
        "recipients": [_entry(r) for r in rows],
        "receipt_key": {"kid": receipt["kid"], "jwk": json.loads(receipt["public_jwk"])} if receipt else None,
    }


@click.command("rotate-key")
@click.argument("owner", type=TEXT)
@click.option("--suite", type=click.Choice(SUITES), default=V1, show_default=True,
              help="v1: the P-256 key; v2: the X-Wing (post-quantum) recipient key.")
@with_appcontext
def rotate_key_command(owner: str, suite: str) -> None:
    """Make a new current key for OWNER (border_force, receipt or airline:XX)."""
    db = get_db()
    if owner.startswith("airline:"):
        if not db.execute("SELECT 1 FROM airline WHERE code = ?", (owner[8:],)).fetchone():
            raise click.ClickException(f"no airline {owner[8:]}")
    elif owner not in (BORDER_FORCE, RECEIPT):
        raise click.ClickException("OWNER is border_force, receipt or airline:XX")
    if owner == RECEIPT and suite != V1:
        raise click.ClickException("the receipt key signs receipts: it is a v1 (P-256) key only")
    warn_or_refuse()
    with transaction(db):
        kid = add_key(db, owner, suite=suite)
    click.echo(f"New current {owner} {suite} key {kid}; older keys are kept to open old reports.")


def init_app(app: Flask) -> None:
    app.cli.add_command(rotate_key_command)
