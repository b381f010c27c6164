"""The type of every text argument and option of the administrator commands.

Python reads the command line with surrogateescape: a byte that is not
UTF-8 (a name typed in a Latin-1 terminal) becomes a lone surrogate, which
SQLite, argon2 and the pages cannot encode, and the command died with a
UnicodeEncodeError traceback, sometimes after part of its work. Such an
argument is now a usage error that names it, before the command runs.
File paths keep click.Path: a file name need not be UTF-8.
"""
from __future__ import annotations

from typing import Any

import click


class Text(click.ParamType):
    """click's plain string, refused when it cannot be written as UTF-8."""

    name = "text"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        """The value as text (bytes decoded as click's own string type does), or a usage error."""
        text = click.STRING.convert(value, param, ctx)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("is not UTF-8 text; check the terminal's character encoding.", param, ctx)
        return text


TEXT = Text()
