"""The indicator catalogue: data in `catalogue.json`, read once.

Indicators are behaviours and circumstances. The catalogue deliberately holds
no nationality, ethnicity, religion or sex; a test keeps it that way.

Codes are never removed: a tablet may fly for days with notes queued on an
older crew app, and a refused note cannot be sent again. An indicator that
should no longer be offered gets `"deprecated": true`: the crew form hides it,
the intake still accepts it and officers still see its label
(docs/protocol.md, "Compatibility").
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
CODES: frozenset[str] = frozenset(LABELS)  # every code the intake accepts, deprecated ones too


def form_groups() -> list[dict[str, Any]]:
    """The groups as the crew form offers them: deprecated codes left out, and
    a group left out when nothing in it is offered any more."""
    groups = []
    for group in GROUPS:
        offered = [i for i in group["indicators"] if not i.get("deprecated")]
        if offered:
            groups.append({**group, "indicators": offered})
    return groups


def label(code: str) -> str:
    """The label officers see; deprecated codes keep theirs."""
    return LABELS.get(code, code)
