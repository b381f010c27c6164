"""Sync before landing over a slow link: notes queued offline on an enrolled
tablet (sealed and queued in the page by the modules the form uses), then the
connection comes back over a 600 ms round trip (300 ms each
way, as over a satellite); the time and the requests from "connection back"
until every note is receipted (stored as delivered in the tablet's outbox).

The link (benchmarks/_slowlink.py, between headless Chromium and the served
app) holds every chunk 300 ms each way and a new connection's first bytes one
round trip more (the TCP handshake). "Connection back" is the moment the link
comes up and the browser is told it is online (its `online` event). The
baseline, in the same run, is the same sync with no delay on the link; the
floor is what the round trips alone must cost (a handshake and one batch
request per 100 notes, 600 ms each), reported as `round_trip_floor_s`.

    python -m benchmarks.slow_link [--notes 100] [--one-way-ms 300]
"""
from __future__ import annotations

import argparse
import json
import math
import re
import time
from typing import Any

from benchmarks._crew import Crew, crew_app, elapsed_since, summary_ms
from tests.e2e.harness import wait_ready

TINY_ARGS = ["--notes", "3"]
BATCH_LIMIT = 100  # static/js/outbox/delivery.js
TIMER_CONFIG = "window.__CABIN_NOTES_CONFIG = {backoffBase: 500, backoffMax: 1000, deviceCheckInterval: 1};"


def batch_server_ms(crew: Crew, skip: int) -> list[int]:
    """The server's own time for each batch request after the first `skip` (gunicorn's access log, %(M)s)."""
    log = crew.server.log_path.read_text(errors="replace")
    lines = [ln for ln in log.splitlines() if "/api/v1/reports/batch" in ln]
    return [int(m.group(1)) for ln in lines[skip:] if (m := re.search(r"(\d+)ms$", ln.strip()))]


def sync_once(crew: Crew, notes: int, one_way: float, flight: str, by_timer: bool = False) -> dict[str, Any]:
    """Queue `notes` with the link down, bring it back with `one_way` delay, time until all are delivered.

    by_timer: the browser never learns it was offline (no `online` event, as
    when a tablet stays on the aircraft's Wi-Fi while the satellite link goes):
    the link alone goes down and comes back, and the app's back-off timer
    finds it."""
    crew.link.set_down(True)
    if not by_timer:
        crew.context.set_offline(True)
    before = crew.counts().get("delivered", 0)
    seal_ms = crew.queue_sealed(notes, flight)
    crew.wait_counts("queued", notes, timeout=60)
    if by_timer:  # a failed pass, so the back-off timer is running
        crew.page.evaluate("() => window.__cabinNotes.scheduler.run('manual')")
    requests: list[dict[str, Any]] = []
    ends: dict[int, float] = {}

    def seen(request: Any) -> None:
        if "/api/" in request.url or "/auth/" in request.url:
            requests.append({"at": round(time.monotonic() - start, 3), "method": request.method,
                             "path": request.url.split("://", 1)[1].split("/", 1)[1].split("?")[0],
                             "from_worker": getattr(request, "service_worker", None) is not None,
                             "request_bytes": len(request.post_data_buffer or b""), "_id": id(request)})

    def finished(request: Any) -> None:
        ends[id(request)] = time.monotonic() - start

    batches_before = len(batch_server_ms(crew, 0))
    crew.link.one_way = one_way
    crew.link.reset()
    crew.context.on("request", seen)
    crew.context.on("requestfinished", finished)
    start = time.monotonic()
    crew.link.set_down(False)
    if not by_timer:
        crew.context.set_offline(False)
    crew.wait_counts("delivered", before + notes, timeout=120, interval=0.01)
    took = elapsed_since(start)
    time.sleep(0.2)
    crew.context.remove_listener("request", seen)
    crew.context.remove_listener("requestfinished", finished)
    during = [r for r in requests if r["at"] <= took]
    for r in during:
        end = ends.get(r.pop("_id"))
        r["finished_at"] = round(end, 3) if end is not None else None
    return {
        "seconds": took,
        "from_first_request_s": round(took - during[0]["at"], 3) if during else None,
        "requests": len(during),
        "request_log": during,
        "connections": crew.link.connections,
        "batch_server_ms": batch_server_ms(crew, batches_before),
        "seal_and_queue_in_page_ms": summary_ms(seal_ms),
    }


def run(notes: int = 100, one_way_ms: float = 300.0) -> dict[str, Any]:
    with crew_app() as crew:
        baseline = sync_once(crew, notes, 0.0, "ZZ201")
        slow = sync_once(crew, notes, one_way_ms / 1000, "ZZ202")
        # The timer's case, with a back-off of at most 1 s and the device check
        # due (as after a flight longer than its 5-minute interval).
        crew.context.add_init_script(TIMER_CONFIG)
        crew.page.reload()
        wait_ready(crew.page, timeout=60)
        crew.load_modules()
        by_timer = sync_once(crew, notes, one_way_ms / 1000, "ZZ203", by_timer=True)
        chromium = crew.browser.version
    # The least any sync can cost: one handshake, then one batch request per 100 notes, in sequence.
    floor = (1 + math.ceil(notes / BATCH_LIMIT)) * 2 * one_way_ms / 1000
    return {
        "notes": notes,
        "one_way_ms": one_way_ms,
        "round_trip_ms": 2 * one_way_ms,
        "chromium": chromium,
        "goal_s": 2.0,
        "slow_link": slow,
        "baseline_no_delay": baseline,
        "slow_link_found_by_timer": by_timer,
        "round_trip_floor_s": round(floor, 3),
        "slow_minus_baseline_s": round(slow["seconds"] - baseline["seconds"], 3),
        "within_goal": slow["seconds"] < 2.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--notes", type=int, default=100)
    parser.add_argument("--one-way-ms", type=float, default=300.0)
    args = parser.parse_args()
    print(json.dumps(run(args.notes, args.one_way_ms), indent=2))


if __name__ == "__main__":
    main()
