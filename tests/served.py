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
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crewreport.client import Client
from crewreport.times import now, stamp

ROOT = Path(__file__).resolve().parent.parent
LOG_TAIL = 3000
DEMO_PASSWORD = "demo-password-for-tests"
# Cheap password hashing and no intake rate limit: the served tests are about
# serving, not about those (tested elsewhere).
FAST_ENV = {"CREWREPORT_PASSWORD_HASH_FAST": "true", "CREWREPORT_RATELIMIT_ENABLED": "false"}
FIELDS = {"flight": "ZZ75", "dep": "ACC", "arr": "LHR", "urgency": "priority"}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_answering(url: str, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """Until a GET of `url` answers 200; RuntimeError if `proc` exits first
    or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not answer")


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
        if not port_free(self.port):
            # Another process took the port while this server was stopped (a
            # test run beside this one): its answers would pass for this server's.
            raise RuntimeError(f"port {self.port} is answered by another process; this server cannot start on it")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.python, "-m", "flask", "--app", "crewreport", "serve",
                 "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)],
                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            wait_until_answering(self.url + self.READY_PATH, self.proc, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}: {self.log_tail()}") from None

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


class SlowClients:
    """Idle and trickling connections to a server, as an attacker on the same
    network would hold them: `idle` send a request line and one header and never
    the blank line; `trickling` announce a 1 MB POST body and send it a byte at
    a time. All are closed on exit; `held()` says how many the server has not
    closed yet."""

    BODY_BYTES = 1024 * 1024

    def __init__(self, port: int, idle: int, trickling: int, pace: float = 0.2) -> None:
        self.port, self.n_idle, self.n_trickling, self.pace = port, idle, trickling, pace
        self.idle: list[socket.socket] = []
        self.trickling: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._trickle, daemon=True)


    def __enter__(self) -> SlowClients:
        try:
            for _ in range(self.n_idle):
                self.idle.append(connect_sending(self.port, b"GET / HTTP/1.1\r\nHost: x\r\n"))
            head = (f"POST /api/v1/reports HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {self.BODY_BYTES}\r\n\r\n{{").encode()
            for _ in range(self.n_trickling):
                self.trickling.append(connect_sending(self.port, head))
        except BaseException:
            self.close()
            raise
        self._thread.start()
        return self

    def _trickle(self) -> None:
        while not self._stop.wait(self.pace):
            for s in list(self.trickling):
                try:
                    s.send(b" ")
                except OSError:  # the server closed it: that is allowed
                    self.trickling.remove(s)

    def held(self) -> int:
        """How many of the connections are still open at the server's end."""
        open_ = 0
        for s in self.idle + self.trickling:
            try:
                s.setblocking(False)
                open_ += s.recv(1, socket.MSG_PEEK) != b""
            except BlockingIOError:
                open_ += 1
            except OSError:
                pass
            finally:
                s.setblocking(True)
        return open_

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        for s in self.idle + self.trickling:
            s.close()

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect_sending(port: int, first: bytes) -> socket.socket:
    """A connection to 127.0.0.1:`port` that has sent `first` and is left open."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(first)
    return sock


def raw_request(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Send `request` as is on a new connection and return the whole answer
    (the request should ask for `Connection: close`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        parts = []
        while chunk := s.recv(65536):
            parts.append(chunk)
    return b"".join(parts)


def make_served(folder: str | os.PathLike[str], env: Mapping[str, str] | None = None) -> ServedApp:
    """A fresh instance folder with the demo data (no key passphrase unless
    `env` sets one); not started yet."""
    served = ServedApp(folder, env={**FAST_ENV, **(env or {})},
                       unset=() if env and "CREWREPORT_KEY_PASSPHRASE" in env else ("CREWREPORT_KEY_PASSPHRASE",))
    demo = served.flask("demo", "--password", DEMO_PASSWORD)
    assert demo.returncode == 0, demo.stderr
    assert f"demo-crew       (crew) password: {DEMO_PASSWORD}" in demo.stdout
    return served


def sta() -> str:
    """A scheduled arrival four hours from now."""
    return stamp(datetime.now(UTC) + timedelta(hours=4))


def body(narrative: str = "Over real HTTP.") -> dict[str, Any]:
    """A valid report body."""
    return {"observed_at": now(), "indicators": [],
            "people": [], "narrative": narrative, "captain_informed": False, "reporter": {"crew_id": "T1"}}


def enrolled_client(url: str) -> Client:
    """demo-crew signed in and a new device enrolled, over HTTP."""
    client = Client(url)
    client.sign_in("demo-crew", DEMO_PASSWORD)
    client.enroll("served test")
    return client


def kill_mid_burst(served: ServedApp, send: Callable[[Any], None], shares: list[Any],
                   landed: Callable[[], int], at_least: int, stop: threading.Event, timeout: float = 60) -> None:
    """Run `send(share)` on one thread per share, SIGKILL the server as soon as
    `landed()` reaches `at_least` (receipts in hand), then set `stop` and wait
    for the senders: a crash in the middle of a burst, as in a power cut."""
    threads = [threading.Thread(target=send, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    while landed() < at_least and time.monotonic() < deadline:
        time.sleep(0.002)
    served.kill()
    stop.set()
    for t in threads:
        t.join(timeout=60)


def hello_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """A bare WSGI app for testing the server around it: `/slow` takes 1.5 s
    (time.sleep is gevent's in a gevent worker), anything else answers at once."""
    if environ["PATH_INFO"] == "/slow":
        time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def seconds_until_closed(sock: socket.socket, limit: float, trickle: bytes = b"", pace: float = 0.2) -> float:
    """How long until the server closes `sock` (at most `limit`: then
    `limit`), reading whatever it answers meanwhile and, if `trickle` is
    given, sending one byte of it every `pace` seconds."""
    start = time.monotonic()
    sock.settimeout(pace)
    sent = 0
    while (elapsed := time.monotonic() - start) < limit:
        try:
            if not sock.recv(65536):
                return elapsed
        except TimeoutError:
            if sent < len(trickle):
                sock.send(trickle[sent:sent + 1])
                sent += 1
        except ConnectionError:
            return elapsed
    return limit
