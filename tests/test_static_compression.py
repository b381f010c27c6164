"""What /static/ and the crew shell send on the wire: the install step's
minified copies, gzip or brotli as the client asks (with `Vary` and the right
`Content-Encoding`), long caching only for content-hashed URLs, nothing that
holds a session's secret compressed, and a precached shell within its budget."""
from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, url_for
from flask.testing import FlaskClient

from crewreport import crew, static_files

from .helpers import login_as

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "static"
DIST = STATIC / static_files.BUILD_DIR
SAMPLES = ["js/app.js", "js/outbox/delivery.js", "css/crew.css", "vendor/hpke.js"]


def _build_current() -> bool:
    try:
        manifest = json.loads((DIST / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    sources = [p for folder in ("js", "css") for p in (STATIC / folder).rglob("*") if p.suffix in (".js", ".css")]
    for path in sources:
        rel = path.relative_to(STATIC).as_posix()
        if rel.startswith("js/vendor-entries/"):
            continue
        entry = manifest.get(rel)
        if not entry or entry["source_sha256"] != hashlib.sha256(path.read_bytes()).hexdigest():
            return False
    return True


@pytest.fixture(scope="module", autouse=True)
def built() -> None:
    """The install step's output, rebuilt if a source changed since `make setup`."""
    if not _build_current():
        subprocess.run(["npm", "run", "--silent", "build:static"], cwd=ROOT, check=True, timeout=120)
    assert _build_current()


@pytest.fixture
def anon(app: Flask) -> FlaskClient:
    """A client that sends no cookies, like the service worker's precache fetch."""
    return app.test_client(use_cookies=False)


def brotli_decompress(data: bytes) -> bytes:
    """Brotli decoding by Node's zlib (Python's standard library has none)."""
    script = "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
    proc = subprocess.run(["node", "-e", script],
                          input=data, capture_output=True, check=True, timeout=30)
    return proc.stdout


@pytest.mark.parametrize("rel", SAMPLES)
def test_static_files_are_served_gzip_brotli_or_plain_as_asked(anon: FlaskClient, rel: str) -> None:
    built_bytes = (DIST / rel).read_bytes()
    source = (STATIC / rel).read_bytes()
    if not rel.startswith("vendor/"):
        assert len(built_bytes) < len(source)  # minified
    plain = anon.get(f"/static/{rel}", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    assert plain.data == built_bytes
    assert "Accept-Encoding" in plain.headers["Vary"]

    zipped = anon.get(f"/static/{rel}", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(built_bytes)
    assert gzip.decompress(zipped.data) == built_bytes
    assert zipped.mimetype == plain.mimetype

    br = anon.get(f"/static/{rel}", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert br.headers["Content-Encoding"] == "br" and "Accept-Encoding" in br.headers["Vary"]
    assert len(br.data) < len(zipped.data)
    assert brotli_decompress(br.data) == built_bytes
    # each encoding is its own representation for caches and conditional requests
    assert len({plain.headers["ETag"], zipped.headers["ETag"], br.headers["ETag"]}) == 3
    again = anon.get(f"/static/{rel}", headers={"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304


def test_an_encoding_refused_with_q_zero_is_not_sent(anon: FlaskClient) -> None:
    resp = anon.get("/static/js/app.js", headers={"Accept-Encoding": "br;q=0, gzip;q=0, identity"})
    assert "Content-Encoding" not in resp.headers and resp.data == (DIST / "js/app.js").read_bytes()
    resp = anon.get("/static/js/app.js", headers={"Accept-Encoding": "br;q=0.5, gzip"})
    assert resp.headers["Content-Encoding"] == "gzip"


def test_the_build_folder_has_no_urls_of_its_own(app: Flask, anon: FlaskClient) -> None:
    for path in ("/static/dist/js/app.js", "/static/dist/manifest.json", "/static/./dist/js/app.js",
                 "/static/js/../dist/js/app.js", "/static/../setup.cfg", "/static/js/nothing-here.js"):
        assert anon.get(path).status_code == 404, path
    # made-up names are not remembered (they cannot grow the server's memory)
    assert not any("nothing" in name or "dist" in name for name in app.extensions.get("static_served", {}))


def test_a_source_edited_since_the_build_is_served_as_written(app: Flask, tmp_path: Path) -> None:
    """Never a stale build: a source whose hash is not the manifest's is sent as it is."""
    shutil.copytree(STATIC / "js", tmp_path / "js")
    shutil.copytree(DIST / "js", tmp_path / "dist" / "js")
    manifest = json.loads((DIST / "manifest.json").read_text())
    (tmp_path / "dist" / "manifest.json").write_text(json.dumps(manifest))
    edited = (tmp_path / "js" / "times.js").read_bytes() + b"\n// edited\n"
    (tmp_path / "js" / "times.js").write_bytes(edited)
    app.static_folder = str(tmp_path)
    client = app.test_client(use_cookies=False)
    stale = client.get("/static/js/times.js", headers={"Accept-Encoding": "gzip, br"})
    assert stale.status_code == 200 and "Content-Encoding" not in stale.headers and stale.data == edited
    current = client.get("/static/js/net.js", headers={"Accept-Encoding": "gzip"})
    assert current.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(current.data) == (DIST / "js/net.js").read_bytes()


def test_only_content_hashed_urls_are_cached_for_good(app: Flask, anon: FlaskClient) -> None:
    with app.test_request_context():
        url = url_for("static", filename="css/staff.css")
    digest = hashlib.sha256((DIST / "css/staff.css").read_bytes()).hexdigest()[:16]
    assert url == f"/static/css/staff.css?v={digest}"
    assert anon.get(url).headers["Cache-Control"] == "public, max-age=31536000, immutable"
    for other in ("/static/css/staff.css", "/static/css/staff.css?v=0123456789abcdef"):
        cache = anon.get(other).headers["Cache-Control"]
        assert cache == "no-cache", other


def test_staff_pages_use_content_hashed_static_urls(app: Flask, client: FlaskClient) -> None:
    login_as(client, "officer")
    html = client.get("/triage/").get_data(as_text=True)
    assert 'href="/static/css/staff.css?v=' in html and 'src="/static/js/triage.js?v=' in html


def test_pages_with_secrets_and_the_api_are_never_compressed(app: Flask, client: FlaskClient) -> None:
    """BREACH: a CSRF token or report data next to text an attacker can influence stays uncompressed."""
    for path in ("/auth/login", "/auth/session", "/api/v1/keys"):
        resp = client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert resp.status_code == 200 and "Content-Encoding" not in resp.headers, path
    login_as(client, "officer")
    for path in ("/triage/", "/auth/password", "/"):
        resp = client.get(path, headers={"Accept-Encoding": "gzip, br"})
        assert resp.status_code == 200 and "Content-Encoding" not in resp.headers, path


def test_the_cookieless_shell_manifest_and_worker_are_gzipped(anon: FlaskClient) -> None:
    for path in ("/", "/manifest.webmanifest", "/sw.js"):
        plain = anon.get(path, headers={"Accept-Encoding": "identity"})
        resp = anon.get(path, headers={"Accept-Encoding": "gzip, deflate, br"})
        assert resp.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in resp.headers["Vary"], path
        assert "Content-Encoding" not in plain.headers
        assert resp.headers["Cache-Control"] == "no-cache"
        body = gzip.decompress(resp.data)
        if path == "/":  # its CSRF token differs per (throwaway) session
            assert b'id="crew-app"' in body and len(body) > 4 * len(resp.data) / 2
        else:
            assert body == plain.data, path


def wire_sizes(client: FlaskClient, urls: list[str], encoding: str) -> dict[str, int]:
    out = {}
    for url in urls:
        resp = client.get(url, headers={"Accept-Encoding": encoding})
        assert resp.status_code == 200, url
        out[url] = len(resp.data)
    return out


def test_the_tablet_precaches_only_what_crew_need(app: Flask) -> None:
    _, urls = crew.precache(app)
    assert "/static/js/triage.js" not in urls and "/static/css/staff.css" not in urls
    assert "/static/bundles/app.js" in urls and "/static/bundles/worker.js" in urls
    assert "/static/vendor/hpke.js" in urls and "/static/vendor/idb.js" in urls
    # the modules are in the bundles, not precached one by one
    assert not [u for u in urls if u.startswith("/static/js/")]


def test_the_page_and_the_worker_load_the_bundles(anon: FlaskClient) -> None:
    page = anon.get("/").get_data(as_text=True)
    assert '<script type="module" src="/static/bundles/app.js">' in page
    assert "/static/js/" not in page
    worker = anon.get("/sw.js").get_data(as_text=True)
    assert 'import { CHANNEL_NAME, deliver } from "/static/bundles/worker.js";' in worker
    assert 'from "/static/js/' not in worker


def test_the_bundles_hold_every_module_their_entries_import_once(app: Flask, anon: FlaskClient) -> None:
    manifest = json.loads((DIST / "manifest.json").read_text())
    page, worker = static_files.bundle_files(app, "bundles/app.js"), static_files.bundle_files(app, "bundles/worker.js")
    assert page and worker and page[0] == "bundles/app.js" and worker[0] == "bundles/worker.js"
    shared = set(page) & set(worker)
    assert shared and all(name.startswith("bundles/chunk-") for name in shared)

    def modules(parts: list[str]) -> list[str]:
        return [m for part in parts for m in manifest[part]["inputs"]]

    assert {"js/app.js", "js/ui/report-form.js", "js/outbox/delivery.js", "js/clock.js"} <= set(modules(page))
    assert {"js/worker.js", "js/outbox/scheduler.js", "js/outbox/store.js"} <= set(modules(worker))
    every = modules(sorted(set(page) | set(worker)))
    assert len(every) == len(set(every))  # the outbox is in one chunk, not in both bundles
    assert not [m for m in every if m in crew.OFFICERS_ONLY or not m.startswith("js/")]
    _, urls = crew.precache(app)
    for name in sorted(set(page) | set(worker)):
        built = (DIST / name).read_bytes()
        # the vendor libraries stay files of their own, imported by URL; chunks are precached beside
        for imported in re.findall(r'(?:from|import)\s*"([^"]+)"', built.decode()):
            url = urllib.parse.urljoin(f"/static/{name}", imported)
            assert url in urls and (url.startswith("/static/vendor/") or url.startswith("/static/bundles/chunk-")), url
        zipped = anon.get(f"/static/{name}", headers={"Accept-Encoding": "gzip"})
        assert zipped.headers["Content-Encoding"] == "gzip" and gzip.decompress(zipped.data) == built
        br = anon.get(f"/static/{name}", headers={"Accept-Encoding": "br"})
        assert br.headers["Content-Encoding"] == "br" and brotli_decompress(br.data) == built
        assert anon.get(f"/static/{name}", headers={"Accept-Encoding": "identity"}).data == built


def test_a_module_edited_since_the_build_turns_the_shell_back_to_modules(app: Flask, tmp_path: Path) -> None:
    """Never a stale bundle: with one of its modules edited, the bundle is not
    found, and the page, the worker and the precache use the modules as written
    (so an edited module shows, and still starts offline), under a new version."""
    shutil.copytree(STATIC, tmp_path / "static", ignore=shutil.ignore_patterns("axe.min.js*"))
    app.static_folder = str(tmp_path / "static")
    client = app.test_client(use_cookies=False)
    before = crew.shell(app)
    assert before.page_module == "/static/bundles/app.js"
    edited = tmp_path / "static/js/outbox/store.js"
    edited.write_bytes(edited.read_bytes() + b"\n// edited\n")
    for name in ("crew_shell", "static_served", "static_manifest"):
        app.extensions.pop(name, None)
    chunk = next(u for u in before.urls if u.startswith("/static/bundles/chunk-"))  # the outbox is in it
    assert client.get(chunk).status_code == 404
    after = crew.shell(app)
    assert after.version != before.version
    assert (after.page_module, after.worker_module) == ("/static/js/app.js", "/static/js/worker.js")
    assert {"/static/js/app.js", "/static/js/worker.js", "/static/js/outbox/store.js"} <= set(after.urls)
    assert not [u for u in after.urls if u.startswith("/static/bundles/")]
    assert client.get("/static/js/outbox/store.js").data == edited.read_bytes()
    assert '<script type="module" src="/static/js/app.js">' in client.get("/").get_data(as_text=True)
    assert 'from "/static/js/worker.js";' in client.get("/sw.js").get_data(as_text=True)


def test_in_debug_mode_an_edit_shows_at_once(app: Flask, tmp_path: Path) -> None:
    """The shell is worked out per request in debug mode: no restart needed."""
    shutil.copytree(STATIC, tmp_path / "static", ignore=shutil.ignore_patterns("axe.min.js*"))
    app.static_folder = str(tmp_path / "static")
    app.debug = True
    client = app.test_client(use_cookies=False)
    assert 'src="/static/bundles/app.js"' in client.get("/").get_data(as_text=True)
    edited = tmp_path / "static/js/clock.js"
    edited.write_bytes(edited.read_bytes() + b"\n// edited\n")
    assert 'src="/static/js/app.js"' in client.get("/").get_data(as_text=True)
    assert client.get("/static/bundles/app.js").status_code == 404


def test_the_precached_shell_fits_its_wire_budget(app: Flask, anon: FlaskClient) -> None:
    """Everything precached except icons, as gzip: at most crew.WIRE_BUDGET_BYTES."""
    _, urls = crew.precache(app)
    counted = [u for u in urls if not u.startswith(crew.WIRE_BUDGET_EXCLUDES)]
    assert {"/", "/static/bundles/app.js", "/static/bundles/worker.js", "/static/vendor/hpke.js"} <= set(counted)
    raw = sum(wire_sizes(anon, counted, "identity").values())
    wire = sum(wire_sizes(anon, counted, "gzip").values())
    assert wire < raw / 2
    assert wire <= crew.WIRE_BUDGET_BYTES, f"precached shell is {wire} bytes gzip, over {crew.WIRE_BUDGET_BYTES}"


def test_the_shell_page_goes_without_its_templates_indentation(anon: FlaskClient) -> None:
    """Its lines' leading whitespace is dropped (bytes in every tablet's
    precache), which is safe only while nothing in the page keeps it: no
    <pre>, no text area holding text, no attribute value over several lines."""
    page = anon.get("/").get_data(as_text=True)
    assert not re.search(r"\n[ \t]", page)
    assert "<pre" not in page
    assert all(content == "" for content in re.findall(r"<textarea\b[^>]*>(.*?)</textarea>", page, re.S))
    assert not [value for value in re.findall(r'="([^"]*)"', page) if "\n" in value]
    assert 'id="f-narrative"' in page and "</html>" in page


def test_precache_version_follows_the_served_bytes(app: Flask, tmp_path: Path) -> None:
    """A rebuild that changes what is served (a new minifier, say) makes a new
    service worker version even though no source changed."""
    served: Any = static_files.resolve(app, "js/app.js")
    assert served.path == DIST / "js/app.js" and {name for name, _ in served.variants} == {"br", "gzip"}
    shutil.copytree(STATIC, tmp_path / "static", ignore=shutil.ignore_patterns("axe.min.js*"))
    app.static_folder = str(tmp_path / "static")
    before, _ = crew.precache(app)
    rebuilt = (DIST / "bundles/app.js").read_bytes() + b"\n"
    (tmp_path / "static/dist/bundles/app.js").write_bytes(rebuilt)
    manifest = json.loads((DIST / "manifest.json").read_text())
    manifest["bundles/app.js"]["sha256"] = hashlib.sha256(rebuilt).hexdigest()
    (tmp_path / "static/dist/manifest.json").write_text(json.dumps(manifest))
    for name in ("crew_shell", "static_served", "static_manifest"):
        app.extensions.pop(name, None)
    after, _ = crew.precache(app)
    assert len(before) == len(after) == 16 and before != after
