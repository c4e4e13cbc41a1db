"""Turns at IDENTIFY for every newsbot process on one database.

Discord allows `max_concurrency` IDENTIFYs per 5 s for the whole bot token, one in each bucket
`shard_id % max_concurrency`, and answers one too early with an invalid session. discord.py's
own pause knows only the shards of its process: here each IDENTIFY reserves the next turn of
its bucket in the database, a window and a margin after the last, so that processes starting
together connect in turn. A shard that
keeps IDENTIFYing (a crash loop inside the process) waits longer each time, up to a cap.

Discord also counts session starts per token and day (1,000 by default): one beyond that resets
the bot's token, stopping every process until someone pastes a new one. Before each IDENTIFY the
pacer reads what is left (Discord's own count, so shared by every process) and, when it is spent,
waits for the reset instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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


@dataclass(frozen=True, slots=True)
class SessionStarts:
    """Discord's `session_start_limit` for the token: starts left of `total`, seconds until the
    count resets, and how many IDENTIFY buckets there are."""

    remaining: int
    total: int
    reset_after: float
    max_concurrency: int

    def spent(self) -> bool:
        # Up to max_concurrency IDENTIFYs can be under way at once, one per bucket (in other
        # processes too): each needs a start of its own.
        return self.remaining < max(1, self.max_concurrency)


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
        session_starts: Callable[[], Awaitable[SessionStarts | None]],
        *,
        window: float = IDENTIFY_WINDOW,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._turns = turns
        # None when Discord cannot say: one bucket, and no wait for a budget nobody knows.
        self._session_starts = session_starts
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
        while True:
            # The first reading also gives the buckets; it is still current if no wait follows.
            starts = await self._learn_buckets()
            turn = await self._take_turn(shard)
            if await self._sleep_until(turn) or starts is None:
                # Read at the turn itself: other processes may have spent starts meanwhile.
                starts = await self._session_starts()
            if not await self._wait_for_session_starts(shard, starts):
                break
        previous = self._last.get(shard)
        repeats = previous[1] + 1 if previous and turn - previous[0] < STABLE_AFTER else 0
        self._last[shard] = (max(turn, self._clock()), repeats)

    async def _learn_buckets(self) -> SessionStarts | None:
        """Read the session start limit once for its number of IDENTIFY buckets; that
        reading, or None once they are known."""
        if self._concurrency is not None:
            return None
        starts = await self._session_starts()
        self._concurrency = max(1, starts.max_concurrency) if starts else 1
        return starts

    async def _take_turn(self, shard: int) -> float:
        assert self._concurrency is not None
        bucket = shard % self._concurrency
        try:
            turn = await self._turns.take_identify_turn(
                bucket, self._window + TURN_MARGIN, self._clock()
            )
        except StoreError as error:
            # Without the database, wait one window as discord.py would: never stop connecting.
            log.warning("no IDENTIFY turn from the database (%s); waiting %ss", error, self._window)
            turn = self._clock() + self._window
        return turn

    async def _wait_for_session_starts(self, shard: int, starts: SessionStarts | None) -> bool:
        """Wait out Discord's daily count of session starts if it is spent; True if it was
        (the shard then takes a new turn)."""
        if starts is None or not starts.spent():
            return False
        # Said at ERROR: no shard connects until the reset, and nothing in newsbot can help.
        log.error(
            "Discord's daily limit of session starts is spent (%d of %d left); shard %s waits"
            " %s for it to reset rather than have Discord reset the bot's token",
            starts.remaining,
            starts.total,
            shard,
            _duration(starts.reset_after),
        )
        # A moment past the reset, so that the count read next is the new one.
        await self._sleep(starts.reset_after + 1.0)
        return True

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

    async def _sleep_until(self, instant: float) -> bool:
        """Sleep until `instant`; whether that meant waiting at all."""
        delay = instant - self._clock()
        if delay > 0:
            await self._sleep(delay)
        return delay > 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes} min"
