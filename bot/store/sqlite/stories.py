"""Reading stories and topics: /news pages, word search, topic lists and autocomplete.

The schema (migrations/0001_initial.sql) is built so that every read the bot makes walks an
index in the order it returns rows, without sorting, at a million stories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import Story, TopicCount, topic_key
from bot.search_query import RELEVANCE_WINDOW, Order, Query, to_fts5
from bot.store.codec import STORY_COLUMNS, story_from_row, to_json
from bot.store.sqlite.connection import SqliteBase

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
# Relevance: the newest RELEVANCE_WINDOW matches, walked as above, then ranked by bm25 (lower
# is better), newest first among equals.
_MATCHES = (
    "SELECT stories_fts.rowid AS search_key, bm25(stories_fts) AS score FROM stories_fts"
    " WHERE stories_fts MATCH ? ORDER BY stories_fts.rowid DESC LIMIT ?"
)
_MATCHES_ON_TOPIC = (
    "SELECT stories_fts.rowid AS search_key, bm25(stories_fts) AS score FROM stories_fts"
    " CROSS JOIN stories AS s INDEXED BY stories_by_search_key"
    " ON s.search_key = stories_fts.rowid"
    " CROSS JOIN story_topics AS st"
    " ON st.topic_id = (SELECT id FROM topics WHERE key = ?)"
    " AND st.published_at = s.published_at AND st.story_id = s.id"
    " WHERE stories_fts MATCH ? ORDER BY stories_fts.rowid DESC LIMIT ?"
)
_RANKED = (
    " CROSS JOIN stories AS s INDEXED BY stories_by_search_key ON s.search_key = m.search_key"
    " ORDER BY m.score, m.search_key DESC LIMIT ? OFFSET ?"
)
_MOST_RELEVANT = "SELECT " + STORY_COLUMNS + " FROM (" + _MATCHES + ") AS m" + _RANKED
_MOST_RELEVANT_ON_TOPIC = (
    "SELECT " + STORY_COLUMNS + " FROM (" + _MATCHES_ON_TOPIC + ") AS m" + _RANKED
)
_COUNT_MATCHING = (
    "SELECT count(*) FROM (SELECT 1 FROM stories_fts WHERE stories_fts MATCH ?"
    " ORDER BY stories_fts.rowid DESC LIMIT ?)"
)
_COUNT_ON_TOPIC_MATCHING = "SELECT count(*) FROM (" + _MATCHES_ON_TOPIC + ")"
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
        query: Query | None = None,
        order: Order = Order.NEWEST,
    ) -> list[Story]:
        statement = _latest_statement(limit, offset, topic, query, order)
        if statement is None:
            return []
        rows = await self._read(*statement, searching=query is not None)
        return [story_from_row(row) for row in rows]

    async def count_matching(self, query: Query, *, topic: str | None = None, cap: int) -> int:
        match = to_fts5(query)
        if match is None or cap < 0:
            return 0
        params: tuple[Any, ...]
        if topic is None:
            sql, params = _COUNT_MATCHING, (match, cap + 1)
        else:
            sql, params = _COUNT_ON_TOPIC_MATCHING, (topic_key(topic), match, cap + 1)
        rows = await self._read(sql, params, searching=True)
        return int(rows[0][0])

    async def explain_latest(
        self,
        *,
        topic: str | None = None,
        query: Query | None = None,
        order: Order = Order.NEWEST,
    ) -> list[str]:
        """The query plan of `latest` with these filters, one line per step (tests, diagnosis)."""
        statement = _latest_statement(10, 0, topic, query, order)
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
    limit: int, offset: int, topic: str | None, query: Query | None, order: Order
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of one latest() call, or None when it cannot match anything."""
    if limit <= 0:
        return None
    offset = max(offset, 0)
    match = None
    if query is not None:
        match = to_fts5(query)
        if match is None:
            return None
    key = topic_key(topic) if topic is not None else None
    if match is None:
        if key is None:
            return _LATEST, (limit, offset)
        return _LATEST_ON_TOPIC, (key, limit, offset)
    if order is Order.RELEVANCE:
        if key is None:
            return _MOST_RELEVANT, (match, RELEVANCE_WINDOW, limit, offset)
        return _MOST_RELEVANT_ON_TOPIC, (key, match, RELEVANCE_WINDOW, limit, offset)
    if key is None:
        return _LATEST_MATCHING, (match, limit, offset)
    return _LATEST_ON_TOPIC_MATCHING, (key, match, limit, offset)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
