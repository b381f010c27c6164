"""Seal-and-queue on the tablet, in Debian's Chromium: what one "Save and send"
costs for envelope version 1 (P-256) and version 2 (X-Wing).

The crew app's own modules are served from this checkout (werkzeug on a
loopback port, service workers blocked) and driven in a page: for each note,
`buildEnvelope` (seal once per recipient, sign with a non-extractable ES256
key) then `enqueue` (one IndexedDB transaction), exactly the steps of the
report form. Recipient keys are the fixed vectors' public keys (two per
envelope, Border Force and airline ZZ).

Figures are milliseconds per note (median and p95 over `--n` notes, after a
warm-up), set against a baseline measured in the same page and run: the
version 1 seal-and-queue, and `queue_only` (the same IndexedDB write of an
envelope already built). `first_seal_ms` is the first seal of each version in
a fresh page (module and key import included).

    python -m benchmarks.seal [--n 100]
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("CREWREPORT_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

MEASURE = """async ([n, keys]) => {
  const env = await import('/static/js/envelope.js');
  const out = await import('/static/js/outbox/store.js');
  const signing = await crypto.subtle.generateKey({name: 'ECDSA', namedCurve: 'P-256'}, false, ['sign', 'verify']);
  const body = {observed_at: new Date().toISOString().slice(0, 19) + 'Z', indicators: ['docs_held_by_other'],
                people: [{role: 'possible_victim', seat: '32B', age_range: '12_17', description: 'Quiet, grey hoodie'}],
                narrative: 'Benchmark narrative. '.repeat(20), captain_informed: true, reporter: {crew_id: 'B1'}};
  const header = (v) => ({v, id: crypto.randomUUID(), device: 'dev-bench', created: body.observed_at,
                          rcpt: keys[v].map(r => r.kid), airline: 'ZZ', flight: 'ZZ75', dep: 'ACC', arr: 'LHR',
                          sta: '2030-01-01T12:00:00Z', urgency: 'routine'});
  const once = async (v) => {
    const h = header(v);
    const t0 = performance.now();
    const e = await env.buildEnvelope(h, body, keys[v], signing.privateKey);
    await out.enqueue(h, e);
    return [performance.now() - t0, env.envelopeBytes(e), e];
  };
  const first = {v1: (await once(1))[0], v2: (await once(2))[0]};
  const times = {v1: [], v2: [], queue_only: []};
  const bytes = {};
  for (let i = 0; i < n; i++) {
    for (const v of [1, 2]) {
      const [ms, size, e] = await once(v);
      times['v' + v].push(ms);
      bytes['v' + v] = size;
      if (v === 1) {
        const h = header(1);
        const t0 = performance.now();
        await out.enqueue(h, e);
        times.queue_only.push(performance.now() - t0);
      }
    }
  }
  for (const r of await out.listReports()) await out.removeReport(r.id);
  return {first, times, bytes};
}"""


def recipients() -> dict[str, list[dict[str, Any]]]:
    v1 = json.loads((ROOT / "tests" / "vectors" / "envelope-v1.json").read_text("utf-8"))["keys"]
    v2 = json.loads((ROOT / "tests" / "vectors" / "envelope-v2.json").read_text("utf-8"))["keys"]
    def public(jwk: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in jwk.items() if k != "d"}
    return {
        "1": [{"kid": v1[n]["kid"], "owner": o, "suite": "v1", "jwk": public(v1[n]["jwk"])}
              for n, o in (("border_force", "border_force"), ("airline_ZZ", "airline:ZZ"))],
        "2": [{"kid": v2[n]["kid"], "owner": o, "suite": "v2", "jwk": v2[n]["jwk"]}
              for n, o in (("border_force", "border_force"), ("airline_ZZ", "airline:ZZ"))],
    }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="notes per version")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from crewreport import create_app

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per module fetched
    with tempfile.TemporaryDirectory(prefix="crewreport-seal-bench-") as folder:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "DATABASE": os.path.join(folder, "s.sqlite"),
                          "KEY_DIR": os.path.join(folder, "keys")})
        httpd = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                try:
                    ctx = browser.new_context(service_workers="block")
                    page = ctx.new_page()
                    page.goto(f"http://127.0.0.1:{httpd.server_port}/static/css/crew.css")
                    result = page.evaluate(MEASURE, [args.n, recipients()])
                    version = browser.version
                finally:
                    browser.close()
        finally:
            httpd.shutdown()
    med = {k: statistics.median(v) for k, v in result["times"].items()}
    print(json.dumps({
        "benchmark": "seal_and_queue",
        "notes_per_version": args.n,
        "browser": f"Chromium {version}",
        "python": platform.python_version(),
        "median_ms": {k: round(v, 2) for k, v in med.items()},
        "p95_ms": {k: round(p95(v), 2) for k, v in result["times"].items()},
        "baseline": "v1 (P-256 seal of two copies + ES256 + IndexedDB put); queue_only (the IndexedDB put alone)",
        "v2_over_v1": round(med["v2"] / med["v1"], 2),
        "ratio_to_queue_only": {k: round(med[k] / med["queue_only"], 2) for k in ("v1", "v2")},
        "first_seal_ms": {k: round(v, 1) for k, v in result["first"].items()},
        "envelope_bytes": result["bytes"],
    }, indent=2))


if __name__ == "__main__":
    main()
