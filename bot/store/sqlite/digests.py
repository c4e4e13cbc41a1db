"""Digests on SQLite, apart from the ledger (ledger.py): servers' digest settings, and the
query that picks the stories not yet delivered to a channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import DigestSettings, Story, topic_key
from bot.store.codec import (
    DIGEST_SETTINGS_COLUMNS,
    STORY_COLUMNS,
    digest_settings_from_row,
    digest_settings_row,
    story_from_row,
    to_json,
)
from bot.store.sqlite.connection import SqliteBase

# --- settings ------------------------------------------------------------------------------------

_DIGEST_SETTINGS = "SELECT " + DIGEST_SETTINGS_COLUMNS + " FROM digest_settings WHERE guild_id = ?"
_ENABLED_DIGEST_SETTINGS = (
    "SELECT " + DIGEST_SETTINGS_COLUMNS + " FROM digest_settings WHERE enabled ORDER BY guild_id"
)
_PUT_DIGEST_SETTINGS = (
    "INSERT INTO digest_settings (" + DIGEST_SETTINGS_COLUMNS + ")"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id,"
    " local_time = excluded.local_time, timezone = excluded.timezone, topics = excluded.topics,"
    " count = excluded.count, enabled = excluded.enabled,"
    " disabled_reason = excluded.disabled_reason, effective_from = excluded.effective_from,"
    " max_age = excluded.max_age"
)
_DISABLE_DIGEST = "UPDATE digest_settings SET enabled = 0, disabled_reason = ? WHERE guild_id = ?"

# --- undelivered stories -------------------------------------------------------------------------

# A story counts as delivered to a channel when it has a row in the deliveries primary key;
# each candidate costs one lookup there.
_NOT_DELIVERED = (
    " NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.channel_id = ? AND d.story_id = {id})"
)
# Walks the stories newest first (the backwards scan of /news), skipping delivered ones: the
# LIMIT stops it early and nothing is sorted. INDEXED BY keeps it that way whatever the
# planner thinks of the NOT EXISTS.
_UNDELIVERED = (
    "SELECT " + STORY_COLUMNS + " FROM stories AS s INDEXED BY stories_by_published"
    " WHERE" + _NOT_DELIVERED.format(id="s.id") + " ORDER BY s.published_at DESC, s.id DESC LIMIT ?"
)
# One topic's newest undelivered stories: a backwards walk of its story_topics primary key
# range, as /news on a topic does, stopped by the LIMIT.
_UNDELIVERED_ON_TOPIC = (
    "SELECT * FROM (SELECT st.published_at, st.story_id FROM story_topics AS st"
    " WHERE st.topic_id = (SELECT id FROM topics WHERE key = ?) AND"
    + _NOT_DELIVERED.format(id="st.story_id")
    + " ORDER BY st.published_at DESC, st.story_id DESC LIMIT ?)"
)
# The newest of the topics' walks (_UNDELIVERED_ON_TOPIC, joined by UNION, which also drops a
# story found on two topics): at most limit rows per topic are sorted, never a whole table.
_UNDELIVERED_ON_TOPICS = (
    "SELECT " + STORY_COLUMNS + " FROM ({walks}) AS u CROSS JOIN stories AS s ON s.id = u.story_id"
    " ORDER BY u.published_at DESC, u.story_id DESC LIMIT ?"
)
# Past this many topics, one walk per topic would make a huge compound query (SQLite allows
# 500 parts, and old builds 999 parameters): walk all stories newest first instead and keep
# those on one of the topics, found through story_topics_by_story. So many topics usually
# cover most stories, so that walk stops early too.
_MAX_TOPIC_WALKS = 100
_UNDELIVERED_ON_MANY_TOPICS = (
    "SELECT " + STORY_COLUMNS + " FROM stories AS s INDEXED BY stories_by_published"
    " WHERE" + _NOT_DELIVERED.format(id="s.id") + " AND EXISTS (SELECT 1 FROM story_topics AS st"
    " WHERE st.story_id = s.id AND +st.topic_id IN"
    " (SELECT id FROM topics WHERE key IN (SELECT value FROM json_each(?))))"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT ?"
)


class DigestsMixin(SqliteBase):
    """The settings and undelivered stories of the DigestLedger role on SQLite."""

    async def digest_settings(self, guild_id: int) -> DigestSettings | None:
        rows = await self._read(_DIGEST_SETTINGS, (guild_id,))
        return digest_settings_from_row(rows[0]) if rows else None

    async def all_digest_settings(self) -> list[DigestSettings]:
        rows = await self._read(_ENABLED_DIGEST_SETTINGS, ())
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
        rows = await self._read(*statement)
        return [story_from_row(row) for row in rows]

    async def explain_undelivered(self, channel_id: int, topics: Sequence[str] = ()) -> list[str]:
        """The query plan of `undelivered_stories`, one line per step (tests, diagnosis)."""
        statement = _undelivered_statement(channel_id, topics, 10)
        if statement is None:
            return []
        sql, params = statement
        rows = await self._read("EXPLAIN QUERY PLAN " + sql, params)
        return [row[3] for row in rows]


def _undelivered_statement(
    channel_id: int, topics: Sequence[str], limit: int
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of one undelivered_stories() call, or None when it cannot match
    anything. Topic names that are blank once spacing is ignored match no story."""
    if limit <= 0:
        return None
    if not topics:
        return _UNDELIVERED, (channel_id, limit)
    # dict.fromkeys: distinct keys in the order given, so that the SQL is stable.
    keys = [key for key in dict.fromkeys(map(topic_key, topics)) if key]
    if not keys:
        return None
    if len(keys) > _MAX_TOPIC_WALKS:
        return _UNDELIVERED_ON_MANY_TOPICS, (channel_id, to_json(keys), limit)
    walks = " UNION ".join([_UNDELIVERED_ON_TOPIC] * len(keys))
    params = [value for key in keys for value in (key, channel_id, limit)]
    return _UNDELIVERED_ON_TOPICS.format(walks=walks), (*params, limit)
