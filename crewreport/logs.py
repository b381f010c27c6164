"""Log lines that cannot be forged: whatever a request puts into a message
(a path with an encoded CR/LF, an escape sequence for the terminal) is
escaped, so one record is always one line and every line is a record."""
from __future__ import annotations

import logging

# C0 controls, DEL and C1 controls, plus the Unicode line and paragraph separators.
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t",
                 0x2028: "\\u2028", 0x2029: "\\u2029"})


def escape(text: str) -> str:
    """`text` with every control character written as a visible escape."""
    return text.translate(_CONTROL)


class EscapingFormatter(logging.Formatter):
    """A formatter whose message part is escaped. A traceback keeps its lines,
    each indented, so no line of it can pass for a record of its own."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = escape(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        head, sep, rest = text.partition("\n")
        if not sep:
            return text
        return head + "".join("\n    " + escape(line) for line in rest.split("\n"))


def configure() -> None:
    """The app's own log (Flask, crewreport.*) on stderr, escaped."""
    logging.basicConfig(level=logging.INFO)
    for handler in logging.getLogger().handlers:
        if not isinstance(handler.formatter, EscapingFormatter):
            fmt = handler.formatter._fmt if handler.formatter else None
            handler.setFormatter(EscapingFormatter(fmt or logging.BASIC_FORMAT))
