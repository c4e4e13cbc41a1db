"""Digests on PostgreSQL, apart from the ledger (ledger.py): servers' digest settings, and the
query that picks the stories not yet delivered to a channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import DigestSettings, Story, topic_key
from bot.store.postgres.codec import (
    DIGEST_SETTINGS_COLUMNS,
    STORY_COLUMNS,
    digest_settings_from_row,
    digest_settings_row,
    story_from_row,
)
from bot.store.postgres.connection import PostgresBase

_DIGEST_SETTINGS = "SELECT " + DIGEST_SETTINGS_COLUMNS + " FROM digest_settings WHERE guild_id = $1"
_ENABLED_DIGEST_SETTINGS = (
    "SELECT " + DIGEST_SETTINGS_COLUMNS + " FROM digest_settings WHERE enabled ORDER BY guild_id"
)
_PUT_DIGEST_SETTINGS = (
    "INSERT INTO digest_settings (" + DIGEST_SETTINGS_COLUMNS + ")"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id,"
    " local_time = excluded.local_time, timezone = excluded.timezone, topics = excluded.topics,"
    " count = excluded.count, enabled = excluded.enabled,"
    " disabled_reason = excluded.disabled_reason, effective_from = excluded.effective_from,"
    " max_age = excluded.max_age"
)
_DISABLE_DIGEST = (
    "UPDATE digest_settings SET enabled = false, disabled_reason = $1 WHERE guild_id = $2"
)

# --- undelivered stories -------------------------------------------------------------------------

_NOT_DELIVERED = (
    " NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.channel_id = $1 AND d.story_id = {id})"
)
# Walks the stories newest first, skipping delivered ones, stopped by the LIMIT.
_UNDELIVERED = (
    "SELECT " + STORY_COLUMNS + " FROM stories AS s WHERE" + _NOT_DELIVERED.format(id="s.id")
    + " ORDER BY s.published_at DESC, s.id DESC LIMIT $2"
)  # fmt: skip
# One walk per topic, newest first along its range of the story_topics key and stopped by the
# LIMIT (as /news on a topic), then the newest of those walks: at most `limit` rows per topic
# are sorted, never a whole table. DISTINCT drops a story found on two topics.
_UNDELIVERED_ON_TOPICS = (
    "SELECT " + STORY_COLUMNS + " FROM (SELECT DISTINCT w.published_at, w.story_id"
    " FROM topics AS t CROSS JOIN LATERAL (SELECT st.published_at, st.story_id"
    " FROM story_topics AS st WHERE st.topic_id = t.id AND"
    + _NOT_DELIVERED.format(id="st.story_id")
    + " ORDER BY st.published_at DESC, st.story_id DESC LIMIT $3) AS w"
    " WHERE t.key = ANY($2::text[])) AS u JOIN stories AS s ON s.id = u.story_id"
    " ORDER BY u.published_at DESC, u.story_id DESC LIMIT $3"
)  # fmt: skip


class DigestsMixin(PostgresBase):
    """The settings and undelivered stories of the DigestLedger role on PostgreSQL."""

    async def digest_settings(self, guild_id: int) -> DigestSettings | None:
        rows = await self._read(_DIGEST_SETTINGS, (guild_id,))
        return digest_settings_from_row(rows[0]) if rows else None

    async def all_digest_settings(self) -> list[DigestSettings]:
        rows = await self._read(_ENABLED_DIGEST_SETTINGS)
        return [digest_settings_from_row(row) for row in rows]

    async def save_digest_settings(self, settings: DigestSettings) -> None:
        await self._write(_PUT_DIGEST_SETTINGS, digest_settings_row(settings))

    async def disable_digest(self, guild_id: int, reason: str | None) -> None:
        await self._write(_DISABLE_DIGEST, (reason, guild_id))

    async def undelivered_stories(
        self, channel_id: int, topics: Sequence[str], limit: int
    ) -> list[Story]:
        statement = _undelivered_statement(channel_id, topics, limit)
        if statement is None:
            return []
        return [story_from_row(row) for row in await self._read(*statement)]


def _undelivered_statement(
    channel_id: int, topics: Sequence[str], limit: int
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of one undelivered_stories() call, or None when it cannot match
    anything. Topic names that are blank once spacing is ignored match no story."""
    if limit <= 0:
        return None
    if not topics:
        return _UNDELIVERED, (channel_id, limit)
    keys = [key for key in dict.fromkeys(map(topic_key, topics)) if key]
    if not keys:
        return None
    return _UNDELIVERED_ON_TOPICS, (channel_id, keys, limit)
