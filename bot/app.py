"""NewsBot: the discord.py client, its start-up order and its shutdown, and `build_bot`, the
one factory that builds it.

Everything the bot needs (settings, store, seed reloader) is built by `build_bot` and injected:
the command line, the tests and the benchmarks all build newsbot through it, the tests and
benchmarks against a temporary database and a local Discord emulator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.backoff import ExponentialBackoff
from discord.ext import commands
from discord.gateway import ReconnectWebSocket
from discord.shard import EventItem, EventType, Shard

from bot import version
from bot.command_sync import sync_if_changed
from bot.config import DiscordSettings, SeedSettings, Settings
from bot.delivery import REQUIRED_PERMISSIONS
from bot.errors import Unrecoverable
from bot.health import HealthServer
from bot.identify import IdentifyPacer, SessionStarts
from bot.metrics import Metrics
from bot.pacing import SharedPacer, fallback_share
from bot.poster import utc_now
from bot.reload import SeedReloader
from bot.sharding import Shards
from bot.store import Store, StoreError, StoreLost, create_store
from bot.topic_cache import TopicCache
from bot.tree import NewsTree, log_command

log = logging.getLogger(__name__)

EXTENSIONS = ("bot.cogs.news", "bot.cogs.seeds", "bot.cogs.digest")
# What reading a gateway frame raises when the frame is not what discord.py expects: invalid
# JSON (ValueError) or a dispatch without a field its parser needs (KeyError, TypeError).
UNREADABLE_FRAME = (ValueError, KeyError, TypeError)
# Seconds between renewals of the instance or shard leases: three chances within their 60 s.
LEASE_RENEWAL = 20.0
# Seconds between checks that the database file is still there: noticed within a minute.
DATABASE_WATCH = 15.0


def use_endpoints(settings: DiscordSettings) -> None:
    """Point discord.py at another Discord (a local emulator) when the settings say so.

    discord.py builds every REST route from Route.BASE and connects a plain client's gateway
    to DEFAULT_GATEWAY; left alone they are discord.com's.
    """
    if settings.api_base:
        discord.http.Route.BASE = settings.api_base
    if settings.gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.gateway_url)


def invite_url(application_id: int) -> str:
    return discord.utils.oauth_url(
        application_id, permissions=REQUIRED_PERMISSIONS, scopes=("bot", "applications.commands")
    )


class NewsBot(commands.AutoShardedBot):
    def __init__(
        self,
        settings: Settings,
        store: Store,
        reloader: SeedReloader,
        *,
        reload_seeds_at_start: bool = True,
        schedule_digests: bool = True,
        clock: Callable[[], datetime] = utc_now,
        lease_renewal: float = LEASE_RENEWAL,
        database_watch: float = DATABASE_WATCH,
        metrics: Metrics | None = None,
        **options: Any,
    ) -> None:
        metrics = metrics or Metrics()
        # discord.py waits out Discord's 429s itself: its HTTP session's trace counts them.
        options.setdefault("http_trace", metrics.http_trace())
        # Slash commands need no privileged intent; guilds gives the channel and role cache.
        intents = discord.Intents.none()
        intents.guilds = True
        if settings.discord.shard_ids is not None:
            options["shard_ids"] = list(settings.discord.shard_ids)
        super().__init__(
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=intents,
            # Story text is outside text: nothing newsbot sends may ever ping anyone.
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=NewsTree,
            # Unset: discord.py asks Discord how many shards there should be and runs them all.
            shard_count=settings.discord.shard_count,
            **options,
        )
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self.metrics.watch_gateway(lambda: self.latencies)
        # GET /healthz, /readyz and /metrics, when settings.metrics.listen asks for them.
        self.health: HealthServer | None = None
        self.reloader = reloader
        self.reload_seeds_at_start = reload_seeds_at_start
        self.schedule_digests = schedule_digests
        # Digests read the time through this, so tests can move it without waiting.
        self.clock = clock
        self.lease_renewal = lease_renewal
        self.database_watch = database_watch
        # Why the bot stopped on its own (its database or its lease lost): `newsbot run` exits
        # with it, non-zero, so that a supervisor starts it again.
        self.stopped_by: Unrecoverable | None = None
        self._guards: list[asyncio.Task[None]] = []
        # Shards waiting to IDENTIFY again after a frame they could not read.
        self._restarting_shards: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Task[None] | None = None
        self.identify_pacer = IdentifyPacer(store, self._session_starts)
        # Discord's global limit is the token's: digest sends, and the requests of logging in,
        # take their turn from one budget shared by every process on the database.
        self.send_pacer = SharedPacer(
            store,
            settings.digest.send_rate,
            share=fallback_share(settings.discord.shards),
            metrics=metrics,
        )
        # The topic autocompletes' list, refreshed after every reload, here or elsewhere.
        self.topic_cache = TopicCache(store)

    async def login(self, token: str) -> None:
        # Logging in asks for the bot user and the application: two requests that a restart
        # would otherwise put on top of the other processes' digest sends. The store opens
        # first for that (setup_hook finds it open).
        await self.store.open()
        for _ in range(2):
            await self.send_pacer.acquire()
        await super().login(token)

    async def setup_hook(self) -> None:
        log.info(
            "newsbot %s: config %s, database %s, seed folder %s",
            version(),
            self.settings.config_path.absolute() if self.settings.config_path else "none",
            self.settings.database.describe(),
            self.reloader.folder.absolute(),
        )
        log.info("running %s", self.settings.discord.shards.describe())
        await self.store.open()
        await self._listen_for_health()
        self._guard("database watch", self.database_watch, self.store.check_database)
        await self.store.watch_seed_reloads(self._seeds_reloaded_elsewhere)
        if self.schedule_digests:
            await self._take_leases()
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        if self.settings.discord.sync_commands == "auto":
            await sync_if_changed(self.tree, self.store)

    async def _listen_for_health(self) -> None:
        address = self.settings.metrics.address
        if address is None:
            return
        self.health = HealthServer(self, *address)
        await self.health.start()

    async def _take_leases(self) -> None:
        """One process per shard: a bot serving every server is the only one that may post
        from its database (the instance lease); processes that each run some shards share it,
        each holding its shards' leases, so that a second process on a running shard is
        refused and a digest left claimed is resumed by whoever runs its shard next."""
        shards = self.settings.discord.shards
        if shards.ids is None:
            await self.store.acquire_instance_lock()
            self._guard("lease renewal", self.lease_renewal, self.store.renew_instance_lock)
        else:
            await self.store.acquire_shard_leases(shards)
            self._guard("lease renewal", self.lease_renewal, self.store.renew_shard_leases)

    def _seeds_reloaded_elsewhere(self, generation: int) -> None:
        """Another process (another newsbot, `newsbot seeds load`) committed a reload."""
        log.info("seeds reloaded by another process: generation %d", generation)
        refreshed = self.topic_cache.refresh()

        def done(task: asyncio.Task[None]) -> None:
            if not task.cancelled():
                # For whoever waits on it (tests): bot.wait_for("topics_refreshed").
                self.dispatch("topics_refreshed", generation)

        refreshed.add_done_callback(done)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # Discord's IDENTIFY limit is the token's: take turns with every process on the database.
        await self.identify_pacer.wait_turn(shard_id)

    async def _session_starts(self) -> SessionStarts | None:
        """Discord's session start limit for the token, from GET /gateway/bot (discord.py reads
        it only without a shard count); None when it cannot be had."""
        try:
            await self.send_pacer.acquire()
            limits = await self.fetch_session_start_limits()
        except (discord.HTTPException, discord.GatewayNotFound) as error:
            log.warning("cannot read the session start limit from Discord (%s)", error)
            return None
        return SessionStarts(
            remaining=limits.remaining,
            total=limits.total,
            reset_after=limits.reset_after / 1000,
            max_concurrency=limits.max_concurrency,
        )

    async def launch_shard(
        self, gateway: yarl.URL, shard_id: int, *, initial: bool = False
    ) -> None:
        await super().launch_shard(gateway, shard_id, initial=initial)
        # discord.py keeps its shards private and offers no hook: this is the one place newsbot
        # reaches into them (a reconnect keeps the Shard, so the wrapper stays in place).
        shard = self._AutoShardedClient__shards[shard_id]  # type: ignore[attr-defined]
        if not isinstance(shard._queue_put, _ReidentifyOnUnreadableFrame):
            shard._queue_put = _ReidentifyOnUnreadableFrame(self, shard, shard._queue_put)

    def _guard(self, name: str, every: float, check: Callable[[], Awaitable[None]]) -> None:
        """Run `check` every `every` seconds until it finds the bot cannot go on."""

        async def watch() -> None:
            failing = False
            while True:
                await asyncio.sleep(every)
                try:
                    await check()
                except StoreLost as error:
                    self.dispatch("unrecoverable_error", error)
                    return
                except StoreError as error:
                    # A busy or failing database: the next round tries again, well within
                    # the lease (a lost lease is then noticed as such). Said once per outage,
                    # not every round of it.
                    log.log(
                        logging.DEBUG if failing else logging.WARNING, "%s failed: %s", name, error
                    )
                    failing = True
                else:
                    if failing:
                        log.info("%s works again", name)
                    failing = False

        self._guards.append(asyncio.create_task(watch(), name=f"newsbot {name}"))

    async def on_unrecoverable_error(self, error: Unrecoverable) -> None:
        """Stop (once), whatever noticed it first: a guard, or a command's write (bot.tree)."""
        if self.stopped_by is not None:
            return
        self.stopped_by = error
        log.error("%s", error)
        await self.close()

    async def on_app_command_completion(
        self,
        interaction: discord.Interaction,
        command: app_commands.Command[Any, ..., Any] | app_commands.ContextMenu,
    ) -> None:
        log_command(interaction, "answered")

    async def on_ready(self) -> None:
        assert self.user is not None
        shards = Shards(self.shard_count, tuple(self.shard_ids) if self.shard_ids else None)
        log.info(
            "logged in as %s in %d servers, %s", self.user, len(self.guilds), shards.describe()
        )
        if self.application_id:
            log.info("invite newsbot to a server: %s", invite_url(self.application_id))

    async def on_guild_join(self, guild: discord.Guild) -> None:
        log.info("joined server %s (%s), now in %d servers", guild.id, guild.name, len(self.guilds))

    async def on_guild_remove(self, guild: discord.Guild) -> None:
        log.info("left server %s (%s), now in %d servers", guild.id, guild.name, len(self.guilds))

    async def connect(self, *, reconnect: bool = True) -> None:
        try:
            # discord.py asks for the gateway's address first.
            await self.send_pacer.acquire()
            await super().connect(reconnect=reconnect)
        finally:
            # AutoShardedClient's loop ends as soon as the gateway is closed, while close() may
            # still be releasing the store: start() returns only once all of it is done, so
            # that the process never exits under it.
            if self._closing is not None:
                await asyncio.shield(self._closing)

    async def close(self) -> None:
        """Close once, whoever asks first (a signal, a guard, discord.py); every caller waits
        for all of it."""
        if self._closing is None:
            self._closing = asyncio.create_task(self._release(), name="newsbot close")
        await asyncio.shield(self._closing)

    async def _release(self) -> None:
        # AutoShardedBot.close unloads the cogs (stopping their background work) and closes
        # the gateway; the store goes last, when nothing can use it any more.
        guards, self._guards = self._guards + list(self._restarting_shards), []
        for guard in guards:
            guard.cancel()
        await asyncio.gather(*guards, return_exceptions=True)
        try:
            if hasattr(self, "_AutoShardedClient__queue"):
                await super().close()
            else:
                # Never logged in: AutoShardedClient.close would report to the event queue
                # login creates. There is no gateway and no cog; Client.close releases the rest.
                await discord.Client.close(self)
        finally:
            # The listener reads the store: it stops first.
            if self.health is not None:
                await self.health.stop()
            await self.topic_cache.close()
            await self.store.close()


