"""Files only the service may read (keys, the session secret, backups):
written 0600 in a 0700 folder, whole or not at all."""
from __future__ import annotations

import contextlib
import os
import secrets


def write_private(path: str, data: bytes, *, replace: bool = False) -> None:
    """Write `data` to `path`, aside first (0600 from its creation), synced,
    moved into place, then the folder synced: after a crash or a power cut
    the file is there whole or not at all, and a row naming it never points
    at a name the folder lost. Without `replace`, a file already at `path`
    is never overwritten (FileExistsError)."""
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, mode=0o700, exist_ok=True)
    partial = f"{path}.{secrets.token_hex(6)}.partial"  # its own name: a crashed run's leftover blocks nothing
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(partial, path)
        else:
            os.link(partial, path)  # fails if `path` exists, where a rename would overwrite it
    finally:
        with contextlib.suppress(OSError):
            os.unlink(partial)  # after a link, the second name; after a replace or a failure, what is left
    sync_folder(folder)


def sync_folder(folder: str) -> None:
    """fsync a folder: the names just linked or renamed in it survive a power cut."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
