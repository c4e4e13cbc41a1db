"""One running bot per database: the instance lease, a row in the database itself (migration
0006), held from acquire_instance_lock() until close() and renewed by the running bot.

The lease names its holder (owner, host, pid) and when it expires, so that it works wherever the
database is reached from, and a crashed holder blocks for no longer than its lease. On SQLite a
local check makes it instant: the store flocks the database file it holds open (dbfile.py), and
any path to that file (a symlink, a relative path) reaches the same inode. A live holder on this
host holds that flock, so a free flock with a lease naming this host means that holder is dead.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import time
from collections.abc import Callable

import aiosqlite

from bot.store.base import InstanceLocked, StoreError
from bot.store.leases import (
    LEASE_SECONDS,
    Holder,
    ShardHolder,
    instance_refusal_text,
    instance_take_over,
)
from bot.store.sqlite.dbfile import DatabaseFile
from bot.store.sqlite.shard_leases import ShardLeasesMixin

log = logging.getLogger(__name__)

_HOLDER = "SELECT owner, host, pid, expires_at FROM instance_lease WHERE id = 1"
_TAKE = (
    "INSERT INTO instance_lease (id, owner, host, pid, acquired_at, renewed_at, expires_at)"
    " VALUES (1, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
    " pid = excluded.pid, acquired_at = excluded.acquired_at,"
    " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE instance_lease SET renewed_at = ?, expires_at = ? WHERE id = 1 AND owner = ?"
_RELEASE = "DELETE FROM instance_lease WHERE id = 1 AND owner = ?"
_SHARD_HOLDERS = (
    "SELECT shard_count, shard_id, owner, host, pid, expires_at FROM shard_leases"
    " ORDER BY shard_count, shard_id"
)


class InstanceLockMixin(ShardLeasesMixin):
    """The instance lease of the State role on SQLite (and, through its base, the shard
    leases of processes that run some of the shards)."""

    _instance_renew_sql = _RENEW
    _instance_release_sql = _RELEASE
    _instance_holder_sql = _HOLDER

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        lease_seconds: int = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(path, create=create)
        self._lease_seconds = lease_seconds
        # Unix seconds, as every instant in the database; tests move it.
        self._clock = clock
        self._holds_lease = False

    async def acquire_instance_lock(self) -> None:
        if self._holds_lease:
            return
        file = self._open_file()
        if not file.try_lock():
            holder = await self._holder()
            raise InstanceLocked(self._refusal(holder))
        try:
            async with self._transaction(failing="cannot take the instance lease of") as writer:
                await self._take_lease(writer)
        except BaseException:
            file.unlock()
            raise
        self._holds_lease = True
        # Into the database file itself: a second newsbot can then name this holder even if
        # the -wal file is deleted. Best effort (PASSIVE: waits for no reader).
        async with self._write_lock:
            with self._errors():
                await self._require(self._writer).execute("PRAGMA wal_checkpoint(PASSIVE)")

    async def _take_lease(self, writer: aiosqlite.Connection) -> None:
        """Inside the transaction, with the flock held: take the lease unless a live newsbot
        on another host holds it."""
        rows = list(await writer.execute_fetchall(_HOLDER))
        holder = Holder(*rows[0]) if rows else None
        now = self._now()
        shards = [ShardHolder(*row) for row in await writer.execute_fetchall(_SHARD_HOLDERS)]
        # The flock is ours: a holder on this host would hold it if it were alive.
        dead = holder is not None and holder.host == socket.gethostname()
        taking = instance_take_over(
            holder, shards, self.owner, now, where=str(self._path), dead=dead
        )
        if taking:
            log.warning("%s", taking)
        host, pid = socket.gethostname(), os.getpid()
        await writer.execute(_TAKE, (self.owner, host, pid, now, now, now + self._lease_seconds))

    def _refusal(self, holder: Holder | None) -> str:
        return instance_refusal_text(str(self._path), holder)

    def _open_file(self) -> DatabaseFile:
        if sys.platform == "win32":
            raise StoreError(f"cannot lock database {self._path}: no fcntl.flock on this system")
        if self._file is None:
            raise StoreError(f"database {self._path} is not open")
        return self._file

    def _now(self) -> int:
        return int(self._clock())
