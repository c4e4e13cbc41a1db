"""The contract every store backend keeps for daily digests: settings, deliveries and the stories
a channel has not received yet (the ledger's is in test_contract_ledger.py). Runs against each
backend (see conftest.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta, timezone

import pytest

from bot.store.base import Store, StoreError
from tests.store.helpers import (
    CHANNEL,
    GUILD,
    deliver,
    minutes,
    nth,
    reload,
    settings,
    story_at,
)

OTHER_GUILD = 1_100_000_000_000_000_002
OTHER_CHANNEL = 1_200_000_000_000_000_002


async def test_digest_settings_read_back_equal(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    full = settings(
        topics=("Computer Vision", "AI"),
        count=8,
        enabled=False,
        disabled_reason="missing access to #news",
        # Any offset: read back as the same instant in UTC.
        effective_from=datetime(2024, 6, 3, 9, 15, 42, tzinfo=plus_two),
    )
    bare = settings(OTHER_GUILD, local_time=time(0, 0), timezone="UTC")
    await store.save_digest_settings(full)
    await store.save_digest_settings(bare)

    stored = await store.digest_settings(GUILD)
    assert stored == full
    assert stored is not None and stored.effective_from.tzinfo == UTC
    assert stored.effective_from == datetime(2024, 6, 3, 7, 15, 42, tzinfo=UTC)
    assert await store.digest_settings(OTHER_GUILD) == bare
    assert await store.digest_settings(12345) is None


async def test_a_servers_maximum_age_reads_back_as_set_default_or_no_limit(
    store: Store,
) -> None:
    for max_age in (timedelta(hours=24), timedelta(0), None):
        await store.save_digest_settings(settings(max_age=max_age))
        stored = await store.digest_settings(GUILD)
        assert stored is not None and stored.max_age == max_age


async def test_saving_digest_settings_again_replaces_them(store: Store) -> None:
    await store.save_digest_settings(settings(enabled=False, disabled_reason="gone"))
    replaced = settings(channel_id=OTHER_CHANNEL, local_time=time(18, 5), topics=("Space",))
    await store.save_digest_settings(replaced)

    assert await store.digest_settings(GUILD) == replaced


async def test_disabling_a_digest_keeps_its_settings(store: Store) -> None:
    kept = settings(topics=("AI",), count=3)
    await store.save_digest_settings(kept)

    await store.disable_digest(GUILD, "unknown channel")
    assert await store.digest_settings(GUILD) == dataclasses.replace(
        kept, enabled=False, disabled_reason="unknown channel"
    )
    await store.disable_digest(GUILD, None)
    assert await store.digest_settings(GUILD) == dataclasses.replace(kept, enabled=False)
    await store.disable_digest(12345, None)  # no digest there: nothing to do
    assert await store.digest_settings(12345) is None


async def test_all_digest_settings_are_the_enabled_ones(store: Store) -> None:
    enabled = settings(OTHER_GUILD)
    await store.save_digest_settings(settings())
    await store.save_digest_settings(enabled)
    await store.disable_digest(GUILD, None)

    assert await store.all_digest_settings() == [enabled]


async def test_invalid_digest_settings_are_refused_in_one_line(store: Store) -> None:
    with pytest.raises(StoreError, match="CHECK constraint failed") as refused:
        await store.save_digest_settings(settings(count=0))
    assert "\n" not in str(refused.value)
    assert await store.digest_settings(GUILD) is None


async def test_undelivered_stories_are_newest_first_and_limited(store: Store) -> None:
    tied = [story_at(n, minutes=50) for n in (10, 11, 12)]
    await reload(store, [story_at(n) for n in range(1, 6)] + tied)

    undelivered = await store.undelivered_stories(CHANNEL, (), 5)
    tied_by_id = sorted(tied, key=lambda story: story.id, reverse=True)
    assert undelivered == [*tied_by_id, story_at(5), story_at(4)]
    assert minutes(await store.undelivered_stories(CHANNEL, (), 100)) == [50] * 3 + [5, 4, 3, 2, 1]
    assert await store.undelivered_stories(CHANNEL, (), 0) == []


async def test_undelivered_stories_skip_those_delivered_to_that_channel_only(
    store: Store,
) -> None:
    await reload(store, [story_at(n) for n in range(1, 7)])
    await deliver(store, CHANNEL, [6, 4, 2])
    await deliver(store, OTHER_CHANNEL, [5])

    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [5, 3, 1]
    assert minutes(await store.undelivered_stories(CHANNEL, (), 2)) == [5, 3]
    assert minutes(await store.undelivered_stories(OTHER_CHANNEL, (), 10)) == [6, 4, 3, 2, 1]


async def test_undelivered_stories_on_a_topic_ignore_case_and_spacing(
    store: Store,
) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("Computer Vision",)),
            story_at(2, topics=("AI",)),
            story_at(3, topics=("computer vision", "AI")),
            story_at(4, topics=("Space",)),
        ],
    )
    await deliver(store, CHANNEL, [1])

    assert minutes(await store.undelivered_stories(CHANNEL, [" COMPUTER   vision"], 10)) == [3]
    assert minutes(await store.undelivered_stories(OTHER_CHANNEL, ["ai"], 10)) == [3, 2]
    assert await store.undelivered_stories(CHANNEL, ["Robotics"], 10) == []
    assert await store.undelivered_stories(CHANNEL, ["  "], 10) == []


async def test_undelivered_stories_on_several_topics_list_each_story_once(
    store: Store,
) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("AI", "Space")),
            story_at(2, topics=("Space",)),
            story_at(3, topics=("AI", "Space", "Climate")),
            story_at(4, topics=("Biology",)),
            story_at(5, topics=("AI",)),
            story_at(6, topics=("Climate",)),
        ],
    )
    await deliver(store, CHANNEL, [5])

    both = ["space", "AI", "Space", "robotics"]
    assert minutes(await store.undelivered_stories(CHANNEL, both, 10)) == [3, 2, 1]
    assert minutes(await store.undelivered_stories(CHANNEL, both, 2)) == [3, 2]
    three = ("AI", "Space", "Climate")
    assert minutes(await store.undelivered_stories(OTHER_CHANNEL, three, 10)) == [6, 5, 3, 2, 1]


async def test_stories_by_id_returns_the_stored_ones(store: Store) -> None:
    await reload(store, [story_at(n) for n in range(1, 4)])

    found = await store.stories_by_id([nth(3), nth(1), nth(99), nth(3)])
    assert found == {nth(3): story_at(3), nth(1): story_at(1)}
    assert await store.stories_by_id([]) == {}
