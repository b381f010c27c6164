"""The crew app in headless Chromium: what its shell weighs, how long sealing
and queueing a note takes, and how long an offline start takes to give an
interactive form. Each figure beside a baseline measured in the same run:

* shell bytes (everything the service worker precaches, icons aside) raw,
  gzip and brotli as served, against the same files as written (unminified,
  and the old precache list with the officers' triage.js) gzip-compressed one
  by one, and against the budget (crewreport.crew.WIRE_BUDGET_BYTES);
* seal-and-queue (tap "Save and send" until the note is listed, page clock)
  against `buildEnvelope` alone for the same note (the crypto that cannot be
  avoided);
* offline start (a new page with the link down, served by the service
  worker) until the app says it is ready, against the same page's
  DOMContentLoaded.

    python -m benchmarks.crew_app [--notes 30] [--starts 5]
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from benchmarks._crew import Crew, crew_app, summary_ms

TINY_ARGS = ["--notes", "2", "--starts", "1"]

# buildEnvelope alone, for a note like the form's, `n` times: ms each.
SEAL_ONLY = """async (n) => {
  const { buildEnvelope, sealingKeys } = await import('/static/js/envelope.js');
  const { getDevice, getSigningKey } = await import('/static/js/device.js');
  const device = await getDevice();
  const key = await getSigningKey();
  const plan = sealingKeys(device.recipients);  // the version and keys the form would seal to
  const out = [];
  for (let i = 0; i < n; i++) {
    const now = new Date();
    const header = { v: plan.version, id: crypto.randomUUID(), device: device.device_id, created: now.toISOString().slice(0, 19) + 'Z',
      rcpt: plan.recipients.map((r) => r.kid), airline: device.airline, flight: 'ZZ301', dep: 'LOS', arr: 'LHR',
      sta: new Date(now.getTime() + 3 * 3600000).toISOString().slice(0, 19) + 'Z', urgency: 'priority' };
    const body = { observed_at: header.created, indicators: [], people: [], captain_informed: false,
      narrative: `Benchmark note ${i}: passenger in 32B answers for the man beside her.`, reporter: { crew_id: 'demo-crew' } };
    const t0 = performance.now();
    await buildEnvelope(header, body, plan.recipients, key);
    out.push(performance.now() - t0);
  }
  return out;
}"""
# Set before the app's scripts run: when #crew-app gets data-ready="true".
READY_PROBE = """(() => {
  const seen = () => {
    const root = document.querySelector('#crew-app');
    if (root && root.dataset.ready === 'true' && !window.__readyAt) window.__readyAt = performance.now();
  };
  new MutationObserver(seen).observe(document, { subtree: true, attributes: true, attributeFilter: ['data-ready'] });
})();"""
START_TIMES = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  return { ready: window.__readyAt || null, dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd,
           worker: !!navigator.serviceWorker.controller };
}"""


def shell_bytes() -> dict[str, Any]:
    """Wire bytes of the precached shell, from the Flask app (no server needed)."""
    from crewreport import create_app, crew

    with tempfile.TemporaryDirectory(prefix="crewreport-bench-") as folder:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "DATABASE": os.path.join(folder, "db.sqlite"),
                          "KEY_DIR": os.path.join(folder, "keys")})
        client = app.test_client(use_cookies=False)
        _, urls = crew.precache(app)
        counted = [u for u in urls if not u.startswith(crew.WIRE_BUDGET_EXCLUDES)]

        def total(encoding: str) -> int:
            return sum(len(client.get(u, headers={"Accept-Encoding": encoding}).data) for u in counted)

        served = {"raw": total("identity"), "gzip": total("gzip"), "br_or_gzip": total("gzip, deflate, br")}
        # As written, before this build: sources gzip-compressed one by one, the old list (with triage.js).
        root = Path(app.static_folder or "static")
        old_static = sorted({p for pattern in crew.STATIC_GLOBS for p in root.glob(pattern) if p.is_file()})
        written_raw = written_gzip = 0
        for path in old_static:
            if f"/static/{path.relative_to(root).as_posix()}".startswith(crew.WIRE_BUDGET_EXCLUDES):
                continue
            data = path.read_bytes()
            written_raw += len(data)
            written_gzip += len(gzip.compress(data, 9))
        for url in (u for u in counted if not u.startswith("/static/")):
            data = client.get(url, headers={"Accept-Encoding": "identity"}).data
            written_raw += len(data)
            written_gzip += len(gzip.compress(data, 9))
        return {
            "files": len(counted),
            "served": served,
            "baseline_as_written": {"raw": written_raw, "gzip": written_gzip,
                                    "files": len(old_static) + len(counted) - len([u for u in counted if u.startswith("/static/")])},
            "budget_gzip": crew.WIRE_BUDGET_BYTES,
            "within_budget": served["gzip"] <= crew.WIRE_BUDGET_BYTES,
        }


def offline_starts(crew: Crew, starts: int) -> dict[str, Any]:
    """New pages of the app with the link down: ms from navigation to ready."""
    crew.link.set_down(True)
    crew.context.set_offline(True)
    crew.context.add_init_script(READY_PROBE)
    ready, dcl, by_worker = [], [], 0
    for _ in range(starts):
        page = crew.context.new_page()
        page.goto(crew.link.url + "/")
        page.wait_for_function("() => !!window.__readyAt", timeout=60000)
        times = page.evaluate(START_TIMES)
        ready.append(float(times["ready"]))
        dcl.append(float(times["dcl"]))
        by_worker += bool(times["worker"])
        page.close()
    return {"ready_ms": summary_ms(ready), "baseline_dom_content_loaded_ms": summary_ms(dcl),
            "served_by_service_worker": by_worker == starts}


def run(notes: int = 30, starts: int = 5) -> dict[str, Any]:
    result: dict[str, Any] = {"shell_bytes": shell_bytes()}
    with crew_app() as crew:
        crew.link.set_down(True)
        crew.context.set_offline(True)
        crew.page.evaluate(SEAL_ONLY, 2)  # warm-up: modules and keys loaded
        queued = crew.queue_notes(notes, "ZZ301")
        sealed = [float(x) for x in crew.page.evaluate(SEAL_ONLY, notes)]
        result["seal_and_queue_ms"] = summary_ms(queued)
        result["baseline_build_envelope_ms"] = summary_ms(sealed)
        result["offline_start"] = offline_starts(crew, starts)
        result["chromium"] = crew.browser.version
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=30)
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(run(args.notes, args.starts), indent=2))


if __name__ == "__main__":
    main()
