"""Reading stories and topics: /news pages, word search, topic lists and autocomplete.

The schema (migrations/0001_initial.sql) is built so that every read the bot makes walks an
index in the order it returns rows, without sorting, at a million stories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import Story, TopicCount, topic_key
from bot.search_query import Order, Query, to_fts5
from bot.store.codec import STORY_COLUMNS, story_from_row, to_json
from bot.store.sqlite import search
from bot.store.sqlite.connection import SqliteBase
from bot.store.sqlite.search_terms import expansions

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
        if query is not None and not query.has_terms:
            query = None  # a topic alone: the topic's stories, newest first
        statement = await self._latest_statement(limit, offset, topic, query, order)
        if statement is None:
            return []
        rows = await self._read(*statement, searching=query is not None)
        return [story_from_row(row) for row in rows]

    async def count_matching(self, query: Query, *, topic: str | None = None, cap: int) -> int:
        match = await self._match(query)
        if match is None or cap < 0:
            return 0
        key = topic_key(topic) if topic is not None else None
        probed = key is not None and await self._probe_topic(match, key, cap + 1)
        rows = await self._read(*search.count_statement(match, key, cap, probed), searching=True)
        return int(rows[0][0])

    async def explain_latest(
        self,
        *,
        topic: str | None = None,
        query: Query | None = None,
        order: Order = Order.NEWEST,
        limit: int = 10,
    ) -> list[str]:
        """The query plan of `latest` with these filters, one line per step (tests, diagnosis)."""
        statement = await self._latest_statement(limit, 0, topic, query, order)
        if statement is None:
            return []
        sql, params = statement
        rows = await self._read("EXPLAIN QUERY PLAN " + sql, params)
        return [row[3] for row in rows]

    async def _latest_statement(
        self, limit: int, offset: int, topic: str | None, query: Query | None, order: Order
    ) -> tuple[str, tuple[Any, ...]] | None:
        """The SQL and parameters of one latest() call, or None when it cannot match anything."""
        if limit <= 0:
            return None
        offset = max(offset, 0)
        key = topic_key(topic) if topic is not None else None
        if query is None:
            if key is None:
                return _LATEST, (limit, offset)
            return _LATEST_ON_TOPIC, (key, limit, offset)
        match = await self._match(query)
        if match is None:
            return None
        probed = (
            key is not None
            and order is Order.NEWEST
            and await self._probe_topic(match, key, limit + offset)
        )
        return search.page_statement(match, key, order, limit, offset, probed)

    async def _match(self, query: Query) -> str | None:
        """The FTS5 expression of `query`, each prefix asked for as the words it stands for."""
        if not query.has_terms:
            return None

        async def read(sql: str, params: Sequence[Any]) -> list[Any]:
            return await self._read(sql, params, searching=True)

        return to_fts5(query, await expansions(read, query))

    async def _probe_topic(self, match: str, key: str, wanted: int) -> bool:
        """Whether a search on this topic walks the topic's stories (search.probe_topic)."""
        params = (match, search.SAMPLE, key)
        rows = await self._read(search.TOPIC_SEARCH_FIGURES, params, searching=True)
        matches, topic_stories, stories = rows[0]
        figures = search.TopicSearchFigures(matches, topic_stories or 0, int(stories))
        return search.probe_topic(figures, wanted)

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


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
