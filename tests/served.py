"""The real app under gunicorn (`flask --app crewreport serve`) for tests.

`ServedApp` runs it on a free 127.0.0.1 port with its own instance folder
(CREWREPORT_INSTANCE), runs other `flask` CLI commands against that folder,
kills the whole process group (master and workers) and can start it again on
the same port. Used by tests/test_serve.py and, through
`tests.e2e.harness.LiveServer`, by the browser tests.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL = 3000


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_free(port: int) -> bool:
    """True when nothing answers on 127.0.0.1:`port`."""
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


class ServedApp:
    """One instance folder and the gunicorn serving it, killable and restartable."""

    READY_PATH = "/auth/session"

    def __init__(self, instance: str | os.PathLike[str], port: int | None = None, *,
                 env: Mapping[str, str] | None = None, unset: Iterable[str] = (),
                 check: bool = False, workers: int = 2,
                 python: str = sys.executable, cwd: str | os.PathLike[str] = ROOT) -> None:
        """`env` is added to the environment and `unset` removed from it;
        `check` is the default for `flask(check=...)`; `python` and `cwd` run
        another install of crewreport (the checkout's by default)."""
        self.instance = Path(instance)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, CREWREPORT_INSTANCE=str(self.instance), **(env or {}))
        for name in ("FLASK_APP", *unset):  # `--app` says which app
            self.env.pop(name, None)
        self.check = check
        self.workers = workers
        self.python = python
        self.cwd = Path(cwd)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.instance / "server.log"

    def flask(self, *args: str, check: bool | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run `flask --app crewreport ARGS` against this instance folder."""
        return subprocess.run(
            [self.python, "-m", "flask", "--app", "crewreport", *args],
            cwd=self.cwd, env=self.env, capture_output=True, text=True,
            check=self.check if check is None else check, timeout=timeout,
        )

    def log_tail(self) -> str:
        """The end of the server log, for error messages."""
        return self.log_path.read_text(errors="replace")[-LOG_TAIL:]

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server (unless running) and wait until it answers."""
        if self.running:
            return
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "flask", "--app", "crewreport", "serve",
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + self.READY_PATH, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not answer: {self.log_tail()}")

    def kill(self) -> None:
        """SIGKILL the whole process group and wait until the port is free."""
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
            self.proc = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not port_free(self.port):  # workers gone
            time.sleep(0.05)

    stop = kill

    def connect(self) -> sqlite3.Connection:
        """A connection to the instance's store, rows as `sqlite3.Row`."""
        conn = sqlite3.connect(self.instance / "crewreport.sqlite", timeout=30)
        conn.row_factory = sqlite3.Row
        return conn

    def db_rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Run one query on the store and return its rows as dicts."""
        conn = self.connect()
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        finally:
            conn.close()
