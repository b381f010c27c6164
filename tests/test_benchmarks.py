"""The benchmarks still run and print their JSON (tiny sizes; no timing is asserted)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

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
            figures = dict(result["figures"][app][mode])
            assert set(figures) == {"reports_per_s", "p50_ms", "p99_ms", "server_cpu_ms_per_report",
                                    "client_cpu_ms_per_report", "machine_busy"}
            busy = figures.pop("machine_busy")  # /proc/stat counts 10 ms ticks: a tiny run may see none
            assert 0 <= busy <= 1 and all(v > 0 for v in figures.values()), (app, mode, busy, figures)
    assert set(result["figures"]["baseline_as_served"]) == {"single"}
    assert all(v > 0 for v in result["figures"]["baseline_as_served"]["single"].values())
    for ratio in ("ratio_single_rate_to_baseline", "ratio_single_p99_to_baseline",
                  "ratio_single_rate_to_baseline_as_served", "ratio_batch_rate_to_baseline_single",
                  "ratio_single_server_cpu_to_baseline"):
        assert result[ratio] > 0
    from benchmarks.summary import figures as summary

    lines = {f["figure"]: f for f in summary({"intake_served": {"result": result}})}
    single = lines["single envelopes, served"]
    assert single["value"] == result["figures"]["crewreport"]["single"]["reports_per_s"]
    assert single["ratio"] == round(single["value"] / result["figures"]["baseline"]["single"]["reports_per_s"], 2)
    assert lines["batches of 100, served"]["goal"] == "ratio >= 2.5" and len(lines) == 8
    busy = lines["cores busy, single envelopes"]
    assert (busy["value"], busy["baseline"]) == (result["figures"]["crewreport"]["single"]["machine_busy"],
                                                 result["figures"]["baseline"]["single"]["machine_busy"])
    alike = lines["single envelopes, served, against the baseline served alike"]
    assert alike["baseline"] == result["figures"]["baseline_as_served"]["single"]["reports_per_s"]


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


def run_module(*args: str, timeout: float = 300) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


def test_runner_finds_every_benchmark_and_writes_one_report(tmp_path: Path) -> None:
    from benchmarks import run

    assert {"intake", "queue", "crew_app", "slow_link"} <= set(run.discover())
    assert not any(name.startswith("_") or name in ("run", "summary") for name in run.discover())
    assert all(run.tiny_args(name) is not None for name in ("intake", "queue", "crew_app", "slow_link"))
    out = tmp_path / "report.json"
    printed = run_module("benchmarks.run", "--tiny", "--only", "intake", "queue", "--output", str(out))
    report = json.loads(out.read_text())
    assert printed["output"] == str(out) and printed["errors"] == {}
    assert set(report["benchmarks"]) == {"intake", "queue"} and report["tiny"] is True
    assert report["benchmarks"]["queue"]["result"]["reports"] == 200
    assert report["machine"]["nproc"] >= 1 and report["machine"]["cpu_model"] and report["machine"]["python"]
    figures = {(f["benchmark"], f["figure"]) for f in report["summary"]}
    assert ("intake", "batch (test client)") in figures and any(b == "queue" for b, _ in figures)
    assert all(f["value"] > 0 and f["baseline"] > 0 for f in report["summary"])


def test_runner_refuses_an_unknown_benchmark(tmp_path: Path) -> None:
    args = ["--only", "nothing", "--output", str(tmp_path / "r.json")]
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no such benchmark: nothing" in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_crew_app_benchmark_runs() -> None:
    result = run_module("benchmarks.crew_app", "--notes", "2", "--starts", "1")
    shell = result["shell_bytes"]
    assert 0 < shell["served"]["br_or_gzip"] <= shell["served"]["gzip"] < shell["served"]["raw"]
    assert shell["served"]["gzip"] < shell["baseline_as_written"]["gzip"]
    assert result["seal_and_queue_ms"]["n"] == 2 and result["baseline_build_envelope_ms"]["n"] == 2
    assert result["offline_start"]["ready_ms"]["n"] == 1 and result["offline_start"]["served_by_service_worker"]
    assert result["chromium"]


def test_slow_link_benchmark_runs() -> None:
    result = run_module("benchmarks.slow_link", "--notes", "3")
    for run_ in (result["slow_link"], result["baseline_no_delay"], result["slow_link_found_by_timer"]):
        assert run_["seconds"] > 0 and run_["seal_and_queue_in_page_ms"]["n"] == 3
        assert any(r["path"] == "api/v1/reports/batch" for r in run_["request_log"])
        assert run_["connections"] >= 1
    # the link delays for real: a sync needs at least a handshake and a request, two 600 ms round trips
    # (a lower bound the link itself sets, whatever the machine's speed)
    assert result["round_trip_ms"] == 600 and result["slow_link"]["seconds"] >= 1.2


def test_runner_calls_run_for_a_module_that_is_not_a_script(tmp_path: Path, monkeypatch: Any) -> None:
    """A benchmark may offer only `run() -> dict`; one with a main block is run as a script."""
    from benchmarks import run

    (tmp_path / "only_run.py").write_text("def run() -> dict:\n    return {}\n")
    (tmp_path / "script.py").write_text("TINY_ARGS = ['--n', '1']\nif __name__ == '__main__':\n    print('{}')\n")
    (tmp_path / "_helper.py").write_text("")
    monkeypatch.setattr(run, "HERE", tmp_path)
    assert run.discover() == ["only_run", "script"]
    call_run = "import json, benchmarks.only_run as m; print(json.dumps(m.run()))"
    assert run.command("only_run", [])[1:] == ["-c", call_run]
    assert run.command("script", ["--n", "1"])[1:] == ["-m", "benchmarks.script", "--n", "1"]
    assert run.tiny_args("script") == ["--n", "1"] and run.tiny_args("only_run") is None


def test_a_goal_is_met_or_not_by_the_unrounded_figures() -> None:
    from benchmarks.summary import figure

    close = figure("intake_served", "single", 830.5, 1194.3, "baseline", "reports/s", goal="ratio >= 0.7")
    assert close["ratio"] == 0.7 and close["goal_met"] is False  # 0.6954
    assert figure("x", "p99", 37.5, 27.8, "b", "ms", goal="ratio <= 1.5")["goal_met"] is True
    assert figure("x", "shell", 40961, 80000, "b", "bytes", goal=40960)["goal_met"] is False
    assert figure("x", "shell", 40960, 80000, "b", "bytes", goal=40960)["goal_met"] is True
    assert figure("x", "odd", 1.0, None, "b", "s", goal="ratio >= 2")["goal_met"] is None
    assert "goal_met" not in figure("x", "no goal", 1.0, 2.0, "b", "s")
