"""Names /static/ does not serve: each real file answers under its one
canonical name only, so that made-up spellings of it (`./`, `//`, `..`, a
trailing slash) cannot fill the per-process cache of found files, and a name
the file system refuses is a 404 like any other missing file."""
from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from .helpers import text

SECURITY = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}


def cached(app: Flask) -> dict[str, object]:
    return app.extensions.setdefault("static_served", {})


def assert_not_found(resp: object, path: str) -> None:
    assert resp.status_code == 404, (path, resp.status_code)  # type: ignore[attr-defined]
    for name, value in SECURITY.items():
        assert resp.headers.get(name) == value, (path, name)  # type: ignore[attr-defined]
    assert "Page not found" in text(resp)


@pytest.mark.parametrize("path", [
    "/static/" + "a" * 256 + ".css",
    "/static/css/" + "é" * 200,  # 400 bytes in one segment, 200 characters
    "/static/" + "/".join(["b" * 250] * 20),  # each segment allowed, the whole path over PATH_MAX
], ids=["segment", "multibyte segment", "whole path"])
def test_a_name_too_long_for_the_file_system_is_not_found(client: FlaskClient, path: str) -> None:
    assert_not_found(client.get(path), path)


def test_other_spellings_of_a_file_are_not_found_and_not_remembered(client: FlaskClient, app: Flask) -> None:
    assert client.get("/static/css/staff.css").status_code == 200
    assert client.get("/static/no-such-file.css").status_code == 404  # the error page's own files, once
    size = len(cached(app))
    spellings = ["./css/staff.css", "css/./staff.css", "css/staff.css/", "css//staff.css", "css/../css/staff.css",
                 "./css/./staff.css/", "css/%2e/staff.css", "js/../css/staff.css"]
    spellings += ["css/" + "./" * n + "staff.css" for n in range(2, 60)]
    for spelling in spellings:
        resp = client.get("/static/" + spelling)
        assert resp.status_code != 200, spelling
        if resp.status_code != 308:  # Werkzeug's own redirect to the merged slashes
            assert_not_found(resp, spelling)
    assert len(cached(app)) == size, sorted(cached(app))[:10]
    # the file itself is still served, and remembered once
    assert client.get("/static/css/staff.css").status_code == 200 and len(cached(app)) == size
