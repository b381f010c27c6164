"""GET's side effects belong to a person's GET only.

Flask answers HEAD with the GET view, and HEAD is what link checkers,
monitors and previews send: never a person reading the page. Nor is a
browser's speculative GET (a prefetch or prerender: Chrome's omnibox and
bookmark-bar hover, `<link rel=prefetch>`), which may never be shown; it
says so in `Sec-Purpose` (or the older `Purpose`, `X-Moz`). Two kinds of
GET view write something:

- a view whose GET is itself an audited act (opening a report: its audit
  event, and the `first_opened_at` that tells the tablet it was seen, DESIGN
  4a; the NRM sheet; an export). Its answer is made from the act (a HEAD's
  Content-Length would be the decrypted page's), so a HEAD cannot be answered
  without doing it: `get_only` refuses HEAD with 405, and a speculative GET
  with 403 (a browser discards a speculative answer that is not 2xx, and asks
  again when the person really goes there), before anything else.
- a view that only notes a look in passing (the board's "new since you last
  looked" mark, a tablet's daily use): a HEAD is answered as the GET is, and
  the view notes the look only when `looked()`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, request
from werkzeug.exceptions import MethodNotAllowed

F = TypeVar("F", bound=Callable[..., Any])


def speculative() -> bool:
    """Whether the browser asks ahead of a navigation that may never come."""
    headers = request.headers
    return any("prefetch" in headers.get(name, "").lower() for name in ("Sec-Purpose", "Purpose", "X-Moz"))


def from_another_site() -> bool:
    """Whether a browser says another site (or a sibling subdomain) sent this
    request: the session cookie (SameSite=Lax) goes with a top-level GET from
    anywhere. A bookmark or a typed address is `none`; a client that is no
    browser sends nothing, and is taken at its word."""
    return request.headers.get("Sec-Fetch-Site") in ("cross-site", "same-site")


def looked() -> bool:
    """Whether a person (or the crew app) asked: a GET, not a HEAD, not a prefetch."""
    return request.method == "GET" and not speculative()


def get_only(view: F) -> F:
    """Refuse HEAD (405, `Allow: GET`) and a speculative GET (403) on a view
    whose GET is an audited act, whoever asks: the answer then says nothing
    about the report either."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.method != "GET":
            raise MethodNotAllowed(valid_methods=["GET"])
        if speculative():
            return Response("Not prefetched: this page is audited when it is opened.\n", 403,
                            mimetype="text/plain")
        return view(*args, **kwargs)
    return wrapped  # type: ignore[return-value]
