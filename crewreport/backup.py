"""Backups that restore (DESIGN.md section 7): `backup PATH`, `restore PATH`.

A backup is one file: a tar archive of the store (copied with SQLite's online
backup API, so it is consistent while the server keeps taking reports), every
private key file and the session secret, with a manifest of their SHA-256.
When CREWREPORT_KEY_PASSPHRASE is set the archive is sealed with it: scrypt
derives an AES-256-GCM key from the passphrase and a random salt (the key
files inside are encrypted with the same passphrase besides). Without a
passphrase it is written in clear, with the same loud warning as the keys.

The store is copied before the keys: keys are written before the row that
names them and never deleted, so every key the copied store names is there.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import sqlite3
import tarfile
import tempfile
from typing import Any

import click
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from flask import current_app
from flask.cli import with_appcontext

from . import audit, keys
from .db import get_db
from .private_files import write_private
from .times import now

FORMAT = 1
MAGIC_SEALED = b"CRBACKUP-SEALED-1\n"  # then salt, nonce, AES-GCM(tar)
SALT_BYTES, NONCE_BYTES = 16, 12
SCRYPT = {"length": 32, "n": 2**15, "r": 8, "p": 1}  # about 32 MiB and 0.1 s per derivation
MAX_SEALED = 2**31 - 1 - 16  # one AES-GCM message; far above a store of a year of reports
STORE, SECRET, MANIFEST = "crewreport.sqlite", "secret_key", "MANIFEST.json"
KEY_MEMBER = re.compile(r"^keys/[A-Za-z0-9_-]{43}\.pem\Z")  # \Z: "$" also matches before a final line break


class BackupError(Exception):
    """A backup or restore refused, with a message for the operator."""


def _sealing_key(passphrase: bytes, salt: bytes) -> AESGCM:
    return AESGCM(Scrypt(salt=salt, **SCRYPT).derive(passphrase))


def seal(archive: bytes, passphrase: bytes) -> bytes:
    if len(archive) > MAX_SEALED:
        raise BackupError("the store is too large for one sealed backup (2 GiB)")
    salt, nonce = os.urandom(SALT_BYTES), os.urandom(NONCE_BYTES)
    return MAGIC_SEALED + salt + nonce + _sealing_key(passphrase, salt).encrypt(nonce, archive, MAGIC_SEALED)


def unseal(data: bytes, passphrase: bytes | None) -> bytes:
    if not data.startswith(MAGIC_SEALED):
        return data  # written without a passphrase: a plain tar archive
    if passphrase is None:
        raise BackupError("this backup is encrypted: set CREWREPORT_KEY_PASSPHRASE to the passphrase it was made with")
    head = len(MAGIC_SEALED)
    salt, nonce = data[head:head + SALT_BYTES], data[head + SALT_BYTES:head + SALT_BYTES + NONCE_BYTES]
    try:
        return _sealing_key(passphrase, salt).decrypt(nonce, data[head + SALT_BYTES + NONCE_BYTES:], MAGIC_SEALED)
    except InvalidTag:
        raise BackupError("the backup cannot be opened: wrong passphrase, or the file is damaged") from None


def _store_copy(database: str) -> bytes:
    """A consistent copy of the live store, taken while others write to it."""
    with tempfile.TemporaryDirectory() as tmp:
        target = os.path.join(tmp, STORE)
        source = sqlite3.connect(database, timeout=30)
        copy = sqlite3.connect(target)
        try:
            source.backup(copy)  # all pages in one step: one snapshot of the WAL
            copy.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
        finally:
            copy.close()
            source.close()
        with open(target, "rb") as f:
            return f.read()


def make_archive(database: str, key_dir: str, secret_path: str) -> bytes:
    files = {STORE: _store_copy(database)}
    for name in sorted(os.listdir(key_dir)) if os.path.isdir(key_dir) else []:
        if KEY_MEMBER.match(f"keys/{name}"):
            with open(os.path.join(key_dir, name), "rb") as f:
                files[f"keys/{name}"] = f.read()
    if os.path.exists(secret_path):
        with open(secret_path, "rb") as f:
            files[SECRET] = f.read()
    manifest = {"format": FORMAT, "created_at": now(),
                "files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
    files[MANIFEST] = json.dumps(manifest, indent=1).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def read_archive(archive: bytes) -> dict[str, bytes]:
    """The members of a backup, checked against its manifest; only the names
    a backup has, never a path outside the instance folder."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
            files = {}
            for member in tar.getmembers():
                if not member.isfile() or not (member.name in (STORE, SECRET, MANIFEST)
                                               or KEY_MEMBER.match(member.name)):
                    raise BackupError(f"unexpected member {member.name!r} in the backup")
                extracted = tar.extractfile(member)
                if extracted is None:  # only regular files were let through above
                    raise BackupError(f"unreadable member {member.name!r} in the backup")
                files[member.name] = extracted.read()
        manifest = json.loads(files.pop(MANIFEST))
    except (tarfile.TarError, KeyError, ValueError) as exc:
        raise BackupError(f"not a crewreport backup ({exc})") from None
    if manifest.get("format") != FORMAT or set(manifest.get("files", {})) != set(files) or STORE not in files:
        raise BackupError("the backup's manifest does not match its contents")
    for name, data in files.items():
        if hashlib.sha256(data).hexdigest() != manifest["files"][name]:
            raise BackupError(f"{name} in the backup is damaged (checksum)")
    return files


