"""device.js checkDeviceState / DeviceCheck: the tablet asks the server whether
it is still enrolled. Only a real answer about this tablet (revoked, or
unknown_device) marks it revoked; a network failure, a timeout or server
trouble leaves it enrolled, so offline never stops anyone writing. The app
itself, started with the check failing, stays enrolled."""
from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.harness import SET_UP_TABLET

pytestmark = pytest.mark.e2e

DEVICE_ID = "dev-check-0001"


CHECK = """async ([kind, ms]) => {
  const m = await import('/static/js/device.js');
  const asked = [];
  const reply = (status, body) => new Response(body === null ? 'not json' : JSON.stringify(body),
                                               {status, headers: {'Content-Type': 'application/json'}});
  const fetchFn = async (url, init) => {
    asked.push([url, init.credentials]);
    switch (kind) {
      case 'offline': throw new TypeError('Failed to fetch');
      case 'hang': return new Promise(() => {});
      case 'server-down': return reply(503, {error: {code: 'unavailable', message: 'Down.'}});
      case 'proxy-404': return reply(404, null);
      case 'active': return reply(200, {device_id: url.split('/').pop(), state: 'active'});
      case 'revoked': return reply(200, {device_id: url.split('/').pop(), state: 'revoked'});
      case 'unknown': return reply(404, {error: {code: 'unknown_device', message: 'This device is not enrolled.'}});
    }
  };
  const state = await m.checkDeviceState(fetchFn, ms);
  const dev = await m.getDevice();
  return {state, asked, revoked: dev.revoked || null};
}"""


@pytest.fixture
def enrolled(js_page: Any) -> Any:
    js_page.evaluate(SET_UP_TABLET, DEVICE_ID)
    return js_page


@pytest.mark.parametrize("kind", ["offline", "hang", "server-down", "proxy-404"])
def test_no_answer_leaves_the_tablet_enrolled(enrolled: Any, kind: str) -> None:
    out = enrolled.evaluate(CHECK, [kind, 300])
    assert out["state"] is None and out["revoked"] is None
    assert out["asked"] == [[f"/api/v1/devices/{DEVICE_ID}", "omit"]]  # no cookie


def test_active_changes_nothing_revoked_and_unknown_mark_revoked(enrolled: Any) -> None:
    assert enrolled.evaluate(CHECK, ["active", 300])["state"] == "active"
    out = enrolled.evaluate(CHECK, ["revoked", 300])
    assert out["state"] == "revoked" and out["revoked"]["code"] == "revoked_device"
    # already revoked: nothing more to ask
    assert enrolled.evaluate(CHECK, ["revoked", 300])["asked"] == []
    enrolled.evaluate(SET_UP_TABLET, DEVICE_ID)
    out = enrolled.evaluate(CHECK, ["unknown", 300])
    assert out["state"] == "revoked" and out["revoked"]["code"] == "unknown_device"


def test_device_check_asks_at_most_once_per_interval_unless_forced(js_page: Any) -> None:
    calls = js_page.evaluate("""async () => {
      const { DeviceCheck } = await import('/static/js/device.js');
      let t = 0, n = 0;
      const c = new DeviceCheck({checkFn: async () => { n++; return 'active'; }, intervalMs: 1000, now: () => t});
      const seen = [];
      seen.push(await c.run({force: true}));   // start: asks
      t = 10; seen.push(await c.run());        // a back-off tick soon after: does not
      t = 500; seen.push(await c.run());
      t = 1200; seen.push(await c.run());      // interval over: asks
      t = 1300; seen.push(await c.run({force: true}));  // `online`: asks at once
      const failing = new DeviceCheck({checkFn: async () => { throw new Error('boom'); }});
      seen.push(await failing.run({force: true}));
      return {n, seen};
    }""")
    assert calls == {"n": 3, "seen": ["active", None, None, "active", "active", None]}


def test_app_started_with_the_check_failing_stays_enrolled(js_page: Any, static_server: str) -> None:
    page = js_page
    page.evaluate(SET_UP_TABLET, DEVICE_ID)
    asked: list[str] = []

    def fail(route: Any) -> None:
        asked.append(route.request.url)
        route.abort("internetdisconnected")

    page.route("**/api/v1/devices/*", fail)
    try:
        page.goto(static_server + "/")
        page.wait_for_selector("#crew-app[data-ready=true]", state="attached")
        page.wait_for_function("() => document.querySelector('#device-status').dataset.enrolled === 'true'")
        for _ in range(50):
            if asked:
                break
            page.wait_for_timeout(100)
        assert asked and asked[0].endswith(f"/api/v1/devices/{DEVICE_ID}")
        page.wait_for_timeout(300)  # the failed check has been handled
        assert page.get_attribute("#device-status", "data-enrolled") == "true"
        assert page.get_attribute("#device-status", "data-state") == "enrolled"
        assert page.is_hidden("#form-device-notice")
        assert page.evaluate("async () => (await (await import('/static/js/device.js')).getDevice()).revoked || null") is None
    finally:
        page.unroute("**/api/v1/devices/*")
