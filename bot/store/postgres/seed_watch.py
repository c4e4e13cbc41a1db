"""Seed reloads by other processes on PostgreSQL: a reload sends NOTIFY newsbot_seeds with its
generation inside its transaction (PostgreSQL delivers it on commit, never for a rollback),
and every store that watches LISTENs on a connection of its own.

Not a pooled one: a connection that goes back to asyncpg's pool is reset, which drops its
LISTENs. When the connection drops, the watch connects again with backoff, and reads the
generation on each (re)connection and every seed_watch_interval seconds, so that a reload
committed while it was not listening is noticed too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bot.store.postgres.connection import PostgresBase, one_line
from bot.store.seed_watch import SeedWatching

log = logging.getLogger(__name__)

CHANNEL = "newsbot_seeds"
# What the listening connection calls itself in pg_stat_activity.
APPLICATION_NAME = "newsbot seed watch"
_GENERATION = "SELECT seed_generation FROM meta"
_NOTIFY = "SELECT pg_notify($1, $2)"
# Seconds between attempts to connect again: doubled each failure, up to the last.
_BACKOFF_FIRST = 1.0
_BACKOFF_MOST = 60.0
_CONNECT_TIMEOUT = 10.0


async def announce_reload(connection: asyncpg.Connection[asyncpg.Record], generation: int) -> None:
    """Inside a reload's transaction: tell the watching processes once it commits."""
    await connection.execute(_NOTIFY, CHANNEL, str(generation))


class SeedWatchMixin(SeedWatching, PostgresBase):
    """The SeedAnnouncements role on PostgreSQL."""

    async def _seed_generation(self) -> int:
        rows = await self._read(_GENERATION)
        return int(rows[0][0])

    async def _watch_reloads(self) -> None:
        delay = _BACKOFF_FIRST
        while True:
            try:
                await self._listen()
            # Not only DATABASE_ERRORS: asyncpg raises InternalClientError ("cannot switch to
            # state ...") when the server ends the connection mid-query. Whatever it was, the
            # watch lives on: it connects again.
            except Exception as error:
                log.warning(
                    "listening for seed reloads on %s failed: %s; trying again in %.0f s",
                    self._where,
                    one_line(error),
                    delay,
                )
            else:
                delay = _BACKOFF_FIRST
                log.warning("the connection listening for seed reloads dropped; connecting again")
            await asyncio.sleep(delay)
            delay = min(delay * 2, _BACKOFF_MOST)

    async def _listen(self) -> None:
        """LISTEN until the connection drops (returns) or fails (raises)."""
        connection = await asyncpg.connect(
            self._url,
            timeout=_CONNECT_TIMEOUT,
            server_settings={"application_name": APPLICATION_NAME},
        )
        dropped = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _connection: dropped.set())
            await connection.add_listener(CHANNEL, self._notified)
            while not dropped.is_set():
                # On connecting, and now and then: a reload while nobody listened, and a
                # connection that died without a word.
                self._heard_generation(int(await connection.fetchval(_GENERATION)))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(dropped.wait(), self.seed_watch_interval)
        finally:
            if not connection.is_closed():
                connection.terminate()

    def _notified(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            generation = int(payload)
        except ValueError:
            log.warning("ignoring a %s notification that is not a generation: %r", CHANNEL, payload)
            return
        self._heard_generation(generation)
