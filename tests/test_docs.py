"""The docs live in the repository and say what the code does: links resolve
inside the checkout, and the lists a reader relies on (error codes, commands)
match the code."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask

from crewreport import intake

ROOT = Path(__file__).resolve().parent.parent
DOCS = ["README.md", "docs/protocol.md", "docs/api.md", "docs/threat-model.md", "docs/operations.md",
        "docs/glossary.md", "docs/performance.md"]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def read(name: str) -> str:
    return (ROOT / name).read_text("utf-8")


@pytest.mark.parametrize("name", DOCS)
def test_links_stay_inside_the_repository_and_resolve(name: str) -> None:
    text = read(name)
    assert "/work/" not in text and "../shared" not in text
    for target in LINK.findall(text):
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (ROOT / name).parent / target.split("#", 1)[0]
        assert path.resolve().is_relative_to(ROOT), (name, target)
        assert path.exists(), (name, target)


def test_the_readme_links_every_doc() -> None:
    links = set(LINK.findall(read("README.md")))
    assert {d for d in DOCS if d.startswith("docs/")} <= links


@pytest.mark.parametrize("name", ["docs/api.md", "docs/protocol.md"])
def test_every_intake_error_code_is_documented(name: str) -> None:
    text = read(name)
    for code in intake.STATUS:
        assert f"`{code}`" in text, (name, code)


def test_every_command_is_documented(app: Flask) -> None:
    text = read("README.md") + read("docs/operations.md")
    for command in sorted(app.cli.commands):
        assert f"`{command}" in text or f"flask {command}" in text, command


def test_the_protocol_states_the_compatibility_rule() -> None:
    text = " ".join(read("docs/protocol.md").split())
    assert "is ever removed or narrowed" in text
    assert '"deprecated": true' in text and "tests/test_compatibility.py" in text


def test_the_glossary_explains_the_discreet_words() -> None:
    text = read("docs/glossary.md")
    assert "**note**" in text and "Cabin Notes" in text and "report" in text
