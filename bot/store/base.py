"""What a storage backend offers: the roles the rest of newsbot is written against.

Callers ask for the role they use (StoryReader, SeedBookkeeping, DigestLedger, State); `Store`
is all of them, what a backend implements. SQLite (bot.store.sqlite) is the one backend; the
contract tests in tests/store/ say what any backend must do. Every method returns plain
dataclasses from bot.models.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal, NamedTuple, Protocol

from bot.errors import SetupError, Unrecoverable
from bot.models import DigestRun, DigestSettings, DigestStatus, Story, TopicCount
from bot.search_query import Order, Query
from bot.sharding import Shards

FileStatus = Literal["loaded", "duplicate", "rejected"]


# Random for each process. A process whose pid an earlier one had (pid 1 in a restarted
# container, on the same host name) tells that one's leases from its own by it.
_PROCESS_TOKEN = secrets.token_hex(4)


def new_owner() -> str:
    """Who a store acts for in leases (the instance lease, digest runs): this host and process,
    plus a random part, so that a restarted process with a recycled pid is someone else."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}.{secrets.token_hex(4)}"


def of_this_process(owner: str) -> bool:
    """Whether `owner` is a store of this very process (not an earlier one with its pid)."""
    return owner.rpartition(":")[2].startswith(f"{_PROCESS_TOKEN}.")


class StoreError(SetupError):
    """A storage problem the user can act on (unreadable file, newer schema, ...)."""


class InstanceLocked(StoreError):
    """Another running newsbot holds this database, or the shards this one would run."""


class LeaseLost(StoreError):
    """A digest run is no longer this process's to send: another process took it over after
    its lease expired, or the message was recorded already. Not a storage fault: the run stops
    here and its new owner carries on."""


class StoreLost(StoreError, Unrecoverable):
    """The running bot lost its hold on the database: nothing more may be written through it."""


class DatabaseLost(StoreLost):
    """The database was deleted or replaced under the running bot; writes would be lost."""


class InstanceLost(StoreLost):
    """Another newsbot took this database's instance lease, or one of its shard leases, from
    the running one."""


class TaskHolder(NamedTuple):
    """Who holds a task lock, as its row says (instants in unix seconds)."""

    name: str
    owner: str
    host: str
    pid: int
    started_at: int
    expires_at: int

    def who(self) -> str:
        return f"pid {self.pid} on {self.host}"

    @property
    def since(self) -> datetime:
        return datetime.fromtimestamp(self.started_at, UTC)


class TaskLease:
    """A task lock as its holder sees it while it holds it: `lost` is set when another process
    took the lock over (its lease ran out while this one could not renew it). Most tasks stay
    correct without it; one that runs for as long as it holds the lock stops on it."""

    def __init__(self) -> None:
        self.lost = asyncio.Event()


class LockedElsewhere(StoreError):
    """Another live newsbot process holds a task lock: the task is running there."""

    def __init__(self, holder: TaskHolder) -> None:
        super().__init__(
            f"{holder.name} is running in another newsbot process ({holder.who()}, since "
            f"{holder.since:%Y-%m-%d %H:%M:%S} UTC)"
        )
        self.holder = holder


class NoDatabase(StoreError):
    """The database does not exist, and the store was told not to create it."""


class StaleReload(StoreError):
    """The seed index changed between planning a reload and applying it; plan again."""


@dataclass(frozen=True, slots=True)
class SeedFileRecord:
    """What the store remembers about one seed file, so that unchanged files are not parsed.

    status "loaded": the file is the source of `story_id`.
    status "duplicate": the file yields `story_id`, but another file's record of it was kept.
    status "rejected": the latest version failed (`error`); when `story_id` is set, the file
    is still the source of that story, whose last good version stays stored.
    """

    path: str
    size: int
    mtime_ns: int
    # A hash of the file's bytes (bot.seeds.content_hash): unchanged files are not parsed again.
    content_hash: str
    status: FileStatus
    story_id: int | None = None
    # Orders two files that yield the same story: the higher rank is kept (see bot.seeds.rank).
    rank: tuple[int, ...] = ()
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SeedIndex:
    """The seed file records and the generation they belong to (bumped by every reload)."""

    generation: int
    files: Mapping[str, SeedFileRecord]
    reloaded_at: datetime | None = None
    folder: str = ""


