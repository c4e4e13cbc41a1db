"""The digest ledger on PostgreSQL: one row per (server, local date) and attempt's messages.

The same steps as on SQLite (bot/store/sqlite/ledger.py): a claim with its messages in one
transaction; per message, the intent and the outcome, each allowed only to the run's owner and
only for the next message, the outcome recording the message's stories as delivered in the
same transaction. Races are settled by PostgreSQL's row locks: an UPDATE or an upsert waits for
a concurrent one on the same row and then evaluates its WHERE on the row that one left, so of
two racing takeovers or reclaims exactly one changes the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bot.models import DigestRun, DigestStatus
from bot.store.base import LeaseLost, StoreError
from bot.store.postgres.codec import (
    DIGEST_MESSAGE_COLUMNS,
    DIGEST_RUN_COLUMNS,
    digest_message_from_row,
    digest_message_row,
    digest_run_from_row,
    digest_run_row,
    unix,
)
from bot.store.postgres.connection import PostgresBase, changed_rows

_RUN_VALUES = " VALUES (" + ", ".join(f"${n + 1}" for n in range(13)) + ")"
# DO NOTHING: only the primary key conflict means "already claimed"; a CHECK failure (an
# unknown status) still raises.
_ADD_DIGEST_RUN = (
    "INSERT INTO digest_runs (" + DIGEST_RUN_COLUMNS + ")" + _RUN_VALUES
    + " ON CONFLICT (guild_id, local_date) DO NOTHING"
)  # fmt: skip
# /digest now: the same insert, or the next try at a date whose row is final without a digest
# in the channel (failed, skipped, empty); a sent or claimed row is never taken over.
_RECLAIM_DIGEST_RUN = (
    "INSERT INTO digest_runs (" + DIGEST_RUN_COLUMNS + ")" + _RUN_VALUES
    + " ON CONFLICT (guild_id, local_date) DO UPDATE SET channel_id = excluded.channel_id,"
    " status = excluded.status, scheduled_for = excluded.scheduled_for,"
    " claimed_at = excluded.claimed_at, plan = excluded.plan, sent_messages = 0,"
    " finished_at = NULL, detail = '', attempt = excluded.attempt, owner = excluded.owner,"
    " lease_until = excluded.lease_until"
    " WHERE digest_runs.status IN ('failed', 'skipped', 'empty')"
    " AND digest_runs.attempt = excluded.attempt - 1"
)  # fmt: skip
_ADD_DIGEST_MESSAGE = (
    "INSERT INTO digest_messages (" + DIGEST_MESSAGE_COLUMNS + ")"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
)
_DIGEST_RUN = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = $1 AND local_date = $2"
)
_DIGEST_MESSAGES = (
    "SELECT " + DIGEST_MESSAGE_COLUMNS + " FROM digest_messages"
    " WHERE guild_id = $1 AND local_date = $2 AND attempt = $3 ORDER BY idx"
)
_GUILD_DIGEST_RUNS_SINCE = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = $1 AND local_date >= $2"
    " ORDER BY local_date"
)
_DIGEST_RUNS_SINCE = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE local_date >= $1"
    " ORDER BY local_date, guild_id"
)
_LAST_DIGEST_RUN = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = $1"
    " ORDER BY local_date DESC LIMIT 1"
)
# Resuming: the owner keeps its run, anyone else gets it only once the lease has expired.
_TAKE_DIGEST_RUN = (
    "UPDATE digest_runs SET owner = $1, lease_until = $2"
    " WHERE guild_id = $3 AND local_date = $4 AND status = 'claimed'"
    " AND (owner = $1 OR lease_until <= $5)"
)
_TAKE_ANY_DIGEST_RUN = (
    "UPDATE digest_runs SET owner = $1, lease_until = $2"
    " WHERE guild_id = $3 AND local_date = $4 AND status = 'claimed'"
)
# Only the owner, only while claimed, only the next message.
_OWNED_NEXT_MESSAGE = (
    " WHERE guild_id = $2 AND local_date = $3 AND attempt = $4 AND status = 'claimed'"
    " AND owner = $5 AND sent_messages = $6"
)
_RENEW_LEASE = "UPDATE digest_runs SET lease_until = $1" + _OWNED_NEXT_MESSAGE
_SET_SENT_MESSAGES = (
    "UPDATE digest_runs SET sent_messages = sent_messages + 1, lease_until = $1"
    + _OWNED_NEXT_MESSAGE
)
_MESSAGE_KEY = " WHERE guild_id = $2 AND local_date = $3 AND attempt = $4 AND idx = $5"
_BEGIN_MESSAGE = (
    "UPDATE digest_messages SET attempted_at = COALESCE(attempted_at, $1)" + _MESSAGE_KEY
)
_RESTART_MESSAGE = "UPDATE digest_messages SET attempted_at = $1" + _MESSAGE_KEY
_RECORD_MESSAGE = "UPDATE digest_messages SET message_id = $6, sent_at = $1" + _MESSAGE_KEY
# A story delivered again keeps its first delivery. A null among the story ids violates NOT
# NULL and rolls the whole record back, as on SQLite.
_INSERT_DELIVERIES = (
    "INSERT INTO deliveries (channel_id, story_id, delivered_at)"
    " SELECT $6, ids.value::bigint, $1 FROM digest_messages,"
    " jsonb_array_elements_text(story_ids) AS ids (value)" + _MESSAGE_KEY
    + " ON CONFLICT (channel_id, story_id) DO NOTHING"
)  # fmt: skip
_FINISH_DIGEST_RUN = (
    "UPDATE digest_runs SET status = $1, detail = $2, finished_at = $3"
    " WHERE guild_id = $4 AND local_date = $5"
)
_FINISH_OWNED_DIGEST_RUN = _FINISH_DIGEST_RUN + " AND status = 'claimed' AND owner = $6"


class LedgerMixin(PostgresBase):
    """The ledger part of the DigestLedger role on PostgreSQL."""

    async def digest_runs_since(self, local_date: date) -> dict[tuple[int, date], DigestRun]:
        return _keyed_runs(await self._read(_DIGEST_RUNS_SINCE, (local_date,)))

    async def guild_digest_runs_since(
        self, guild_id: int, local_date: date
    ) -> dict[tuple[int, date], DigestRun]:
        return _keyed_runs(await self._read(_GUILD_DIGEST_RUNS_SINCE, (guild_id, local_date)))

    async def last_digest_run(self, guild_id: int) -> DigestRun | None:
        rows = await self._read(_LAST_DIGEST_RUN, (guild_id,))
        return digest_run_from_row(rows[0]) if rows else None

    async def digest_run(self, guild_id: int, local_date: date) -> DigestRun | None:
        # One snapshot: the row and the messages of the attempt it names.
        async with self._transaction(isolation="repeatable_read") as connection:
            return await _run_with_messages(connection, guild_id, local_date)

    async def add_digest_run(self, run: DigestRun) -> bool:
        return await self._claim(_ADD_DIGEST_RUN, run)

    async def reclaim_digest_run(self, run: DigestRun) -> bool:
        return await self._claim(_RECLAIM_DIGEST_RUN, run)

    async def _claim(self, statement: str, run: DigestRun) -> bool:
        """The row by `statement` and, if it changed one, the run's messages: both or none."""
        async with self._transaction() as connection:
            if changed_rows(await connection.execute(statement, *digest_run_row(run))) != 1:
                return False
            rows = [digest_message_row(run, message) for message in run.messages]
            await connection.executemany(_ADD_DIGEST_MESSAGE, rows)
        return True

    async def take_digest_run(
        self,
        guild_id: int,
        local_date: date,
        lease_until: datetime,
        now: datetime,
        *,
        any_owner: bool = False,
    ) -> DigestRun | None:
        params: tuple[Any, ...] = (self.owner, unix(lease_until), guild_id, local_date)
        statement = _TAKE_ANY_DIGEST_RUN
        if not any_owner:
            statement, params = _TAKE_DIGEST_RUN, (*params, unix(now))
        async with self._transaction() as connection:
            if changed_rows(await connection.execute(statement, *params)) != 1:
                return None
            return await _run_with_messages(connection, guild_id, local_date)

    async def begin_digest_message(
        self, run: DigestRun, index: int, at: datetime, lease_until: datetime, *, restart: bool
    ) -> None:
        key = (run.guild_id, run.local_date, run.attempt, index)
        async with self._transaction() as connection:
            await self._advance(connection, _RENEW_LEASE, run, index, lease_until)
            statement = _RESTART_MESSAGE if restart else _BEGIN_MESSAGE
            await connection.execute(statement, unix(at), *key)

    async def record_digest_message(
        self, run: DigestRun, index: int, message_id: int, at: datetime, lease_until: datetime
    ) -> None:
        key = (run.guild_id, run.local_date, run.attempt, index)
        async with self._transaction() as connection:
            await self._advance(connection, _SET_SENT_MESSAGES, run, index, lease_until)
            await connection.execute(_RECORD_MESSAGE, unix(at), *key, message_id)
            await connection.execute(_INSERT_DELIVERIES, unix(at), *key, run.channel_id)

    async def finish_digest_run(
        self,
        guild_id: int,
        local_date: date,
        status: DigestStatus,
        detail: str = "",
        *,
        owner: str | None = None,
    ) -> None:
        params: tuple[Any, ...] = (status, detail, unix(datetime.now(UTC)), guild_id, local_date)
        if owner is None:
            if await self._write(_FINISH_DIGEST_RUN, params) != 1:
                raise StoreError(
                    f"database {self._where}: no digest run for server {guild_id}"
                    f" on {local_date.isoformat()}"
                )
        elif await self._write(_FINISH_OWNED_DIGEST_RUN, (*params, owner)) != 1:
            raise LeaseLost(
                f"database {self._where}: the digest of server {guild_id} on"
                f" {local_date.isoformat()} is no longer this process's to finish"
            )

    async def _advance(
        self,
        connection: asyncpg.Connection[asyncpg.Record],
        statement: str,
        run: DigestRun,
        index: int,
        lease_until: datetime,
    ) -> None:
        """Run `statement` (one of those ending in _OWNED_NEXT_MESSAGE) on the run's row;
        LeaseLost when the row is not `run.owner`'s or `index` is not its next message."""
        params = (unix(lease_until), run.guild_id, run.local_date, run.attempt, run.owner, index)
        if changed_rows(await connection.execute(statement, *params)) != 1:
            raise LeaseLost(
                f"database {self._where}: message {index} of the digest of server"
                f" {run.guild_id} on {run.local_date.isoformat()} is not this process's to send"
                " (another process took the digest over, or the message was recorded already)"
            )


async def _run_with_messages(
    connection: asyncpg.Connection[asyncpg.Record], guild_id: int, local_date: date
) -> DigestRun | None:
    row = await connection.fetchrow(_DIGEST_RUN, guild_id, local_date)
    if row is None:
        return None
    run = digest_run_from_row(row)
    messages = await connection.fetch(_DIGEST_MESSAGES, guild_id, local_date, run.attempt)
    return replace(run, messages=tuple(digest_message_from_row(row) for row in messages))


def _keyed_runs(rows: Sequence[Any]) -> dict[tuple[int, date], DigestRun]:
    runs = (digest_run_from_row(row) for row in rows)
    return {(run.guild_id, run.local_date): run for run in runs}
