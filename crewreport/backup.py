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

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from typing import Any

import click
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from flask import current_app
from flask.cli import with_appcontext

from . import audit, keys
from . import db as store
from .db import get_db
from .private_files import sync_folder, write_private
from .times import now
from .unavailable import store_condition

FORMAT = 1
MAGIC_SEALED = b"CRBACKUP-SEALED-1\n"  # then salt, nonce, AES-GCM(tar)
SALT_BYTES, NONCE_BYTES = 16, 12
SCRYPT = {"length": 32, "n": 2**15, "r": 8, "p": 1}  # about 32 MiB and 0.1 s per derivation
MAX_SEALED = 2**31 - 1 - 16  # one AES-GCM message; far above a store of a year of reports
STORE, SECRET, MANIFEST = "crewreport.sqlite", "secret_key", "MANIFEST.json"
KEY_MEMBER = re.compile(r"^keys/[A-Za-z0-9_-]{43}\.pem\Z")  # \Z: "$" also matches before a final line break
PARTIAL = re.compile(r"^(?P<name>.+)\.[0-9a-f]{12}\.partial\Z")  # private_files.write_private's aside


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
    """Nothing to lose: no store and nothing but the session secret that the
    app makes for itself on its first start, the keys folder (judged against
    the backup itself: `_keys_of_this_backup`) and the staging folder of a
    restore that did not finish (`_staging`)."""
    if any(os.path.exists(database + suffix) for suffix in ("", "-wal", "-shm")):
        return False
    others = set(os.listdir(instance)) - {SECRET, os.path.basename(key_dir)} if os.path.isdir(instance) else set()
    return not {name for name in others if not name.startswith(_staging_prefix(database))
                and not _secret_partial(os.path.join(instance, name))}


def _secret_partial(path: str) -> bool:
    """The secret as a killed restore was writing it aside (`write_private`)."""
    found = PARTIAL.match(os.path.basename(path))
    return bool(found and found["name"] == SECRET and os.path.isfile(path) and not os.path.islink(path))


def _leftovers(key_dir: str, secret: str) -> list[str]:
    """What a restore killed mid-write left aside (checked: `_empty_instance`, `_keys_of_this_backup`)."""
    folder = os.path.dirname(secret)
    found = [os.path.join(folder, n) for n in (os.listdir(folder) if os.path.isdir(folder) else [])
             if _secret_partial(os.path.join(folder, n))]
    if os.path.isdir(key_dir):
        found += [os.path.join(key_dir, n) for n in os.listdir(key_dir) if PARTIAL.match(n)]
    return found


def _keys_of_this_backup(key_dir: str, files: dict[str, bytes]) -> bool:
    """Every file in the keys folder is one of this backup's keys, byte for
    byte: none (a new instance), or those a restore of this same backup wrote
    before it was killed. Anything else may be the only copy of a key."""
    for name in os.listdir(key_dir) if os.path.isdir(key_dir) else []:
        partial = PARTIAL.match(name)  # one it was writing aside when killed: a beginning of the key
        path, content = os.path.join(key_dir, name), files.get(f"keys/{partial['name'] if partial else name}")
        if content is None or os.path.islink(path) or not os.path.isfile(path):
            return False
        with open(path, "rb") as f:
            found = f.read()
        if not (content.startswith(found) if partial else found == content):
            return False
    return True


def _staging_prefix(database: str) -> str:
    return f".{os.path.basename(database)}.restore-"


