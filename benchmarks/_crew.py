"""The crew app in headless Chromium for the browser benchmarks: the served app
(tests/e2e/harness.py's gunicorn with `demo` data), optionally behind a
`SlowLink`, a signed-in page with an enrolled tablet and its service worker,
and notes sealed and queued through the form, each timed inside the page."""
from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks._slowlink import SlowLink
from tests.e2e.harness import (
    LiveServer,
    fill_minimal,
    launch_browser,
    make_server,
    poll,
    sign_in,
    wait_enrolled,
    wait_ready,
    wait_service_worker,
)

# Click "Save and send" and wait until the outbox lists one more note: the
# crew's seal-and-queue time, measured by the page's own clock.
SUBMIT_TIMED = """async (want) => {
  const count = () => document.querySelectorAll('#outbox [data-report-id]').length;
  const t0 = performance.now();
  document.querySelector('#submit-button').click();
  while (count() < want) await new Promise((r) => setTimeout(r, 1));
  return performance.now() - t0;
}"""
# Seal and queue `n` notes with the modules the form uses (buildEnvelope, then
# enqueue), without the form: many notes quickly. ms per note.
QUEUE_SEALED = """async ([n, flight]) => {
  const { buildEnvelope, sealingKeys } = await import('/static/js/envelope.js');
  const { getDevice, getSigningKey } = await import('/static/js/device.js');
  const { enqueue } = await import('/static/js/outbox/store.js');
  const device = await getDevice();
  const key = await getSigningKey();
  const plan = sealingKeys(device.recipients);  // the version and keys the form would seal to
  const stamp = (t) => new Date(t).toISOString().slice(0, 19) + 'Z';
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const now = Date.now();
    const header = { v: plan.version, id: crypto.randomUUID(), device: device.device_id, created: stamp(now),
      rcpt: plan.recipients.map((r) => r.kid), airline: device.airline, flight, dep: 'LOS', arr: 'LHR',
      sta: stamp(now + 3 * 3600000), urgency: 'priority' };
    const body = { observed_at: header.created, indicators: [], people: [], captain_informed: false,
      narrative: `Benchmark note ${i}: passenger in 32B answers for the man beside her.`, reporter: { crew_id: 'demo-crew' } };
    await enqueue(header, await buildEnvelope(header, body, plan.recipients, key));
    out.push(performance.now() - t0);
  }
  await window.__cabinNotes.renderOutbox();
  return out;
}"""
# The page runs the build's bundles, and only those are precached: the modules
# the scripts here import one by one are loaded while the link is up, so the
# page's module map has them when it is down.
MODULES = """() => Promise.all(['/static/js/envelope.js', '/static/js/device.js', '/static/js/outbox/store.js']
  .map((url) => import(url))).then(() => true)"""
# The outbox's states, from IndexedDB (what is receipted is stored as delivered).
OUTBOX_COUNTS = """async () => {
  const { listReports } = await import('/static/js/outbox/store.js');
  const out = {};
  for (const r of await listReports()) out[r.state] = (out[r.state] || 0) + 1;
  return out;
}"""


@dataclass
class Origin:
    """What the harness's sign_in needs: the URL the browser uses (the link's)."""

    url: str


@dataclass
class Crew:
    server: LiveServer
    link: SlowLink
    browser: Any
    context: Any
    page: Any

    def load_modules(self) -> None:
        """Load the modules the scripts here import (MODULES), with the link up; again after a reload."""
        self.page.evaluate(MODULES)

    def queue_notes(self, n: int, flight: str) -> list[float]:
        """Seal and queue `n` notes through the form; ms per note (page clock)."""
        already = self.page.evaluate("() => document.querySelectorAll('#outbox [data-report-id]').length")
        times = []
        for i in range(n):
            fill_minimal(self.page, f"Benchmark note {i}: passenger in 32B answers for the man beside her.",
                         flight=flight)
            times.append(float(self.page.evaluate(SUBMIT_TIMED, already + i + 1)))
        return times

    def queue_sealed(self, n: int, flight: str) -> list[float]:
        """Seal and queue `n` notes in the page, not through the form; ms per note."""
        return [float(x) for x in self.page.evaluate(QUEUE_SEALED, [n, flight])]

    def counts(self) -> dict[str, int]:
        return dict(self.page.evaluate(OUTBOX_COUNTS))

    def wait_counts(self, state: str, n: int, timeout: float = 120.0, interval: float = 0.02) -> dict[str, int]:
        return dict(poll(self.page, OUTBOX_COUNTS, lambda c: bool(c) and c.get(state, 0) >= n,
                         timeout=timeout, interval=interval, message=f"{n} notes {state}"))


def browser_version(browser: Any) -> str:
    return str(browser.version)


@contextmanager
def crew_app() -> Iterator[Crew]:
    """A served app behind a (for now undelayed) link, and an enrolled tablet's page on it."""
    from playwright.sync_api import sync_playwright

    server = make_server()
    try:
        with SlowLink(server.port, one_way=0.0) as link, sync_playwright() as pw:
            browser = launch_browser(pw)
            try:
                context = browser.new_context(base_url=link.url, service_workers="allow")
                context.set_default_timeout(60000)
                page = context.new_page()
                sign_in(page, Origin(link.url))  # type: ignore[arg-type]
                wait_enrolled(page, timeout=60)
                wait_service_worker(page, timeout=60)
                wait_ready(page, timeout=60)
                crew = Crew(server, link, browser, context, page)
                crew.load_modules()
                yield crew
            finally:
                browser.close()
    finally:
        server.stop()
        shutil.rmtree(server.instance, ignore_errors=True)


def summary_ms(values: list[float]) -> dict[str, float]:
    """Median, p95 and max of a list of milliseconds, rounded."""
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median": round(statistics.median(ordered), 1), "p95": round(p95, 1), "max": round(ordered[-1], 1),
            "n": len(ordered)}


def elapsed_since(start: float) -> float:
    return round(time.monotonic() - start, 3)
