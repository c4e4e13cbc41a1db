"""Reading stories and topics on PostgreSQL: /news pages, word search, topic lists and
autocomplete.

As on SQLite, /news newest first walks stories_by_published backwards and /news on a topic
walks that topic's range of the story_topics key, both stopped by the LIMIT.

A word search is one statement of two parts. The newest RECENT_WINDOW stories (of the
topic) are read in order and filtered: a common word fills the page from them. Only when they
do not hold the page are the matches taken from the GIN index of the stories' `search` column
and sorted. The planner cannot choose between the two itself: it guesses how many stories a
word prefix matches from the most common words ANALYZE keeps, and with news text (a small
vocabulary repeated in every story, then rare names) it guesses 2% for any word it does not
know. It then walked the publication index for a rare or absent word, reading every story
(5 s at a million), where the GIN index answers in a millisecond. Neither part depends on that
guess: the first is bounded by its window, the second fetches only the matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.models import Story, TopicCount, topic_key
from bot.search_query import RELEVANCE_WINDOW, Order, Query, refold, to_tsquery, tokens_in
from bot.store.postgres.codec import STORY_COLUMNS, story_from_row
from bot.store.postgres.connection import PostgresBase

_LATEST = (
    "SELECT " + STORY_COLUMNS + " FROM stories AS s"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT $1 OFFSET $2"
)
_ON_TOPIC = (
    " FROM story_topics AS st JOIN stories AS s ON s.id = st.story_id"
    " WHERE st.topic_id = (SELECT id FROM topics WHERE key = $1)"
)
_LATEST_ON_TOPIC = (
    "SELECT " + STORY_COLUMNS + _ON_TOPIC
    + " ORDER BY st.published_at DESC, st.story_id DESC LIMIT $2 OFFSET $3"
)  # fmt: skip
# Stories a word search reads newest first before it asks the word index. A page needs six
# matches, so a word in 2.4% of the stories or more fills it from here, in well under a
# millisecond; the index then fetches and sorts every match of a rarer word. A larger window
# costs every rare or absent word more (at a million stories 500 cost twice as much) and spares
# only the words just below the line, whose matches the index sorts.
RECENT_WINDOW = 250
_RECENT_MATCHING = (
    "SELECT " + STORY_COLUMNS + " FROM (SELECT * FROM stories"
    " ORDER BY published_at DESC, id DESC LIMIT $4) AS s"
    " WHERE s.search @@ to_tsquery('simple', $1)"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT $2 OFFSET $3"
)
_RECENT_ON_TOPIC_MATCHING = (
    "SELECT " + STORY_COLUMNS + " FROM (SELECT story_id, published_at FROM story_topics"
    " WHERE topic_id = (SELECT id FROM topics WHERE key = $1)"
    " ORDER BY published_at DESC, story_id DESC LIMIT $5) AS st"
    " JOIN stories AS s ON s.id = st.story_id WHERE s.search @@ to_tsquery('simple', $2)"
    " ORDER BY st.published_at DESC, st.story_id DESC LIMIT $3 OFFSET $4"
)
# MATERIALIZED: the matches come from the GIN index, whatever the planner guesses of their
# number; only the page's stories are then read whole.
_PAGE_OF_MATCHES = " JOIN stories AS s ON s.id = m.id ORDER BY m.published_at DESC, m.id DESC"
_INDEXED_MATCHING = (
    "WITH matching AS MATERIALIZED ("
    "SELECT id, published_at FROM stories WHERE search @@ to_tsquery('simple', $1))"
    " SELECT " + STORY_COLUMNS + " FROM (SELECT id, published_at FROM matching"
    " ORDER BY published_at DESC, id DESC LIMIT $2 OFFSET $3) AS m" + _PAGE_OF_MATCHES
)
# Each match looks its topic row up by the whole key (LATERAL ... LIMIT 1 keeps the planner
# from hashing the topic's whole range instead: 80,000 rows for a common topic).
_INDEXED_ON_TOPIC_MATCHING = (
    "WITH matching AS MATERIALIZED ("
    "SELECT id, published_at FROM stories WHERE search @@ to_tsquery('simple', $2)),"
    " topic AS (SELECT id FROM topics WHERE key = $1)"
    " SELECT " + STORY_COLUMNS + " FROM (SELECT m.id, m.published_at FROM matching AS m"
    " CROSS JOIN LATERAL (SELECT 1 FROM story_topics AS st WHERE st.topic_id = (TABLE topic)"
    " AND st.published_at = m.published_at AND st.story_id = m.id LIMIT 1) AS on_topic"
    " ORDER BY m.published_at DESC, m.id DESC LIMIT $3 OFFSET $4) AS m" + _PAGE_OF_MATCHES
)


def _recent_else_indexed(recent: str, indexed: str, limit: str) -> str:
    """One statement (one round trip, one snapshot): the recent window's page when it holds a
    whole page, else the word index's (never computed when the window answered)."""
    return (
        "WITH recent AS MATERIALIZED (" + recent + ")"
        " SELECT * FROM recent WHERE (SELECT count(*) FROM recent) = " + limit
        + " UNION ALL SELECT * FROM (" + indexed + ") AS indexed"
        " WHERE (SELECT count(*) FROM recent) < " + limit
        + " ORDER BY published_at DESC, id DESC"
    )  # fmt: skip