class _ReidentifyOnUnreadableFrame:
    """A shard's line to discord.py's event queue that keeps the bot running after a frame the
    shard could not read.

    An error raised while reading a frame (invalid JSON, a dispatch its parser cannot take)
    reaches AutoShardedClient as "terminate", which closes the whole bot. Here it becomes a
    fresh IDENTIFY of that shard only, what discord.py does itself for an invalid session
    (ReconnectWebSocket(resume=False)): the broken socket is closed, and a new READY replaces
    whatever state the unread frame should have changed. The backoff keeps a frame that breaks
    every session from spending the daily IDENTIFY allowance.
    """

    def __init__(self, bot: NewsBot, shard: Shard, put: Callable[[EventItem], None]) -> None:
        self._bot = bot
        self._shard = shard
        self._put = put
        self._backoff = ExponentialBackoff()

    def __call__(self, item: EventItem) -> None:
        if item.type != EventType.terminate or not isinstance(item.error, UNREADABLE_FRAME):
            self._put(item)
            return
        if self._bot.is_closed():
            return
        log.error(
            "could not read a frame from the gateway on shard %s; connecting it again",
            self._shard.id,
            exc_info=item.error,
        )
        task = asyncio.create_task(self._identify_again(), name=f"shard {self._shard.id} restart")
        self._bot._restarting_shards.add(task)
        task.add_done_callback(self._bot._restarting_shards.discard)

    async def _identify_again(self) -> None:
        await self._shard.ws.close(code=4000)
        await asyncio.sleep(self._backoff.delay())
        if not self._bot.is_closed():
            again = ReconnectWebSocket(self._shard.id, resume=False)
            self._put(EventItem(EventType.identify, self._shard, again))


