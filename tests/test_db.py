"""The store: migrations, `PRAGMA user_version`, idempotent `init-db`, pragmas,
and a store migrated step by step (with data in it) matching one built fresh."""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from crewreport import create_app
from crewreport import db as store
from crewreport.db import connect, get_db, migrate, migrations


@pytest.fixture
def bare_app(tmp_path: Path) -> Flask:
    """An app over an instance folder with no store in it yet."""
    return create_app({
        "TESTING": True, "SECRET_KEY": "test", "PASSWORD_HASH_FAST": True,
        "DATABASE": str(tmp_path / "crewreport.sqlite"), "KEY_DIR": str(tmp_path / "keys"),
    })


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate_to(conn: sqlite3.Connection, version: int, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Apply migrations only up to `version`, as an older release of the code would."""
    known = migrations()
    monkeypatch.setattr(store, "migrations", lambda: known[:version])
    try:
        return migrate(conn)
    finally:
        monkeypatch.setattr(store, "migrations", lambda: known)


def schema(conn: sqlite3.Connection) -> dict[str, Any]:
    """Everything that makes up the schema, in a form two stores can be compared by."""
    def norm(sql: str | None) -> str | None:
        return re.sub(r"\s+", " ", sql).strip() if sql else sql

    master = sorted(
        (r["type"], r["name"], r["tbl_name"], norm(r["sql"]))
        for r in conn.execute("SELECT * FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))
    tables = [name for kind, name, _, _ in master if kind == "table"]
    detail: dict[str, Any] = {}
    for t in tables:
        detail[t] = {
            "columns": [tuple(r) for r in conn.execute(f"PRAGMA table_xinfo('{t}')")],
            "foreign_keys": sorted(tuple(r) for r in conn.execute(f"PRAGMA foreign_key_list('{t}')")),
            "indexes": sorted(
                (tuple(i)[1:], [tuple(c) for c in conn.execute(f"PRAGMA index_xinfo('{i['name']}')")])
                for i in conn.execute(f"PRAGMA index_list('{t}')")),
        }
    return {"master": master, "tables": detail, "version": user_version(conn)}


def test_migrations_are_numbered_and_all_applied(tmp_path: Path) -> None:
    known = migrations()
    assert [n for n, _, _ in known] == list(range(1, len(known) + 1))
    assert all(re.fullmatch(r"\d{4}_[a-z0-9_]+\.sql", name) for _, name, _ in known)
    conn = connect(str(tmp_path / "s.sqlite"))
    applied = migrate(conn)
    assert applied == [name for _, name, _ in known]
    assert user_version(conn) == len(known)
    assert migrate(conn) == []


def test_init_db_twice_is_idempotent_and_keeps_data(bare_app: Flask) -> None:
    runner = bare_app.test_cli_runner()
    first = runner.invoke(args=["init-db"])
    assert first.exit_code == 0, first.output
    assert f"schema version {len(migrations())}" in first.output
    with bare_app.app_context():
        db = get_db()
        db.execute("INSERT INTO airline (code, name, created_at) VALUES ('QQ', 'Kept Air', '2026-01-01T00:00:00Z')")
        before = schema(db)
    second = runner.invoke(args=["init-db"])
    assert second.exit_code == 0, second.output
    assert "up to date" in second.output
    with bare_app.app_context():
        db = get_db()
        assert db.execute("SELECT name FROM airline WHERE code = 'QQ'").fetchone()[0] == "Kept Air"
        assert schema(db) == before


def test_stepwise_migration_matches_fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = connect(str(tmp_path / "fresh.sqlite"))
    migrate(fresh)
    stepped = connect(str(tmp_path / "stepped.sqlite"))
    for version in range(1, len(migrations()) + 1):
        assert len(migrate_to(stepped, version, monkeypatch)) == 1
        assert user_version(stepped) == version
    assert schema(stepped) == schema(fresh)


def seed_version_1(conn: sqlite3.Connection) -> None:
    """Rows in every table of schema version 1, as a deployed store would hold."""
    t = "2026-01-01T00:00:00Z"
    conn.execute("INSERT INTO airline VALUES ('ZZ', 'Demo Airways', ?)", (t,))
    conn.execute("INSERT INTO user (id, username, password_hash, role, airline, created_at)"
                 " VALUES (1, 'crew', '$argon2id$x', 'crew', 'ZZ', ?)", (t,))
    conn.execute("INSERT INTO login_failure (username, address, at) VALUES ('crew', '10.0.0.1', ?)", (t,))
    conn.execute("INSERT INTO service_key VALUES ('kid-bf', 'border_force', '{}', ?, NULL)", (t,))
    conn.execute("INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                 " VALUES ('dev-1', 1, 'ZZ', 'Tablet', '{}', 'kid-dev', ?)", (t,))
    conn.execute(
        "INSERT INTO report (id, reference, device_id, airline, flight, dep, arr, sta, urgency,"
        " urgency_rank, created, rcpt, envelope, envelope_sha256, received_at, receipt,"
        " receipt_signature, status_changed_at) VALUES ('r-1', 'ACD-EFG', 'dev-1', 'ZZ', 'ZZ1',"
        " 'CDG', 'LHR', ?, 'routine', 2, ?, '[]', '{}', 'abc', ?, 'rc', 'sg', ?)", (t, t, t, t))
    conn.execute("INSERT INTO intake_window VALUES ('10.0.0.1', '2026-01-01T00:00', 3)")
    conn.execute("INSERT INTO audit_event (at, actor, action, detail, prev_hash, hash)"
                 " VALUES (?, 'system', 'seed', '{}', ?, 'h1')", (t, "0" * 64))


def test_version_1_store_with_data_keeps_its_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conn = connect(str(tmp_path / "old.sqlite"))
    migrate_to(conn, 1, monkeypatch)
    seed_version_1(conn)
    tables = ("airline", "user", "service_key", "device", "report", "intake_window", "audit_event")
    before = {t: [tuple(r) for r in conn.execute(f"SELECT * FROM {t}")] for t in tables}
    migrate(conn)
    assert user_version(conn) == len(migrations())
    # Failed sign-ins are short-lived throttling state, and held typed
    # usernames in clear (sometimes a password): not carried over.
    assert conn.execute("SELECT count(*) FROM login_failure").fetchone()[0] == 0
    for t in tables:
        rows = conn.execute(f"SELECT * FROM {t}").fetchall()
        assert len(rows) == len(before[t]), t
        # Later migrations may add columns; the old columns keep their values.
        assert [tuple(r)[: len(before[t][0])] for r in rows] == before[t], t
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []


def test_connection_pragmas(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "p.sqlite"))
    migrate(conn)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO device (id, user_id, airline, label, public_jwk, kid, enrolled_at)"
                     " VALUES ('d', 999, 'QQ', 'x', '{}', 'k', 'now')")


def test_store_newer_than_code_is_refused(bare_app: Flask) -> None:
    runner = bare_app.test_cli_runner()
    assert runner.invoke(args=["init-db"]).exit_code == 0
    future = len(migrations()) + 1
    conn = connect(bare_app.config["DATABASE"])
    conn.execute(f"PRAGMA user_version = {future}")
    conn.close()
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 1
    assert f"schema version {future}" in result.output and "newer" in result.output
    assert "Traceback" not in result.output


def test_store_files_are_owner_only(app: Flask) -> None:
    """Password hashes and the audit log: not for other accounts on the host."""
    import os
    import stat
    with app.app_context():
        get_db().execute("SELECT 1")
    for suffix in ("", "-wal", "-shm"):
        path = app.config["DATABASE"] + suffix
        if os.path.exists(path):
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_an_officers_last_look_is_kept_as_the_whole_boards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """0008 keys the 'new since your last look' mark by view: the one mark an
    older store kept becomes the whole board's ('')."""
    known = store.migrations()
    per_view = next(i for i, (_, name, _) in enumerate(known) if name.endswith("_seen_per_view.sql"))
    conn = store.connect(str(tmp_path / "old.sqlite"))
    monkeypatch.setattr(store, "migrations", lambda: known[:per_view])
    store.migrate(conn)
    conn.execute("INSERT INTO user (id, username, password_hash, role, created_at)"
                 " VALUES (7, 'officer', '$argon2id$x', 'border_force', '2026-01-01T00:00:00Z')")
    conn.execute("INSERT INTO officer_seen (user_id, queue_seen_at) VALUES (7, '2026-11-30T10:00:00Z')")
    monkeypatch.undo()
    store.migrate(conn)
    assert [tuple(r) for r in conn.execute("SELECT user_id, view, queue_seen_at FROM officer_seen")] == [
        (7, "", "2026-11-30T10:00:00Z")]


def test_migration_0012_forgets_the_last_use_deliveries_wrote(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tablet's last use was written by its deliveries, which named the few
    that reported: 0012 forgets it for every tablet alike, and nothing else."""
    conn = connect(str(tmp_path / "old.sqlite"))
    migrate_to(conn, 1, monkeypatch)
    seed_version_1(conn)
    migrate_to(conn, 11, monkeypatch)
    conn.execute("UPDATE device SET last_seen_at = '2026-01-02T03:04:05Z'")
    before = [dict(r) for r in conn.execute("SELECT * FROM device")]
    assert migrate_to(conn, 12, monkeypatch) == ["0012_device_use.sql"]
    assert [dict(r) for r in conn.execute("SELECT * FROM device")] == [b | {"last_seen_at": None} for b in before]