_LATEST_MATCHING = _recent_else_indexed(_RECENT_MATCHING, _INDEXED_MATCHING, "$2")
_LATEST_ON_TOPIC_MATCHING = _recent_else_indexed(
    _RECENT_ON_TOPIC_MATCHING, _INDEXED_ON_TOPIC_MATCHING, "$3"
)
# Each token of a query folded by the function that folded the stored text.
_FOLD = "SELECT t, newsbot_search_text(t) FROM unnest($1::text[]) AS t"
# Relevance: the newest RELEVANCE_WINDOW matches (as the newest-first search finds them),
# ranked by ts_rank, newest first among equals.
_RANKED = (
    "SELECT " + STORY_COLUMNS + " FROM stories AS s WHERE s.id = ANY($1::bigint[])"
    " ORDER BY ts_rank(s.search, to_tsquery('simple', $2)) DESC,"
    " s.published_at DESC, s.id DESC LIMIT $3 OFFSET $4"
)
_STORY = "SELECT " + STORY_COLUMNS + " FROM stories AS s WHERE s.id = $1"
_STORIES_BY_ID = "SELECT " + STORY_COLUMNS + " FROM stories AS s WHERE s.id = ANY($1::bigint[])"
_STORY_COUNT = "SELECT story_count FROM meta"
# SQLite's NOCASE: ASCII case folded, then compared byte by byte.
_BY_COUNT_THEN_NAME = 'story_count DESC, lower(name) COLLATE "C", id'
_TOPICS = (
    "SELECT name, story_count FROM topics WHERE story_count > 0"
    " ORDER BY " + _BY_COUNT_THEN_NAME + " LIMIT $1"
)
_TOPIC = "SELECT name, story_count FROM topics WHERE key = $1 AND story_count > 0"
_TOPICS_MATCHING = (
    "SELECT name, story_count FROM topics WHERE story_count > 0 AND key LIKE $1 ESCAPE '\\'"
    " ORDER BY key NOT LIKE $2 ESCAPE '\\', " + _BY_COUNT_THEN_NAME + " LIMIT $3"
)
# The first half checks that the linked story is stored; in the second the linking side always
# is (its links are deleted with it).
_LINKED = (
    "SELECT l.story_id, l.linked_id FROM story_links AS l"
    " WHERE l.story_id = ANY($1::bigint[]) AND l.linked_id <> l.story_id"
    " AND EXISTS (SELECT 1 FROM stories WHERE id = l.linked_id)"
    " UNION"
    " SELECT l.linked_id, l.story_id FROM story_links AS l"
    " WHERE l.linked_id = ANY($1::bigint[]) AND l.linked_id <> l.story_id"
)