@contextlib.contextmanager
def _staging(database: str) -> Iterator[str]:
    """A new folder beside the store, on its filesystem, for everything a
    restore checks and prepares before it moves anything into place; locked
    while in use and removed afterwards, whatever happened. A restore killed
    outright leaves its folder (a copy of the store in it): the next one
    removes it, unless a restore still running holds it."""
    parent, prefix = os.path.dirname(os.path.abspath(database)), _staging_prefix(database)
    os.makedirs(parent, mode=0o700, exist_ok=True)
    for name in sorted(os.listdir(parent)):
        if name.startswith(prefix):
            leftover = os.path.join(parent, name)
            with _locked(leftover):
                shutil.rmtree(leftover)
            click.echo(f"Removed {leftover}, left by a restore that did not finish.", err=True)
    folder = tempfile.mkdtemp(prefix=prefix, dir=parent)  # 0700
    try:
        with _locked(folder):
            yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _locked(folder: str) -> Iterator[None]:
    """Hold `folder`'s flock (released when the process dies, however it dies)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupError(f"another restore into this folder is under way ({folder})") from None
        yield
    finally:
        os.close(fd)  # closing releases the flock


def _record_restore(path: str) -> int:
    """The `backup_restored` event, written into the staged store before it
    is moved into place: a store in place always names its restore, and a
    store that cannot take the event is never put there. Returns its reports."""
    conn = store.connect(path)
    try:
        audit.record("backup_restored", db=conn)
        count = int(conn.execute("SELECT COUNT(*) FROM report").fetchone()[0])
        # The WAL folded back in: one self-contained file to move (the server turns WAL on again).
        if conn.execute("PRAGMA journal_mode = DELETE").fetchone()[0] != "delete":
            raise BackupError("the restored store could not be made one self-contained file")
    finally:
        conn.close()
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return count


def _move_into_place(files: dict[str, bytes], staging: str, key_dir: str, secret: str, database: str) -> None:
    """The keys, the secret, then the store last, never over one: a store in
    place means a whole restore. On any failure what this wrote is taken back;
    what a kill leaves (keys byte for byte the backup's, its secret, no store)
    does not stop the restore from being run again."""
    written: list[str] = []
    previous: bytes | None = None  # the secret the folder had, put back on failure
    replaced = False
    for leftover in _leftovers(key_dir, secret):
        os.unlink(leftover)
        click.echo(f"Removed {leftover}, left by a restore that did not finish.", err=True)
    try:
        for name, content in files.items():
            target = os.path.join(key_dir, name[5:])
            if not name.startswith("keys/") or os.path.exists(target):  # there: this backup's own, checked
                continue
            write_private(target, content)
            written.append(target)
        if SECRET in files:  # over the one this start made: the backup's keeps sessions valid
            with contextlib.suppress(FileNotFoundError), open(secret, "rb") as f:
                previous = f.read()
            write_private(secret, files[SECRET], replace=True)
            replaced = True
        os.link(os.path.join(staging, STORE), database)  # never over a store, where a rename would be
        written.append(database)
        sync_folder(os.path.dirname(os.path.abspath(database)))
    except BaseException:
        for path in reversed(written):
            with contextlib.suppress(OSError):
                os.unlink(path)
        if replaced:  # a server started on the folder signs its cookies with the one it had
            with contextlib.suppress(OSError):
                if previous is None:
                    os.unlink(secret)
                else:
                    write_private(secret, previous, replace=True)
        raise


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
    database, key_dir, instance = config["DATABASE"], config["KEY_DIR"], current_app.instance_path
    not_empty = click.ClickException(f"the instance folder {instance} is not empty; restore only into a new, empty one")
    if not _empty_instance(database, key_dir, instance):
        raise not_empty
    with open(path, "rb") as f:
        data = f.read()
    passphrase = _passphrase()
    try:
        archive = unseal(data, passphrase)
        files, made = read_archive(archive), made_at(archive)
        if not _keys_of_this_backup(key_dir, files):
            raise not_empty
        with _staging(database) as staging:
            check_restorable(files, staging, passphrase)
            count = _record_restore(os.path.join(staging, STORE))
            _move_into_place(files, staging, key_dir, os.path.join(instance, SECRET), database)
    except (BackupError, keys.KeysUnavailable) as exc:
        raise click.ClickException(f"nothing was restored: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"nothing was restored: it could not be written to {instance}:"
                                   f" {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise click.ClickException("nothing was restored: the restored store could not take its audit event"
                                   f" ({store_condition(exc) or exc})") from None
    click.echo(f"Restored {count} reports and {sum(n.startswith('keys/') for n in files)} keys"
               f" into {instance}, as they were at {made}: reports received after that"
               " are not in this backup.")


def check_restorable(files: dict[str, bytes], tmp: str, passphrase: bytes | None) -> None:
    """Before anything is moved into the instance, on the very copies that
    will be: the store passes SQLite's integrity check and every key it names
    is in the backup and opens."""
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
