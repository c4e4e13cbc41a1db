"""The topic autocompletes' in-memory list (bot.topic_cache) answers what the store would:
the same topics in the same order for whatever is typed, on every backend; and a refresh
asked for after a reload brings the new topics."""

from __future__ import annotations

import pytest

from bot.store import Store
from bot.topic_cache import TopicCache
from tests.store.helpers import reload, story_at

TOPICS = {
    1: ("AI", "Computer Vision"),
    2: ("AI", "Space"),
    3: ("Robotics", "Computer Vision"),
    4: ("Food",),
    5: ("A_B 100%",),
    6: ("Visual Arts", "AI"),
}


@pytest.fixture
async def topical(store: Store) -> Store:
    await reload(store, [story_at(n, topics=topics) for n, topics in TOPICS.items()])
    return store


@pytest.mark.parametrize(
    "typed", ["", "a", "AI", "vis", " computer   VISION ", "i", "o", "_", "%", "zzz"]
)
@pytest.mark.parametrize("limit", [25, 2])
async def test_the_cache_offers_what_the_store_would(
    topical: Store, typed: str, limit: int
) -> None:
    cache = TopicCache(topical)

    assert await cache.matching(typed, limit) == await topical.topics(matching=typed, limit=limit)


async def test_a_refresh_after_a_reload_offers_its_new_topic(topical: Store) -> None:
    cache = TopicCache(topical)
    assert await cache.matching("volc", 25) == []

    await reload(topical, [story_at(7, topics=("Volcanoes",))])
    stale = await cache.matching("volc", 25)
    await cache.refresh()

    assert stale == []  # served from memory until refreshed
    assert [topic.name for topic in await cache.matching("volc", 25)] == ["Volcanoes"]
