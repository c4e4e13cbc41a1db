"""One running process per shard: the shard leases (migration 0007), one row per shard of a
shard count, taken by a newsbot started with discord.shard_ids from acquire_shard_leases()
until close() and renewed by the running bot, like the instance lease (lock.py).

How the two kinds of lease meet: a newsbot without shard_ids runs every shard and takes the
instance lease, so it is refused while any shard lease is live, and a sharded newsbot is
refused while the instance lease is live. Leases of another shard count are live leases too:
shard 0 of 4 and shard 0 of 8 share servers, so processes must agree on the count (stop them
all to change it).

A lease blocks while it has not expired, unless its row names this host and a process that no
longer exists (a crash, a kill): then its restart on this host takes it at once. The pure
rules here serve both backends; PostgreSQL's module (bot.store.postgres.shard_leases) runs
the same statements on its server.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import NamedTuple

from bot.sharding import Shards
from bot.store.base import DatabaseLost, InstanceLocked, InstanceLost, StoreError
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


class ShardHolder(NamedTuple):
    """Who holds one shard's lease, as its row says."""

    shard_count: int
    shard_id: int
    owner: str
    host: str
    pid: int
    expires_at: int

    def refusal(self) -> str:
        """What a process that wants this shard (or every shard) is told."""
        until = datetime.fromtimestamp(self.expires_at, UTC)
        return (
            f"shard {self.shard_id} of {self.shard_count} is run by pid {self.pid} on host "
            f"{self.host} until {until:%Y-%m-%d %H:%M:%S} UTC; stop it first"
        )


def process_gone(host: str, pid: int) -> bool:
    """Whether a lease holder ran on this host and its process is gone. A live process with
    that pid (even a recycled one) counts as the holder: the lease then runs out on its own."""
    if host != socket.gethostname() or sys.platform == "win32":
        # Windows: os.kill(pid, 0) would send CTRL_C_EVENT rather than probe.
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's process: alive
    return False


def live(holder: ShardHolder, owner: str, now: int) -> bool:
    """Whether the lease binds `owner`: another's, not expired, its process not known dead."""
    if holder.owner == owner or holder.expires_at <= now:
        return False
    return not process_gone(holder.host, holder.pid)


def blocking(
    wanted: Shards, holders: Sequence[ShardHolder], owner: str, now: int
) -> ShardHolder | None:
    """The live lease that keeps `owner` from running `wanted` (every shard when its ids are
    None): the first of its shards another process runs, else a live lease of another count
    (whose servers are spread over these shards)."""
    others = [holder for holder in holders if live(holder, owner, now)]
    ids = wanted.ids if wanted.ids is not None else range(wanted.count or 0)
    for shard in ids:
        for holder in others:
            if holder.shard_count == wanted.count and holder.shard_id == shard:
                return holder
    if wanted.ids is None:
        return others[0] if others else None
    return next((holder for holder in others if holder.shard_count != wanted.count), None)


def stale(holders: Sequence[ShardHolder], owner: str, now: int) -> list[ShardHolder]:
    """Other processes' leases that bind nobody any more (expired, or their process gone)."""
    return [holder for holder in holders if holder.owner != owner and not live(holder, owner, now)]


def leased_shards(shards: Shards) -> tuple[int, tuple[int, ...]]:
    """The count and ids of a process's shard leases; StoreError when it runs every shard."""
    if shards.count is None or shards.ids is None:
        raise StoreError("shard leases are for a newsbot with discord.shard_ids set")
    return shards.count, shards.ids


