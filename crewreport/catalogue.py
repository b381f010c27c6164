"""The indicator catalogue: data in `catalogue.json`, read once.

Indicators are behaviours and circumstances. The catalogue deliberately holds
no nationality, ethnicity, religion or sex; a test keeps it that way.
"""
from __future__ import annotations

import json
from importlib import resources
from typing import Any

_DATA: dict[str, Any] = json.loads(
    resources.files("crewreport").joinpath("catalogue.json").read_text(encoding="utf-8")
)

GROUPS: list[dict[str, Any]] = _DATA["groups"]
LABELS: dict[str, str] = {i["code"]: i["label"] for g in GROUPS for i in g["indicators"]}
CODES: frozenset[str] = frozenset(LABELS)


def label(code: str) -> str:
    return LABELS.get(code, code)
