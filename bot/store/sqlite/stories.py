"""Reading stories and topics: /news pages, word search, topic lists and autocomplete.

The schema (migrations/0001_initial.sql) is built so that every read the bot makes walks an
index in the order it returns rows, without sorting, at a million stories.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.models import Story, TopicCount, topic_key
from bot.store.codec import STORY_COLUMNS, story_from_row, to_json
from bot.store.sqlite.connection import SqliteBase

# Word tokens of a search; everything else (quotes, operators, parentheses) is dropped, so no
# user text ever reaches FTS5 query syntax.
_WORD = re.compile(r"\w+")

_LATEST = (
    "SELECT " + STORY_COLUMNS + " FROM stories AS s"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT ? OFFSET ?"
)
# CROSS JOIN pins story_topics as the outer loop: its primary key range for one topic is
# already in (published_at, id) order, so the LIMIT stops the scan early and nothing is sorted.
_LATEST_ON_TOPIC = (
    "SELECT " + STORY_COLUMNS + " FROM story_topics AS st"
    " CROSS JOIN stories AS s ON s.id = st.story_id"
    " WHERE st.topic_id = (SELECT id FROM topics WHERE key = ?)"
    " ORDER BY st.published_at DESC, st.story_id DESC LIMIT ? OFFSET ?"
)
# Word searches walk the search index newest first and stop at the page: its rowid is
# stories.search_key, which sorts as (published_at, id) do (migrations/0010), and FTS5 serves
# ORDER BY rowid DESC itself, match by match, without building and sorting the match list.
# CROSS JOIN keeps the index the outer loop: with ANALYZE statistics the planner would rather
# start from the topic (or the stories) and sort every match.
_LATEST_MATCHING = (
    "SELECT " + STORY_COLUMNS + " FROM stories_fts"
    " CROSS JOIN stories AS s INDEXED BY stories_by_search_key"
    " ON s.search_key = stories_fts.rowid"
    " WHERE stories_fts MATCH ?"
    " ORDER BY stories_fts.rowid DESC LIMIT ? OFFSET ?"
)
# The same walk, keeping the matches filed under the topic: one primary key lookup each.
_LATEST_ON_TOPIC_MATCHING = (
    "SELECT " + STORY_COLUMNS + " FROM stories_fts"
    " CROSS JOIN stories AS s INDEXED BY stories_by_search_key"
    " ON s.search_key = stories_fts.rowid"
    " CROSS JOIN story_topics AS st"
    " ON st.topic_id = (SELECT id FROM topics WHERE key = ?)"
    " AND st.published_at = s.published_at AND st.story_id = s.id"
    " WHERE stories_fts MATCH ?"
    " ORDER BY stories_fts.rowid DESC LIMIT ? OFFSET ?"
)
_STORY = "SELECT " + STORY_COLUMNS + " FROM stories AS s WHERE s.id = ?"
# json_each keeps the ids' order; missing ids are simply not joined.
_STORIES_BY_ID = (
    "SELECT " + STORY_COLUMNS + " FROM json_each(?) AS j CROSS JOIN stories AS s ON s.id = j.value"
)
_STORY_COUNT = "SELECT value FROM meta WHERE key = 'story_count'"
_TOPICS = (
    "SELECT name, story_count FROM topics WHERE story_count > 0"
    " ORDER BY story_count DESC, name COLLATE NOCASE, id"
)
_TOPIC = "SELECT name, story_count FROM topics WHERE key = ? AND story_count > 0"
# Autocomplete: names containing what was typed, those starting with it first. The topics
# table holds one row per topic, so filtering it is cheap even at a million stories.
_TOPICS_MATCHING = (
    "SELECT name, story_count FROM topics WHERE story_count > 0 AND key LIKE ? ESCAPE '\\'"
    " ORDER BY key NOT LIKE ? ESCAPE '\\', story_count DESC, name COLLATE NOCASE, id LIMIT ?"
)
# The first half checks that the linked story is stored; in the second the linking side always
# is (its links are deleted with it).
_LINKED = (
    "SELECT l.story_id, l.linked_id FROM story_links AS l"
    " WHERE l.story_id IN (SELECT value FROM json_each(?))"
    " AND l.linked_id <> l.story_id"
    " AND EXISTS (SELECT 1 FROM stories WHERE id = l.linked_id)"
    " UNION"
    " SELECT l.linked_id, l.story_id FROM story_links AS l"
    " WHERE l.linked_id IN (SELECT value FROM json_each(?))"
    " AND l.linked_id <> l.story_id"
)


class StoriesMixin(SqliteBase):
    """The StoryReader role on SQLite."""

    async def latest(
        self,
        limit: int,
        *,
        offset: int = 0,
        topic: str | None = None,
        query: str | None = None,
    ) -> list[Story]:
        statement = _latest_statement(limit, offset, topic, query)
        if statement is None:
            return []
        rows = await self._read(*statement, searching=query is not None)
        return [story_from_row(row) for row in rows]

    async def explain_latest(
        self, *, topic: str | None = None, query: str | None = None
    ) -> list[str]:
        """The query plan of `latest` with these filters, one line per step (tests, diagnosis)."""
        statement = _latest_statement(10, 0, topic, query)
        if statement is None:
            return []
        sql, params = statement
        rows = await self._read("EXPLAIN QUERY PLAN " + sql, params)
        return [row[3] for row in rows]

    async def story(self, story_id: int) -> Story | None:
        rows = await self._read(_STORY, (story_id,))
        return story_from_row(rows[0]) if rows else None

    async def stories_by_id(self, story_ids: Sequence[int]) -> dict[int, Story]:
        if not story_ids:
            return {}
        rows = await self._read(_STORIES_BY_ID, (to_json(sorted(set(story_ids))),))
        stories = (story_from_row(row) for row in rows)
        return {story.id: story for story in stories}

    async def story_count(self) -> int:
        rows = await self._read(_STORY_COUNT, ())
        return int(rows[0][0])

    async def topics(self, *, matching: str = "", limit: int | None = None) -> list[TopicCount]:
        if matching:
            key = _escape_like(topic_key(matching))
            params: tuple[Any, ...] = (f"%{key}%", f"{key}%", -1 if limit is None else limit)
            rows = await self._read(_TOPICS_MATCHING, params)
        else:
            rows = await self._read(_TOPICS + " LIMIT ?", (-1 if limit is None else limit,))
        return [TopicCount(name, count) for name, count in rows]

    async def topic(self, name: str) -> TopicCount | None:
        rows = await self._read(_TOPIC, (topic_key(name),))
        return TopicCount(rows[0][0], rows[0][1]) if rows else None

    async def linked_stories(self, story_ids: Sequence[int]) -> dict[int, set[int]]:
        if not story_ids:
            return {}
        ids = to_json(sorted(set(story_ids)))
        linked: dict[int, set[int]] = {}
        for story_id, other in await self._read(_LINKED, (ids, ids)):
            linked.setdefault(story_id, set()).add(other)
        return linked


def _latest_statement(
    limit: int, offset: int, topic: str | None, query: str | None
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of one latest() call, or None when it cannot match anything."""
    if limit <= 0:
        return None
    offset = max(offset, 0)
    match = None
    if query is not None:
        match = _match_expression(query)
        if match is None:
            return None
    if topic is not None:
        key = topic_key(topic)
        if match is None:
            return _LATEST_ON_TOPIC, (key, limit, offset)
        return _LATEST_ON_TOPIC_MATCHING, (key, match, limit, offset)
    if match is not None:
        return _LATEST_MATCHING, (match, limit, offset)
    return _LATEST, (limit, offset)


def _match_expression(query: str) -> str | None:
    """An FTS5 query requiring every word of `query` as a word prefix; None without words.

    Each word is a quoted string, so FTS5 operators typed by the user (AND, NEAR, *, ^) are
    plain words; a word cannot contain a double quote, so it cannot close its quotes.
    """
    words = _WORD.findall(query)
    if not words:
        return None
    return " AND ".join(f'"{word}"*' for word in words)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
