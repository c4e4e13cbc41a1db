"""The database file itself, held open by the store from open() to close().

Two things hang on that descriptor:

- its identity (device and inode), to notice the database being deleted or replaced under the
  running bot: SQLite would go on writing into the unlinked file, and every change it
  acknowledged would be gone at the next start. The -wal file counts too: while the bot's
  connections are open it is never deleted by SQLite, and changes committed into an unlinked
  -wal are just as lost;
- an flock, the local half of the instance lease (lock.py): any path to the same file (a
  symlink, a relative path) reaches the same inode, and the kernel drops the flock when its
  holder dies, however it dies.

POSIX (fcntl) locks belong to a process and a file, not to a descriptor: closing ANY descriptor
of the database file drops every lock SQLite holds on it in this process. In WAL mode an open
connection keeps a shared lock on the file, which is what stops another process that closes its
last connection from checkpointing and deleting the -wal file under this one. So a descriptor
opened here is closed only when no store of this process has that file open any more; until
then it is parked, as SQLite parks its own (flock, unlike fcntl locks, is released at once).
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

if sys.platform != "win32":  # Windows has no flock: everything but the instance lease works there.
    import fcntl

# (st_dev, st_ino): what stays the same for a file whatever path reaches it.
Identity = tuple[int, int]


@dataclass
class _Holders:
    """The stores of this process that have one database file open, and the descriptors of
    those that closed before the others (parked: see the module's docstring)."""

    stores: int = 0
    parked: list[int] = field(default_factory=list)


_holders: dict[Identity, _Holders] = {}
# open() and close() run in worker threads.
_holders_lock = threading.Lock()


class DatabaseFile:
    """One open descriptor of the database file, its identity, and the -wal file's."""

    def __init__(self, path: Path, fd: int, identity: Identity) -> None:
        # Absolute: a relative path would name another file after a chdir.
        self.path = path
        # As strings, made once: every write stats them twice (a Path costs more than a stat).
        self._checked = str(path)
        self._wal_checked = f"{path}-wal"
        self.fd = fd
        self.identity = identity
        self.wal_identity: Identity | None = None
        self.locked = False

    @classmethod
    def open(cls, path: Path, *, create: bool) -> DatabaseFile:
        """Blocking: open (with `create`, create) the database file before SQLite connects to
        it, so that this descriptor and SQLite's are of one file. Raises OSError."""
        flags = os.O_RDONLY | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        fd = os.open(path, flags, 0o644)
        status = os.fstat(fd)
        identity = (status.st_dev, status.st_ino)
        with _holders_lock:
            _holders.setdefault(identity, _Holders()).stores += 1
        return cls(Path(os.path.abspath(path)), fd, identity)

    def note_wal(self) -> None:
        """Blocking: remember the -wal file SQLite opened (none without WAL mode)."""
        self.wal_identity = _identity(self._wal_checked)

    def lost(self) -> str | None:
        """Blocking (two stat calls): why the database at the path is no longer this one, or
        None while it is."""
        now = _identity(self._checked)
        if now is None:
            return "the file is gone"
        if now != self.identity:
            return "another file is at its path"
        if self.wal_identity is not None:
            wal = _identity(self._wal_checked)
            if wal is None:
                return "its -wal file is gone"
            if wal != self.wal_identity:
                return "another -wal file is at its path"
        return None

    def try_lock(self) -> bool:
        """Take the flock without waiting: False when another open of the file holds it."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        self.locked = True
        return True

    def unlock(self) -> None:
        if self.locked:
            self.locked = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Blocking: release the flock now, and the descriptor once no store of this process
        has the file open (call it after closing this store's connections)."""
        try:
            self.unlock()
        finally:
            with _holders_lock:
                holders = _holders[self.identity]
                holders.stores -= 1
                holders.parked.append(self.fd)
                if holders.stores == 0:
                    del _holders[self.identity]
                    for fd in holders.parked:
                        os.close(fd)


def _identity(path: str) -> Identity | None:
    try:
        status = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (status.st_dev, status.st_ino)
