"""write_private: one way to write what only the service may read (keys, the
session secret, backups, a restore's files)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from crewreport.private_files import write_private


def test_a_private_file_never_overwrites_unless_asked_and_leaves_nothing_aside(tmp_path: Path) -> None:
    target = tmp_path / "made" / "secret"
    write_private(str(target), b"first")
    assert target.read_bytes() == b"first"
    assert oct(target.stat().st_mode & 0o777) == "0o600" and oct(target.parent.stat().st_mode & 0o777) == "0o700"
    with pytest.raises(FileExistsError):
        write_private(str(target), b"second")
    assert target.read_bytes() == b"first"
    target.chmod(0o644)
    write_private(str(target), b"third", replace=True)
    assert target.read_bytes() == b"third" and oct(target.stat().st_mode & 0o777) == "0o600"
    assert os.listdir(target.parent) == ["secret"]
