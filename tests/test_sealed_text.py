"""What officers type is sealed at rest and opens only where it was written:
for its own report, as its own kind (note or reason), with the key it was
sealed to; anything else shows a marker, never an error."""
from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from crewreport import envelope, xwing
from crewreport.sealed_text import NOTE_INFO, REASON_INFO, open_text, seal_text

from .helpers import KeySet


def test_a_sealed_note_opens_for_its_report_only(keyset: KeySet) -> None:
    sealed = seal_text(keyset.border_force.public_key(), "Meet at gate 12 — ünïcode", "report-a", NOTE_INFO)
    assert "gate" not in sealed
    assert open_text(keyset.border_force, sealed, "report-a", NOTE_INFO) == "Meet at gate 12 — ünïcode"
    assert open_text(keyset.border_force, sealed, "report-b", NOTE_INFO) == "[cannot be opened]"


def test_a_note_cannot_be_passed_off_as_a_status_reason(keyset: KeySet) -> None:
    sealed = seal_text(keyset.border_force.public_key(), "hello", "report-a", NOTE_INFO)
    assert open_text(keyset.border_force, sealed, "report-a", REASON_INFO) == "[cannot be opened]"


def test_a_wrong_missing_or_damaged_key_or_text_shows_a_marker(keyset: KeySet) -> None:
    sealed = seal_text(keyset.border_force.public_key(), "hello", "report-a", REASON_INFO)
    other = ec.generate_private_key(ec.SECP256R1())
    assert open_text(other, sealed, "report-a", REASON_INFO) == "[cannot be opened]"
    assert open_text(None, sealed, "report-a", REASON_INFO) == "[cannot be opened: its key is not held]"
    assert open_text(keyset.border_force, sealed[:-4], "report-a", REASON_INFO) == "[cannot be opened]"
    assert open_text(keyset.border_force, "not base64 !", "report-a", REASON_INFO) == "[cannot be opened]"


def test_sealed_to_an_x_wing_key_it_is_post_quantum_and_opens_with_that_key_only(keyset: KeySet) -> None:
    sealed = seal_text(keyset.border_force_v2.public_key(), "Meet at gate 12", "report-a", NOTE_INFO)
    assert len(envelope.b64u_decode(sealed)) >= xwing.ENC_LEN + len("Meet at gate 12") + 16  # enc, text, tag
    assert open_text(keyset.border_force_v2, sealed, "report-a", NOTE_INFO) == "Meet at gate 12"
    assert open_text(keyset.border_force_v2, sealed, "report-b", NOTE_INFO) == "[cannot be opened]"
    assert open_text(keyset.airline_zz_v2, sealed, "report-a", NOTE_INFO) == "[cannot be opened]"
    assert open_text(keyset.border_force, sealed, "report-a", NOTE_INFO) == "[cannot be opened]"  # the P-256 key
