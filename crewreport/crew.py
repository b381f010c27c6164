"""The crew app: the PWA shell, its web app manifest and its service worker.

The shell at `/` is the same for everyone and loads without signing in, so the
service worker can precache it and start it offline. `/sw.js` is rendered with
a CACHE_VERSION that is a content hash of every precached file, computed once
per process: a deploy that changes any of them makes a new service worker,
which installs a new cache and deletes the old ones on activate.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, send_from_directory

from . import catalogue, static_files

bp = Blueprint("crew", __name__)

APP_NAME = "Cabin Notes"
SHORT_NAME = "Notes"
THEME_COLOR = "#2f4858"
BACKGROUND_COLOR = "#f4f1ea"

# Static files the shell needs, relative to the static folder. JS modules are
# globbed per folder, so a new module is precached without editing this list
# (a new folder is added here; test_crew_install checks every imported module is).
STATIC_GLOBS = ("css/crew.css", "js/*.js", "js/outbox/*.js", "js/ui/*.js", "vendor/hpke.js", "vendor/xwing.js",
                "vendor/idb.js", "icons/*.png", "icons/favicon.ico")
MODULE_GLOBS = tuple(g for g in STATIC_GLOBS if g.startswith("js/"))
# What the page and the service worker load: the build's bundle of each entry
# module (scripts/build-static.mjs), precached instead of the modules in it,
# or, while a bundle is missing or stale (a module edited since the build),
# the entry modules as written, with every module precached as before.
PAGE_ENTRY = {"bundle": "bundles/app.js", "module": "js/app.js"}
WORKER_ENTRY = {"bundle": "bundles/worker.js", "module": "js/worker.js"}
# The officers' modules, which crew never load: not precached on a tablet.
OFFICERS_ONLY = ("js/triage.js", "js/board-alerts.js")
# What the precached shell may weigh on the wire (gzip), icons aside
# (benchmarks/crew_app.py reports it; tests/test_static_compression.py holds it).
WIRE_BUDGET_BYTES = 40 * 1024
# The post-quantum KEM of envelope version 2 is the one thing allowed on top.
WIRE_BUDGET_EXCLUDES = ("/static/icons/", "/favicon.ico", "/static/vendor/xwing.js")
# The template's indentation is for its readers: the page itself is within
# that budget, and nothing in it keeps a line's leading whitespace (no <pre>,
# no text area or attribute over several lines: tests/test_static_compression.py).
INDENTATION = re.compile(r"\n[ \t]+")
SHELL_TEMPLATES = ("crew/index.html", "base.html")
# Routes precached besides the static files (rendered by this blueprint).
ROUTES = ("/", "/manifest.webmanifest", "/favicon.ico")


def manifest_data() -> dict[str, Any]:
    return {
        "id": "/",
        "name": APP_NAME,
        "short_name": SHORT_NAME,
        "description": "Notes for the cabin.",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "orientation": "any",
        "background_color": BACKGROUND_COLOR,
        "theme_color": THEME_COLOR,
        "icons": [
            {"src": "/static/icons/icon-192.png", "sizes": "192x192", "type": "image/png", "purpose": "any"},
            {"src": "/static/icons/icon-512.png", "sizes": "512x512", "type": "image/png", "purpose": "any"},
            {"src": "/static/icons/icon-maskable-512.png", "sizes": "512x512", "type": "image/png",
             "purpose": "maskable"},
        ],
    }


@dataclass(frozen=True)
class Shell:
    """What the crew shell is made of: CACHE_VERSION, the URLs to precache and
    the module URLs the page and the service worker load."""

    version: str
    urls: list[str]
    page_module: str
    worker_module: str
    # SHA-256 (hex) of the bytes each precached static URL serves: the worker
    # installs a file only if it is the one this version names.
    digests: dict[str, str]


def _bundles(app: Flask) -> list[str] | None:
    """The bundles and their shared chunks, or None while any is missing or stale."""
    files: list[str] = []
    for entry in (PAGE_ENTRY, WORKER_ENTRY):
        parts = static_files.bundle_files(app, entry["bundle"])
        if parts is None:
            return None
        files.extend(parts)
    return files


def _static_files(app: Flask, bundles: list[str] | None) -> list[str]:
    root = Path(app.static_folder or "static")
    files: set[str] = set(bundles or ())
    for pattern in STATIC_GLOBS:
        if not (bundles and pattern in MODULE_GLOBS):
            files.update(p.relative_to(root).as_posix() for p in root.glob(pattern) if p.is_file())
    return sorted(f for f in files if f not in OFFICERS_ONLY)


def _template_source(app: Flask, name: str) -> bytes:
    try:
        source, _, _ = app.jinja_loader.get_source(app.jinja_env, name)  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - a missing template hashes as empty
        return b""
    return source.encode("utf-8")


def shell(app: Flask) -> Shell:
    """The crew shell, computed once per app/process (on every request in
    debug mode, so an edited module shows at once, under a new version)."""
    cached = app.extensions.get("crew_shell")
    if cached and not app.debug:
        return cached
    root = Path(app.static_folder or "static")
    bundles = _bundles(app)
    h = hashlib.sha256()
    urls = list(ROUTES)
    digests: dict[str, str] = {}
    for rel in _static_files(app, bundles):
        urls.append(f"/static/{rel}")
        # The bytes served (the build's minified copy while it is current).
        served = static_files.resolve(app, rel)
        digest = served.digest if served else hashlib.sha256((root / rel).read_bytes()).hexdigest()
        digests[f"/static/{rel}"] = digest
        h.update(b"file\0" + rel.encode() + b"\0" + digest.encode())
    for name in SHELL_TEMPLATES:
        h.update(b"template\0" + name.encode() + b"\0" + hashlib.sha256(_template_source(app, name)).digest())
    data = json.dumps(
        {
            "catalogue": catalogue.GROUPS,
            "manifest": manifest_data(),
            "hotline": app.config.get("HOTLINE"),
            "landing": app.config.get("LANDING_WARNING_MINUTES"),
        },
        sort_keys=True,
    )
    h.update(b"data\0" + data.encode())
    kind = "bundle" if bundles else "module"
    result = Shell(h.hexdigest()[:16], urls, f"/static/{PAGE_ENTRY[kind]}", f"/static/{WORKER_ENTRY[kind]}",
                   digests)
    app.extensions["crew_shell"] = result
    return result


def precache(app: Flask) -> tuple[str, list[str]]:
    """(CACHE_VERSION, URLs to precache)."""
    current = shell(app)
    return current.version, current.urls


@bp.get("/")
def index() -> Response:
    current = shell(current_app._get_current_object())  # type: ignore[attr-defined]
    resp = Response(
        INDENTATION.sub("\n", render_template(
            "crew/index.html",
            app_name=APP_NAME,
            groups=catalogue.form_groups(),
            hotline=current_app.config.get("HOTLINE", ""),
            landing_minutes=int(current_app.config.get("LANDING_WARNING_MINUTES", 30)),
            theme_color=THEME_COLOR,
            page_module=current.page_module,
            # The version this page belongs to: the worker installs it only under that version.
            shell_version=current.version,
        )),
        mimetype="text/html",
    )
    # The shell holds nothing personal; the service worker keeps it.
    resp.headers["Cache-Control"] = "no-cache"
    return static_files.gzip_response(resp, only_without_cookies=True)


@bp.get("/manifest.webmanifest")
def manifest() -> Response:
    resp = Response(json.dumps(manifest_data(), separators=(",", ":")), mimetype="application/manifest+json")
    resp.headers["Cache-Control"] = "no-cache"
    return static_files.gzip_response(resp)


@bp.get("/sw.js")
def service_worker() -> Response:
    current = shell(current_app._get_current_object())  # type: ignore[attr-defined]
    body = render_template("crew/sw.js", cache_version=current.version, precache_urls=current.urls,
                           digests=current.digests, worker_module=current.worker_module)
    resp = Response(body, mimetype="text/javascript")
    resp.headers["Cache-Control"] = "no-cache"
    resp.headers["Service-Worker-Allowed"] = "/"
    return static_files.gzip_response(resp)


@bp.get("/favicon.ico")
def favicon() -> Response:
    icons = Path(current_app.static_folder or "static") / "icons"
    resp = send_from_directory(icons, "favicon.ico", mimetype="image/x-icon")
    resp.headers["Cache-Control"] = "no-cache"
    return resp
