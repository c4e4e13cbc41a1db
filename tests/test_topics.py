"""Topic names as people type them: one resolution for /news, /digest and the command line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import DatabaseSettings
from bot.reload import SeedReloader
from bot.store import Store, create_store
from bot.topics import (
    TwoTopics,
    UnknownTopic,
    resolve_search_topic,
    resolve_topic,
    suggest_topics,
)
from tests.helpers import SHIPPED_SEEDS


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = create_store(DatabaseSettings(tmp_path / "news.db"))
    await store.open()
    await SeedReloader(store, SHIPPED_SEEDS, workers=1).reload()
    try:
        yield store
    finally:
        await store.close()


async def test_a_topic_in_any_case_resolves_to_its_stored_spelling(store: Store) -> None:
    assert await resolve_topic(store, "computer vision") == "Computer Vision"
    assert await resolve_topic(store, "ai") == "AI"


async def test_unknown_topic_suggests_close_match(store: Store) -> None:
    with pytest.raises(UnknownTopic) as raised:
        await resolve_topic(store, "Computer Vison")

    assert raised.value.name == "Computer Vison"
    assert raised.value.suggestions == ["Computer Vision"]


async def test_unknown_topic_with_nothing_close_has_no_suggestions(store: Store) -> None:
    with pytest.raises(UnknownTopic) as raised:
        await resolve_topic(store, "Gardening")

    assert raised.value.suggestions == []


def test_suggestions_include_topics_containing_the_name_best_first() -> None:
    known = ["Space", "Spacecraft", "Computer Vision", "Sports"]

    assert suggest_topics("spac", known) == ["Space", "Spacecraft"]


async def test_a_search_takes_its_topic_from_the_option_or_from_its_words_alike(
    store: Store,
) -> None:
    assert await resolve_search_topic(store, "computer vision", None) == "Computer Vision"
    assert await resolve_search_topic(store, None, "COMPUTER VISION") == "Computer Vision"
    assert await resolve_search_topic(store, "ai", "AI") == "AI"
    assert await resolve_search_topic(store, None, None) is None
    with pytest.raises(UnknownTopic):
        await resolve_search_topic(store, None, "Computer Vison")


async def test_a_search_naming_two_different_topics_is_refused(store: Store) -> None:
    with pytest.raises(TwoTopics) as raised:
        await resolve_search_topic(store, "ai", "computer vision")

    assert (raised.value.option, raised.value.in_query) == ("AI", "Computer Vision")
