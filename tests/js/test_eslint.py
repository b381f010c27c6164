"""The browser code (static/js and the crew service worker template) is clean
under the project's ESLint rules: recommended rules and one quote style."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ESLINT = ROOT / "node_modules" / ".bin" / "eslint"
LINTED = ("static/js", "templates/crew/sw.js", "eslint.config.js")


def run_eslint(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    assert ESLINT.exists(), "node_modules/.bin/eslint is missing: run `make setup`"
    node = shutil.which("node")
    assert node, "node is not on PATH"
    return subprocess.run([node, str(ESLINT), "--max-warnings=0", *args], input=stdin, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def test_browser_code_is_clean_under_eslint() -> None:
    result = run_eslint(*LINTED)
    assert result.returncode == 0, result.stdout + result.stderr


def test_eslint_reports_a_single_quoted_string_in_the_service_worker_template() -> None:
    """The template's JSON placeholders parse; a stray quote style is still caught in it."""
    template = ROOT / "templates/crew/sw.js"
    source = template.read_text()
    assert "|tojson }}" in source
    result = run_eslint("--stdin", "--stdin-filename", str(template), stdin=source + "\nself.x = 'single';\n")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "@stylistic/quotes" in result.stdout
    assert "Parsing error" not in result.stdout
