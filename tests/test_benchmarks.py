"""The benchmarks still run and print their JSON (tiny sizes; no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_intake_benchmark_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.intake", "--n", "3", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["reports_stored"] == 12  # single and batch, for each envelope version
    assert set(result["us_per_report"]) == {"crypto_only", "noop_post", "single", "repeat", "batch"}
    assert all(v > 0 for v in result["ratio_to_crypto_only"].values())
    assert set(result["v2_us_per_report"]) == set(result["v2_over_v1"]) == {"crypto_only", "single", "batch"}
    assert all(v > 0 for v in result["v2_over_v1"].values())
    # Each X-Wing copy carries a 1120-byte encapsulation where P-256 has 65.
    sizes = result["envelope_bytes"]
    assert sizes["v2"] - sizes["v1"] >= 2 * ((1120 - 65) * 4 // 3)


@pytest.mark.e2e
def test_seal_benchmark_runs_in_chromium() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.seal", "--n", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert set(result["median_ms"]) == set(result["p95_ms"]) == {"v1", "v2", "queue_only"}
    assert all(v > 0 for v in result["median_ms"].values()) and result["v2_over_v1"] > 0
    assert set(result["first_seal_ms"]) == {"v1", "v2"}
    # Two X-Wing copies carry 2 x 1120 bytes of encapsulation where P-256 has 2 x 65.
    assert result["envelope_bytes"]["v2"] - result["envelope_bytes"]["v1"] >= 2 * ((1120 - 65) * 4 // 3)


def test_served_intake_benchmark_runs() -> None:
    """Both apps under gunicorn, tiny sizes: the JSON has every figure and ratio."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.intake_served", "--single", "24", "--batches", "2",
                           "--batch-size", "10", "--clients", "4", "--batch-clients", "2", "--rounds", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["reports_stored"] == 24 + 2 * 10
    for app in ("baseline", "crewreport"):
        for mode in ("single", "batch"):
            figures = result["figures"][app][mode]
            assert set(figures) == {"reports_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_report"}
            assert all(v > 0 for v in figures.values()), (app, mode, figures)
    for ratio in ("ratio_single_rate_to_baseline", "ratio_single_p99_to_baseline",
                  "ratio_batch_rate_to_baseline_single", "ratio_single_server_cpu_to_baseline"):
        assert result[ratio] > 0


def test_queue_benchmark_runs() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.queue", "--reports", "200", "--repeat", "2"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["reports"] == 200 and result["repeat"] == 2
    endpoints = {"queue_default", "filter_arr", "filter_status", "filter_urgency", "filter_mine",
                 "filter_window", "filter_child", "deep_page", "queue_json", "export_csv"}
    assert set(result["median_ms"]) == set(result["p95_ms"]) == endpoints | {"baseline_session"}
    assert set(result["ratio_to_baseline"]) == endpoints
    for figures in (result["median_ms"], result["p95_ms"], result["ratio_to_baseline"]):
        assert all(isinstance(v, (int, float)) and v > 0 for v in figures.values()), figures
    board = result["queue"]
    assert 0 < board["csv_rows"] == board["board_reports"] <= 200
    assert 0 < board["board_flights"] <= board["board_reports"]
    for plan in result["default_query_plan"].values():
        assert plan["board_flights"]["detail"] and isinstance(plan["board_flights"]["temp_btree"], bool)
        assert plan["export"]["report_index"]