def made_at(archive: bytes) -> str:
    """When a backup (already checked by read_archive) was made, from its manifest."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as tar:
        member = tar.extractfile(MANIFEST)
        return str(json.loads(member.read()).get("created_at", "an unknown time")) if member else "an unknown time"


def _empty_instance(database: str, key_dir: str, instance: str) -> bool:
    """Nothing to lose: no store, no keys, and nothing but the session secret
    that the app makes for itself on its first start."""
    if any(os.path.exists(database + suffix) for suffix in ("", "-wal", "-shm")):
        return False
    if os.path.isdir(key_dir) and os.listdir(key_dir):
        return False
    others = set(os.listdir(instance)) - {SECRET, os.path.basename(key_dir)} if os.path.isdir(instance) else set()
    return not others


def _passphrase() -> bytes | None:
    value = current_app.config.get("KEY_PASSPHRASE")
    return value.encode("utf-8") if isinstance(value, str) and value else None


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, writable=True))
@with_appcontext
def backup_command(path: str) -> None:
    """Write a consistent copy of the store, keys and session secret to PATH."""
    if os.path.exists(path):
        raise click.ClickException(f"{path} exists; a backup never overwrites a file")
    keys.warn_or_refuse()
    config = current_app.config
    archive = make_archive(config["DATABASE"], config["KEY_DIR"], os.path.join(current_app.instance_path, SECRET))
    passphrase = _passphrase()
    try:
        data = seal(archive, passphrase) if passphrase else archive
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        write_private(path, data)
    except OSError as exc:
        raise click.ClickException(f"the backup could not be written to {path}: {exc.strerror or exc}") from None
    files = read_archive(archive)
    try:
        audit.record("backup_made", db=get_db(), files=len(files))
    except BaseException:
        os.remove(path)  # no copy of the store and keys that the audit trail does not name
        raise
    click.echo(f"Backup of {len(files) - 1} key and secret files and the store written to {path}"
               f" ({'encrypted with the key passphrase' if passphrase else 'NOT encrypted'}).")


@click.command("restore")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@with_appcontext
def restore_command(path: str) -> None:
    """Bring back a backup from PATH into an empty instance folder."""
    config = current_app.config
    if not _empty_instance(config["DATABASE"], config["KEY_DIR"], current_app.instance_path):
        raise click.ClickException(f"the instance folder {current_app.instance_path} is not empty; "
                                   "restore only into a new, empty one")
    with open(path, "rb") as f:
        data = f.read()
    passphrase = _passphrase()
    try:
        archive = unseal(data, passphrase)
        files, made = read_archive(archive), made_at(archive)
        with tempfile.TemporaryDirectory() as tmp:
            check_restorable(files, tmp, passphrase)
    except (BackupError, keys.KeysUnavailable) as exc:
        raise click.ClickException(f"nothing was restored: {exc}") from None
    for name, content in files.items():
        if name.startswith("keys/"):
            write_private(os.path.join(config["KEY_DIR"], name[5:]), content)
    if SECRET in files:
        secret = os.path.join(current_app.instance_path, SECRET)
        if os.path.exists(secret):
            os.remove(secret)  # the one this start made; the backup's keeps sessions valid
        write_private(secret, files[SECRET])
    write_private(config["DATABASE"], files[STORE])
    db = get_db()
    audit.record("backup_restored", db=db)
    count = db.execute("SELECT COUNT(*) FROM report").fetchone()[0]
    click.echo(f"Restored {count} reports and {sum(n.startswith('keys/') for n in files)} keys"
               f" into {current_app.instance_path}, as they were at {made}: reports received after that"
               " are not in this backup.")


def check_restorable(files: dict[str, bytes], tmp: str, passphrase: bytes | None) -> None:
    """Before anything is written to the instance: the store passes SQLite's
    integrity check and every key it names is in the backup and opens."""
    write_private(os.path.join(tmp, STORE), files[STORE])
    key_dir = os.path.join(tmp, "keys")
    for name, content in files.items():
        if name.startswith("keys/"):
            write_private(os.path.join(key_dir, name[5:]), content)
    conn = sqlite3.connect(os.path.join(tmp, STORE))
    try:
        if conn.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the store in the backup fails SQLite's integrity check")
        # A backup made before envelope version 2 has no suite column: all its keys are P-256.
        has_suite = any(col[1] == "suite" for col in conn.execute("PRAGMA table_info(service_key)"))
        query = "SELECT kid, suite FROM service_key" if has_suite else "SELECT kid, 'v1' FROM service_key"
        kids = [(row[0], row[1]) for row in conn.execute(query)]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the store in the backup cannot be read ({exc})") from None
    finally:
        conn.close()
    for kid, suite in kids:
        keys.read_private_key(kid, key_dir, passphrase, suite)


def commands() -> list[Any]:
    return [backup_command, restore_command]
