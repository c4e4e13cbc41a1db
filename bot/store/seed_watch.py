"""The backend-neutral half of the seed announcements (bot.store.base.SeedAnnouncements):
telling a store's own reloads from other processes' and passing the others' on.

How a backend hears of a reload is its own: PostgreSQL LISTENs for the NOTIFY a reload sends
when it commits; SQLite, where another process can only be `newsbot seeds load` on the same
file, reads the seed generation every little while.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

# Seconds between looks at the seed generation where nothing announces a reload (SQLite), or
# between checks that the listening connection still answers (PostgreSQL).
SEED_WATCH_INTERVAL = 30.0


class SeedWatching:
    """Which generations this store committed itself, the newest one it knows of, and the
    callback that hears of the others."""

    seed_watch_interval: float = SEED_WATCH_INTERVAL
    _on_reload: Callable[[int], object] | None = None
    _watch: asyncio.Task[None] | None = None
    # The newest seed generation this store knows of; None until watching starts.
    _seen_generation: int | None = None
    _own_generations: set[int] | None = None

    async def watch_seed_reloads(self, on_reload: Callable[[int], object]) -> None:
        self._on_reload = on_reload
        if self._watch is None:
            self._seen_generation = await self._seed_generation()
            self._watch = asyncio.create_task(self._watch_reloads(), name="newsbot seed watch")

    async def close(self) -> None:
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        await super().close()  # type: ignore[misc]  # the backend's base, later in the MRO

    @contextmanager
    def _own_reload(self, generation: int) -> Iterator[None]:
        """Around a reload's transaction: `generation` is this store's own if it commits (its
        announcement may arrive before the commit returns here)."""
        if self._own_generations is None:
            self._own_generations = set()
        self._own_generations.add(generation)
        try:
            yield
        except BaseException:
            self._own_generations.discard(generation)
            raise

    def _heard_generation(self, generation: int) -> None:
        """The seed generation is now `generation`: tell the callback, unless this store
        committed it or it is no news."""
        if self._seen_generation is not None and generation <= self._seen_generation:
            return
        self._seen_generation = generation
        own = self._own_generations or set()
        if generation in own:
            own.difference_update(range(generation + 1))
            return
        if self._on_reload is not None:
            try:
                self._on_reload(generation)
            except Exception:
                log.exception("handling the reload of generation %d failed", generation)

    async def _seed_generation(self) -> int:
        raise NotImplementedError

    async def _watch_reloads(self) -> None:
        raise NotImplementedError
