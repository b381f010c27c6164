"""Serving /static/ small: the install step's minified, precompressed copies,
content-hashed URLs that may be cached for good, and gzip for the crew shell.

`scripts/build-static.mjs` (run by `make setup`) writes, under the git-ignored
static/dist/, a minified copy of each stylesheet and module with `.gz` and
`.br` files beside it, and a manifest of their sources' SHA-256. A built copy
is served only while its source is unchanged, so an edited file is served as
written (uncompressed) until the next build, never a stale one. The build's
bundles (bundles/app.js, bundles/worker.js: a crew entry module with all it
imports) have no source of their own: one is served only while every module
in it is unchanged, and is otherwise not found (the shell then uses the
modules themselves, see crew.shell).

Compression and secrets (BREACH): only static files and the crew shell's own
responses are compressed. Static files, the manifest and the service worker
hold no secret. The shell page holds no token (it starts no session) but
could show a flashed message, so it is compressed only for a request without
cookies (the service worker's precache fetch). The staff pages and the API, which put CSRF
tokens or report data beside attacker-influenced text, are never compressed.
"""
from __future__ import annotations

import errno
import functools
import hashlib
import json
import logging
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zopfli.gzip
from flask import Flask, Response, abort, current_app, request, send_file
from werkzeug.security import safe_join

log = logging.getLogger(__name__)

BUILD_DIR = "dist"
# Preferred first, for the same quality value.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
# Smaller bodies are not worth a compressed copy (a header costs about as much).
MIN_DYNAMIC_BYTES = 256


