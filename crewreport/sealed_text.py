"""What officers type (notes, status reasons), sealed at rest.

The text is sealed with HPKE to a Border Force public key, in that key's
suite: X-Wing (post-quantum, as envelope version 2) once the instance has a
version 2 Border Force key, P-256 before. It is bound to its report through
the HPKE `info` (a purpose prefix and the report id), so a sealed note
cannot be moved to another report, nor a reason passed off as a note. The
stored key id says which key, so which suite, opens it. Pure functions over
`cryptography`; no Flask: the caller picks the key from the keyring.
"""
from __future__ import annotations

from . import envelope
from .envelope import RecipientPrivateKey, RecipientPublicKey

NOTE_INFO = b"crewreport/note/v1:"
REASON_INFO = b"crewreport/reason/v1:"


def seal_text(public_key: RecipientPublicKey, text: str, report_id: str, info: bytes) -> str:
    """b64u(enc || ct) of `text` sealed to `public_key`, bound to the report."""
    sealed = envelope.seal(text.encode("utf-8"), public_key, info + report_id.encode("ascii"))
    return envelope.b64u_encode(sealed)


def open_text(private_key: RecipientPrivateKey | None, sealed: str, report_id: str, info: bytes) -> str:
    """The clear text of a sealed note or reason, or a marker if it cannot open
    (`private_key` is None when its key is no longer held)."""
    if private_key is None:
        return "[cannot be opened: its key is not held]"
    try:
        plain = envelope.unseal(envelope.b64u_decode(sealed), private_key, info + report_id.encode("ascii"))
    except Exception:  # noqa: BLE001 - any failure is shown, never fatal
        return "[cannot be opened]"
    return plain.decode("utf-8", "replace")
