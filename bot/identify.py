"""Turns at IDENTIFY for every newsbot process on one database.

Discord allows `max_concurrency` IDENTIFYs per 5 s for the whole bot token, one in each bucket
`shard_id % max_concurrency`, and answers one too early with an invalid session. discord.py's
own pause knows only the shards of its process: here each IDENTIFY reserves the next turn of
its bucket in the database, a window and a margin after the last, so that processes starting
together connect in turn. A shard that
keeps IDENTIFYing (a crash loop inside the process) waits longer each time, up to a cap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from bot.store.base import IdentifyTurns, StoreError

log = logging.getLogger(__name__)

# Discord's window per bucket, in seconds.
IDENTIFY_WINDOW = 5.0
# Seconds added between two turns of a bucket: an IDENTIFY reaches Discord a little after its
# turn (the websocket connects and HELLO comes first, a busy loop adds more), and when the one
# before it was later than it, turns exactly a window apart reach Discord less than a window
# apart and the later one is refused (an invalid session, and a reconnect that backs off).
TURN_MARGIN = 1.0
# A shard IDENTIFYing again within this many seconds of its last IDENTIFY is looping: its next
# one waits twice as long as the last wait (from one window up to BACKOFF_CAP).
STABLE_AFTER = 120.0
BACKOFF_CAP = 300.0


def backoff(repeats: int, window: float = IDENTIFY_WINDOW) -> float:
    """Seconds a shard waits after its last IDENTIFY when it is the `repeats`-th in a row
    that came soon after the one before (0: none)."""
    if repeats <= 0:
        return 0.0
    return min(BACKOFF_CAP, window * 2.0 ** (repeats - 1))


class IdentifyPacer:
    """What NewsBot's before_identify_hook waits on."""

    def __init__(
        self,
        turns: IdentifyTurns,
        max_concurrency: Callable[[], Awaitable[int]],
        *,
        window: float = IDENTIFY_WINDOW,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._turns = turns
        self._max_concurrency = max_concurrency
        self._concurrency: int | None = None
        self._window = window
        # Wall-clock time: the turns are compared across processes.
        self._clock = clock
        self._sleep = sleep
        # Per shard: when it last IDENTIFIED, and how many of those came in a quick row.
        self._last: dict[int, tuple[float, int]] = {}

    async def wait_turn(self, shard_id: int | None) -> None:
        shard = shard_id or 0
        await self._back_off(shard)
        bucket = shard % await self._buckets()
        try:
            turn = await self._turns.take_identify_turn(
                bucket, self._window + TURN_MARGIN, self._clock()
            )
        except StoreError as error:
            # Without the database, wait one window as discord.py would: never stop connecting.
            log.warning("no IDENTIFY turn from the database (%s); waiting %ss", error, self._window)
            turn = self._clock() + self._window
        await self._sleep_until(turn)
        previous = self._last.get(shard)
        repeats = previous[1] + 1 if previous and turn - previous[0] < STABLE_AFTER else 0
        self._last[shard] = (max(turn, self._clock()), repeats)

    async def _back_off(self, shard: int) -> None:
        previous = self._last.get(shard)
        if previous is None:
            return
        at, repeats = previous
        quick = self._clock() - at < STABLE_AFTER
        delay = backoff(repeats + 1 if quick else 0, self._window)
        if delay:
            log.info("shard %s connects again; waiting %.0fs first", shard, delay)
            await self._sleep_until(at + delay)

    async def _buckets(self) -> int:
        if self._concurrency is None:
            self._concurrency = max(1, await self._max_concurrency())
        return self._concurrency

    async def _sleep_until(self, instant: float) -> None:
        delay = instant - self._clock()
        if delay > 0:
            await self._sleep(delay)
