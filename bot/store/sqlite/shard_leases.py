"""One running process per shard: the shard leases (migration 0007), one row per shard of a
shard count, taken by a newsbot started with discord.shard_ids from acquire_shard_leases()
until close() and renewed by the running bot, like the instance lease (lock.py).

The rules (how the two kinds of lease meet, when one binds, what a refused process is told)
are bot.store.leases', shared with PostgreSQL; this module holds SQLite's statements.
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
from bot.store.sqlite.connection import SqliteBase

log = logging.getLogger(__name__)

_INSTANCE_HOLDER = "SELECT owner, host, pid, expires_at FROM instance_lease WHERE id = 1"
_HOLDERS = (
    "SELECT shard_count, shard_id, owner, host, pid, expires_at FROM shard_leases"
    " ORDER BY shard_count, shard_id"
)
_FORGET = "DELETE FROM shard_leases WHERE shard_count = ? AND shard_id = ?"
_TAKE = (
    "INSERT INTO shard_leases"
    " (shard_count, shard_id, owner, host, pid, acquired_at, renewed_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (shard_count, shard_id) DO UPDATE SET owner = excluded.owner,"
    " host = excluded.host, pid = excluded.pid, acquired_at = excluded.acquired_at,"
    " renewed_at = excluded.renewed_at, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE shard_leases SET renewed_at = ?, expires_at = ? WHERE owner = ?"
_RELEASE = "DELETE FROM shard_leases WHERE owner = ?"


class ShardLeasesMixin(SqliteBase, LeaseKeeping):
    """The shard leases of the State role on SQLite (the instance lease's mixin, lock.py,
    builds on this one and sets the clock and the lease's length)."""

    _shard_renew_sql = _RENEW
    _shard_release_sql = _RELEASE
    _shard_holders_sql = _HOLDERS

    def _lease_where(self) -> str:
        return str(self._path)

    async def acquire_shard_leases(self, shards: Shards) -> None:
        count, ids = leased_shards(shards)
        if self._leased == shards:
            return
        now = int(self._clock())
        async with self._transaction(failing="cannot take the shard leases of") as writer:
            rows = list(await writer.execute_fetchall(_INSTANCE_HOLDER))
            instance = Holder(*rows[0]) if rows else None
            holders = [ShardHolder(*row) for row in await writer.execute_fetchall(_HOLDERS)]
            where = str(self._path)
            for holder in shard_take_over(instance, holders, shards, self.owner, now, where=where):
                await writer.execute(_FORGET, (holder.shard_count, holder.shard_id))
            host, pid, until = socket.gethostname(), os.getpid(), now + self._lease_seconds
            await writer.executemany(
                _TAKE, [(count, shard, self.owner, host, pid, now, now, until) for shard in ids]
            )
        self._leased = shards

    async def close(self) -> None:
        await self._give_up_leases()
        await super().close()
