"""One running process per shard on PostgreSQL: the shard leases (migration 0002), with the
rules of bot.store.leases (which says how they meet the instance lease). The advisory lock
of the instance lease makes every taker of either kind take turns.
"""

from __future__ import annotations

import logging
import os
import socket

from bot.sharding import Shards
from bot.store.leases import (
    Holder,
    LeaseKeeping,
    ShardHolder,
    leased_shards,
    shard_take_over,
)
from bot.store.postgres.connection import PostgresBase

log = logging.getLogger(__name__)

# The advisory lock key of both kinds of lease (distinct from the migrations' MIGRATION_LOCK).
LEASE_LOCK = 6_397_269

_INSTANCE_HOLDER = "SELECT owner, host, pid, expires_at FROM instance_lease WHERE id = 1"
HOLDERS = (
    "SELECT shard_count, shard_id, owner, host, pid, expires_at FROM shard_leases"
    " ORDER BY shard_count, shard_id"
)
_FORGET = "DELETE FROM shard_leases WHERE shard_count = $1 AND shard_id = $2"
_TAKE = (
    "INSERT INTO shard_leases"
    " (shard_count, shard_id, owner, host, pid, acquired_at, renewed_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $6, $7)"
    " ON CONFLICT (shard_count, shard_id) DO UPDATE SET owner = excluded.owner,"
    " host = excluded.host, pid = excluded.pid, acquired_at = excluded.acquired_at,"
    " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE shard_leases SET renewed_at = $1, expires_at = $2 WHERE owner = $3"
_RELEASE = "DELETE FROM shard_leases WHERE owner = $1"


class ShardLeasesMixin(PostgresBase, LeaseKeeping):
    """The shard leases of the State role on PostgreSQL (the instance lease's mixin, lock.py,
    builds on this one and sets the clock and the lease's length)."""

    _shard_renew_sql = _RENEW
    _shard_release_sql = _RELEASE
    _shard_holders_sql = HOLDERS

    def _lease_where(self) -> str:
        return self._where

    async def acquire_shard_leases(self, shards: Shards) -> None:
        count, ids = leased_shards(shards)
        if self._leased == shards:
            return
        now = int(self._clock())
        async with self._transaction(failing="cannot take the shard leases of") as connection:
            await connection.execute("SELECT pg_advisory_xact_lock($1)", LEASE_LOCK)
            row = await connection.fetchrow(_INSTANCE_HOLDER)
            instance = Holder(*row) if row is not None else None
            holders = [ShardHolder(*row) for row in await connection.fetch(HOLDERS)]
            where = self._where
            for holder in shard_take_over(instance, holders, shards, self.owner, now, where=where):
                await connection.execute(_FORGET, holder.shard_count, holder.shard_id)
            host, pid, until = socket.gethostname(), os.getpid(), now + self._lease_seconds
            await connection.executemany(
                _TAKE, [(count, shard, self.owner, host, pid, now, until) for shard in ids]
            )
        self._leased = shards

    async def close(self) -> None:
        await self._give_up_leases()
        await super().close()