def build_bot(
    settings: Settings,
    *,
    reload_seeds_at_start: bool = True,
    schedule_digests: bool = True,
    clock: Callable[[], datetime] = utc_now,
    lease_renewal: float = LEASE_RENEWAL,
    database_watch: float = DATABASE_WATCH,
    **options: Any,
) -> NewsBot:
    """newsbot as `settings` describe it: its store (not yet open) and seed reloader built and
    injected. `options` go to discord.py's client (e.g. guild_ready_timeout); the keywords turn
    off what only a serving bot does, or move its clock and its guards' intervals (tests)."""
    store = create_store(settings.database)
    # The bot's own registry: tests and benchmarks build many bots in one process.
    metrics = Metrics()
    return NewsBot(
        settings,
        store,
        seed_reloader(store, settings.seeds, metrics=metrics),
        reload_seeds_at_start=reload_seeds_at_start,
        schedule_digests=schedule_digests,
        clock=clock,
        lease_renewal=lease_renewal,
        database_watch=database_watch,
        metrics=metrics,
        **options,
    )


def seed_reloader(
    store: Store, seeds: SeedSettings, folder: Path | None = None, *, metrics: Metrics | None = None
) -> SeedReloader:
    """The reloader for the configured seed folder (or `folder`), with the configured limits;
    its reloads are timed and counted in `metrics`, if given."""
    return SeedReloader(
        store,
        folder or seeds.folder,
        max_file_bytes=seeds.max_file_bytes,
        workers=seeds.workers,
        metrics=metrics,
    )
