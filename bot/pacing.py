"""Pacing for bursts of Discord requests, such as many servers' digests due in one minute.

discord.py waits out a route's bucket when its headers say so, but it learns about the global
limit (50 requests/s per bot) only from a 429. A token bucket in front of the sends keeps a
fan-out under that limit instead of bouncing off it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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

    async def acquire(self) -> None:
        async with self._lock:
            now = self._clock()
            earliest = self._full_at - (self._burst - 1) * self._interval
            if earliest > now:
                await self._sleep(earliest - now)
                now = earliest
            self._full_at = max(self._full_at, now) + self._interval
