"""Backups that restore: `flask backup PATH` while the server takes reports,
`flask restore PATH` into an empty instance folder; the restored instance
opens every report it holds and its audit chain verifies."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from crewreport import create_app, keys, report
from crewreport.backup import FORMAT, MAGIC_SEALED, MANIFEST, STORE, BackupError, read_archive
from crewreport.db import get_db
from tests.helpers import header_of, store_refusing_writes
from tests.served import FIELDS, ROOT, ServedApp, body, enrolled_client, make_served, sta

PASSPHRASE = "a backup passphrase for tests"


def open_all(folder: Path, passphrase: str | None) -> dict[str, str]:
    """Every report in the instance at `folder`, decrypted with its own keys:
    report id -> narrative."""
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "DATABASE": str(folder / "crewreport.sqlite"),
                      "KEY_DIR": str(folder / "keys"), "KEY_PASSPHRASE": passphrase})
    with app.app_context():
        ring = keys.keyring()
        rows = get_db().execute("SELECT * FROM report").fetchall()
        return {row["id"]: report.open_stored(row, ring, keys.BORDER_FORCE)["narrative"] for row in rows}


def report_id(env: dict[str, Any]) -> str:
    return str(header_of(env)["id"])


def restored(folder: Path, backup: Path, env: dict[str, str] | None = None) -> ServedApp:
    target = ServedApp(folder, env=env, unset=() if env else ("CREWREPORT_KEY_PASSPHRASE",))
    result = target.flask("restore", str(backup))
    assert result.returncode == 0, result.stderr
    assert "Restored" in result.stdout
    # the operator is told how old what came back is
    assert re.search(r", as they were at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ: reports received after that are not"
                     r" in this backup\.", result.stdout), result.stdout
    return target


def test_backup_under_writes_restores_every_report(tmp_path: Path) -> None:
    served = make_served(tmp_path / "live")
    served.start()
    sent: dict[str, str] = {}  # id -> narrative, once receipted
    stop = threading.Event()
    errors: list[str] = []
    try:
        client = enrolled_client(served.url)

        def write() -> None:
            n = 0
            while not stop.is_set():
                env = client.envelope({**FIELDS, "sta": sta()}, body(f"Report {n} under backup."))
                status, answer = client.post_report(env)
                if status != 201:
                    errors.append(f"{status} {answer}")
                    return
                sent[report_id(env)] = f"Report {n} under backup."
                n += 1

        writer = threading.Thread(target=write)
        writer.start()
        while len(sent) < 20 and writer.is_alive():
            stop.wait(0.01)
        before = dict(sent)
        made = served.flask("backup", str(tmp_path / "backup.tar"))
        during = len(sent) - len(before)
        stop.set()
        writer.join(timeout=30)
        assert made.returncode == 0, made.stderr
        assert "NOT encrypted" in made.stdout and "UNENCRYPTED" in made.stderr
        assert not errors and during > 0, (errors, "reports should arrive while the backup runs")
        again = served.flask("backup", str(tmp_path / "backup.tar"))
        assert again.returncode != 0 and "never overwrites" in again.stderr
    finally:
        served.kill()

    target = restored(tmp_path / "restored", tmp_path / "backup.tar")
    opened = open_all(target.instance, None)
    assert before.items() <= opened.items()  # everything receipted before the backup, each opened
    assert opened.items() <= sent.items()  # and nothing that was not sent
    verify = target.flask("verify-audit")
    assert verify.returncode == 0, verify.stderr
    assert (target.instance / "secret_key").read_bytes() == (served.instance / "secret_key").read_bytes()
    # The restored instance starts and serves its store.
    target.env.update({"CREWREPORT_PASSWORD_HASH_FAST": "true"})
    target.start()
    try:
        with target.connect() as conn:
            count = conn.execute("SELECT COUNT(*) FROM report").fetchone()[0]
        assert count == len(opened)
    finally:
        target.kill()


def test_restore_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    served = make_served(tmp_path / "live")
    assert served.flask("backup", str(tmp_path / "b.tar")).returncode == 0
    before = sorted(p.name for p in served.instance.iterdir())
    result = served.flask("restore", str(tmp_path / "b.tar"))
    assert result.returncode != 0 and "not empty" in result.stderr
    assert sorted(p.name for p in served.instance.iterdir()) == before


def test_an_encrypted_backup_needs_its_passphrase(tmp_path: Path) -> None:
    env = {"CREWREPORT_KEY_PASSPHRASE": PASSPHRASE}
    served = make_served(tmp_path / "live", env=env)
    served.start()
    try:
        client = enrolled_client(served.url)
        envs = [client.envelope({**FIELDS, "sta": sta()}, body(f"Sealed backup {i}.")) for i in range(3)]
        assert all(client.post_report(e)[0] == 201 for e in envs)
    finally:
        served.kill()
    backup = tmp_path / "sealed.bin"
    made = served.flask("backup", str(backup))
    assert made.returncode == 0 and "encrypted with the key passphrase" in made.stdout, made.stderr
    data = backup.read_bytes()
    assert data.startswith(MAGIC_SEALED)
    assert b"SQLite format 3" not in data and b"PRIVATE KEY" not in data and b"Sealed backup" not in data
    assert oct(backup.stat().st_mode & 0o777) == "0o600"

    for wrong in ({}, {"CREWREPORT_KEY_PASSPHRASE": "not the passphrase"}):
        target = ServedApp(tmp_path / "wrong", env=wrong, unset=("CREWREPORT_KEY_PASSPHRASE",) if not wrong else ())
        result = target.flask("restore", str(backup))
        assert result.returncode != 0 and ("passphrase" in result.stderr), result.stderr
        assert not (target.instance / "crewreport.sqlite").exists()
        assert not (target.instance / "keys").exists() or not any((target.instance / "keys").iterdir())

    target = restored(tmp_path / "right", backup, env=env)
    opened = open_all(target.instance, PASSPHRASE)
    assert opened == {report_id(e): f"Sealed backup {i}." for i, e in enumerate(envs)}
    assert target.flask("verify-audit").returncode == 0


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_damaged_backup_restores_nothing(tmp_path: Path, damage: str) -> None:
    served = make_served(tmp_path / "live")
    backup = tmp_path / "b.tar"
    assert served.flask("backup", str(backup)).returncode == 0
    data = bytearray(backup.read_bytes())
    if damage == "truncate":
        data = data[: len(data) // 2]
    else:
        data[2048] ^= 0xFF  # inside the first member's contents
    backup.write_bytes(bytes(data))
    target = ServedApp(tmp_path / "target", unset=("CREWREPORT_KEY_PASSPHRASE",))
    result = target.flask("restore", str(backup))
    assert result.returncode != 0 and "nothing was restored" in result.stderr, result.stderr
    assert not (target.instance / "crewreport.sqlite").exists()


def test_a_leftover_partial_file_never_blocks_a_backup_and_a_failed_write_says_why(
        app: Flask, runner: FlaskCliRunner, tmp_path: Path, monkeypatch: Any) -> None:
    """A crashed run's `.partial` blocked every later backup with a traceback; a failed write leaves nothing."""
    from crewreport import private_files

    with app.app_context():
        keys.ensure_keys(get_db())
    out = tmp_path / "backups"
    out.mkdir()
    (out / "b.tar.partial").write_bytes(b"left by a backup that crashed")
    made = runner.invoke(args=["backup", str(out / "b.tar")])
    assert made.exit_code == 0, made.output
    assert (out / "b.tar").stat().st_size > 0

    def disk_full(*args: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(private_files.os, "link", disk_full)  # the backup's last step into place
    failed = runner.invoke(args=["backup", str(out / "c.tar")])
    assert failed.exit_code == 1 and not isinstance(failed.exception, OSError)
    assert f"the backup could not be written to {out / 'c.tar'}: No space left on device" in failed.output
    assert sorted(p.name for p in out.iterdir()) == ["b.tar", "b.tar.partial"]


def test_a_key_member_whose_name_ends_in_a_line_break_is_refused() -> None:
    """A hand-made archive: `$` would let "keys/NAME.pem\\n" through and write a key file of that name."""
    files = {STORE: b"store", "keys/" + "k" * 43 + ".pem\n": b"key"}
    files[MANIFEST] = json.dumps({"format": FORMAT, "files": {
        name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}).encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BackupError, match="unexpected member"):
        read_archive(buffer.getvalue())


def test_a_backup_the_audit_trail_cannot_name_is_not_left_behind(
        app: Flask, runner: FlaskCliRunner, tmp_path: Path) -> None:
    """A copy of the store and the keys is an event the audit trail must hold:
    a store that cannot take that row (full, read-only) keeps no backup either."""
    with app.app_context():
        keys.ensure_keys(get_db())
    out = tmp_path / "backups"
    out.mkdir()
    path = out / "b.tar"
    with store_refusing_writes("query_only = 1"):
        failed = runner.invoke(args=["backup", str(path)])
    assert failed.exit_code == 1 and "the store cannot take writes (SQLITE_READONLY)" in failed.output
    assert list(out.iterdir()) == []
    assert runner.invoke(args=["backup", str(path)]).exit_code == 0 and path.exists()


def started_on(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """The app started on the instance folder `folder`, as `flask` does: the
    start makes the folder and its session secret."""
    monkeypatch.setenv("CREWREPORT_INSTANCE", str(folder))
    return create_app({"TESTING": True, "DATABASE": str(folder / STORE), "KEY_DIR": str(folder / "keys")})


@pytest.fixture
def backup_file(app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A backup of the test store, its keys and a session secret."""
    source = started_on(tmp_path, monkeypatch)  # the test store's folder, now with a secret
    path = tmp_path / "b.tar"
    made = source.test_cli_runner().invoke(args=["backup", str(path)])
    assert made.exit_code == 0, made.output
    assert {"secret_key", STORE} <= set(read_archive(path.read_bytes()))
    return path


def assert_restored_whole(target: Path, source: Path, output: str) -> None:
    """`target` holds the store, every key and the secret of `source`, and the
    audit trail names the restore once."""
    assert "Restored" in output, output
    assert (target / STORE).read_bytes()[:16] == b"SQLite format 3\x00"
    assert sorted(p.name for p in (target / "keys").iterdir()) == sorted(p.name for p in (source / "keys").iterdir())
    for key in (source / "keys").iterdir():
        assert (target / "keys" / key.name).read_bytes() == key.read_bytes()
        assert oct((target / "keys" / key.name).stat().st_mode & 0o777) == "0o600"
    assert (target / "secret_key").read_bytes() == (source / "secret_key").read_bytes()
    assert oct((target / STORE).stat().st_mode & 0o777) == "0o600"
    assert not [p.name for p in target.iterdir() if p.name not in ("keys", "secret_key", STORE)]
    conn = sqlite3.connect(target / STORE)
    try:
        assert conn.execute("SELECT COUNT(*) FROM audit_event WHERE action = 'backup_restored'").fetchone()[0] == 1
    finally:
        conn.close()


def assert_nothing_restored(target: Path) -> None:
    """Nothing a started server could take for a store, no key: only the
    session secret every start makes (and a keys folder left empty)."""
    assert sorted(p.name for p in target.iterdir() if p.name != "keys") == ["secret_key"], list(target.iterdir())
    assert not (target / "keys").exists() or list((target / "keys").iterdir()) == []


def fail_moving_the_store(monkeypatch: pytest.MonkeyPatch, target: Path) -> None:
    """The last step of a restore, the store's move into place, fails as on a
    full disk (a folder that needs another block for the new name)."""
    for name in ("link", "rename", "replace"):
        real = getattr(os, name)

        def failing(src: Any, dst: Any, *args: Any, real: Any = real, **kwargs: Any) -> Any:
            if os.fspath(dst) == str(target / STORE):
                raise OSError(errno.ENOSPC, "No space left on device")
            return real(src, dst, *args, **kwargs)

        monkeypatch.setattr(os, name, failing)


@pytest.mark.parametrize("failure", ["the store's move into place", "the audit event"])
def test_a_restore_that_fails_part_way_leaves_nothing_and_can_be_run_again(
        backup_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str) -> None:
    """A restore that failed after writing the keys and the secret left them
    behind: the folder was no longer empty, so running it again was refused
    and the operator had to clean up by hand (and a store in place without
    its `backup_restored` event could be served)."""
    target = tmp_path / "target"
    app = started_on(target, monkeypatch)
    runner = app.test_cli_runner()
    if failure == "the audit event":
        with store_refusing_writes("query_only = 1"):
            failed = runner.invoke(args=["restore", str(backup_file)])
    else:
        with monkeypatch.context() as patched:
            fail_moving_the_store(patched, target)
            failed = runner.invoke(args=["restore", str(backup_file)])
    assert failed.exit_code == 1 and not isinstance(failed.exception, OSError), failed.output
    assert "nothing was restored" in failed.output, failed.output
    assert_nothing_restored(target)

    again = runner.invoke(args=["restore", str(backup_file)])
    assert again.exit_code == 0, again.output
    assert_restored_whole(target, tmp_path, again.output)
    assert runner.invoke(args=["verify-audit"]).exit_code == 0


KILLED_MOVING_THE_STORE = """
import os, signal, sys
for name in ("link", "rename", "replace"):
    def killed(src, dst, *args, real=getattr(os, name), **kwargs):
        if os.fspath(dst) == os.path.join(os.environ["CREWREPORT_INSTANCE"], "crewreport.sqlite"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *args, **kwargs)
    setattr(os, name, killed)
from flask.cli import main
sys.argv = ["flask", "--app", "crewreport", "restore", sys.argv[1]]
main()
"""


def test_a_restore_killed_before_the_store_is_in_place_can_be_run_again(
        backup_file: Path, tmp_path: Path) -> None:
    """Killed (SIGKILL, no clean-up) at its last step: no store for a server
    to serve, and running the restore again finishes it."""
    target = tmp_path / "target"
    env = {**os.environ, "CREWREPORT_INSTANCE": str(target)}
    env.pop("CREWREPORT_KEY_PASSPHRASE", None)
    killed = subprocess.run([sys.executable, "-c", KILLED_MOVING_THE_STORE, str(backup_file)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (target / STORE).exists()
    again = ServedApp(target, unset=("CREWREPORT_KEY_PASSPHRASE",)).flask("restore", str(backup_file))
    assert again.returncode == 0, again.stderr
    assert "left by a restore that did not finish" in again.stderr  # its copy of the store, in clear
    assert_restored_whole(target, tmp_path, again.stdout)


def test_a_restore_never_takes_the_folder_of_one_still_running(
        backup_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A staging folder is only removed as a killed restore's leftover when
    no restore holds it."""
    target = tmp_path / "target"
    app = started_on(target, monkeypatch)
    running = target / ".crewreport.sqlite.restore-running"
    running.mkdir()
    fd = os.open(running, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        refused = app.test_cli_runner().invoke(args=["restore", str(backup_file)])
    finally:
        os.close(fd)
    assert refused.exit_code == 1 and "another restore into this folder is under way" in refused.output
    assert running.is_dir() and not (target / STORE).exists()


def test_a_restore_whose_store_cannot_be_moved_puts_the_secret_back(
        backup_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The secret is replaced before the store is linked; a failed link took
    back the keys but left the backup's secret over the one the folder had,
    which a server already started there still signs its cookies with."""
    target = tmp_path / "target"
    app = started_on(target, monkeypatch)
    own = (target / "secret_key").read_bytes()
    assert own != (tmp_path / "secret_key").read_bytes()
    with monkeypatch.context() as patched:
        fail_moving_the_store(patched, target)
        failed = app.test_cli_runner().invoke(args=["restore", str(backup_file)])
    assert failed.exit_code == 1 and "nothing was restored" in failed.output, failed.output
    assert_nothing_restored(target)
    assert (target / "secret_key").read_bytes() == own
    assert oct((target / "secret_key").stat().st_mode & 0o777) == "0o600"


KILLED_WRITING = """
import os, signal, sys
target = sys.argv[2]
for name in ("link", "rename", "replace"):
    def killed(src, dst, *args, real=getattr(os, name), **kwargs):
        if os.path.dirname(os.fspath(dst)) == os.path.join(os.environ["CREWREPORT_INSTANCE"], target) \\
                or os.fspath(dst) == os.path.join(os.environ["CREWREPORT_INSTANCE"], target):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *args, **kwargs)
    setattr(os, name, killed)
from flask.cli import main
sys.argv = ["flask", "--app", "crewreport", "restore", sys.argv[1]]
main()
"""


@pytest.mark.parametrize("writing", ["keys", "secret_key"])
def test_a_restore_killed_while_writing_a_key_or_the_secret_can_be_run_again(
        backup_file: Path, tmp_path: Path, writing: str) -> None:
    """Killed between a file's write aside (`NAME.<hex>.partial`) and its
    move into place: the leftover made the folder look not empty, and the
    restore could not be run again without cleaning up by hand."""
    target = tmp_path / "target"
    env = {**os.environ, "CREWREPORT_INSTANCE": str(target)}
    env.pop("CREWREPORT_KEY_PASSPHRASE", None)
    killed = subprocess.run([sys.executable, "-c", KILLED_WRITING, str(backup_file), writing],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p for p in target.rglob("*.partial")], list(target.rglob("*"))
    again = ServedApp(target, unset=("CREWREPORT_KEY_PASSPHRASE",)).flask("restore", str(backup_file))
    assert again.returncode == 0, again.stderr
    assert_restored_whole(target, tmp_path, again.stdout)
