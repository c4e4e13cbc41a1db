"""One running bot per database on PostgreSQL: the instance lease, a row in the database (as on
SQLite, migration 0006 there), held from acquire_instance_lock() until close() and renewed by
the running bot.

There is no file to flock: a holder is taken over once its lease has expired, or at once when
its row names this host and a process that no longer exists (it crashed, or was killed). A
transaction-level advisory lock makes two newsbots starting at once take turns at the row.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bot.store.leases import (
    LEASE_SECONDS,
    Holder,
    ShardHolder,
    instance_take_over,
    process_gone,
)
from bot.store.postgres.shard_leases import HOLDERS, LEASE_LOCK, ShardLeasesMixin

log = logging.getLogger(__name__)

# The advisory lock key of the lease, shared with the shard leases: takers of both take turns.
_LEASE_LOCK = LEASE_LOCK

_HOLDER = "SELECT owner, host, pid, expires_at FROM instance_lease WHERE id = 1"
_TAKE = (
    "INSERT INTO instance_lease (id, owner, host, pid, acquired_at, renewed_at, expires_at)"
    " VALUES (1, $1, $2, $3, $4, $4, $5)"
    " ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
    " pid = excluded.pid, acquired_at = excluded.acquired_at,"
    " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE instance_lease SET renewed_at = $1, expires_at = $2 WHERE id = 1 AND owner = $3"
_RELEASE = "DELETE FROM instance_lease WHERE id = 1 AND owner = $1"


class InstanceLockMixin(ShardLeasesMixin):
    """The instance lease of the State role on PostgreSQL (and, through its base, the shard
    leases of processes that run some of the shards)."""

    _instance_renew_sql = _RENEW
    _instance_release_sql = _RELEASE
    _instance_holder_sql = _HOLDER

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        lease_seconds: int = LEASE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url, create=create)
        self._lease_seconds = lease_seconds
        # Unix seconds, as every instant in the database; tests move it.
        self._clock = clock
        self._holds_lease = False

    async def acquire_instance_lock(self) -> None:
        if self._holds_lease:
            return
        async with self._transaction(failing="cannot take the instance lease of") as connection:
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _LEASE_LOCK)
            await self._take_lease(connection)
        self._holds_lease = True

    async def _take_lease(self, connection: asyncpg.Connection[asyncpg.Record]) -> None:
        """Inside the transaction, with the advisory lock held: take the lease unless a live
        newsbot holds it."""
        row = await connection.fetchrow(_HOLDER)
        holder = Holder(*row) if row is not None else None
        now = self._now()
        shards = [ShardHolder(*row) for row in await connection.fetch(HOLDERS)]
        dead = holder is not None and process_gone(holder.host, holder.pid, holder.owner)
        taking = instance_take_over(holder, shards, self.owner, now, where=self._where, dead=dead)
        if taking:
            log.warning("%s", taking)
        host, pid = socket.gethostname(), os.getpid()
        await connection.execute(_TAKE, self.owner, host, pid, now, now + self._lease_seconds)

    def _now(self) -> int:
        return int(self._clock())
