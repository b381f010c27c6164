"""The one-line figures of a `benchmarks.run` report, each beside its baseline.

A benchmark may give its own: a top-level `summary` list of
{"figure", "value", "baseline", "baseline_is", "unit"} in its JSON. For the
ones that do not, the figures are picked here from their known fields; a
module this file does not know and that gives none is listed by name only.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Figure = dict[str, Any]


def figure(bench: str, name: str, value: Any, baseline: Any, baseline_is: str, unit: str,
           goal: Any = None) -> Figure:
    out: Figure = {"benchmark": bench, "figure": name, "value": value, "baseline": baseline,
                   "baseline_is": baseline_is, "unit": unit}
    if goal is not None:
        out["goal"] = goal
        out["goal_met"] = goal_met(value, baseline, goal)
    if isinstance(value, (int, float)) and isinstance(baseline, (int, float)) and baseline:
        out["ratio"] = round(value / baseline, 2)
    return out


def goal_met(value: Any, baseline: Any, goal: Any) -> bool | None:
    """Whether a figure meets its goal, from the unrounded figures (a ratio of
    0.695 is shown as 0.7 and does not meet "ratio >= 0.7"); a number as the
    goal is a ceiling (bytes, seconds). None when it cannot be told."""
    if not isinstance(value, (int, float)):
        return None
    if isinstance(goal, (int, float)):
        return value <= goal
    bound = re.fullmatch(r"ratio (>=|<=) ([0-9.]+)", str(goal))
    if bound is None or not isinstance(baseline, (int, float)) or not baseline:
        return None
    ratio = value / baseline
    return ratio >= float(bound[2]) if bound[1] == ">=" else ratio <= float(bound[2])


def _intake(r: dict[str, Any]) -> list[Figure]:
    us = r["us_per_report"]
    return [figure("intake", f"{k} (test client)", us[k], us["crypto_only"], "crypto only", "us/report")
            for k in ("single", "batch") if k in us]


def _intake_served(r: dict[str, Any]) -> list[Figure]:
    crew, base = r["figures"]["crewreport"], r["figures"]["baseline"]
    name = "intake_served"
    return [
        figure(name, "single envelopes, served", crew["single"]["reports_per_s"], base["single"]["reports_per_s"],
               "no-crypto app, single", "reports/s", goal="ratio >= 0.7"),
        figure(name, "single envelopes, served, against the baseline served alike", crew["single"]["reports_per_s"],
               r["figures"]["baseline_as_served"]["single"]["reports_per_s"],
               "no-crypto app under `serve`'s gunicorn set-up (gevent, access log)", "reports/s"),
        figure(name, "single envelopes, p99", crew["single"]["p99_ms"], base["single"]["p99_ms"],
               "no-crypto app, single", "ms", goal="ratio <= 1.5"),
        figure(name, "batches of 100, served", crew["batch"]["reports_per_s"], base["single"]["reports_per_s"],
               "no-crypto app, single", "reports/s", goal="ratio >= 2.5"),
        figure(name, "server CPU a single report", crew["single"]["server_cpu_ms_per_report"],
               base["single"]["server_cpu_ms_per_report"], "no-crypto app, single", "ms"),
        figure(name, "server CPU a report in a batch", crew["batch"]["server_cpu_ms_per_report"],
               base["single"]["server_cpu_ms_per_report"], "no-crypto app, single", "ms"),
        figure(name, "load generator CPU a single report", crew["single"]["client_cpu_ms_per_report"],
               base["single"]["client_cpu_ms_per_report"], "same, posting to the no-crypto app", "ms"),
        figure(name, "cores busy, single envelopes", crew["single"]["machine_busy"],
               base["single"]["machine_busy"], "same, no-crypto app", "share of all cores' time"),
    ]


def _queue(r: dict[str, Any]) -> list[Figure]:
    med = r["median_ms"]
    base = med.get("baseline_session")
    return [figure("queue", f"{k} at {r['reports']} reports", v, base, "signed-in page, no queue", "ms median")
            for k, v in med.items() if k != "baseline_session"]


def _crew_app(r: dict[str, Any]) -> list[Figure]:
    shell = r["shell_bytes"]
    written = shell["baseline_as_written"]
    start = r["offline_start"]
    return [
        figure("crew_app", "precached shell, gzip (icons aside)", shell["served"]["gzip"], written["gzip"],
               "files as written, old list, gzip each", "bytes", goal=shell["budget_gzip"]),
        figure("crew_app", "precached shell, raw", shell["served"]["raw"], written["raw"], "files as written", "bytes"),
        figure("crew_app", "precached shell, brotli where asked", shell["served"]["br_or_gzip"],
               shell["served"]["gzip"], "gzip only", "bytes"),
        figure("crew_app", "seal and queue a note", r["seal_and_queue_ms"]["median"],
               r["baseline_build_envelope_ms"]["median"], "buildEnvelope alone", "ms median"),
        figure("crew_app", "offline start to ready form", start["ready_ms"]["median"],
               start["baseline_dom_content_loaded_ms"]["median"], "DOMContentLoaded", "ms median"),
    ]


def _slow_link(r: dict[str, Any]) -> list[Figure]:
    slow, base = r["slow_link"], r["baseline_no_delay"]
    return [
        figure("slow_link", f"connection back to {r['notes']} notes receipted, {r['round_trip_ms']:.0f} ms RTT",
               slow["seconds"], base["seconds"], "same, no delay", "s", goal=r.get("goal_s")),
        figure("slow_link", "server time of the batch", sum(slow.get("batch_server_ms", [])),
               sum(base.get("batch_server_ms", [])), "same, no delay", "ms"),
        *([figure("slow_link", "link back, found by the back-off timer: first request to receipted",
                  r["slow_link_found_by_timer"]["from_first_request_s"], slow["from_first_request_s"],
                  "same after an `online` event", "s")] if "slow_link_found_by_timer" in r else []),
        figure("slow_link", "requests on the slow link", slow["requests"], base["requests"], "same, no delay",
               "requests"),
        figure("slow_link", "new connections on the slow link", slow["connections"], base["connections"],
               "same, no delay", "connections"),
    ]


KNOWN: dict[str, Callable[[dict[str, Any]], list[Figure]]] = {
    "intake": _intake, "intake_served": _intake_served, "queue": _queue, "crew_app": _crew_app, "slow_link": _slow_link,
}


def figures(results: dict[str, Any]) -> list[Figure]:
    out: list[Figure] = []
    for name, entry in results.items():
        result = entry.get("result")
        if not isinstance(result, dict):
            continue
        given = result.get("summary")
        if isinstance(given, list):
            out.extend({"benchmark": name, **f} for f in given if isinstance(f, dict))
        elif name in KNOWN:
            try:
                out.extend(KNOWN[name](result))
            except (KeyError, TypeError) as exc:
                out.append({"benchmark": name, "figure": f"(summary failed: {exc!r}; see benchmarks.{name})"})
        else:
            out.append({"benchmark": name, "figure": f"(no summary; see benchmarks.{name})"})
    return out
