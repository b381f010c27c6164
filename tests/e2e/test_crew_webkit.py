"""The crew app in WebKit (the engine of iPads), through Debian's WebKitGTK
WebDriver (WebKitWebDriver driving MiniBrowser under Xvfb) and Selenium:
enrol, start with the server gone (from the service worker's cache), write a
first note and a quick second one on the same flight, and see both delivered
once the server is back. Skipped, saying why, only when WebKitWebDriver or
Xvfb is not installed (`.ci/run` installs both)."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.e2e.harness import PASSWORD, STORED_OUTBOX, LiveServer, open_report

# Selenium's own WebKitGTK driver class still uses a deprecated argument of its RemoteConnection.
pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:setting remote_server_addr:DeprecationWarning")]

DRIVER = shutil.which("WebKitWebDriver")
XVFB = shutil.which("Xvfb")
MISSING = [name for name, path in (("WebKitWebDriver (Debian package webkit2gtk-driver)", DRIVER),
                                   ("Xvfb (Debian package xvfb)", XVFB)) if not path]


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private X display from Xvfb (it picks a free number and tells it)."""
    if MISSING:
        pytest.skip("WebKit end-to-end test needs " + " and ".join(MISSING) + "; .ci/run installs them")
    proc = subprocess.Popen([str(XVFB), "-displayfd", "1", "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    number = proc.stdout.readline().decode().strip()
    assert number.isdigit(), "Xvfb did not start"
    yield f":{number}"
    proc.kill()
    proc.wait(timeout=10)


@pytest.fixture
def webkit(display: str) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.webkitgtk.options import Options
    from selenium.webdriver.webkitgtk.service import Service

    browsers = sorted(glob.glob("/usr/lib/*/webkit2gtk-4.*/MiniBrowser"))
    assert browsers, "WebKitWebDriver is installed but MiniBrowser (libwebkit2gtk) is not"
    options = Options()
    options.binary_location = browsers[-1]
    options.add_argument("--automation")  # without it WebKitWebDriver cannot match a browser
    service = Service(executable_path=DRIVER, env={**os.environ, "DISPLAY": display})
    driver = webdriver.WebKitGTK(options=options, service=service)
    driver.set_window_size(1024, 768)
    driver.set_script_timeout(20)
    yield driver
    driver.quit()


def wk_poll(driver: Any, script: str, predicate: Callable[[Any], bool] = bool, timeout: float = 30.0,
            message: str = "") -> Any:
    """Run `script` (a function body: `return ...`) until predicate(result) holds."""
    deadline = time.monotonic() + timeout
    value: Any = None
    while True:
        try:
            value = driver.execute_script(script)
        except Exception as exc:  # noqa: BLE001 - a navigation under way
            value = f"error: {exc}"
        if predicate(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {message or script}; last value: {value!r}")
        time.sleep(0.2)


def wk_async(driver: Any, body: str) -> Any:
    """Await an async function body in the page; its result, or an 'error: ...' string."""
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"(async () => {{ {body} }})().then(done, (e) => done('error: ' + e));")


def fill(driver: Any, name: str, value: str) -> None:
    field = driver.find_element("css selector", f'#report-form [name="{name}"]')
    field.clear()
    field.send_keys(value)


STATES = "return [...document.querySelectorAll('#outbox [data-report-id]')].map((li) => [li.dataset.reportId, li.dataset.state, li.textContent]);"


def test_webkit_enrols_starts_offline_writes_notes_and_delivers_them(webkit: Any, server: LiveServer) -> None:
    driver = webkit
    driver.get(server.url + "/auth/login?next=/")
    driver.find_element("name", "username").send_keys("demo-crew")
    driver.find_element("name", "password").send_keys(PASSWORD)
    driver.find_element("css selector", 'button[type="submit"]').click()
    try:
        wk_poll(driver, "return document.querySelector('#device-status')?.dataset.enrolled", lambda v: v == "true",
                message="enrolled")
    except AssertionError as exc:  # seen twice in full runs, never alone: say what the page and server saw
        said = driver.execute_script("return [location.href, document.querySelector('#device-status')?.textContent"
                                     "?.trim(), document.querySelector('#form-status')?.textContent]")
        raise AssertionError(f"{exc}; the page: {said!r}; the server's log: {server.log_tail()[-3000:]}") from None
    assert driver.execute_script("return window.isSecureContext && !!crypto.subtle")  # 127.0.0.1 over http
    controlled = wk_poll(driver, "return !!navigator.serviceWorker.controller", message="service worker controlling")
    assert controlled is True
    # WebKit has no Background Sync: the page's own timer and "Send now" deliver
    assert driver.execute_script("return 'SyncManager' in window") is False

    server.stop()
    driver.get(server.url + "/")  # a start with the server gone: the shell comes from the service worker
    wk_poll(driver, "return document.querySelector('#crew-app')?.dataset.ready", lambda v: v == "true",
            message="offline start")
    assert driver.title == "Cabin Notes"
    assert driver.execute_script("return document.querySelector('#device-status').dataset.state") == "enrolled"

    fill(driver, "flight", "ZZ606")
    fill(driver, "dep", "ACC")
    fill(driver, "arr", "LGW")
    fill(driver, "lands_in", "2:10")
    assert driver.find_element("id", "f-arrival").text.startswith("Lands ")
    fill(driver, "narrative", "WebKit: a woman in 12A says her passport was taken - é ✓.")
    driver.find_element("id", "submit-button").click()
    wk_poll(driver, STATES, lambda v: isinstance(v, list) and len(v) == 1 and v[0][1] == "queued", message="queued")

    # the next note on that flight: its words and Save only
    assert driver.find_element("id", "flight-summary").is_displayed()
    fill(driver, "narrative", "WebKit: second note, she is travelling with two men.")
    driver.find_element("id", "submit-button").click()
    wk_poll(driver, STATES, lambda v: isinstance(v, list) and len(v) == 2, message="second note queued")
    records = wk_async(driver, f"return await ({STORED_OUTBOX})();")
    assert [r["state"] for r in records] == ["queued", "queued"] and all(r["envelope"]["sealed"] for r in records)
    assert "passport" not in str(records)  # sealed at rest in WebKit's IndexedDB too

    server.start()
    driver.find_element("id", "send-now").click()
    delivered = wk_poll(driver, STATES, lambda v: isinstance(v, list) and [s for _, s, _ in v] == ["delivered"] * 2,
                        message="both delivered")
    narratives = {open_report(server, report_id)[1]["narrative"] for report_id, _, _ in delivered}
    assert narratives == {"WebKit: a woman in 12A says her passport was taken - é ✓.",
                          "WebKit: second note, she is travelling with two men."}
    assert all("Reference" in text and "Note " in text for _, _, text in delivered)
    line = driver.execute_script("return document.querySelector('#delivery-status').textContent")
    assert "No connection" not in line and "Trying again" not in line, line
