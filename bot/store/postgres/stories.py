"""Reading stories and topics on PostgreSQL: /news pages, word search, topic lists and
autocomplete.

As on SQLite, /news newest first walks stories_by_published backwards and /news on a topic
walks that topic's range of the story_topics key, both stopped by the LIMIT.

A word search (a page, a relevance ranking or a count) is one statement. The newest
RECENT_WINDOW stories (of the topic) are read in order and tested: a common word fills the page
from them. When they do not hold the matches asked for, what they showed decides between walking
on newest first and taking the matches from the GIN index of the stories' `search` column
(_newest_matches). The planner cannot make that choice: it guesses how many stories a word
prefix matches from the most common words ANALYZE keeps, and with news text (a small vocabulary
repeated in every story, then rare names) it guesses 2% for any word it does not know. It then
walked the publication index for a rare or absent word, reading every story (5 s at a million),
where the GIN index answers in a millisecond, and sent a phrase of common words to the index,
which tested every story holding both words (4 s). So no plan step sees the words: each way's
plan is fixed, and only the rows the statement reads choose between them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.models import Story, TopicCount, topic_key
from bot.search_query import (
    RELEVANCE_WINDOW,
    Order,
    Query,
    Term,
    refold,
    to_tsquery,
    tokens_in,
)
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
# The newest stories (of the topic) a word search reads first: a sample of how common the
# search is, and the answer when they hold the page. A page needs six matches, so a word in 2.4%
# of the stories or more fills it from here, in well under a millisecond.
RECENT_WINDOW = 250
# What a match found through the word index costs against a story read and tested while walking
# newest first: the walk's stories are the newest (in shared buffers), a word's matches are
# spread over the whole table (a heap page each, from the OS cache).
_INDEX_MATCH_COST = 0.5
# Where a match's `search` column is carried along, for ranking (_newest_matches).
_WORDS = "/*words*/"
# The search's tsquery, parsed once per statement (a constant the plan cannot see: no plan
# step depends on the planner's guess of how common the words are).
_MATCHES = "(SELECT to_tsquery('simple', :q))"
_TOPIC_ID = "(SELECT id FROM topics WHERE key = :topic)"
# The window's stories, newest first, with their words. Each topic row looks its story up
# (LATERAL ... LIMIT 1: a lookup by key, never a join the planner could turn into a hash of
# every story).
_WINDOW = (
    "SELECT id, published_at, search FROM stories ORDER BY published_at DESC, id DESC LIMIT :window"
)
_TOPIC_WINDOW = (
    "SELECT st.story_id AS id, st.published_at, s.search FROM (SELECT story_id, published_at"
    " FROM story_topics WHERE topic_id = " + _TOPIC_ID
    + " ORDER BY published_at DESC, story_id DESC LIMIT :window) AS st"
    " CROSS JOIN LATERAL (SELECT search FROM stories WHERE id = st.story_id LIMIT 1) AS s"
)  # fmt: skip
# Walking on newest first, as far as it takes. ts_match_vq is what @@ calls: written as a
# function, the planner cannot take it to the word index, whatever it guesses of the word.
_WALK = (
    "SELECT id, published_at" + _WORDS + " FROM stories"
    " WHERE ts_match_vq(search, " + _MATCHES + ")"
    " ORDER BY published_at DESC, id DESC LIMIT :need"
)
_TOPIC_WALK = (
    "SELECT st.story_id AS id, st.published_at" + _WORDS + " FROM story_topics AS st"
    " CROSS JOIN LATERAL (SELECT s.search FROM stories AS s WHERE s.id = st.story_id"
    " AND ts_match_vq(s.search, " + _MATCHES + ") LIMIT 1) AS hit"
    " WHERE st.topic_id = " + _TOPIC_ID
    + " ORDER BY st.published_at DESC, st.story_id DESC LIMIT :need"
)  # fmt: skip
# MATERIALIZED: the matches come from the GIN index, whatever the planner guesses of their
# number, and only their (published_at, id) are sorted.
_INDEXED = (
    "WITH matching AS MATERIALIZED ("
    "SELECT id, published_at" + _WORDS + " FROM stories WHERE search @@ " + _MATCHES + ")"
    " SELECT id, published_at" + _WORDS + " FROM matching"
    " ORDER BY published_at DESC, id DESC LIMIT :need"
)
# Each match looks its topic row up by the whole key (LATERAL ... LIMIT 1 keeps the planner
# from hashing the topic's whole range instead: 80,000 rows for a common topic).
_TOPIC_INDEXED = (
    "WITH matching AS MATERIALIZED ("
    "SELECT id, published_at" + _WORDS + " FROM stories WHERE search @@ " + _MATCHES + "),"
    " topic AS (SELECT id FROM topics WHERE key = :topic)"
    " SELECT m.id, m.published_at" + _WORDS + " FROM matching AS m"
    " CROSS JOIN LATERAL (SELECT 1 FROM story_topics AS st WHERE st.topic_id = (TABLE topic)"
    " AND st.published_at = m.published_at AND st.story_id = m.id LIMIT 1) AS on_topic"
    " ORDER BY m.published_at DESC, m.id DESC LIMIT :need"
)


@functools.cache
def _newest_matches(on_topic: bool, loose: bool, words: bool) -> str:
    """WITH clauses ending in `matches`: the (id, published_at) of the newest :need stories
    (on :topic) matching :q, exactly, in one of three ways chosen by what the newest
    :window stories show, never by the planner's guess of a word's frequency:

    1. the window holds :need matches: they are the answer (common words);
    2. walking on newest first is cheaper than the word index: walk (a phrase of common words,
       a count or ranking that needs a thousand matches of a common word);
    3. else the word index's matches, sorted (rare, uncommon and absent words).

    The walk reads about :need / density stories, the index fetches every candidate it finds,
    about density x stories; both densities are taken from the window (the walk's from one
    match fewer than it held, so that a single lucky match does not send an uncommon word on a
    long walk). A candidate is a story with all of the search's words: what the index must
    fetch and test for a phrase (:loose, the search without its phrases' order).

    With `words`, each match carries its `search` column too, which every way has read
    already: ranking then needs no second read of a thousand stories."""
    window = _TOPIC_WINDOW if on_topic else _WINDOW
    hits = "(SELECT count(*) FROM recent)"
    candidates = (
        "(SELECT count(*) FROM (" + window + ") AS w"
        " WHERE ts_match_vq(w.search, (SELECT to_tsquery('simple', :loose))))"
        if loose
        else hits
    )
    walk = _TOPIC_WALK if on_topic else _WALK
    indexed = _TOPIC_INDEXED if on_topic else _INDEXED
    return (
        "WITH recent AS MATERIALIZED (SELECT id, published_at" + _WORDS + " FROM ("
        + window + ") AS w"
        " WHERE ts_match_vq(w.search, " + _MATCHES + ")"
        " ORDER BY w.published_at DESC, w.id DESC"
        " LIMIT :need),"
        " way AS MATERIALIZED (SELECT CASE WHEN " + hits + " >= :need THEN 1"
        " WHEN :need::float8 * :window / greatest(" + hits + " - 1, 0.25)"
        " <= " + candidates + "::float8 * (SELECT story_count FROM meta) / :window"
        " * " + str(_INDEX_MATCH_COST) + " THEN 2 ELSE 3 END AS way),"
        " matches AS MATERIALIZED ("
        "SELECT * FROM recent WHERE (TABLE way) = 1"
        " UNION ALL SELECT * FROM (" + walk + ") AS walked WHERE (TABLE way) = 2"
        " UNION ALL SELECT * FROM (" + indexed + ") AS indexed WHERE (TABLE way) = 3)"
    ).replace(_WORDS, ", search" if words else "")  # fmt: skip


# A page of the matches, newest first (:need is :limit + :offset); only its stories are read
# whole.
_PAGE_OF_MATCHES = (
    " SELECT " + STORY_COLUMNS + " FROM (SELECT id, published_at FROM matches"
    " ORDER BY published_at DESC, id DESC LIMIT :limit OFFSET :offset) AS m"
    " JOIN stories AS s ON s.id = m.id ORDER BY m.published_at DESC, m.id DESC"
)
# Relevance: the newest RELEVANCE_WINDOW matches (:need) ranked by ts_rank, newest first among
# equals; the page's stories are then read whole.
_RANKED_MATCHES = (
    " SELECT " + STORY_COLUMNS + " FROM (SELECT m.id, m.published_at,"
    " ts_rank(m.search, " + _MATCHES + ") AS rank FROM matches AS m"
    " ORDER BY rank DESC, m.published_at DESC, m.id DESC"
    " LIMIT :limit OFFSET :offset) AS m"
    " JOIN stories AS s ON s.id = m.id ORDER BY m.rank DESC, m.published_at DESC, m.id DESC"
)
# count_matching: :need is the cap and one more.
_COUNT_MATCHES = " SELECT count(*) FROM matches"
_PLACEHOLDER = re.compile(r":(q|loose|need|window|topic|limit|offset)\b")


# Written into the statement rather than passed: the plan is made for these sizes, the same
# whether PostgreSQL plans for each call's values or once for the statement (a generic plan,
# after five calls), and never sees the words (_MATCHES).
_LITERALS = ("need", "window")


def _numbered(sql: str, values: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """`sql` with its :name placeholders as $1, $2... (the sizes in _LITERALS as numbers) and
    the parameters in that order."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in _LITERALS:
            return str(int(values[name]))
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PLACEHOLDER.sub(number, sql), tuple(values[name] for name in order)


# Each token of a query folded by the function that folded the stored text.
_FOLD = "SELECT t, newsbot_search_text(t) FROM unnest($1::text[]) AS t"
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
        if query is None or not query.has_terms:
            # No query, or a topic alone: the (topic's) stories, newest first.
            statement = _latest_statement(limit, offset, topic)
        else:
            search = await self._search(query)
            statement = (
                None if search is None else _search_statement(search, limit, offset, topic, order)
            )
        if statement is None:
            return []
        return [story_from_row(row) for row in await self._read(*statement)]

    async def count_matching(self, query: Query, *, topic: str | None = None, cap: int) -> int:
        search = await self._search(query)
        if search is None or cap < 0:
            return 0
        sql, params = _count_statement(search, topic, cap)
        rows = await self._read(sql, params)
        return int(rows[0][0])

    async def explain_latest(
        self,
        *,
        topic: str | None = None,
        query: Query | None = None,
        order: Order = Order.NEWEST,
        limit: int = 10,
        analyze: bool = False,
    ) -> list[str]:
        """The query plan of `latest` with these filters, one line per step; with `analyze`, as
        run, with the rows each step gave and removed (tests, diagnosis)."""
        if query is None:
            statement = _latest_statement(limit, 0, topic)
        else:
            search = await self._search(query)
            statement = (
                None if search is None else _search_statement(search, limit, 0, topic, order)
            )
        return await self._explain(statement, analyze)

    async def explain_count(
        self, query: Query, *, topic: str | None = None, cap: int, analyze: bool = False
    ) -> list[str]:
        """The query plan of `count_matching`, as explain_latest gives it."""
        search = await self._search(query)
        statement = None if search is None else _count_statement(search, topic, cap)
        return await self._explain(statement, analyze)

    async def _explain(
        self, statement: tuple[str, tuple[Any, ...]] | None, analyze: bool
    ) -> list[str]:
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

    async def _search(self, query: Query) -> _Search | None:
        """The tsqueries of `query`, its tokens folded by the database's own function, the
        one the stored text went through, so that a query and the text it should match always
        agree; None when it can match nothing."""
        tokens = sorted(tokens_in(query))
        if not tokens:
            return None
        rows = await self._read(_FOLD, (tokens,))
        folded = refold(query, {token: tuple(str(text).split()) for token, text in rows})
        tsquery = to_tsquery(folded) if folded is not None else None
        if folded is None or tsquery is None:
            return None
        return _Search(tsquery, _loose_tsquery(folded))


@dataclass(frozen=True, slots=True)
class _Search:
    """A search as tsqueries: what it matches, and (for a search with a phrase) the looser one
    of its words in any order, the candidates the word index fetches and tests."""

    tsquery: str
    loose: str | None


def _loose_tsquery(query: Query) -> str | None:
    """None when every term is one token (the index's candidates are its matches), else a
    tsquery matching at least what the word index fetches for `query`: each required term's
    tokens anywhere in the story (a term among alternatives by its first token alone);
    exclusions left out."""
    if all(len(term.tokens) == 1 for term in query.terms):
        return None
    clauses: list[tuple[Term, ...]] = []
    for clause in query.clauses:
        if len(clause) == 1:
            clauses += [(Term((token,)),) for token in clause[0].tokens]
        else:
            clauses.append(tuple(Term(term.tokens[:1]) for term in clause))
    return to_tsquery(Query(tuple(clauses)))


def _latest_statement(
    limit: int, offset: int, topic: str | None
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of a page of latest() without words; None for no rows."""
    if limit <= 0:
        return None
    if topic is not None:
        return _LATEST_ON_TOPIC, (topic_key(topic), limit, max(offset, 0))
    return _LATEST, (limit, max(offset, 0))


def _search_statement(
    search: _Search, limit: int, offset: int, topic: str | None, order: Order
) -> tuple[str, tuple[Any, ...]] | None:
    """The one statement of a page of a word search; None for no rows."""
    if limit <= 0:
        return None
    offset = max(offset, 0)
    if order is Order.RELEVANCE:
        need, consumer = RELEVANCE_WINDOW, _RANKED_MATCHES
    else:
        need, consumer = limit + offset, _PAGE_OF_MATCHES
    return _matches_statement(consumer, search, topic, need, limit=limit, offset=offset)


def _count_statement(search: _Search, topic: str | None, cap: int) -> tuple[str, tuple[Any, ...]]:
    return _matches_statement(_COUNT_MATCHES, search, topic, cap + 1)


def _matches_statement(
    consumer: str, search: _Search, topic: str | None, need: int, **values: Any
) -> tuple[str, tuple[Any, ...]]:
    ranked = consumer is _RANKED_MATCHES
    sql = _newest_matches(topic is not None, search.loose is not None, ranked) + consumer
    values |= {"q": search.tsquery, "loose": search.loose, "need": need, "window": RECENT_WINDOW}
    if topic is not None:
        values["topic"] = topic_key(topic)
    return _numbered(sql, values)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
