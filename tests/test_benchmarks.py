"""The benchmarks still run and print their JSON (tiny sizes; no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_intake_benchmark_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.intake", "--n", "3", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["reports_stored"] == 6
    assert set(result["us_per_report"]) == {"crypto_only", "noop_post", "single", "repeat", "batch"}
    assert all(v > 0 for v in result["ratio_to_crypto_only"].values())