@dataclass(frozen=True)
class Served:
    """What one static path is served from: the file, its content hash and its compressed copies."""

    path: Path
    digest: str
    variants: tuple[tuple[str, Path], ...]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _built(app: Flask) -> dict[str, Any]:
    root = Path(app.static_folder or "static")
    try:
        manifest = json.loads((root / BUILD_DIR / "manifest.json").read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def _manifest(app: Flask) -> dict[str, Any]:
    """The build's manifest: read per request in debug mode, once per process otherwise."""
    return _built(app) if app.debug else app.extensions.setdefault("static_manifest", _built(app))


def _variants(built: Path) -> tuple[tuple[str, Path], ...]:
    return tuple((name, built.with_name(built.name + ext)) for name, ext in ENCODINGS
                 if built.with_name(built.name + ext).is_file())


def _current_bundle(root: Path, rel: str, entry: Any) -> Served | None:
    """A bundle of the build (a file with no source of its own, made of the
    modules listed as its inputs), or None: no such bundle, or one of its
    modules changed since the build. A stale bundle is never served; the crew
    shell then loads the modules as written (crew.shell)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("inputs"), dict) or not entry["inputs"]:
        return None
    built = root / BUILD_DIR / rel
    if not built.is_file():
        return None
    for module, digest in entry["inputs"].items():
        path = Path(safe_join(str(root), module) or "")
        if not path.is_file() or _sha256(path) != digest:
            log.warning("static/%s changed since the build of %s: not served; run `make setup`", module, rel)
            return None
    return Served(built, str(entry.get("sha256") or _sha256(built)), _variants(built))


def resolve(app: Flask, filename: str) -> Served | None:
    """The file to serve for /static/<filename> (None: no such file). A built
    copy counts only if its source still matches. Found files are remembered
    per process (not in debug mode, where an edit shows at once); misses are
    not, and a file is found only under its one canonical name (no `.` or
    `..` segment, empty segment or trailing slash), so requests for made-up
    names cannot grow the memory."""
    cache: dict[str, Served] = app.extensions.setdefault("static_served", {})
    if filename in cache and not app.debug:
        return cache[filename]
    try:
        served = _find(app, filename)
    except OSError as exc:
        # A name longer than the file system takes (a segment over 255 bytes)
        # names no file; any other error is the server's own and stays one.
        if exc.errno != errno.ENAMETOOLONG:
            raise
        return None
    if served is not None:
        cache[filename] = served
    return served


def _find(app: Flask, filename: str) -> Served | None:
    root = Path(app.static_folder or "static").resolve()
    joined = safe_join(str(root), filename)
    source = Path(joined) if joined else None
    if source is None or source == root or source.relative_to(root).parts[0] == BUILD_DIR:
        return None
    rel = source.relative_to(root).as_posix()
    if rel != filename:
        return None
    entry = _manifest(app).get(rel)
    built = root / BUILD_DIR / rel
    if not source.is_file():
        return _current_bundle(root, rel, entry)
    if isinstance(entry, dict) and built.is_file() and entry.get("source_sha256") == _sha256(source):
        return Served(built, str(entry.get("sha256") or _sha256(built)), _variants(built))
    if entry is not None:
        log.warning("static/%s changed since the build: served as written; run `make setup`", rel)
    return Served(source, _sha256(source), ())


def bundle_files(app: Flask, name: str) -> list[str] | None:
    """A bundle and the shared chunks it imports (static paths, the bundle
    first), or None if any of them is missing or stale."""
    files: list[str] = []
    todo = [name]
    while todo:
        rel = todo.pop(0)
        if rel in files:
            continue
        if resolve(app, rel) is None:
            return None
        files.append(rel)
        chunks = _manifest(app).get(rel, {}).get("chunks", [])
        todo.extend(c for c in chunks if isinstance(c, str))
    return files


def content_version(app: Flask, filename: str) -> str | None:
    """A short hash of the bytes /static/<filename> serves (for its `v` query)."""
    served = resolve(app, filename)
    return served.digest[:16] if served else None


def accepted(offered: tuple[str, ...]) -> str | None:
    """The first of `offered` the request's Accept-Encoding takes at the highest quality."""
    best, best_q = None, 0.0
    for name in offered:
        q = request.accept_encodings[name]
        if q > best_q:
            best, best_q = name, q
    return best


def static_view(filename: str) -> Response:
    """/static/<filename>: a compressed copy if the client takes one; cached for
    good only under a URL whose `v` is the served bytes' hash."""
    app: Flask = current_app._get_current_object()  # type: ignore[attr-defined]
    served = resolve(app, filename)
    if served is None:
        abort(404)
    mimetype = mimetypes.guess_type(filename)[0] or "application/octet-stream"
    encoding = accepted(tuple(name for name, _ in served.variants))
    path = dict(served.variants)[encoding] if encoding else served.path
    resp = send_file(path, mimetype=mimetype, conditional=True, etag=True, max_age=None)
    if encoding:
        resp.headers["Content-Encoding"] = encoding
    if served.variants:
        resp.vary.add("Accept-Encoding")
    if request.args.get("v") == served.digest[:16]:
        resp.headers["Cache-Control"] = IMMUTABLE
    else:
        resp.headers["Cache-Control"] = REVALIDATE
    return resp


def gzip_response(resp: Response, *, only_without_cookies: bool = False) -> Response:
    """gzip a crew-shell response (no secret beside request data, see above)
    if the client takes gzip; always `Vary: Accept-Encoding`."""
    resp.vary.add("Accept-Encoding")
    if only_without_cookies:
        resp.vary.add("Cookie")
        if "Cookie" in request.headers:
            return resp
    body = resp.get_data()
    if len(body) < MIN_DYNAMIC_BYTES or "Content-Encoding" in resp.headers or not request.accept_encodings["gzip"]:
        return resp
    resp.set_data(thorough_gzip(body))
    resp.headers["Content-Encoding"] = "gzip"
    return resp


@functools.lru_cache(maxsize=16)
def thorough_gzip(body: bytes) -> bytes:
    """gzip by Zopfli, as the build compresses static files: some 4 % smaller
    than zlib's best, at a fifth of a second a page. Every load of one shell
    version is the same bytes, so each is compressed once per process."""
    return zopfli.gzip.compress(body, numiterations=5)


def init_app(app: Flask) -> None:
    """Serve /static/ through static_view, and give url_for('static') URLs their content hash."""
    app.view_functions["static"] = static_view

    @app.url_defaults
    def hashed_static(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            version = content_version(app, values["filename"])
            if version:
                values["v"] = version
