"""Word search on SQLite: the statements of a search, and which of them a search takes.

The search index's rowid is stories.search_key (migrations/0010), which sorts as
(published_at, id) do, so FTS5 serves `ORDER BY rowid DESC` itself, match by match: a newest
first page reads only what it returns. Each prefix is asked for as the words it stands for
(search_terms.py), which FTS5 walks the same way. CROSS JOIN keeps the index the outer loop:
with ANALYZE statistics the planner would rather start from the topic (or the stories) and
sort every match.

A search on a topic has two ways to a page: walk the words' matches and keep those on the
topic (cheap per match, but a common word on a rare topic walks most of its matches), or walk
the topic's stories and ask the index about each (dear per story, but a rare topic has few).
`probe_topic` chooses from what the search would cost each way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.search_query import RELEVANCE_WINDOW, Order
from bot.store.codec import STORY_COLUMNS
from bot.store.sqlite.seeds import SLOTS_PER_SECOND

# A search key's high part is its publication second: `key >> _SLOT_BITS` (a shift floors, as
# the division of a key before 1970 would not).
_SLOT_BITS = SLOTS_PER_SECOND.bit_length() - 1
assert 1 << _SLOT_BITS == SLOTS_PER_SECOND, "search keys leave a power of two to each second"

_TOPIC_ID = "(SELECT id FROM topics WHERE key = ?)"
_STORY_OF_MATCH = (
    " CROSS JOIN stories AS s INDEXED BY stories_by_search_key ON s.search_key = stories_fts.rowid"
)
# Whether a match is on the topic, from two index entries: the story's id from the search key's
# index and its topic row from story_topics_by_story, the publication second being the search
# key's high part. Reading the stories row for its published_at cost three times as much.
_MATCH_ON_TOPIC = (
    _STORY_OF_MATCH + " CROSS JOIN story_topics AS st ON st.topic_id = " + _TOPIC_ID
    + f" AND st.published_at = stories_fts.rowid >> {_SLOT_BITS} AND st.story_id = s.id"
)  # fmt: skip
_NEWEST_MATCHES = " WHERE stories_fts MATCH ? ORDER BY stories_fts.rowid DESC LIMIT ?"
# The other way for a topic: its stories newest first (its story_topics range is in that
# order), each asked of the index by its search key.
_TOPIC_STORIES_MATCHING = (
    " FROM story_topics AS st CROSS JOIN stories AS s ON s.id = st.story_id"
    " WHERE st.topic_id = " + _TOPIC_ID + " AND EXISTS (SELECT 1 FROM stories_fts"
    " WHERE stories_fts MATCH ? AND stories_fts.rowid = s.search_key)"
    " ORDER BY st.published_at DESC, st.story_id DESC LIMIT ?"
)

NEWEST = "SELECT " + STORY_COLUMNS + " FROM stories_fts" + _STORY_OF_MATCH + _NEWEST_MATCHES
NEWEST_ON_TOPIC = (
    "SELECT " + STORY_COLUMNS + " FROM stories_fts" + _MATCH_ON_TOPIC + _NEWEST_MATCHES
)
NEWEST_ON_TOPIC_PROBED = "SELECT " + STORY_COLUMNS + _TOPIC_STORIES_MATCHING

COUNT = "SELECT count(*) FROM (SELECT 1 FROM stories_fts" + _NEWEST_MATCHES + ")"
COUNT_ON_TOPIC = (
    "SELECT count(*) FROM (SELECT 1 FROM stories_fts" + _MATCH_ON_TOPIC + _NEWEST_MATCHES + ")"
)
COUNT_ON_TOPIC_PROBED = "SELECT count(*) FROM (SELECT 1" + _TOPIC_STORIES_MATCHING + ")"

# Relevance: bm25 over the newest RELEVANCE_WINDOW matches (lower is better), a word in the
# title counting twice one in the excerpt; newest first among equals. bm25 also counts, once
# per search, the stories holding each word (its rarity), which for a word most stories hold
# is most of the cost. On a topic, always the walk: bm25 counts again for every probe.
_SCORED = (
    "SELECT stories_fts.rowid AS search_key, bm25(stories_fts, 2.0, 1.0) AS score FROM stories_fts"
)
_RANKED = (
    " CROSS JOIN stories AS s INDEXED BY stories_by_search_key ON s.search_key = m.search_key"
    " ORDER BY m.score, m.search_key DESC LIMIT ? OFFSET ?"
)
MOST_RELEVANT = (
    "SELECT " + STORY_COLUMNS + " FROM (" + _SCORED + _NEWEST_MATCHES + ") AS m" + _RANKED
)
MOST_RELEVANT_ON_TOPIC = (
    "SELECT "
    + STORY_COLUMNS
    + " FROM ("
    + _SCORED
    + _MATCH_ON_TOPIC
    + _NEWEST_MATCHES
    + ") AS m"
    + _RANKED
)

# What probe_topic weighs: the matches counted up to SAMPLE (cheap: FTS5 steps through a
# doclist, ~0.15 µs a match), the topic's stories and all stories.
SAMPLE = 2048
TOPIC_SEARCH_FIGURES = (
    "SELECT (SELECT count(*) FROM (SELECT 1 FROM stories_fts" + _NEWEST_MATCHES + ")),"
    " (SELECT story_count FROM topics WHERE key = ?),"
    " (SELECT value FROM meta WHERE key = 'story_count')"
)
# Costs in microseconds, measured on the million-story database: one step of the walk (the next
# match and its two index lookups) and one probe (an FTS5 query for one story).
_WALK_STEP = 2.0
_PROBE = 30.0


@dataclass(frozen=True, slots=True)
class TopicSearchFigures:
    matches: int  # counted up to SAMPLE
    topic_stories: int
    stories: int


def probe_topic(figures: TopicSearchFigures, wanted: int) -> bool:
    """Whether to find the first `wanted` matches on a topic by asking the index about each of
    the topic's stories rather than by walking the matches.

    The expected steps of each way take words and topics to be independent: to find `wanted`
    matches on a topic holding a share p of all stories, the walk takes wanted / p matches (at
    most all of them), the probes wanted / q of the topic's stories, q being the words' share.
    A word with fewer than SAMPLE matches is always walked: that is cheap whatever the topic.
    """
    if figures.matches < SAMPLE or figures.topic_stories <= 0 or figures.stories <= 0:
        return False
    # More than SAMPLE matches: SAMPLE is their lower bound, so neither way is overrated.
    walk = min(figures.stories, wanted * figures.stories / figures.topic_stories) * _WALK_STEP
    probes = min(figures.topic_stories, wanted * figures.stories / figures.matches) * _PROBE
    return probes < walk


def page_statement(
    match: str, topic_key: str | None, order: Order, limit: int, offset: int, probed: bool
) -> tuple[str, tuple[Any, ...]]:
    """The statement of a page of a search (`probed`: on a topic, by probe_topic's way)."""
    page = (limit, offset)
    if order is Order.RELEVANCE:
        if topic_key is None:
            return MOST_RELEVANT, (match, RELEVANCE_WINDOW, limit, offset)
        return MOST_RELEVANT_ON_TOPIC, (topic_key, match, RELEVANCE_WINDOW, limit, offset)
    if topic_key is None:
        return NEWEST + " OFFSET ?", (match, *page)
    if probed:
        return NEWEST_ON_TOPIC_PROBED + " OFFSET ?", (topic_key, match, *page)
    return NEWEST_ON_TOPIC + " OFFSET ?", (topic_key, match, *page)


def count_statement(
    match: str, topic_key: str | None, cap: int, probed: bool
) -> tuple[str, tuple[Any, ...]]:
    if topic_key is None:
        return COUNT, (match, cap + 1)
    if probed:
        return COUNT_ON_TOPIC_PROBED, (topic_key, match, cap + 1)
    return COUNT_ON_TOPIC, (topic_key, match, cap + 1)
