"""The lease rules every backend shares: who holds a lease, whether it binds, what a refused or
overtaken process is told, and how long a lease lasts.

Three kinds of lease live in the database: the instance lease (one newsbot running every
shard), the shard leases (processes that each run some shards) and the task locks (one process
at a time runs a task such as a seed reload). Each names its holder (owner, host, pid) and
when it expires, so that it works wherever the database is reached from, and a crashed holder
blocks for no longer than its lease; a holder on this host whose process is gone is known dead
and is taken over at once.

How the instance and shard leases meet: a newsbot without shard_ids runs every shard and takes
the instance lease, so it is refused while any shard lease is live, and a sharded newsbot is
refused while the instance lease is live. Leases of another shard count are live leases too:
shard 0 of 4 and shard 0 of 8 share servers, so processes must agree on the count (stop them
all to change it).

The backends (bot.store.sqlite, bot.store.postgres) keep only their SQL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, NamedTuple

from bot.sharding import Shards
from bot.store.base import (
    DatabaseLost,
    InstanceLocked,
    InstanceLost,
    LockedElsewhere,
    StoreError,
    TaskHolder,
    TaskLease,
    of_this_process,
)

log = logging.getLogger(__name__)

# How long a lease lasts without renewal: what a crashed holder on another host can block for.
LEASE_SECONDS = 60
# A task lock's lease, and how often its holder renews it: three chances within it.
TASK_LOCK_SECONDS = 30
TASK_LOCK_RENEWAL = 10.0


def _utc(seconds: int) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%Y-%m-%d %H:%M:%S} UTC"


class Holder(NamedTuple):
    """Who holds the instance lease, as its row says."""

    owner: str
    host: str
    pid: int
    expires_at: int

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host}, lease until {_utc(self.expires_at)}"


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
        return (
            f"shard {self.shard_id} of {self.shard_count} is run by pid {self.pid} on host "
            f"{self.host} until {_utc(self.expires_at)}; stop it first"
        )


def process_gone(host: str, pid: int, owner: str) -> bool:
    """Whether a lease holder ran on this host and its process is gone. A live process with
    that pid (even a recycled one) counts as the holder: the lease then runs out on its own;
    except this process itself, which knows its own leases (a container restarts newsbot as
    pid 1 under the same host name: the lease of pid 1 there is a past life's)."""
    if host != socket.gethostname() or sys.platform == "win32":
        # Windows: os.kill(pid, 0) would send CTRL_C_EVENT rather than probe.
        return False
    if pid == os.getpid():
        return not of_this_process(owner)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # someone else's process: alive
    return False


def why_free(expires_at: int, now: int, *, dead: bool) -> str | None:
    """Why another's lease no longer binds (it expired, or its holder is known dead), or None
    while it does: the one take-over rule of every lease."""
    if expires_at <= now:
        return "it expired"
    if dead:
        return "its process is gone: it is dead"
    return None


def live(holder: ShardHolder, owner: str, now: int) -> bool:
    """Whether the lease binds `owner`: another's, not expired, its process not known dead."""
    if holder.owner == owner:
        return False
    dead = process_gone(holder.host, holder.pid, holder.owner)
    return why_free(holder.expires_at, now, dead=dead) is None


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


def instance_take_over(
    holder: Holder | None,
    shards: Sequence[ShardHolder],
    owner: str,
    now: int,
    *,
    where: str,
    dead: bool,
) -> str | None:
    """Whether `owner` may take the instance lease: raises InstanceLocked while a process runs
    some shards or another live newsbot holds it; else what to log of a holder it takes over
    (None when there is none). `dead`: whether the backend knows `holder` to be dead."""
    running = blocking(Shards(), shards, owner, now)
    if running is not None:
        # A process runs some shards: this one would run them too.
        raise InstanceLocked(running.refusal())
    if holder is None or holder.owner == owner:
        return None
    why = why_free(holder.expires_at, now, dead=dead)
    if why is None:
        raise InstanceLocked(instance_refusal_text(where, holder))
    return f"{where}: taking over the lease of {holder.describe()} ({why})"


def instance_refusal_text(where: str, holder: Holder | None) -> str:
    """What a newsbot is told when another one runs on its database."""
    by = f" ({holder.describe()})" if holder else ""
    return f"another newsbot is already running on {where}{by}; stop it first"


def instance_lost_text(where: str, holder: Holder | None) -> str:
    """Why a running newsbot stops when its instance lease was taken over."""
    by = f" ({holder.describe()})" if holder else ""
    return (
        f"another newsbot took over {where}{by}; this one stops so that no digest is posted twice"
    )


def instance_refusal(
    owner: str, host: str, pid: int, expires_at: int, *, now: int, where: str
) -> str:
    """What a sharded newsbot is told when the instance lease (a newsbot running every shard)
    is live; "" when it binds nobody any more."""
    if why_free(expires_at, now, dead=process_gone(host, pid, owner)) is not None:
        return ""
    return (
        f"another newsbot runs every shard on {where} (pid {pid} on host {host}, lease until "
        f"{_utc(expires_at)}); stop it first"
    )


def takeover(holder: ShardHolder, now: int) -> str:
    why = why_free(holder.expires_at, now, dead=True)
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


def shard_take_over(
    instance: Holder | None,
    holders: Sequence[ShardHolder],
    wanted: Shards,
    owner: str,
    now: int,
    *,
    where: str,
) -> list[ShardHolder]:
    """Whether `owner` may take the leases of `wanted`: raises InstanceLocked while a newsbot
    runs every shard or another process runs one of them; else the stale leases of others to
    forget first (each logged as taken over)."""
    if instance is not None and instance.owner != owner:
        refusal = instance_refusal(*instance, now=now, where=where)
        if refusal:
            raise InstanceLocked(refusal)
    blocker = blocking(wanted, holders, owner, now)
    if blocker is not None:
        raise InstanceLocked(blocker.refusal())
    forgotten = stale(holders, owner, now)
    for holder in forgotten:
        log.warning("%s: %s", where, takeover(holder, now))
    return forgotten


async def release_quietly(release: Callable[[], Awaitable[object]], what: str) -> None:
    """Give a lease up on the way out; a failure only delays whoever takes it next (until it
    expires), and a lost database has nothing worth releasing (the bot says why it stops)."""
    try:
        await release()
    except DatabaseLost:
        pass
    except StoreError as error:
        log.warning("releasing %s failed: %s", what, error)


def task_take_over(holder: TaskHolder | None, *, now: int) -> str | None:
    """Whether a task lock may be taken: raises LockedElsewhere while `holder` binds (this very
    store's row too: the task runs in this process already); else what to log of a holder it
    takes over (None when the lock is free)."""
    if holder is None:
        return None
    why = why_free(holder.expires_at, now, dead=process_gone(holder.host, holder.pid, holder.owner))
    if why is None:
        raise LockedElsewhere(holder)
    return f"taking over the {holder.name} lock from {holder.who()} ({why})"


class TaskLocking:
    """The backend-neutral half of the task locks (bot.store.base.TaskLocks): holding one for
    a block and renewing it meanwhile. A backend adds its three statements."""

    _owner: str
    _clock: Callable[[], float]
    # A task lock's lease, and how often its holder renews it (tests shorten them).
    task_lock_seconds: int = TASK_LOCK_SECONDS
    task_lock_renewal: float = TASK_LOCK_RENEWAL

    def task_lock(
        self, name: str, *, failing: str | None = None
    ) -> AbstractAsyncContextManager[TaskLease]:
        return self._held_task_lock(name, failing or f"cannot take the {name} lock of")

    @asynccontextmanager
    async def _held_task_lock(self, name: str, failing: str) -> AsyncIterator[TaskLease]:
        now = int(self._clock())
        wanted = TaskHolder(
            name, self._owner, socket.gethostname(), os.getpid(), now, now + self.task_lock_seconds
        )
        await self._take_task_row(wanted, partial(task_take_over, now=now), failing)
        lease = TaskLease()
        heartbeat = asyncio.create_task(
            self._keep_task_lock(name, lease), name=f"newsbot {name} lock"
        )
        try:
            yield lease
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
            await release_quietly(partial(self._release_task_row, name), f"the {name} lock")

    async def _keep_task_lock(self, name: str, lease: TaskLease) -> None:
        """The heartbeat: push the lock's expiry on while the task runs. A lost lock is said,
        and set on the lease: most tasks stay correct on their own (a reload is one transaction
        that checks its generation, the lock only spares the others the work); one that lasts
        as long as it holds the lock (the seed watch) stops."""
        while True:
            await asyncio.sleep(self.task_lock_renewal)
            until = int(self._clock()) + self.task_lock_seconds
            try:
                kept = await self._renew_task_row(name, until)
            except StoreError as error:
                log.warning("renewing the %s lock failed: %s", name, error)
                continue
            if not kept:
                log.warning("the %s lock expired and was taken by another process", name)
                lease.lost.set()
                return

    async def _take_task_row(
        self, wanted: TaskHolder, decide: Callable[[TaskHolder | None], str | None], failing: str
    ) -> None:
        """In one transaction: read the lock's row, let `decide` judge its holder (it raises
        while that one binds, else returns what to log of it), and write `wanted` over it.
        Database errors are reported as `failing` the database."""
        raise NotImplementedError

    async def _renew_task_row(self, name: str, until: int) -> bool:
        """Push this store's lock on to `until`; False when it holds it no more."""
        raise NotImplementedError

    async def _release_task_row(self, name: str) -> None:
        raise NotImplementedError


class LeaseKeeping:
    """What both backends do alike with the instance and shard leases once taken: say which
    this store holds, renew them, and give them up. A backend supplies its statements (the
    class attributes), where its database is, and its _read and _write."""

    _owner: str
    _clock: Callable[[], float]
    _lease_seconds: int
    _holds_lease: bool = False
    # The shards this store holds the leases of, from acquire_shard_leases() until close().
    _leased: Shards | None = None
    # (renewed_at, expires_at, owner) -> rows renewed; (owner,) -> rows released.
    _instance_renew_sql: str
    _instance_release_sql: str
    _instance_holder_sql: str
    _shard_renew_sql: str
    _shard_release_sql: str
    _shard_holders_sql: str

    if TYPE_CHECKING:

        async def _read(self, sql: str, params: Sequence[Any]) -> Sequence[Any]: ...

        async def _write(self, sql: str, params: Sequence[Any]) -> int: ...

    def _lease_where(self) -> str:
        raise NotImplementedError

    @property
    def holds_instance_lock(self) -> bool:
        return self._holds_lease

    def holds_lease_of(self, guild_id: int) -> bool:
        return self._holds_lease or self._holds_shard_of(guild_id)

    def _holds_shard_of(self, guild_id: int) -> bool:
        return self._leased is not None and self._leased.owns(guild_id)

    async def renew_instance_lock(self) -> None:
        if not self._holds_lease:
            raise StoreError(f"newsbot does not hold the instance lease of {self._lease_where()}")
        now = int(self._clock())
        renewed = await self._write(
            self._instance_renew_sql, (now, now + self._lease_seconds, self._owner)
        )
        if renewed == 0:
            self._holds_lease = False
            raise InstanceLost(instance_lost_text(self._lease_where(), await self._holder()))

    async def renew_shard_leases(self) -> None:
        if self._leased is None:
            raise StoreError(f"newsbot holds no shard lease of {self._lease_where()}")
        now = int(self._clock())
        renewed = await self._write(
            self._shard_renew_sql, (now, now + self._lease_seconds, self._owner)
        )
        if renewed < len(leased_shards(self._leased)[1]):
            lost = self._leased
            self._leased = None
            rows = await self._read(self._shard_holders_sql, ())
            await self._release_shard_leases()
            holders = [ShardHolder(*row) for row in rows]
            raise InstanceLost(lost_message(lost, holders, self._owner, self._lease_where()))

    async def _give_up_leases(self) -> None:
        """On close: release whatever this store holds."""
        if self._leased is not None:
            self._leased = None
            await self._release_shard_leases()
        if self._holds_lease:
            self._holds_lease = False
            await release_quietly(
                partial(self._write, self._instance_release_sql, (self._owner,)),
                "the instance lease",
            )

    async def _release_shard_leases(self) -> None:
        await release_quietly(
            partial(self._write, self._shard_release_sql, (self._owner,)), "the shard leases"
        )

    async def _holder(self) -> Holder | None:
        rows = await self._read(self._instance_holder_sql, ())
        return Holder(*rows[0]) if rows else None
