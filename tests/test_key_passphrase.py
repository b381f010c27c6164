"""Private keys without a passphrase: a loud warning wherever keys are made
or the service starts, and no start at all when a passphrase is required."""
from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from crewreport import create_app, keys
from tests.served import ServedApp

Make = Callable[..., dict[str, Any]]


def test_loading_unencrypted_keys_logs_a_warning(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crewreport.keys"), app.app_context():
        keys.keyring()
    assert "UNENCRYPTED" in caplog.text and "CREWREPORT_KEY_PASSPHRASE" in caplog.text


def test_required_passphrase_missing_refuses_the_intake(app: Flask, client: FlaskClient, make_envelope: Make,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    app.config["REQUIRE_KEY_PASSPHRASE"] = True
    resp = client.post("/api/v1/reports", json=make_envelope())
    assert resp.status_code == 503 and resp.get_json()["error"]["code"] == "service_unavailable"
    assert "CREWREPORT_REQUIRE_KEY_PASSPHRASE is set but CREWREPORT_KEY_PASSPHRASE is not" in caplog.text


def test_commands_that_make_keys_warn(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys")})
    result = app.test_cli_runner().invoke(args=["demo", "--password", "pw-for-tests"])
    assert result.exit_code == 0, result.output
    assert "UNENCRYPTED" in result.stderr and "UNENCRYPTED" not in result.stdout
    for command in (["create-airline", "QQ", "Q Air"], ["rotate-key", "border_force"]):
        result = app.test_cli_runner().invoke(args=command)
        assert result.exit_code == 0 and "UNENCRYPTED" in result.stderr, result.output


def test_commands_that_make_keys_refuse_when_a_passphrase_is_required(tmp_path: Path) -> None:
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys"),
                      "REQUIRE_KEY_PASSPHRASE": True})
    for command in (["demo"], ["create-airline", "QQ", "Q Air"], ["rotate-key", "border_force"]):
        result = app.test_cli_runner().invoke(args=command)
        assert result.exit_code == 1, result.output
        assert "CREWREPORT_REQUIRE_KEY_PASSPHRASE is set" in result.output
    assert not os.path.exists(tmp_path / "keys") or not os.listdir(tmp_path / "keys")
    app.config["KEY_PASSPHRASE"] = "a passphrase"
    result = app.test_cli_runner().invoke(args=["demo", "--password", "pw-for-tests"])
    assert result.exit_code == 0 and "UNENCRYPTED" not in result.output, result.output


def test_serve_refuses_to_start_without_a_required_passphrase(tmp_path: Path) -> None:
    served = ServedApp(tmp_path, env={"CREWREPORT_REQUIRE_KEY_PASSPHRASE": "true"},
                       unset=("CREWREPORT_KEY_PASSPHRASE",))
    result = served.flask("serve", "--port", str(served.port), timeout=30)
    assert result.returncode == 1
    assert "CREWREPORT_REQUIRE_KEY_PASSPHRASE is set but CREWREPORT_KEY_PASSPHRASE is not" in result.stderr


def test_serve_warns_at_start_without_a_passphrase(tmp_path: Path) -> None:
    served = ServedApp(tmp_path, env={"CREWREPORT_PASSWORD_HASH_FAST": "true"}, unset=("CREWREPORT_KEY_PASSPHRASE",))
    assert served.flask("demo", "--password", "pw-for-tests").returncode == 0
    served.start()
    try:
        for _ in range(4):  # both workers load the keys (the intake's 503 or a key list needs them)
            urllib.request.urlopen(served.url + "/api/v1/keys", timeout=10).close()
        log = served.log_path.read_text()
    finally:
        served.kill()
    assert log.count("UNENCRYPTED") == 1, log  # said once by `serve`, not again by each worker
