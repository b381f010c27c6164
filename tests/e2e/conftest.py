"""Fixtures for the crew app's browser tests: a live gunicorn server (killable
and restartable on its port), one Chromium for the session, a fresh context
per test."""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.harness import INIT_SCRIPT, LiveServer, make_server, shared_playwright


@pytest.fixture(scope="session")
def live_server() -> Iterator[LiveServer]:
    server = make_server()
    yield server
    server.stop()
    shutil.rmtree(server.instance, ignore_errors=True)


@pytest.fixture
def server(live_server: LiveServer) -> LiveServer:
    """The live server, running (a previous test may have stopped it)."""
    live_server.start()
    return live_server


@pytest.fixture(scope="session")
def _playwright_and_browser() -> Iterator[tuple[Any, Any]]:
    yield from shared_playwright()


@pytest.fixture(scope="session")
def playwright_instance(_playwright_and_browser: tuple[Any, Any]) -> Any:
    return _playwright_and_browser[0]


@pytest.fixture(scope="session")
def browser(_playwright_and_browser: tuple[Any, Any]) -> Any:
    return _playwright_and_browser[1]


@pytest.fixture
def context(browser: Any, server: LiveServer) -> Iterator[Any]:
    ctx = browser.new_context(base_url=server.url, service_workers="allow")
    ctx.add_init_script(INIT_SCRIPT)
    ctx.set_default_timeout(20000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: Any) -> Any:
    p = context.new_page()
    p.on("pageerror", lambda exc: print("pageerror:", exc))
    return p
