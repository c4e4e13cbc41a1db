"""One running bot per database: an OS lock on a sibling "<database>.lock" file, held until
close(), so that two bots never post the same digest."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

if sys.platform != "win32":  # Windows has no flock: everything but the instance lock works there.
    import fcntl

from bot.store.base import InstanceLocked, StoreError
from bot.store.sqlite.connection import SqliteBase, one_line

# The pid in a lock file: what a refused second newsbot tells the user.
_PID_BYTES = 32


class InstanceLockMixin(SqliteBase):
    """The instance lock of the State role on SQLite (close() in the base releases it)."""

    @property
    def lock_path(self) -> Path:
        """The file whose OS lock says which process runs a bot on this database."""
        return self._path.with_name(self._path.name + ".lock")

    async def acquire_instance_lock(self) -> None:
        # Under the write lock, so that it cannot interleave with close(), which releases it.
        async with self._write_lock:
            if self._lock_fd is None:
                self._lock_fd = await asyncio.to_thread(self._lock_instance)

    def _lock_instance(self) -> int:
        """Blocking part of acquire_instance_lock(): the locked lock file's descriptor.

        flock rather than a pid file alone: the OS drops the lock when its holder exits,
        however it exits, so a crash never leaves the database claimed. The lock belongs to
        this open of the file, so a second store in the same process is refused as well.
        """
        if sys.platform == "win32":
            raise StoreError(f"cannot lock database {self._path}: no fcntl.flock on this system")
        path = self.lock_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreError(f"cannot lock database {self._path}: {one_line(error)}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # For humans only (and the message below): the lock is what counts. The file is
            # never deleted: another process may be about to lock this very file.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BlockingIOError as error:
            holder = _read_pid(fd)
            os.close(fd)
            pid = f" (pid {holder})" if holder is not None else ""
            raise InstanceLocked(
                f"another newsbot is already running on {self._path}{pid}; stop it first"
            ) from error
        except OSError as error:
            os.close(fd)
            raise StoreError(f"cannot lock database {self._path}: {one_line(error)}") from error
        return fd


def _read_pid(fd: int) -> int | None:
    """The pid a lock file holds, if it reads as one (its holder may be writing it)."""
    try:
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None
