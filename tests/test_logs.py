"""Every log line is one record: what a request puts into a message cannot
start a line of its own."""
from __future__ import annotations

import io
import logging

from crewreport.logs import EscapingFormatter, escape


def emit(message: str, *args: object, exc: BaseException | None = None) -> str:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    log = logging.getLogger("tests.logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        if exc is None:
            log.warning(message, *args)
        else:
            try:
                raise exc
            except type(exc):
                log.exception(message, *args)
    finally:
        log.removeHandler(handler)
    return stream.getvalue()


def test_control_characters_in_a_message_are_escaped() -> None:
    text = emit("refused %s", "/x\r\nWARNING forged line\x1b[2J\u2028\x85end")
    assert text == "WARNING refused /x\\r\\nWARNING forged line\\x1b[2J\\u2028\\x85end\n"


def test_bidirectional_overrides_are_escaped_and_pages_keep_their_line_breaks() -> None:
    assert emit("user %s", "ad\u202enimda\u2066x\u2069") == "WARNING user ad\\u202enimda\\u2066x\\u2069\n"
    assert escape("one\ntwo\tthree\r\n\u202e\x00", keep_lines=True) == "one\ntwo\tthree\r\n\\u202e\\x00"
    assert escape("one\ntwo") == "one\\ntwo"


def test_a_traceback_keeps_its_lines_indented_and_escaped() -> None:
    text = emit("Exception on %s", "/a\nERROR forged", exc=ValueError("bad\nERROR forged too\x1b"))
    lines = text.splitlines()
    assert lines[0] == "ERROR Exception on /a\\nERROR forged"
    assert all(line.startswith("    ") for line in lines[1:])
    assert any("ERROR forged too\\x1b" in line for line in lines[1:])
    assert "\x1b" not in text
