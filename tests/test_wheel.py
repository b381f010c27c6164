"""The package ships whole: a wheel built from the checkout, installed into a
new virtual environment outside it, serves the crew app and the sign-in page
with gunicorn from that install alone.

The new environment gets crewreport from the wheel and its dependencies from
this test run's environment through a path file (so no download); that
environment's editable-install hook is not processed there, so the checkout is
not importable from it, which the first test checks.
"""
from __future__ import annotations

import json
import re
import shutil
import site
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.served import ROOT, ServedApp

MARKER = "shipped-by-the-wheel-7d1f"
# What a build of the checkout must not see or leave behind (git-ignored, local state).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "node_modules", "instance", "build", "dist", "*.egg-info",
                                    "__pycache__", ".*_cache", "test-results")
# ... except the install step's static/dist/ (minified copies and the crew bundles), which `make setup` made.
BUILD_OUTPUT = ROOT / "static" / "dist"


def not_source(folder: str, names: list[str]) -> set[str]:
    """NOT_SOURCE, keeping static/dist/ (a git-ignored build output the wheel ships)."""
    ignored = set(NOT_SOURCE(folder, names))
    if Path(folder).resolve() == BUILD_OUTPUT.parent.resolve():
        ignored.discard(BUILD_OUTPUT.name)
    return ignored


