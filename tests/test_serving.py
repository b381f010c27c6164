"""The serving set-up itself: gunicorn's command line and the process limits
that let one worker hold its connections."""
from __future__ import annotations

import subprocess
import sys

from crewreport import serving


def test_gunicorn_runs_gevent_workers_trusting_no_forwarded_header() -> None:
    argv = serving.gunicorn_argv("127.0.0.1", 5000, 2)
    options = dict(zip(argv, argv[1:], strict=False))
    assert options["--worker-class"] == "gevent"
    assert options["--keep-alive"] == str(serving.HEADER_TIMEOUT)
    assert options["--forwarded-allow-ips"] == ""
    assert options["--logger-class"] == "crewreport.serving.EscapingLogger"
    assert argv[-1] == "crewreport.serving:served_app()"


def test_a_low_soft_file_limit_is_raised_for_the_connections() -> None:
    """Debian services start at 1024 descriptors: too few for 1000 connections."""
    code = ("import resource; from crewreport import serving; "
            "hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); serving.raise_file_limit(); "
            "print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard)")
    soft, hard = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout.split())
    assert soft >= min(4 * serving.WORKER_CONNECTIONS, hard) and soft > 256
