"""The serving set-up itself: gunicorn's command line, the process limits
that let one worker hold its connections, and what `serve`'s command line
does with slow clients and with requests it must not pass on to the app."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crewreport import serving

from .served import ROOT, connect_sending, free_port, raw_request, seconds_until_closed, wait_until_answering


def test_gunicorn_runs_gevent_workers_trusting_no_forwarded_header() -> None:
    argv = serving.gunicorn_argv("127.0.0.1", 5000, 2)
    options = dict(zip(argv, argv[1:], strict=False))
    assert options["--worker-class"] == "gevent"
    assert options["--keep-alive"] == str(serving.HEADER_TIMEOUT)
    assert options["--forwarded-allow-ips"] == ""
    assert options["--logger-class"] == "crewreport.serving.EscapingLogger"
    assert argv[-1] == "crewreport.serving:served_app()"


def test_a_worker_held_for_a_whole_write_wait_is_not_killed() -> None:
    """A writer may block its gevent worker in SQLite's busy wait for up to
    db.WRITE_WAIT, sending gunicorn no heartbeat: gunicorn's own 30 s would
    kill the worker, and every request it holds, just as the wait ends in a 503."""
    from crewreport import db
    argv = serving.gunicorn_argv("127.0.0.1", 5000, 2)
    options = dict(zip(argv, argv[1:], strict=False))
    assert int(options["--timeout"]) >= 2 * db.WRITE_WAIT


def test_a_low_soft_file_limit_is_raised_for_the_connections() -> None:
    """Debian services start at 1024 descriptors: too few for 1000 connections."""
    code = ("import resource; from crewreport import serving; "
            "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); serving.raise_file_limit(); "
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)")
    soft, hard = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout.split())
    assert soft >= min(4 * serving.WORKER_CONNECTIONS, hard) and soft > 256


@pytest.fixture(scope="module")
def deadline_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """`serve`'s own gunicorn command line with a 1 s header deadline, around
    a bare app (tests.served.hello_app): the port and the server's log."""
    port = free_port()
    argv = serving.gunicorn_argv("127.0.0.1", port, 1)
    argv[argv.index("--keep-alive") + 1] = "1"
    argv[-1] = "tests.served:hello_app"
    log = tmp_path_factory.mktemp("deadline") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_answering(f"http://127.0.0.1:{port}/", proc)
        yield port, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_headers_have_one_deadline_and_the_app_has_its_own_time(deadline_server: tuple[int, Path]) -> None:
    """A request's line and headers must all arrive within the deadline: one
    that stops half-way, one that trickles a byte every 0.2 s, a connection
    that sends nothing, a kept-alive one that sends nothing more and one
    whose announced body never comes are each closed after it; meanwhile a
    request whose app takes longer than the deadline is still answered."""
    port, log = deadline_server
    stalled = connect_sending(port, b"GET / HTTP/1.1\r\nHost: x\r\n")
    trickling = connect_sending(port, b"GET / HTTP/1.1\r\n")
    kept = connect_sending(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    silent = socket.create_connection(("127.0.0.1", port), timeout=5)
    # Answered without its body being read (as the app answers 413 to a
    # Content-Length over its limit): the body that never comes holds nothing.
    unsent = connect_sending(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
    sockets = (stalled, trickling, kept, silent, unsent)
    try:
        with ThreadPoolExecutor(len(sockets)) as pool:
            closed = [pool.submit(seconds_until_closed, stalled, 8),
                      pool.submit(seconds_until_closed, trickling, 8, b"X-Trickle: " + b"a" * 100),
                      pool.submit(seconds_until_closed, kept, 8),
                      pool.submit(seconds_until_closed, silent, 8),
                      pool.submit(seconds_until_closed, unsent, 8)]
            began = time.monotonic()
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/slow", timeout=10) as resp:
                assert resp.read() == b"hello"
            assert time.monotonic() - began >= 1.4
            seconds = [future.result() for future in closed]
    finally:
        for sock in sockets:
            sock.close()
    assert all(0.5 < s < 8 for s in seconds), seconds
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-2000:]


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GE\x1bT /\r\nFORGED line\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\n" + b"X-A: b\r\n" * 120 + b"\r\n", b"431"),
    (b"GET / HTTP/1.1\r\nX-A: " + b"a" * 70000 + b"\r\n\r\n", b"431"),
    # Framing or headers that a proxy in front could read otherwise (request
    # smuggling), or that would hand CR, LF or NUL to the app.
    (b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nContent-Length: 0_1\r\n\r\nx", b"400"),
    (b"POST / HTTP/1.1\r\nContent-Length: +1\r\n\r\nx", b"400"),
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx", b"400"),
    (b"POST / HTTP/1.1\r\nX-A: a\rContent-Length: 29\r\n\r\n", b"400"),
    (b"POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\nhello", b"400"),
    (b"GET / HTTP/1.1\r\nX-A: one\r\n two\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nX-A: a\x00b\r\n\r\n", b"400"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", b"400"),
])
def test_a_request_the_server_cannot_read_safely_is_refused_and_logged_without_a_traceback(
        deadline_server: tuple[int, Path], request_bytes: bytes, status: bytes) -> None:
    """A garbled request line, too many or too large headers, a body whose end
    two parsers could disagree on, a header value that would carry CR, LF or
    NUL: refused before the app, with an escaped warning and no traceback.
    (gevent's own pywsgi server, tried as `serve`'s worker for its lower CPU
    cost, accepted most of these: see the README's Performance section.)"""
    port, log = deadline_server
    before = log.stat().st_size
    answer = raw_request(port, request_bytes)
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]
    deadline = time.monotonic() + 5
    while "Invalid request" not in (text := log.read_bytes()[before:].decode(errors="replace")) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "Invalid request" in text, text
    assert "Traceback" not in text and "\x1b" not in text and "\x00" not in text, text
    assert not any(line.startswith("FORGED") for line in text.splitlines()), text
    assert "None" not in text, text  # the access line of a refused request says "-" for what it lacks


def test_a_request_framed_plainly_is_answered(deadline_server: tuple[int, Path]) -> None:
    """The framing rules refuse nothing ordinary: a length, chunked, neither."""
    port, _ = deadline_server
    for head in (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx",
                 b"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\nConnection: close\r\n\r\n1\r\nx\r\n0\r\n\r\n",
                 b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"):
        assert raw_request(port, head).startswith(b"HTTP/1.1 200"), head
