"""GET's side effects belong to a person's GET only.

Flask answers HEAD with the GET view, and HEAD is what link checkers,
monitors and previews send: never a person reading the page. Two kinds of
GET view write something:

- a view whose GET is itself an audited act (opening a report: its audit
  event, and the `first_opened_at` that tells the tablet it was seen, DESIGN
  4a; the NRM sheet; an export). Its answer is made from the act (a HEAD's
  Content-Length would be the decrypted page's), so a HEAD cannot be answered
  without doing it: `get_only` refuses HEAD with 405, before anything else.
- a view that only notes a look in passing (the board's "new since you last
  looked" mark, a tablet's daily use): a HEAD is answered as the GET is, and
  the view notes the look only when `looked()`.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import request
from werkzeug.exceptions import MethodNotAllowed

F = TypeVar("F", bound=Callable[..., Any])


def looked() -> bool:
    """Whether this request is a GET, which a HEAD of the same page is not."""
    return request.method == "GET"


def get_only(view: F) -> F:
    """Refuse HEAD (405, `Allow: GET`) on a view whose GET is an audited act,
    whoever asks: the answer then says nothing about the report either."""
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.method != "GET":
            raise MethodNotAllowed(valid_methods=["GET"])
        return view(*args, **kwargs)
    return wrapped  # type: ignore[return-value]
