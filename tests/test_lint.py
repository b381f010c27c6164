"""Lint as a test: ruff over the whole tree with the rules in pyproject.toml,
and every suppression comment says why it is there."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A suppression comment ("noqa", then optional codes) must go on with a reason of a few words.
NOQA = re.compile(r"#\s*noqa\b(?::\s*[A-Z]+[0-9]+(?:\s*,\s*[A-Z]+[0-9]+)*)?(?P<rest>.*)$")
SKIP = {".venv", "node_modules", "build", "dist", "instance", ".git"}


def ruff(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120, check=False)


def python_files() -> list[Path]:
    return [p for p in ROOT.rglob("*.py") if not SKIP & set(p.relative_to(ROOT).parts)]


def test_ruff_finds_nothing() -> None:
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_uses_this_projects_rules() -> None:
    """The check above is worth something only if it fires: an unused import,
    an `assert` in the package and an unsorted import block all fail."""
    bad = "import sys\nimport os\n\n\ndef f(x: int) -> int:\n    assert x\n    return x\n"
    result = ruff("check", "--no-cache", "--stdin-filename", "crewreport/example.py", "-", stdin=bad)
    assert result.returncode == 1
    for code in ("F401", "S101", "I001"):
        assert code in result.stdout, (code, result.stdout)


def test_every_noqa_says_why() -> None:
    bare = []
    for path in python_files():
        for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
            found = NOQA.search(line)
            if found and len(re.findall(r"[A-Za-z]{2,}", found["rest"])) < 2:
                bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "a suppression without a reason:\n" + "\n".join(bare)


def test_the_noqa_check_would_catch_a_bare_one() -> None:
    marker = "#" + " noqa: S307"  # spelt in two parts so that ruff does not read it here
    found = NOQA.search(f"x = eval(s)  {marker}")
    assert found and len(re.findall(r"[A-Za-z]{2,}", found["rest"])) < 2
    found = NOQA.search(f"x = eval(s)  {marker} - the input is our own constant")
    assert found and len(re.findall(r"[A-Za-z]{2,}", found["rest"])) >= 2