class ShardLeasesMixin(SqliteBase):
    """The shard leases of the State role on SQLite (the instance lease's mixin, lock.py,
    builds on this one and sets the clock and the lease's length)."""

    _clock: Callable[[], float]
    _lease_seconds: int
    # The shards this store holds the leases of, from acquire_shard_leases() until close().
    _leased: Shards | None = None

    def _holds_shard_of(self, guild_id: int) -> bool:
        return self._leased is not None and self._leased.owns(guild_id)

    async def acquire_shard_leases(self, shards: Shards) -> None:
        count, ids = leased_shards(shards)
        if self._leased == shards:
            return
        now = int(self._clock())
        async with self._transaction(failing="cannot take the shard leases of") as writer:
            rows = list(await writer.execute_fetchall(_INSTANCE_HOLDER))
            if rows and rows[0][0] != self.owner:
                refusal = instance_refusal(*rows[0], now=now, where=str(self._path))
                if refusal:
                    raise InstanceLocked(refusal)
            holders = [ShardHolder(*row) for row in await writer.execute_fetchall(_HOLDERS)]
            blocker = blocking(shards, holders, self.owner, now)
            if blocker is not None:
                raise InstanceLocked(blocker.refusal())
            for holder in stale(holders, self.owner, now):
                log.warning("%s: %s", self._path, takeover(holder, now))
                await writer.execute(_FORGET, (holder.shard_count, holder.shard_id))
            host, pid, until = socket.gethostname(), os.getpid(), now + self._lease_seconds
            await writer.executemany(
                _TAKE, [(count, shard, self.owner, host, pid, now, now, until) for shard in ids]
            )
        self._leased = shards

    async def renew_shard_leases(self) -> None:
        if self._leased is None:
            raise StoreError(f"newsbot holds no shard lease of {self._path}")
        now = int(self._clock())
        renewed = await self._write(_RENEW, (now, now + self._lease_seconds, self.owner))
        if renewed < len(leased_shards(self._leased)[1]):
            lost = self._leased
            self._leased = None
            holders = [ShardHolder(*row) for row in await self._read(_HOLDERS, ())]
            await self._release_shard_leases()
            raise InstanceLost(lost_message(lost, holders, self.owner, str(self._path)))

    async def close(self) -> None:
        if self._leased is not None:
            self._leased = None
            await self._release_shard_leases()
        await super().close()

    async def _release_shard_leases(self) -> None:
        try:
            await self._write(_RELEASE, (self.owner,))
        except DatabaseLost:
            pass  # nothing worth releasing; the bot says why it stops
        except StoreError as error:
            # The next process takes them over anyway once they expire.
            log.warning("releasing the shard leases failed: %s", error)


def instance_refusal(
    owner: str, host: str, pid: int, expires_at: int, *, now: int, where: str
) -> str:
    """What a sharded newsbot is told when the instance lease (a newsbot running every shard)
    is live; "" when it binds nobody any more."""
    if expires_at <= now or process_gone(host, pid):
        return ""
    until = datetime.fromtimestamp(expires_at, UTC)
    return (
        f"another newsbot runs every shard on {where} (pid {pid} on host {host}, lease until "
        f"{until:%Y-%m-%d %H:%M:%S} UTC); stop it first"
    )


def takeover(holder: ShardHolder, now: int) -> str:
    why = "it expired" if holder.expires_at <= now else "its process is gone: it is dead"
    return (
        f"taking over the lease of shard {holder.shard_id} of {holder.shard_count} from pid "
        f"{holder.pid} on host {holder.host} ({why})"
    )


def lost_message(lost: Shards, holders: Sequence[ShardHolder], owner: str, where: str) -> str:
    """Why a renewal failed: who took which of `lost`'s shards, or that its lease is gone."""
    count, ids = leased_shards(lost)
    held = {(h.shard_count, h.shard_id): h for h in holders}
    for shard in ids:
        holder = held.get((count, shard))
        if holder is None or holder.owner != owner:
            by = f" (pid {holder.pid} on host {holder.host})" if holder else ""
            return (
                f"another newsbot took over shard {shard} of {count} on {where}{by}; this one "
                "stops so that no digest is posted twice"
            )
    return (
        f"the shard leases of {where} were lost; this one stops so that no digest is posted twice"
    )
