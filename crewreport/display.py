"""How reports read on the staff pages, shared by triage and review: labels
for codes, the crew's text with hidden characters made visible, the lead time
before landing, the countdown, and the `when`, `span` and `visible` template
filters (registered app-wide by `init_app`)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask import Flask

from . import catalogue, report
from .logs import escape
from .times import parse_utc, span

STATUS_LABELS = {
    "received": "Received", "assessing": "Assessing", "meet_aircraft": "Meet aircraft",
    "no_further_action": "No further action", "referred": "Referred",
}
URGENCY_LABELS = {"immediate": "Immediate", "priority": "Priority", "routine": "Routine"}


def when(value: str | None) -> str:
    """'Tue 01 Dec 14:35Z' from a stored time; UTC, as control rooms use."""
    if not value:
        return "—"
    try:
        # Stored times are UTC with a Z; a body's observed_at may carry an offset.
        return report.parse_time(value).strftime("%a %d %b %H:%MZ")
    except ValueError:
        return value


def day(value: str | None) -> str:
    """'Tue 01 Dec 2026' from a stored time: for a tablet's enrolment, shown to
    its airline, whose minute could tie it to a note sent soon after."""
    if not value:
        return "—"
    try:
        return report.parse_time(value).strftime("%a %d %b %Y")
    except ValueError:
        return value


def lead_time(received_at: str, sta: str) -> tuple[float, str, bool]:
    """How long before landing the report arrived: (seconds, text, late?)."""
    seconds = (parse_utc(sta) - parse_utc(received_at)).total_seconds()
    if seconds >= 0:
        return seconds, f"{span(seconds)} before landing", False
    return seconds, f"{span(seconds)} after landing", True


def countdown_text(sta: str, at: datetime) -> str:
    """The server-rendered fallback for the live countdown."""
    seconds = (parse_utc(sta) - at).total_seconds()
    return f"lands in {span(seconds)}" if seconds >= 0 else f"landed {span(seconds)} ago"


def visible(value: Any) -> Any:
    """`value` (text, or lists and objects of it) with every character that
    changes how text reads without being seen (controls, bidirectional
    overrides: U+202E would show a crew id or a name reversed) written as its
    escape, `\\u202e`, the way the logs write it; line breaks and tabs kept.
    The intake accepts such text (a note is never refused for its text); the
    pages never act on it."""
    if isinstance(value, str):
        return escape(value, keep_lines=True)
    if isinstance(value, list):
        return [visible(item) for item in value]
    if isinstance(value, Mapping):
        return {key: visible(item) for key, item in value.items()}
    return value


def display_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body with hidden characters made visible and labels for indicator
    codes, for the templates."""
    body = visible(body)
    return {
        **body,
        "indicator_labels": [(c, catalogue.label(c)) for c in body.get("indicators", [])],
        "child": report.involves_child(body),
        "child_evidence": report.child_evidence(body),
        "referral_subject": report.referral_subject(body),
    }


def init_app(app: Flask) -> None:
    """The template filters every staff page uses."""
    app.add_template_filter(when, "when")
    app.add_template_filter(day, "day")
    app.add_template_filter(span, "span")
    app.add_template_filter(visible, "visible")  # for text a tablet chose outside a report, such as its label