@dataclass(frozen=True, slots=True)
class SeedStatus:
    """What `/seeds status` shows: the last reload and the files that fail now."""

    reloaded_at: datetime | None
    folder: str
    # (path, reason, the file's last good story is still served)
    rejected: tuple[tuple[str, str, bool], ...] = ()


class EncodedStory(NamedTuple):
    """A story in the form one store writes it, made by that store's `encode_story`.

    A tuple of plain values rather than a Story: a large reload encodes stories in the worker
    processes that parse them, and this is what travels back, at a fraction of the cost.
    """

    id: int
    title: str
    # The store's own encoding of everything else; only the store that made it reads it.
    data: Any


@dataclass(frozen=True, slots=True)
class ReloadChanges:
    """Everything one reload writes, applied by `Store.apply_reload` in one transaction."""

    # Generation of the SeedIndex the plan was made from; a mismatch raises StaleReload.
    expected_generation: int
    reloaded_at: datetime
    # Stories to insert or replace (encoded by the store's encode_story), with the path of the
    # file each now comes from.
    upsert: Sequence[tuple[EncodedStory, str]] = ()
    retire: Sequence[int] = ()
    put_files: Sequence[SeedFileRecord] = ()
    delete_files: Sequence[str] = ()
    # The folder the paths are relative to (absolute), recorded for the next reload and status.
    folder: str = ""


class StoryReader(Protocol):
    """Reading stories and topics: /news, /topics, digests' contents."""

    async def latest(
        self,
        limit: int,
        *,
        offset: int = 0,
        topic: str | None = None,
        query: Query | None = None,
        order: Order = Order.NEWEST,
    ) -> list[Story]:
        """Newest first (published_at, then id, descending), optionally on a topic (any case)
        and/or matching `query` in title or excerpt (its own `topic` is the caller's to
        resolve and pass as `topic`; a query of a topic alone lists like none). With a query,
        `order` RELEVANCE ranks the newest RELEVANCE_WINDOW matches by the engine's score,
        newest first among equals."""
        ...

    async def count_matching(self, query: Query, *, topic: str | None = None, cap: int) -> int:
        """How many stories `latest` would find for `query` (and `topic`), counted up to
        `cap`: cap + 1 stands for "more than cap"."""
        ...

    async def story(self, story_id: int) -> Story | None: ...

    async def stories_by_id(self, story_ids: Sequence[int]) -> dict[int, Story]: ...

    async def story_count(self) -> int: ...

    async def topics(self, *, matching: str = "", limit: int | None = None) -> list[TopicCount]:
        """Topics with at least one story, most stories first, then by name. With `matching`,
        only names containing it (any case), those starting with it first."""
        ...

    async def topic(self, name: str) -> TopicCount | None:
        """The topic whose name equals `name` ignoring case and spacing, if any."""
        ...

    async def linked_stories(self, story_ids: Sequence[int]) -> dict[int, set[int]]:
        """For each given id, the other stored stories it is linked with as related coverage
        (in either direction). Ids without links are absent."""
        ...


class SeedBookkeeping(Protocol):
    """What the reloader needs: the seed index, and applying a reload."""

    @staticmethod
    def encode_story(story: Story) -> EncodedStory:
        """A story as `apply_reload` takes it. A pure function, picklable by name: the reloader
        runs it where the story was parsed (in worker processes for a large folder), so that
        the process applying a reload only plans and writes."""
        ...

    async def seed_index(self) -> SeedIndex: ...

    async def seed_status(self) -> SeedStatus:
        """The last reload and the files rejected now, without reading the whole index."""
        ...

    async def apply_reload(self, changes: ReloadChanges) -> None:
        """Apply one reload atomically: all of it, or nothing (raises StaleReload/StoreError)."""
        ...


