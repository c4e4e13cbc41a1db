"""The health and metrics listener: GET /healthz, /readyz and /metrics on the bot's own loop.

/healthz answers 200 "ok" whenever the event loop gets to it: the process is alive. /readyz
answers 200 when newsbot can do its work and 503 naming what stops it: the gateway (every shard
this process runs connected, discord.py ready), the database (a small write succeeds) and the
digest scheduler (it ticked in the last SCHEDULER_SILENCE). /metrics is the bot's Metrics
registry in Prometheus's text format.

The decision is a pure function of the parts (`readiness`), tested on its own; the checks that
feed it are cheap: the gateway's state is read from discord.py, the database is written at
most once per DATABASE_CHECK_TTL however often probes come, and the scheduler's last tick is
a number the poster keeps. Every handler is async and goes through the async store: a probe
never blocks the event loop it reports on.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import discord
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.errors import SetupError
from bot.metrics import Metrics, watch_loop_lag
from bot.store import Store, StoreError

log = logging.getLogger(__name__)

# Seconds without a digest scheduler tick before newsbot is not ready: ticks come every minute,
# so this is two missed in a row, with some slack.
SCHEDULER_SILENCE = 150.0
# Seconds a database check's verdict is reused: scrapes and probes do not hammer the database.
DATABASE_CHECK_TTL = 5.0
# Seconds a database check may take before it counts as failed (a locked or hung database).
DATABASE_CHECK_TIMEOUT = 3.0
# Seconds a story count (at a scrape, or after a reload) is reused by /metrics.
STORY_COUNT_TTL = 30.0
# Where the database check writes (one row of the store's state, overwritten each time).
PROBE_KEY = "readiness-probe"


class ListenError(SetupError):
    """The health and metrics listener cannot listen where it was told."""


@dataclass(frozen=True, slots=True)
class Part:
    """One thing readiness depends on, and what is wrong with it (when `ok` is False)."""

    name: str
    ok: bool
    problem: str = ""


def readiness(parts: Sequence[Part]) -> tuple[int, str]:
    """The /readyz answer: 200 "ready", or 503 with one line per failing part."""
    failing = [part for part in parts if not part.ok]
    if not failing:
        return 200, "ready\n"
    return 503, "".join(f"{part.name}: {part.problem}\n" for part in failing)


def gateway_part(ready: bool, closed: Mapping[int, bool]) -> Part:
    """The gateway is up when discord.py is ready and no shard of this process is closed;
    `closed` maps each shard it runs to whether its websocket is closed."""
    down = sorted(shard for shard, is_closed in closed.items() if is_closed)
    if down:
        listed = ", ".join(str(shard) for shard in down)
        return Part("gateway", False, f"disconnected (shard {listed})")
    if not ready or not closed:
        return Part("gateway", False, "not connected yet")
    return Part("gateway", True)


def scheduler_part(silent_for: float, limit: float = SCHEDULER_SILENCE) -> Part:
    """The digest scheduler is alive when it ticked within `limit` seconds (before its first
    tick, counting from the start)."""
    if silent_for > limit:
        return Part("scheduler", False, f"no digest tick for {silent_for:.0f} s")
    return Part("scheduler", True)


class Watched(Protocol):
    """What the listener reads of the bot (NewsBot)."""

    metrics: Metrics
    store: Store
    schedule_digests: bool

    def is_ready(self) -> bool: ...

    @property
    def shards(self) -> Mapping[int, discord.ShardInfo]: ...


class CachedCheck:
    """An async check whose verdict (passed, or the error it raised) is reused for `ttl`
    seconds; one run at a time, however many requests wait for it."""

    def __init__(
        self,
        run: Callable[[], Awaitable[None]],
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._run = run
        self._ttl = ttl
        self._clock = clock
        self._until = float("-inf")
        self._error: StoreError | TimeoutError | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        async with self._lock:
            if self._clock() >= self._until:
                try:
                    await self._run()
                    self._error = None
                except (StoreError, TimeoutError) as error:
                    self._error = error
                self._until = self._clock() + self._ttl
        if self._error is not None:
            raise self._error


class HealthServer:
    """The listener: started once the store is open, stopped before it closes."""

    def __init__(self, bot: Watched, host: str, port: int) -> None:
        self._bot = bot
        self._host = host
        self._port = port
        self._runner: web.AppRunner | None = None
        self._lag: asyncio.Task[None] | None = None
        self._database = CachedCheck(self._probe_database, DATABASE_CHECK_TTL)

    @property
    def address(self) -> tuple[str, int]:
        """The host and port it listens on (the port the system chose, for port 0)."""
        if self._runner is None or not self._runner.addresses:
            raise RuntimeError("the health listener is not running")
        host, port, *_ = self._runner.addresses[0]
        return str(host), int(port)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        # No access log: a scrape every few seconds is not news.
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except OSError as error:
            await runner.cleanup()
            where = f"[{self._host}]" if ":" in self._host else self._host
            # asyncio words it "error while attempting to bind on address (...)": the system's
            # own words are shorter and say the same.
            reason = os.strerror(error.errno) if error.errno else str(error)
            raise ListenError(
                f"cannot listen for health and metrics on {where}:{self._port}: {reason}"
            ) from None
        self._runner = runner
        self._lag = asyncio.create_task(watch_loop_lag(self._bot.metrics), name="newsbot loop lag")
        host, port = self.address
        log.info("serving /healthz, /readyz and /metrics on %s port %d", host, port)

    async def stop(self) -> None:
        if self._lag is not None:
            self._lag.cancel()
            await asyncio.gather(self._lag, return_exceptions=True)
            self._lag = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def parts(self) -> list[Part]:
        bot = self._bot
        closed = {shard_id: shard.is_closed() for shard_id, shard in bot.shards.items()}
        parts = [gateway_part(bot.is_ready(), closed), await self._database_part()]
        if bot.schedule_digests:
            parts.append(scheduler_part(bot.metrics.seconds_since_tick()))
        return parts

    async def _database_part(self) -> Part:
        try:
            await self._database.check()
        except TimeoutError:
            return Part("database", False, f"no answer in {DATABASE_CHECK_TIMEOUT:.0f} s")
        except StoreError as error:
            return Part("database", False, str(error))
        return Part("database", True)

    async def _probe_database(self) -> None:
        async with asyncio.timeout(DATABASE_CHECK_TIMEOUT):
            # A write, not a read: a database that answers but refuses writes (a full disk, a
            # read-only file, a PostgreSQL replica) cannot claim or record a digest.
            await self._bot.store.set_state(PROBE_KEY, probe_value())

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, request: web.Request) -> web.Response:
        status, body = readiness(await self.parts())
        return web.Response(status=status, text=body)

    async def _metrics(self, request: web.Request) -> web.Response:
        metrics = self._bot.metrics
        # Counted again once the last count (a reload's, or a scrape's) is old: another
        # process may have reloaded meanwhile.
        if metrics.seconds_since_story_count() >= STORY_COUNT_TTL:
            try:
                async with asyncio.timeout(DATABASE_CHECK_TIMEOUT):
                    metrics.stories_counted(await self._bot.store.story_count())
            except (StoreError, TimeoutError):
                pass  # the gauge keeps its last value; /readyz says what is wrong
        # Exactly Prometheus's content type: web.Response(text=...) would add its own charset.
        return web.Response(
            body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def probe_value() -> str:
    """What the database check writes: when it last did, for whoever looks at the row."""
    return datetime.now(UTC).isoformat(timespec="seconds")
