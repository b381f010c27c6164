"""Log lines that cannot be forged: whatever a request puts into a message
(a path with an encoded CR/LF, an escape sequence for the terminal) is
escaped, so one record is always one line and every line is a record. The
staff pages show the crew's text through the same `escape` (display.visible)."""
from __future__ import annotations

import logging

# C0 controls, DEL and C1 controls, the Unicode line and paragraph
# separators, and the bidirectional embeddings, overrides and isolates (which
# reorder what a reader sees around them: U+202E shows a name reversed).
_CONTROL = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))}
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))})
# Text shown on a page keeps its line breaks and tabs.
_CONTROL_BUT_LINES = {c: text for c, text in _CONTROL.items() if chr(c) not in "\n\r\t"}


def escape(text: str, keep_lines: bool = False) -> str:
    """`text` with every control character written as a visible escape (its
    line breaks and tabs kept when `keep_lines`: the crew's text on a page)."""
    return text.translate(_CONTROL_BUT_LINES if keep_lines else _CONTROL)


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
