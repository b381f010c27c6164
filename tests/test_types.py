"""The standard: type hints on every function. mypy holds us to it."""
from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent
CHECKED = ["crewreport", "benchmarks", "tests"]


def test_every_function_is_typed_and_the_types_agree() -> None:
    out, err, status = api.run([
        *(str(ROOT / p) for p in CHECKED),
        "--ignore-missing-imports", "--disallow-untyped-defs", "--disallow-incomplete-defs",
        "--cache-dir", str(ROOT / ".mypy_cache"),
    ])
    assert status == 0, out + err