class StoriesMixin(PostgresBase):
    """The StoryReader role on PostgreSQL."""

    async def latest(
        self,
        limit: int,
        *,
        offset: int = 0,
        topic: str | None = None,
        query: Query | None = None,
        order: Order = Order.NEWEST,
    ) -> list[Story]:
        if query is not None and order is Order.RELEVANCE and limit > 0:
            tsquery = await self._tsquery(query)
            if tsquery is None:
                return []
            window = await self._latest_statement(RELEVANCE_WINDOW, 0, topic, tsquery)
            assert window is not None, "a window of matches has a limit"
            ids = [row["id"] for row in await self._read(*window)]
            rows = await self._read(_RANKED, (ids, tsquery, limit, max(offset, 0)))
            return [story_from_row(row) for row in rows]
        tsquery = await self._tsquery(query) if query is not None else None
        if query is not None and tsquery is None:
            return []
        statement = await self._latest_statement(limit, offset, topic, tsquery)
        if statement is None:
            return []
        return [story_from_row(row) for row in await self._read(*statement)]

    async def count_matching(self, query: Query, *, topic: str | None = None, cap: int) -> int:
        tsquery = await self._tsquery(query)
        if tsquery is None or cap < 0:
            return 0
        statement = await self._latest_statement(cap + 1, 0, topic, tsquery)
        assert statement is not None, "a count has a limit"
        return len(await self._read(*statement))

    async def explain_latest(
        self, *, topic: str | None = None, query: Query | None = None, analyze: bool = False
    ) -> list[str]:
        """The query plan of `latest` with these filters, one line per step; with `analyze`, as
        run, with the rows each step gave and removed (tests, diagnosis)."""
        tsquery = await self._tsquery(query) if query is not None else None
        if query is not None and tsquery is None:
            return []
        statement = await self._latest_statement(10, 0, topic, tsquery)
        if statement is None:
            return []
        sql, params = statement
        explain = "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " if analyze else "EXPLAIN "
        return [row[0] for row in await self._read(explain + sql, params)]

    async def story(self, story_id: int) -> Story | None:
        rows = await self._read(_STORY, (story_id,))
        return story_from_row(rows[0]) if rows else None

    async def stories_by_id(self, story_ids: Sequence[int]) -> dict[int, Story]:
        if not story_ids:
            return {}
        rows = await self._read(_STORIES_BY_ID, (sorted(set(story_ids)),))
        stories = (story_from_row(row) for row in rows)
        return {story.id: story for story in stories}

    async def story_count(self) -> int:
        rows = await self._read(_STORY_COUNT)
        return int(rows[0][0])

    async def topics(self, *, matching: str = "", limit: int | None = None) -> list[TopicCount]:
        if matching:
            key = _escape_like(topic_key(matching))
            rows = await self._read(_TOPICS_MATCHING, (f"%{key}%", f"{key}%", limit))
        else:
            rows = await self._read(_TOPICS, (limit,))
        return [TopicCount(name, count) for name, count in rows]

    async def topic(self, name: str) -> TopicCount | None:
        rows = await self._read(_TOPIC, (topic_key(name),))
        return TopicCount(rows[0][0], rows[0][1]) if rows else None

    async def linked_stories(self, story_ids: Sequence[int]) -> dict[int, set[int]]:
        if not story_ids:
            return {}
        linked: dict[int, set[int]] = {}
        for story_id, other in await self._read(_LINKED, (sorted(set(story_ids)),)):
            linked.setdefault(story_id, set()).add(other)
        return linked

    async def _latest_statement(
        self, limit: int, offset: int, topic: str | None, tsquery: str | None
    ) -> tuple[str, tuple[Any, ...]] | None:
        """The SQL and parameters of one latest() call, or None when it cannot match anything."""
        if limit <= 0:
            return None
        offset = max(offset, 0)
        if topic is not None:
            key = topic_key(topic)
            if tsquery is None:
                return _LATEST_ON_TOPIC, (key, limit, offset)
            return _LATEST_ON_TOPIC_MATCHING, (key, tsquery, limit, offset, RECENT_WINDOW)
        if tsquery is not None:
            return _LATEST_MATCHING, (tsquery, limit, offset, RECENT_WINDOW)
        return _LATEST, (limit, offset)

    async def _tsquery(self, query: Query) -> str | None:
        """The tsquery of `query`, its tokens folded by the database's own function, the one
        the stored text went through, so that a query and the text it should match always
        agree; None when it can match nothing."""
        tokens = sorted(tokens_in(query))
        if not tokens:
            return None
        rows = await self._read(_FOLD, (tokens,))
        folded = refold(query, {token: tuple(str(text).split()) for token, text in rows})
        return to_tsquery(folded) if folded is not None else None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
