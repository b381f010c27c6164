"""JavaScript unit tests run in Debian's Chromium: the app (static files only
are needed) is served in-process by werkzeug on a free loopback port; each
test module gets a fresh context and a same-origin page to import modules into."""
from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import shared_playwright


@pytest.fixture(scope="session")
def static_server() -> Iterator[str]:
    import os

    from werkzeug.serving import make_server

    from crewreport import create_app

    instance = tempfile.mkdtemp(prefix="crewreport-js-")
    os.environ.setdefault("CREWREPORT_INSTANCE", instance)
    app = create_app({"TESTING": True, "SECRET_KEY": "js-tests", "DATABASE": os.path.join(instance, "db.sqlite"),
                      "KEY_DIR": os.path.join(instance, "keys")})
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


@pytest.fixture(scope="session")
def js_browser() -> Iterator[Any]:
    for _, browser in shared_playwright():
        yield browser


@pytest.fixture(scope="module")
def js_page(js_browser: Any, static_server: str) -> Iterator[Any]:
    ctx = js_browser.new_context(service_workers="block")
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(static_server + "/static/css/crew.css")  # any same-origin document will do
    yield page
    ctx.close()
    assert not errors, errors
