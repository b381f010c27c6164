"""Private keys without a passphrase: a loud warning wherever keys are made
or the service starts, and no start at all when a passphrase is required."""
from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
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


def test_the_warning_is_red_and_bold_on_a_terminal(app: Flask) -> None:
    """The warning is meant to be loud: on a terminal it is the only red, bold
    text a command that makes keys prints."""
    with app.app_context():
        warning = keys.unencrypted_warning()
    assert warning is not None
    result = app.test_cli_runner().invoke(args=["rotate-key", "border_force"], color=True)
    assert result.exit_code == 0, result.output
    assert result.stderr == click.style(warning, fg="red", bold=True) + "\n"


def test_demo_run_again_makes_no_key_and_does_not_warn(tmp_path: Path) -> None:
    """`demo` only refuses up front (warn=False); it warns once it has written
    keys, so a second run over the same folder, which writes none, says nothing."""
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys")})
    first = app.test_cli_runner().invoke(args=["demo", "--password", "pw-for-tests"])
    assert first.exit_code == 0 and first.stderr.count("UNENCRYPTED") == 1, first.output
    again = app.test_cli_runner().invoke(args=["demo", "--password", "pw-for-tests"])
    assert again.exit_code == 0, again.output
    assert again.stderr == ""


def test_with_a_passphrase_commands_that_make_keys_say_nothing_on_stderr(tmp_path: Path) -> None:
    """No warning is due, and none is printed: not even an empty line."""
    app = create_app({"TESTING": True, "SECRET_KEY": "t", "PASSWORD_HASH_FAST": True,
                      "DATABASE": str(tmp_path / "s.sqlite"), "KEY_DIR": str(tmp_path / "keys"),
                      "KEY_PASSPHRASE": "a passphrase"})
    for command in (["demo", "--password", "pw-for-tests"], ["create-airline", "QQ", "Q Air"],
                    ["rotate-key", "border_force"]):
        result = app.test_cli_runner().invoke(args=command)
        assert result.exit_code == 0, result.output
        assert result.stderr == ""


def test_a_worker_started_by_serve_does_not_log_the_warning_again(
        app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    """`serve` warned on starting (KEY_WARNING_SHOWN): its workers load the keys
    without repeating it, but still refuse when a passphrase is required."""
    app.config["KEY_WARNING_SHOWN"] = True
    with caplog.at_level(logging.WARNING, logger="crewreport.keys"), app.app_context():
        keys.keyring()
    assert "UNENCRYPTED" not in caplog.text
    app.config["REQUIRE_KEY_PASSPHRASE"] = True
    app.extensions.pop("crewreport.keyring", None)
    with app.app_context(), pytest.raises(keys.KeysUnavailable, match="CREWREPORT_REQUIRE_KEY_PASSPHRASE is set"):
        keys.keyring()


def test_the_warning_and_the_refusal_word_for_word(app: Flask) -> None:
    """What an operator reads at start-up and from every command that makes
    keys: which folder, why it matters, and the two settings that fix it."""
    key_dir = app.config["KEY_DIR"]
    with app.app_context():
        warning = keys.unencrypted_warning()
    assert warning == (
        f"WARNING: private keys in {key_dir} are written and kept UNENCRYPTED: whoever can read that folder "
        "or a copy of it can open every report. Set CREWREPORT_KEY_PASSPHRASE (and "
        "CREWREPORT_REQUIRE_KEY_PASSPHRASE=true to refuse to run without one).")
    app.config["REQUIRE_KEY_PASSPHRASE"] = True
    result = app.test_cli_runner().invoke(args=["rotate-key", "border_force"])
    assert result.exit_code == 1
    assert result.stderr == ("Error: CREWREPORT_REQUIRE_KEY_PASSPHRASE is set but CREWREPORT_KEY_PASSPHRASE is "
                             "not: refusing to write or use private keys unencrypted\n")


def test_a_passphrase_in_config_py_that_is_not_text_is_refused_in_words(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The instance's config.py is Python: `KEY_PASSPHRASE = 20250101` is a
    number, and the operator is told to make it text rather than have keys
    written in clear or a traceback."""
    monkeypatch.setenv("CREWREPORT_INSTANCE", str(tmp_path))
    monkeypatch.delenv("CREWREPORT_KEY_PASSPHRASE", raising=False)
    (tmp_path / "config.py").write_text("KEY_PASSPHRASE = 20250101\nPASSWORD_HASH_FAST = True\n", "utf-8")
    app = create_app()
    assert app.config["KEY_PASSPHRASE"] == 20250101
    result = app.test_cli_runner().invoke(args=["demo", "--password", "pw-for-tests"])
    assert result.exit_code == 1
    assert result.stderr == "Error: KEY_PASSPHRASE must be text\n"
    assert not (tmp_path / "keys").exists()
