"""The digest ledger on SQLite: one row per (server, local date) and attempt's messages.

A run is claimed with its messages in one transaction. Sending then writes, per message, the
intent (`begin_digest_message`) and the outcome (`record_digest_message`), each allowed only
to the run's owner and only for the next message; the outcome also records the message's
stories as delivered to the channel, in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import aiosqlite

from bot.models import DigestRun, DigestStatus
from bot.store.base import LeaseLost, StoreError
from bot.store.codec import (
    DIGEST_MESSAGE_COLUMNS,
    DIGEST_RUN_COLUMNS,
    digest_message_from_row,
    digest_message_row,
    digest_run_from_row,
    digest_run_row,
    unix,
)
from bot.store.sqlite.connection import SqliteBase

_RUN_VALUES = " VALUES (" + ", ".join("?" * len(DIGEST_RUN_COLUMNS.split(","))) + ")"
# DO NOTHING rather than OR IGNORE: only the primary key conflict means "already claimed"; a
# CHECK failure (an unknown status) must still raise.
_ADD_DIGEST_RUN = (
    "INSERT INTO digest_runs (" + DIGEST_RUN_COLUMNS + ")" + _RUN_VALUES
    + " ON CONFLICT (guild_id, local_date) DO NOTHING"
)  # fmt: skip
# /digest now: the same insert, or the next try at a date whose row is final without a digest
# in the channel (failed, skipped, empty). The WHERE is evaluated on the stored row inside the
# statement, so of two racing claims of the same attempt exactly one takes it; a sent or
# claimed row is never taken over.
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
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_DIGEST_RUN = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = ? AND local_date = ?"
)
_DIGEST_MESSAGES = (
    "SELECT " + DIGEST_MESSAGE_COLUMNS + " FROM digest_messages"
    " WHERE guild_id = ? AND local_date = ? AND attempt = ? ORDER BY idx"
)
# One server's rows from a date on: a range of the primary key.
_GUILD_DIGEST_RUNS_SINCE = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = ? AND local_date >= ?"
    " ORDER BY local_date"
)
_DIGEST_RUNS_SINCE = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE local_date >= ?"
    " ORDER BY local_date, guild_id"
)
# The primary key range of one server, walked backwards: one row read.
_LAST_DIGEST_RUN = (
    "SELECT " + DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = ?"
    " ORDER BY local_date DESC LIMIT 1"
)
# Resuming: the owner keeps its run, anyone else gets it only once the lease has expired.
_TAKE_DIGEST_RUN = (
    "UPDATE digest_runs SET owner = ?, lease_until = ?"
    " WHERE guild_id = ? AND local_date = ? AND status = 'claimed'"
    " AND (owner = ? OR lease_until <= ?)"
)
_TAKE_ANY_DIGEST_RUN = (
    "UPDATE digest_runs SET owner = ?, lease_until = ?"
    " WHERE guild_id = ? AND local_date = ? AND status = 'claimed'"
)
# Only the owner, only while claimed, only the next message: a process that lost the run (or
# a stale retry of an earlier message) changes nothing.
_OWNED_NEXT_MESSAGE = (
    " WHERE guild_id = ? AND local_date = ? AND attempt = ? AND status = 'claimed'"
    " AND owner = ? AND sent_messages = ?"
)
_RENEW_LEASE = "UPDATE digest_runs SET lease_until = ?" + _OWNED_NEXT_MESSAGE
_SET_SENT_MESSAGES = (
    "UPDATE digest_runs SET sent_messages = sent_messages + 1, lease_until = ?"
    + _OWNED_NEXT_MESSAGE
)
_MESSAGE_KEY = " WHERE guild_id = ? AND local_date = ? AND attempt = ? AND idx = ?"
# The first try of a nonce is what its de-duplication window runs from: a repeat keeps it,
# unless the caller starts a new window (the earlier try is known not to have posted).
_BEGIN_MESSAGE = (
    "UPDATE digest_messages SET attempted_at = COALESCE(attempted_at, ?)" + _MESSAGE_KEY
)
_RESTART_MESSAGE = "UPDATE digest_messages SET attempted_at = ?" + _MESSAGE_KEY
_RECORD_MESSAGE = "UPDATE digest_messages SET message_id = ?, sent_at = ?" + _MESSAGE_KEY
# A story delivered again keeps its first delivery. "WHERE true" lets SQLite's parser tell
# the upsert's ON from a join's.
_INSERT_DELIVERIES = (
    "INSERT INTO deliveries (channel_id, story_id, delivered_at)"
    " SELECT ?, value, ? FROM json_each((SELECT story_ids FROM digest_messages" + _MESSAGE_KEY
    + ")) WHERE true ON CONFLICT (channel_id, story_id) DO NOTHING"
)  # fmt: skip
_FINISH_DIGEST_RUN = (
    "UPDATE digest_runs SET status = ?, detail = ?, finished_at = ?"
    " WHERE guild_id = ? AND local_date = ?"
)
_FINISH_OWNED_DIGEST_RUN = _FINISH_DIGEST_RUN + " AND status = 'claimed' AND owner = ?"


class LedgerMixin(SqliteBase):
    """The ledger part of the DigestLedger role on SQLite."""

    async def digest_runs_since(self, local_date: date) -> dict[tuple[int, date], DigestRun]:
        rows = await self._read(_DIGEST_RUNS_SINCE, (local_date.isoformat(),))
        return _keyed_runs(rows)

    async def guild_digest_runs_since(
        self, guild_id: int, local_date: date
    ) -> dict[tuple[int, date], DigestRun]:
        rows = await self._read(_GUILD_DIGEST_RUNS_SINCE, (guild_id, local_date.isoformat()))
        return _keyed_runs(rows)

    async def last_digest_run(self, guild_id: int) -> DigestRun | None:
        rows = await self._read(_LAST_DIGEST_RUN, (guild_id,))
        return digest_run_from_row(rows[0]) if rows else None

    async def digest_run(self, guild_id: int, local_date: date) -> DigestRun | None:
        reader = self._require(self._reader)
        with self._errors():
            return await _run_with_messages(reader, guild_id, local_date)

    async def add_digest_run(self, run: DigestRun) -> bool:
        return await self._claim(_ADD_DIGEST_RUN, run)

    async def reclaim_digest_run(self, run: DigestRun) -> bool:
        return await self._claim(_RECLAIM_DIGEST_RUN, run)

    async def _claim(self, statement: str, run: DigestRun) -> bool:
        """The row by `statement` and, if it changed one, the run's messages: both or none."""
        async with self._transaction() as writer:
            async with writer.execute(statement, digest_run_row(run)) as cursor:
                if cursor.rowcount != 1:
                    return False
            rows = [digest_message_row(run, message) for message in run.messages]
            await writer.executemany(_ADD_DIGEST_MESSAGE, rows)
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
        key = (guild_id, local_date.isoformat())
        async with self._transaction() as writer:
            params: tuple[Any, ...] = (self.owner, unix(lease_until), *key)
            statement = _TAKE_ANY_DIGEST_RUN
            if not any_owner:
                statement, params = _TAKE_DIGEST_RUN, (*params, self.owner, unix(now))
            async with writer.execute(statement, params) as cursor:
                if cursor.rowcount != 1:
                    return None
            return await _run_with_messages(writer, guild_id, local_date)

    async def begin_digest_message(
        self, run: DigestRun, index: int, at: datetime, lease_until: datetime, *, restart: bool
    ) -> None:
        key = (run.guild_id, run.local_date.isoformat(), run.attempt)
        async with self._transaction() as writer:
            await self._advance(writer, _RENEW_LEASE, run, index, lease_until)
            statement = _RESTART_MESSAGE if restart else _BEGIN_MESSAGE
            await writer.execute(statement, (unix(at), *key, index))

    async def record_digest_message(
        self, run: DigestRun, index: int, message_id: int, at: datetime, lease_until: datetime
    ) -> None:
        key = (run.guild_id, run.local_date.isoformat(), run.attempt)
        async with self._transaction() as writer:
            await self._advance(writer, _SET_SENT_MESSAGES, run, index, lease_until)
            await writer.execute(_RECORD_MESSAGE, (message_id, unix(at), *key, index))
            await writer.execute(_INSERT_DELIVERIES, (run.channel_id, unix(at), *key, index))

    async def finish_digest_run(
        self,
        guild_id: int,
        local_date: date,
        status: DigestStatus,
        detail: str = "",
        *,
        owner: str | None = None,
    ) -> None:
        params: tuple[Any, ...] = (
            status,
            detail,
            unix(datetime.now(UTC)),
            guild_id,
            local_date.isoformat(),
        )
        if owner is None:
            if await self._write(_FINISH_DIGEST_RUN, params) != 1:
                raise self._no_run(guild_id, local_date)
        elif await self._write(_FINISH_OWNED_DIGEST_RUN, (*params, owner)) != 1:
            raise LeaseLost(
                f"database {self._path}: the digest of server {guild_id} on"
                f" {local_date.isoformat()} is no longer this process's to finish"
            )

    async def _advance(
        self,
        writer: aiosqlite.Connection,
        statement: str,
        run: DigestRun,
        index: int,
        lease_until: datetime,
    ) -> None:
        """Run `statement` (one of those ending in _OWNED_NEXT_MESSAGE) on the run's row;
        LeaseLost when the row is not `run.owner`'s or `index` is not its next message."""
        key = (run.guild_id, run.local_date.isoformat(), run.attempt)
        params = (unix(lease_until), *key, run.owner, index)
        async with writer.execute(statement, params) as cursor:
            if cursor.rowcount != 1:
                raise self._lease_lost(run, index)

    def _no_run(self, guild_id: int, local_date: date) -> StoreError:
        return StoreError(
            f"database {self._path}: no digest run for server {guild_id}"
            f" on {local_date.isoformat()}"
        )

    def _lease_lost(self, run: DigestRun, index: int) -> LeaseLost:
        return LeaseLost(
            f"database {self._path}: message {index} of the digest of server {run.guild_id} on"
            f" {run.local_date.isoformat()} is not this process's to send (another process"
            " took the digest over, or the message was recorded already)"
        )


async def _run_with_messages(
    connection: aiosqlite.Connection, guild_id: int, local_date: date
) -> DigestRun | None:
    key = (guild_id, local_date.isoformat())
    rows = list(await connection.execute_fetchall(_DIGEST_RUN, key))
    if not rows:
        return None
    run = digest_run_from_row(rows[0])
    messages = await connection.execute_fetchall(_DIGEST_MESSAGES, (*key, run.attempt))
    return replace(run, messages=tuple(digest_message_from_row(row) for row in messages))


def _keyed_runs(rows: Sequence[Any]) -> dict[tuple[int, date], DigestRun]:
    runs = (digest_run_from_row(row) for row in rows)
    return {(run.guild_id, run.local_date): run for run in runs}
