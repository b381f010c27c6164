"""How `flask --app crewreport serve` runs gunicorn so that slow or idle
clients cannot starve it.

gunicorn's `sync` worker gives each connection a whole process until the
request is read: two connections that never finish their headers stop a
two-worker server. Here every connection is a gevent greenlet instead
(gunicorn's `gevent` worker class), so a connection that waits costs a few
kilobytes, not a worker:

* headers: gunicorn reads each request's headers under one timeout
  (`keepalive`, HEADER_TIMEOUT seconds, the first request of a connection
  included) and drops a connection that has not sent them by then;
* body: `BufferedBody` reads the whole body, within BODY_TIMEOUT seconds and
  at most MAX_CONTENT_LENGTH bytes, before the app sees the request; a body
  that trickles past the deadline gets 408 and the connection is closed;
* log lines are escaped (`crewreport.logs`), and no forwarded header is
  trusted by gunicorn itself: the app's ProxyFix does that, only when
  PROXY_COUNT > 0.
"""
from __future__ import annotations

import io
import logging
import resource
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import gevent
from flask import Flask
from gunicorn import glogging

from . import create_app, db, keys
from .logs import EscapingFormatter

log = logging.getLogger(__name__)

HEADER_TIMEOUT = 10  # seconds for the request line and headers (and idle keep-alive)
BODY_TIMEOUT = 60  # seconds for the whole body: 16 MiB at 2 Mbit/s, with room
WORKER_CONNECTIONS = 1000  # per worker process
# A worker silent this long is killed by gunicorn. A writer can block its
# worker in SQLite's busy wait for up to db.WRITE_WAIT: it must end in its
# 503, not in the worker's death with every request it holds.
WORKER_TIMEOUT = 2 * db.WRITE_WAIT
READ_CHUNK = 64 * 1024

# One access line a request: address, method, path (never the query string),
# status, bytes sent, milliseconds. EscapingLogger computes these atoms only.
ACCESS_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def gunicorn_argv(host: str, port: int, workers: int) -> list[str]:
    """The gunicorn command line for `serve`."""
    return [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--worker-class", "gevent", "--worker-connections", str(WORKER_CONNECTIONS),
            "--keep-alive", str(HEADER_TIMEOUT), "--timeout", str(WORKER_TIMEOUT),
            # The app decides whom to believe about the scheme and address
            # (PROXY_COUNT); gunicorn's default trusts X-Forwarded-Proto from
            # 127.0.0.1, which would turn on Secure cookies over plain HTTP.
            "--forwarded-allow-ips", "",
            "--logger-class", "crewreport.serving.EscapingLogger",
            "--access-logformat", ACCESS_FORMAT,
            "--access-logfile", "-",
            # One control socket per user by default: two servers would fight over it.
            "--no-control-socket", "crewreport.serving:served_app()"]


class EscapingLogger(glogging.Logger):
    """gunicorn's logger with every line escaped: a request path carrying
    %0D%0A cannot add a line to the access log or the error log."""

    def _set_handler(self, log: Any, output: Any, fmt: Any, stream: Any = None) -> None:
        super()._set_handler(log, output, EscapingFormatter(fmt._fmt, fmt.datefmt), stream=stream)

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        """The atoms of ACCESS_FORMAT only: gunicorn's own set copies every
        request and response header into a dict on each request, which costs
        more than some whole API requests here (other atoms log as "-")."""
        status = resp.status
        sent = getattr(resp, "sent", None)
        # A request gunicorn refused (400, 431) comes with no PATH_INFO: "-", not "None".
        return {"h": environ.get("REMOTE_ADDR", "-"), "m": environ.get("REQUEST_METHOD") or "-",
                "U": environ.get("PATH_INFO") or "-",
                "s": status.split(None, 1)[0] if isinstance(status, str) else status,
                "b": "-" if sent is None else str(sent),
                "M": request_time.seconds * 1000 + request_time.microseconds // 1000}


class BufferedBody:
    """WSGI middleware: the whole request body, read within a deadline and a
    size limit, before the app runs. The app then never waits on a client."""

    def __init__(self, app: WSGIApp, max_bytes: int, timeout: float = BODY_TIMEOUT) -> None:
        self.app, self.max_bytes, self.timeout = app, max_bytes, timeout

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        length = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if not chunked and length in ("", "0"):
            return self.app(environ, start_response)
        if length.isdigit() and int(length) > self.max_bytes:
            return self.app(environ, start_response)  # the app answers 413 without reading
        try:
            body = self._read(environ)
        except OSError:  # a timeout or a client gone: nothing reaches the app
            start_response("408 Request Timeout", [("Content-Type", "text/plain; charset=utf-8"),
                                                   ("Connection", "close")])
            return [b"The request body did not arrive in time.\n"]
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))  # past the limit: the app answers 413
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(self, environ: dict[str, Any]) -> bytes:
        """Up to max_bytes + 1 bytes of body. One deadline for all of it: a
        per-read timeout would let a byte every few seconds go on for hours."""
        stream, parts, size = environ["wsgi.input"], [], 0
        end = time.monotonic() + self.timeout
        with gevent.Timeout(self.timeout, TimeoutError("request body deadline")):
            while size <= self.max_bytes:
                chunk = stream.read(min(READ_CHUNK, self.max_bytes + 1 - size))
                if not chunk:
                    break
                parts.append(chunk)
                size += len(chunk)
        if size > self.max_bytes:
            self._drain(stream, end)
        return b"".join(parts)

    def _drain(self, stream: Any, end: float) -> None:
        """Read and drop what is left of a body that is too large (as much
        again at most, within the same deadline), so that the client gets its
        413 rather than a connection reset in the middle of its upload."""
        left = self.max_bytes
        with gevent.Timeout(max(end - time.monotonic(), 0.01), False):  # False: just stop
            try:
                while left > 0 and (chunk := stream.read(min(READ_CHUNK, left))):
                    left -= len(chunk)
            except OSError:
                pass


def raise_file_limit(wanted: int = 4 * WORKER_CONNECTIONS) -> None:
    """Room for WORKER_CONNECTIONS sockets and the store's files: a Debian
    service starts with a soft limit of 1024 descriptors; the hard limit is
    far higher and a process may raise its own soft limit up to it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def served_app() -> Flask:
    """The app as gunicorn serves it: `create_app()` behind `BufferedBody`."""
    raise_file_limit()
    app = create_app()
    with app.app_context():
        try:
            keys.log_unencrypted_warning()
        except keys.KeysUnavailable as exc:
            log.error("intake will answer 503: %s", exc)
    app.wsgi_app = BufferedBody(app.wsgi_app, int(app.config["MAX_CONTENT_LENGTH"]))  # type: ignore[method-assign]
    return app