class Installed:
    """A wheel of the checkout, installed into a fresh venv under tmp."""

    def __init__(self, tmp: Path) -> None:
        dist = tmp / "dist"
        # Built from a copy, as from a fresh clone after `make setup`: pip builds
        # in place, and build/ and *.egg-info would otherwise land in the checkout.
        source = tmp / "source"
        shutil.copytree(ROOT, source, ignore=not_source)
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(dist), str(source)],
            capture_output=True, text=True, timeout=300, check=False)
        assert build.returncode == 0, build.stderr
        (self.wheel,) = dist.glob("crewreport-*.whl")
        self.venv = tmp / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.venv)], check=True, timeout=120)
        self.python = str(self.venv / "bin" / "python")
        self.purelib = Path(self.run("import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
        install = subprocess.run(
            [sys.executable, "-m", "pip", "--python", self.python, "install", "--no-deps", "--no-index",
             "--quiet", str(self.wheel)], capture_output=True, text=True, timeout=300, check=False)
        assert install.returncode == 0, install.stderr
        # Dependencies (Flask, cryptography, gunicorn...) from this run's environment.
        (self.purelib / "crewreport-test-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
        self.home = tmp / "elsewhere"  # a working directory outside the checkout
        self.home.mkdir()

    def run(self, code: str) -> str:
        """Run Python code with the installed interpreter, outside the checkout."""
        out = subprocess.run([self.python, "-c", code], capture_output=True, text=True,
                             cwd=self.venv, timeout=120, check=False)
        assert out.returncode == 0, out.stderr
        return out.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    return Installed(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def served(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    """gunicorn from the installed package, with a marker added to its copies of
    one static file and one template, so what is served provably comes from there."""
    package = installed.purelib / "crewreport"
    with open(package / "static" / "js" / "b64.js", "a", encoding="utf-8") as f:
        f.write(f"\n// {MARKER}\n")
    login = package / "templates" / "auth" / "login.html"
    source = login.read_text("utf-8")
    assert "Sign in</button>" in source
    login.write_text(source.replace("Sign in</button>", f"Sign in</button><!-- {MARKER} -->", 1), "utf-8")
    app = ServedApp(tmp_path_factory.mktemp("wheel-instance"), python=installed.python, cwd=installed.home,
                    env={"CREWREPORT_PASSWORD_HASH_FAST": "true"},
                    unset=("CREWREPORT_KEY_PASSPHRASE", "PYTHONPATH"), workers=1)
    init = app.flask("demo", "--password", "wheel-demo-password")
    assert init.returncode == 0, init.stderr
    app.start()
    try:
        yield app
    finally:
        app.kill()


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), resp.read()


def test_the_wheel_holds_templates_static_files_and_vendor_bundles(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    for path in ("crewreport/templates/crew/index.html", "crewreport/templates/crew/sw.js",
                 "crewreport/templates/auth/login.html", "crewreport/static/js/app.js",
                 "crewreport/static/css/crew.css", "crewreport/static/icons/icon-192.png",
                 "crewreport/static/vendor/hpke.js", "crewreport/static/vendor/idb.js",
                 "crewreport/catalogue.json", "crewreport/migrations/0001_initial.sql",
                 "crewreport/static/dist/manifest.json", "crewreport/static/dist/bundles/app.js",
                 "crewreport/static/dist/bundles/app.js.gz", "crewreport/static/dist/bundles/worker.js.br"):
        assert path in names, path
    for source in (*(ROOT / "templates").rglob("*"), *(ROOT / "static" / "js").glob("*.js")):
        if source.is_file():
            assert f"crewreport/{source.relative_to(ROOT).as_posix()}" in names, source
    # Nothing that is not the app: no tests, no build inputs, no stamps.
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/"))]
    assert not [n for n in names if "vendor-entries" in n or n.endswith((".built", ".pyc"))]


def test_the_installed_app_uses_the_installed_files(installed: Installed) -> None:
    out = json.loads(installed.run(
        "import json, crewreport; app = crewreport.create_app({'SECRET_KEY': 'x'});"
        "print(json.dumps([crewreport.__file__, app.template_folder, app.static_folder, app.instance_path]))"))
    module, templates, static, instance = (Path(p).resolve() for p in out)
    package = (installed.purelib / "crewreport").resolve()
    assert module == package / "__init__.py"
    assert templates == package / "templates"
    assert static == package / "static"
    assert ROOT.resolve() not in instance.parents  # not the checkout's instance/ folder
    assert package not in instance.parents  # nor inside site-packages


def test_the_installed_crew_shell_is_the_bundles_and_each_is_served(installed: Installed) -> None:
    out = json.loads(installed.run(
        "import json, crewreport; from crewreport import crew; app = crewreport.create_app({'SECRET_KEY': 'x'});"
        "shell = crew.shell(app); client = app.test_client(use_cookies=False);"
        "print(json.dumps([shell.page_module, shell.worker_module,"
        " {u: client.get(u, headers={'Accept-Encoding': 'gzip'}).headers.get('Content-Encoding')"
        "  for u in shell.urls if u.startswith('/static/bundles/')}]))"))
    page, worker, bundles = out
    assert (page, worker) == ("/static/bundles/app.js", "/static/bundles/worker.js")
    assert {"/static/bundles/app.js", "/static/bundles/worker.js"} < set(bundles)
    assert set(bundles.values()) == {"gzip"}


def test_it_serves_the_crew_app_and_every_precached_file(served: ServedApp) -> None:
    status, ctype, page = get(served.url + "/")
    assert status == 200 and ctype.startswith("text/html")
    assert b'id="report-form"' in page
    status, ctype, manifest = get(served.url + "/manifest.webmanifest")
    assert status == 200 and json.loads(manifest)["start_url"] == "/"
    status, ctype, worker = get(served.url + "/sw.js")
    assert status == 200 and ctype.startswith("text/javascript")
    found = re.search(r"const PRECACHE = (\[.*?\]);", worker.decode())
    assert found, worker[:500]
    urls = json.loads(found.group(1))
    # b64.js, in the bundles, was edited above: the shell is the modules as written, never a stale bundle
    assert "/static/vendor/hpke.js" in urls and "/static/js/app.js" in urls
    assert not [u for u in urls if u.startswith("/static/bundles/")]
    for url in urls:  # the whole shell the service worker precaches answers from the install
        status, _, data = get(served.url + url)
        assert status == 200 and data, url
    _, ctype, script = get(served.url + "/static/js/b64.js")
    assert ctype.startswith("text/javascript")
    assert MARKER in script.decode()
    assert script.startswith((ROOT / "static" / "js" / "b64.js").read_bytes())
    _, _, bundle = get(served.url + "/static/vendor/hpke.js")
    assert bundle == (ROOT / "static" / "vendor" / "hpke.js").read_bytes()


def test_it_serves_the_sign_in_page(served: ServedApp) -> None:
    status, ctype, page = get(served.url + "/auth/login")
    assert status == 200 and ctype.startswith("text/html")
    text = page.decode()
    assert 'name="username"' in text and 'name="password"' in text and 'name="csrf-token"' in text
    assert MARKER in text