class DigestLedger(Protocol):
    """Daily digests: each server's settings, one ledger row per (server, local date), and the
    deliveries that keep a story from reaching a channel twice."""

    async def digest_settings(self, guild_id: int) -> DigestSettings | None: ...

    async def all_digest_settings(self) -> list[DigestSettings]:
        """Every enabled digest (what the scheduler looks at each minute)."""
        ...

    async def save_digest_settings(self, settings: DigestSettings) -> None:
        """Insert or replace a server's digest settings."""
        ...

    async def disable_digest(self, guild_id: int, reason: str | None) -> None:
        """Switch a digest off, keeping its settings; `reason` is None when an admin did it."""
        ...

    async def digest_runs_since(self, local_date: date) -> dict[tuple[int, date], DigestRun]:
        """Ledger rows for local dates on or after `local_date`, keyed by (guild, date)."""
        ...

    async def guild_digest_runs_since(
        self, guild_id: int, local_date: date
    ) -> dict[tuple[int, date], DigestRun]:
        """One server's ledger rows for local dates on or after `local_date`."""
        ...

    async def last_digest_run(self, guild_id: int) -> DigestRun | None:
        """The server's ledger row with the latest local date."""
        ...

    async def digest_run(self, guild_id: int, local_date: date) -> DigestRun | None:
        """The row with the messages of its current attempt."""
        ...

    async def add_digest_run(self, run: DigestRun) -> bool:
        """Insert the ledger row as given, with its messages: a claim (status claimed, owner
        and lease set), or a run final at once (empty, skipped). False (and nothing written)
        if (guild, date) already has one."""
        ...

    async def reclaim_digest_run(self, run: DigestRun) -> bool:
        """/digest now: add the row like add_digest_run, or take over the date's row when that
        is final without a digest posted (failed, skipped, empty) and its attempt is the one
        before `run.attempt`. False when the date is sent, claimed, or claimed again meanwhile.
        """
        ...

    async def take_digest_run(
        self,
        guild_id: int,
        local_date: date,
        lease_until: datetime,
        now: datetime,
        *,
        any_owner: bool = False,
    ) -> DigestRun | None:
        """Resume a claimed run: it becomes this store's (`owner`) until `lease_until` if it
        was already, or if its lease expired by `now`, or whoever holds it with `any_owner`
        (only for the holder of the lease covering the run's server, see holds_lease_of: the
        others are gone). The run with its messages, or None."""
        ...

    async def begin_digest_message(
        self, run: DigestRun, index: int, at: datetime, lease_until: datetime, *, restart: bool
    ) -> None:
        """Message `index` is about to be sent: note when its nonce was first tried (`at`,
        unless tried before; `restart`: from `at` whatever came before) and extend the lease.
        Raises LeaseLost unless `run.owner` owns the claimed run and `index` is next."""
        ...

    async def record_digest_message(
        self, run: DigestRun, index: int, message_id: int, at: datetime, lease_until: datetime
    ) -> None:
        """In one transaction: message `index` was posted as `message_id`, so sent_messages
        becomes index + 1 and its stories count as delivered to the run's channel. Raises
        LeaseLost unless `run.owner` owns the claimed run and `index` is next."""
        ...

    async def finish_digest_run(
        self,
        guild_id: int,
        local_date: date,
        status: DigestStatus,
        detail: str = "",
        *,
        owner: str | None = None,
    ) -> None:
        """Set the final status (sent, empty, skipped, failed), detail and finished_at. With
        `owner`, only a claimed run that owner holds (else LeaseLost)."""
        ...

    async def undelivered_stories(
        self, channel_id: int, topics: Sequence[str], limit: int
    ) -> list[Story]:
        """The newest `limit` stories never delivered to `channel_id`, on any of `topics` (all
        stories when empty; topic names in any case), newest first."""
        ...


