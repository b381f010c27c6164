"""Every benchmark in one report: `make bench`.

Runs each benchmark module of this package (every `benchmarks/<name>.py` but
this one, `summary` and the `_`-prefixed helpers, so a new one is picked up
without editing this file), each in its own process: `python -m
benchmarks.<name>` if it runs as a script (and prints its JSON), otherwise its
`run() -> dict`. It writes them all, with the machine they ran on and a
summary of every figure beside its baseline, to one file
(benchmarks/results/latest.json by default).

`--tiny` runs each with the sizes its module names in `TINY_ARGS` (a list
literal; modules without one are skipped): a check that they all still run,
not a measurement.

    python -m benchmarks.run [--only NAME ...] [--tiny] [--output PATH]
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks import summary
from crewreport.times import stamp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUTPUT = HERE / "results" / "latest.json"
TIMEOUT_S = 600


def discover() -> list[str]:
    """The benchmark modules, by name, in a stable order."""
    return sorted(p.stem for p in HERE.glob("*.py")
                  if not p.stem.startswith("_") and p.stem not in ("run", "summary"))


def _tree(name: str) -> ast.Module:
    return ast.parse((HERE / f"{name}.py").read_text("utf-8"))


def runs_as_script(name: str) -> bool:
    """Whether the module has an `if __name__ == "__main__":` block."""
    for node in _tree(name).body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and isinstance(node.test.left, ast.Name) \
                and node.test.left.id == "__name__":
            return True
    return False


def tiny_args(name: str) -> list[str] | None:
    """The module's TINY_ARGS literal, read without importing it (None: it has none)."""
    for node in _tree(name).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TINY_ARGS" for t in node.targets):
            value = ast.literal_eval(node.value)
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return value
    return None


def command(name: str, args: list[str]) -> list[str]:
    """How to run one benchmark in a process of its own, its JSON on stdout."""
    if runs_as_script(name):
        return [sys.executable, "-m", f"benchmarks.{name}", *args]
    call = f"import json, benchmarks.{name} as m; print(json.dumps(m.run()))"
    return [sys.executable, "-c", call]


def run_one(name: str, args: list[str]) -> dict[str, Any]:
    start = time.monotonic()
    try:
        proc = subprocess.run(command(name, args), cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT_S} s", "elapsed_s": round(time.monotonic() - start, 1)}
    out: dict[str, Any] = {"args": args, "elapsed_s": round(time.monotonic() - start, 1)}
    if proc.returncode != 0:
        out["error"] = f"exit {proc.returncode}: {proc.stderr[-2000:]}"
        return out
    try:
        out["result"] = json.loads(proc.stdout)
    except ValueError:
        out["error"] = f"no JSON on stdout: {proc.stdout[-500:]!r}"
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine() -> dict[str, Any]:
    """What the figures were measured on (Chromium's version is in the browser benchmarks' own results)."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "platform": platform.platform(),
        # The machine may be shared: its load when the report was written.
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "packages": {p: _version(p) for p in ("flask", "gunicorn", "cryptography", "playwright")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="*", help="benchmark modules to run (default: all)")
    parser.add_argument("--tiny", action="store_true", help="each module's TINY_ARGS (a smoke run)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args()

    names = discover()
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            parser.error(f"no such benchmark: {', '.join(unknown)} (have: {', '.join(names)})")
        names = [n for n in names if n in args.only]
    started = datetime.now(UTC)
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    t0 = time.monotonic()
    results: dict[str, Any] = {}
    for name in names:
        bench_args = tiny_args(name) if args.tiny else []
        if bench_args is None or (args.tiny and not runs_as_script(name)):
            results[name] = {"skipped": "no TINY_ARGS for a smoke run"}
            continue
        print(f"benchmark {name} {' '.join(bench_args)}".rstrip(), file=sys.stderr, flush=True)
        results[name] = run_one(name, bench_args)
    report = {
        "started": stamp(started),
        "elapsed_s": round(time.monotonic() - t0, 1),
        "tiny": args.tiny,
        "machine": {**machine(), "loadavg_at_start": load_at_start},
        "summary": summary.figures(results),
        "benchmarks": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", "utf-8")
    print(json.dumps({"output": str(args.output), "elapsed_s": report["elapsed_s"], "summary": report["summary"],
                      "errors": {n: r["error"][:300] for n, r in results.items() if "error" in r}}, indent=2))
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
