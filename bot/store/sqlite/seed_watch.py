"""Seed reloads by other processes on SQLite: only `newsbot seeds load` can commit one beside
the running bot, and nothing announces it, so the bot reads the seed generation (one row)
every seed_watch_interval seconds."""

from __future__ import annotations

import asyncio
import logging

from bot.store.base import StoreError
from bot.store.seed_watch import SeedWatching
from bot.store.sqlite.connection import SqliteBase

log = logging.getLogger(__name__)

_GENERATION = "SELECT value FROM meta WHERE key = 'seed_generation'"


class SeedWatchMixin(SeedWatching, SqliteBase):
    """The SeedAnnouncements role on SQLite."""

    async def _seed_generation(self) -> int:
        rows = await self._read(_GENERATION, ())
        return int(rows[0][0])

    async def _watch_reloads(self) -> None:
        while True:
            await asyncio.sleep(self.seed_watch_interval)
            try:
                generation = await self._seed_generation()
            except StoreError as error:
                # The bot's own guards say when the database fails; the next look tries again.
                log.debug("reading the seed generation failed: %s", error)
                continue
            self._heard_generation(generation)
