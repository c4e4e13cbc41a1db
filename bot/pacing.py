"""Pacing for bursts of Discord requests, such as many servers' digests due in one minute.

discord.py waits out a route's bucket when its headers say so, but it learns about the global
limit (50 requests/s per bot) only from a 429. A token bucket in front of the sends keeps a
fan-out under that limit instead of bouncing off it.

That limit belongs to the bot token, whatever number of processes share it: SharedPacer takes
its sends from one bucket in the database (the store's SendBudget), in small batches so that
the database stays out of the hot path, and keeps a local Pacer for when the database fails.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.discord_limits import GLOBAL_REQUESTS_PER_SECOND, SEND_HEADROOM
from bot.metrics import Metrics
from bot.sharding import Shards
from bot.store.base import SendBudget, StoreError

log = logging.getLogger(__name__)

# Slots one take from the shared budget asks for at most, and so its burst: the database sees
# one short write per this many sends. Never more than the room the rate leaves under Discord's
# global limit (see burst_for), or processes together could exceed it in their first second.
BATCH = 10
# Seconds a batch stays usable: slots a process took and did not use are gone after this, so
# that an idle process never sits on a share of the budget, and a process whose loop stalled
# does not send slots it took before the stall on top of what the others sent meanwhile. The
# budget counts a slot when it grants it: a slot used later than this could exceed Discord's
# limit in the second it is used (the scale-out run saw 55 sends in one second with 1 s).
# A batch at the default rate is used up within a few hundredths of a second.
SLOT_LIFETIME = 0.1
# Seconds between attempts at the database while it fails; sends go on at the fallback rate.
RETRY_DATABASE = 5.0
# Seconds: the shortest wait for the shared budget to refill.
MIN_WAIT = 0.001


class Pacing(Protocol):
    """What a sender waits on before each request: Pacer in one process, SharedPacer across
    the processes of one database."""

    async def acquire(self) -> None: ...


class Pacer:
    """At most `rate` acquisitions per second on average, in bursts of at most `burst`."""

    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._interval = 1.0 / rate
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        # The moment the bucket is full again; acquisitions push it forward by one interval.
        self._full_at = clock()
        self._lock = asyncio.Lock()

    @property
    def interval(self) -> float:
        """Seconds between acquisitions at the sustained rate."""
        return self._interval

    async def acquire(self) -> None:
        async with self._lock:
            now = self._clock()
            earliest = self._full_at - (self._burst - 1) * self._interval
            if earliest > now:
                await self._sleep(earliest - now)
                now = earliest
            self._full_at = max(self._full_at, now) + self._interval


def fallback_share(shards: Shards) -> float:
    """What part of the send rate a process may use alone while the shared budget cannot be
    reached: its shards out of the total; all of it when it runs every shard (it is then the
    only process: the instance lease sees to that)."""
    if shards.ids is None or shards.count is None:
        return 1.0
    return len(shards.ids) / shards.count


class SharedPacer:
    """A Pacer for every process on one database: at most `rate` acquisitions per second on
    average (a little less at Discord's limit, see shared_rate), in bursts of at most `batch`,
    across all of them together.

    Each process spaces its own sends at `rate` (a local Pacer) and takes them from the shared
    bucket `batch` at a time, handing them out locally until they expire. When the database
    fails, sends go on at `rate x share` (the process's conservative share) and one WARNING
    says so; the database is tried again every RETRY_DATABASE seconds.
    """

    def __init__(
        self,
        budget: SendBudget,
        rate: float,
        *,
        share: float = 0.5,
        batch: int | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        if rate <= 0 or (batch is not None and batch < 1) or not 0 < share <= 1:
            raise ValueError("rate must be positive, batch at least 1 and share in (0, 1]")
        self._budget = budget
        self._fixed_batch = batch
        self._share = share
        # Wall-clock time: the instants go into the database and are compared across processes.
        self._clock = clock
        self._sleep = sleep
        self._metrics = metrics or Metrics()
        self.set_rate(rate)
        self._slots = 0
        self._slots_until = 0.0
        # While the database fails: when to try it again (None: it works).
        self._retry_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def rate(self) -> float:
        """Acquisitions a second this process spaces its sends at."""
        return 1.0 / self._spacing.interval

    def set_rate(self, rate: float) -> None:
        """Pace at `rate` from now on (at start, and when the settings are reloaded): the
        batch, the shared budget's refill, the spacing and the fallback all follow it. Slots
        already taken stay usable for their short lifetime."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._batch = burst_for(rate) if self._fixed_batch is None else self._fixed_batch
        self._rate = shared_rate(rate, self._batch)
        self._spacing = Pacer(rate, clock=self._clock, sleep=self._wait)
        self._fallback = Pacer(rate * self._share, clock=self._clock, sleep=self._wait)

    async def acquire(self) -> None:
        # Spaced first, then the slot: a slot is used the moment it is taken.
        await self._spacing.acquire()
        async with self._lock:
            if not await self._take_slot():
                await self._fallback.acquire()

    async def _wait(self, seconds: float) -> None:
        """Every wait of a send for its turn, counted: how close the bot runs to Discord's
        global limit (the database's own time is not a wait, and is not counted)."""
        self._metrics.budget_waited(seconds)
        await self._sleep(seconds)

    async def _take_slot(self) -> bool:
        """A slot from this process's batch, or from the shared budget (waiting for one);
        False when the database fails."""
        while True:
            now = self._clock()
            if self._slots > 0 and now < self._slots_until:
                self._slots -= 1
                return True
            if self._retry_at is not None and now < self._retry_at:
                return False
            try:
                batch = self._batch  # asked for, and the bucket's burst
                grant = await self._budget.take_send_slots(batch, self._rate, batch, now)
            except StoreError as error:
                if self._retry_at is None:
                    log.warning(
                        "the shared send budget is unavailable (%s); sending at %.1f a second "
                        "until it is back",
                        error,
                        1.0 / self._fallback.interval,
                    )
                self._retry_at = now + RETRY_DATABASE
                return False
            if self._retry_at is not None:
                log.info("the shared send budget works again")
                self._retry_at = None
            if grant.slots:
                self._slots, self._slots_until = grant.slots, now + SLOT_LIFETIME
            else:
                # At least a millisecond: a wait of less than the clock's resolution (a fraction
                # of a slot lost to rounding) would not move the clock, and the loop would spin.
                await self._wait(max(grant.wait, MIN_WAIT))


def burst_for(rate: float) -> int:
    """The shared budget's burst at `rate` sends a second: all processes together may send
    rate x seconds + burst, which leaves SEND_HEADROOM under Discord's global limit in any
    second (45 a second leaves room for 2); at least 1, at most BATCH."""
    room = GLOBAL_REQUESTS_PER_SECOND - SEND_HEADROOM - rate
    return max(1, min(BATCH, math.floor(room)))


def shared_rate(rate: float, burst: int) -> float:
    """What the shared budget refills at: `rate`, or less when rate and burst together would
    leave less than SEND_HEADROOM requests a second under Discord's global limit (the
    configuration already keeps digest.send_rate within MAX_SEND_RATE, which leaves it)."""
    return max(1.0, min(rate, GLOBAL_REQUESTS_PER_SECOND - burst - SEND_HEADROOM))
