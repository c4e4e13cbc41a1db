"""Writing seed files so that a reload or a folder watcher never sees half a file, and an
unchanged file is never touched (its modification time tells a reload nothing changed)."""

from __future__ import annotations

import contextlib
import enum
import os
import secrets
from pathlib import Path


class Written(enum.Enum):
    NEW = "new"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


def write_seed(folder: Path, name: str, data: bytes) -> Written:
    """Write `data` to folder/name, atomically: into a hidden temporary file in the same folder
    (a folder scan skips hidden names; the same file system makes the rename atomic), flushed
    to disk, then renamed over the old file. Identical bytes already there are left alone."""
    target = folder / name
    try:
        if target.read_bytes() == data:
            return Written.UNCHANGED
        outcome = Written.UPDATED
    except FileNotFoundError:
        outcome = Written.NEW
    temporary = folder / f".{name}.{secrets.token_hex(4)}.tmp"
    # 0o644 less the umask, like any file the user creates (mkstemp would make it 0o600).
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
    return outcome