class State(Protocol):
    """What the bot keeps about itself: values between runs, and one bot per database (or,
    for bots that each run some shards, one per shard)."""

    async def get_state(self, key: str) -> str | None:
        """A value the bot keeps between runs (such as the hash of the last command sync)."""
        ...

    async def set_state(self, key: str, value: str) -> None: ...

    async def acquire_instance_lock(self) -> None:
        """Take the database's instance lease (the store must be open) for one running bot
        until close(): when it is free, expired, or held by a holder known to be dead. Raises
        InstanceLocked naming the live holder (pid, host) and until when; a crashed holder
        blocks no longer than its lease."""
        ...

    @property
    def holds_instance_lock(self) -> bool:
        """Whether this store holds the instance lease: then no other bot posts from this
        database, and a digest another owner left claimed was left by a process that died."""
        ...

    async def renew_instance_lock(self) -> None:
        """Push the lease's expiry on (the bot does it well within the lease); raises
        InstanceLost if another newsbot holds it now."""
        ...

    async def acquire_shard_leases(self, shards: Shards) -> None:
        """Take the leases of all of `shards` (ids set) at once, or none, for a bot that runs
        those shards only, until close(): each when free, expired, or held by a holder known to
        be dead. Raises InstanceLocked naming the holder of the first shard another process
        runs. A live instance lease (a bot running every shard) blocks them all, as a live
        shard lease blocks the instance lease; so does a live lease of another shard count."""
        ...

    async def renew_shard_leases(self) -> None:
        """Push the shard leases' expiry on; raises InstanceLost if another newsbot took one."""
        ...

    def holds_lease_of(self, guild_id: int) -> bool:
        """Whether this store holds the lease covering the server (the instance lease, or its
        shard's): then no other bot posts its digests, and a digest of it another owner left
        claimed was left by a process that died."""
        ...

    async def check_database(self) -> None:
        """Raise DatabaseLost if the database this store opened is no longer the one at its
        path (deleted or replaced); every write checks this too."""
        ...


class TaskLocks(Protocol):
    """Tasks that one process of the database runs at a time, whichever starts them (a seed
    reload, a command sync)."""

    def task_lock(
        self, name: str, *, failing: str | None = None
    ) -> AbstractAsyncContextManager[TaskLease]:
        """Hold the lock named `name` for the block (the store must be open): taken when free,
        expired, or held by a holder known to be dead (this host, its process gone); renewed
        while held, so that a long task keeps it and a crashed one blocks for no longer than
        its short lease; released after. Raises LockedElsewhere naming the live holder (also
        when this very store holds it already); a database failure while taking it is a
        StoreError starting with `failing` (say, "reload not applied to") and the database.
        The block gets the TaskLease, which says when the lock was lost."""
        ...


class SeedAnnouncements(Protocol):
    """Reloads committed by other processes, so that what a process keeps of the stories
    (its topic cache) follows them."""

    async def watch_seed_reloads(self, on_reload: Callable[[int], object]) -> None:
        """From now until close(), call `on_reload(generation)` (on the event loop) after a
        reload committed through another store on this database, soon after it commits (not
        after this store's own). Calling it again replaces the callback."""
        ...


@dataclass(frozen=True, slots=True)
class SendGrant:
    """What one take from the shared send budget gave: `slots` sends to make now (0 or more),
    and when none, how long until the bucket holds a whole slot again (seconds)."""

    slots: int
    wait: float = 0.0


class SendBudget(Protocol):
    """One token bucket for digest sends, shared by every process on the database: Discord's
    global limit belongs to the bot token, whatever number of processes share it."""

    async def take_send_slots(self, want: int, rate: float, burst: int, now: float) -> SendGrant:
        """Take up to `want` slots from the bucket, refilled at `rate` a second up to `burst`
        since its last take, at `now` (unix seconds; a clock behind the last take counts as
        no time passed). Atomic: takers together never get more than rate x elapsed + burst."""
        ...


class IdentifyTurns(Protocol):
    """Turns at IDENTIFY for every process on the database (Discord's limit is the token's)."""

    async def take_identify_turn(self, bucket: int, window: float, now: float) -> float:
        """Reserve the next IDENTIFY of `bucket`: `now`, or `window` seconds after the turn
        last reserved in it if that is later. Returns the reserved instant (unix seconds)."""
        ...


class Store(
    StoryReader,
    SeedBookkeeping,
    DigestLedger,
    State,
    SendBudget,
    IdentifyTurns,
    TaskLocks,
    SeedAnnouncements,
    Protocol,
):
    """Every role, with opening and closing: what a backend implements."""

    # Who this store acts for in leases (see new_owner): one per store, fixed at creation.
    @property
    def owner(self) -> str: ...

    async def open(self) -> None:
        """Connect and apply pending migrations; raises StoreError with a one-line reason."""
        ...

    async def close(self) -> None: ...
