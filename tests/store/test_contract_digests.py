"""The contract every store backend keeps for daily digests: settings, the ledger, deliveries and
the stories a channel has not received yet. Runs against each backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import pytest

from bot.store.base import Store, StoreError
from tests.store.helpers import (
    CHANNEL,
    DAY,
    GUILD,
    SCHEDULED,
    deliver,
    minutes,
    nth,
    reload,
    run_on,
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


async def test_a_date_is_claimed_once(store: Store) -> None:
    claimed = run_on()
    assert await store.add_digest_run(claimed) is True
    assert await store.add_digest_run(run_on(channel_id=OTHER_CHANNEL, plan=())) is False

    assert await store.last_digest_run(GUILD) == claimed
    # Another server, or another date, is a claim of its own.
    assert await store.add_digest_run(run_on(guild_id=OTHER_GUILD)) is True
    assert await store.add_digest_run(run_on(DAY + timedelta(days=1))) is True


async def test_a_digest_run_reads_back_equal(store: Store) -> None:
    plus_two = timezone(timedelta(hours=2))
    full = run_on(
        status="failed",
        scheduled_for=datetime(2024, 6, 3, 9, 0, tzinfo=plus_two),
        claimed_at=datetime(2024, 6, 3, 7, 0, 1, tzinfo=UTC),
        plan=((nth(1),), (nth(2), nth(3), nth(4)), ()),
        sent_messages=2,
        finished_at=datetime(2024, 6, 3, 7, 0, 9, tzinfo=UTC),
        detail="missing permissions in #news",
    )
    bare = run_on(DAY - timedelta(days=1), plan=())
    await store.add_digest_run(full)
    await store.add_digest_run(bare)

    runs = await store.digest_runs_since(DAY - timedelta(days=1))
    assert runs == {(GUILD, DAY): full, (GUILD, bare.local_date): bare}
    stored = runs[GUILD, DAY]
    assert stored.scheduled_for.tzinfo == UTC and stored.finished_at is not None
    assert stored.finished_at.tzinfo == UTC
    assert isinstance(stored.plan[1], tuple)


async def test_recording_a_message_counts_it_and_delivers_its_stories(
    store: Store,
) -> None:
    await reload(store, [story_at(n) for n in range(1, 6)])
    await store.add_digest_run(run_on())

    await store.record_digest_message(GUILD, DAY, 0, CHANNEL, [nth(1), nth(2)])
    run = await store.last_digest_run(GUILD)
    assert run is not None and run.sent_messages == 1 and run.status == "claimed"
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [5, 4, 3]

    # Resending a message after a crash records nothing twice.
    await store.record_digest_message(GUILD, DAY, 1, CHANNEL, [nth(3), nth(2)])
    await store.record_digest_message(GUILD, DAY, 1, CHANNEL, [nth(3)])
    run = await store.last_digest_run(GUILD)
    assert run is not None and run.sent_messages == 2
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [5, 4]


async def test_a_message_that_cannot_be_recorded_records_nothing(
    store: Store,
) -> None:
    await reload(store, [story_at(n) for n in range(1, 4)])
    await store.add_digest_run(run_on())

    # The second delivery violates NOT NULL after the count and the first were written.
    story_ids: list[Any] = [nth(1), None]
    with pytest.raises(StoreError, match="NOT NULL") as failed:
        await store.record_digest_message(GUILD, DAY, 0, CHANNEL, story_ids)
    assert "\n" not in str(failed.value)
    run = await store.last_digest_run(GUILD)
    assert run is not None and run.sent_messages == 0
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [3, 2, 1]

    # No ledger row: nothing is delivered either.
    with pytest.raises(StoreError, match="no digest run"):
        await store.record_digest_message(GUILD, DAY + timedelta(days=1), 0, CHANNEL, [nth(1)])
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [3, 2, 1]


async def test_finishing_a_run_sets_its_status_detail_and_time(store: Store) -> None:
    await store.add_digest_run(run_on())
    before = datetime.now(UTC).replace(microsecond=0)
    await store.finish_digest_run(GUILD, DAY, "failed", "Missing Access")
    after = datetime.now(UTC)

    run = await store.last_digest_run(GUILD)
    assert run is not None
    assert (run.status, run.detail) == ("failed", "Missing Access")
    assert run.finished_at is not None and before <= run.finished_at <= after
    assert run.plan == run_on().plan

    await store.finish_digest_run(GUILD, DAY, "sent")
    run = await store.last_digest_run(GUILD)
    assert run is not None and (run.status, run.detail) == ("sent", "")
    with pytest.raises(StoreError, match="no digest run"):
        await store.finish_digest_run(OTHER_GUILD, DAY, "sent")


async def test_digest_runs_since_a_date(store: Store) -> None:
    for days in range(-3, 2):
        await store.add_digest_run(run_on(DAY + timedelta(days=days)))
    await store.add_digest_run(run_on(DAY, guild_id=OTHER_GUILD))

    runs = await store.digest_runs_since(DAY)
    assert sorted(runs) == [
        (GUILD, DAY),
        (GUILD, DAY + timedelta(days=1)),
        (OTHER_GUILD, DAY),
    ]
    assert all(run.local_date == local_date for (_, local_date), run in runs.items())
    assert await store.digest_runs_since(DAY + timedelta(days=2)) == {}


async def test_last_digest_run_is_the_latest_date_of_that_server(store: Store) -> None:
    assert await store.last_digest_run(GUILD) is None
    for days in (2, 5, -1):
        await store.add_digest_run(run_on(DAY + timedelta(days=days)))
    await store.add_digest_run(run_on(DAY + timedelta(days=9), guild_id=OTHER_GUILD))

    last = await store.last_digest_run(GUILD)
    assert last is not None and last.local_date == DAY + timedelta(days=5)


async def test_runs_since_a_date_show_the_unfinished_ones_as_claimed(store: Store) -> None:
    await store.add_digest_run(run_on(DAY - timedelta(days=1)))
    await store.add_digest_run(run_on(DAY))
    await store.add_digest_run(run_on(DAY, guild_id=OTHER_GUILD))
    await store.add_digest_run(run_on(DAY + timedelta(days=1), status="empty", plan=()))
    await store.finish_digest_run(GUILD, DAY - timedelta(days=1), "sent")

    # What the poster does at each tick to find the runs a crash interrupted.
    runs = await store.digest_runs_since(DAY - timedelta(days=1))
    unfinished = [run for run in runs.values() if run.status == "claimed"]
    assert [(run.guild_id, run.local_date) for run in unfinished] == [
        (GUILD, DAY),
        (OTHER_GUILD, DAY),
    ]


async def test_an_outcome_is_refused_for_a_claimed_date(store: Store) -> None:
    await store.add_digest_run(run_on())
    finished_at = SCHEDULED + timedelta(seconds=3)
    skipped = run_on(status="skipped", plan=(), finished_at=finished_at, detail="late")

    assert await store.add_digest_run(skipped) is False
    last = await store.last_digest_run(GUILD)
    assert last is not None and last.status == "claimed"

    later = dataclasses.replace(skipped, local_date=DAY + timedelta(days=1))
    assert await store.add_digest_run(later) is True
    assert await store.last_digest_run(GUILD) == later
    assert await store.add_digest_run(run_on(later.local_date)) is False


@pytest.mark.parametrize("status", ["failed", "skipped", "empty"])
async def test_a_date_without_a_posted_digest_is_claimed_again_as_the_next_attempt(
    store: Store, status: str
) -> None:
    final = run_on(status=status, plan=(), sent_messages=1, finished_at=SCHEDULED, detail="x")
    await store.add_digest_run(final)
    again = run_on(claimed_at=SCHEDULED + timedelta(hours=3))

    # The scheduler's claim never takes over a row; /digest now's does, once.
    assert await store.add_digest_run(again) is False
    claimed = await store.reclaim_digest_run(again)
    assert claimed == dataclasses.replace(again, attempt=1)
    assert await store.reclaim_digest_run(again) is None
    assert await store.last_digest_run(GUILD) == claimed

    # After that attempt fails too, the next one is attempt 2.
    await store.finish_digest_run(GUILD, DAY, "failed", "still no access")
    third = await store.reclaim_digest_run(again)
    assert third is not None and third.attempt == 2


@pytest.mark.parametrize("status", ["sent", "claimed"])
async def test_a_date_posted_or_being_posted_is_never_claimed_again(
    store: Store, status: str
) -> None:
    await store.add_digest_run(run_on())
    if status == "sent":
        await store.finish_digest_run(GUILD, DAY, "sent", "3 stories in 1 message")

    assert await store.reclaim_digest_run(run_on(channel_id=OTHER_CHANNEL)) is None
    last = await store.last_digest_run(GUILD)
    assert last is not None and (last.status, last.channel_id, last.attempt) == (status, CHANNEL, 0)


async def test_racing_reclaims_of_a_failed_date_give_it_to_exactly_one(
    store: Store,
) -> None:
    await store.add_digest_run(run_on(status="failed", plan=(), finished_at=SCHEDULED))

    results = await asyncio.gather(*(store.reclaim_digest_run(run_on()) for _ in range(8)))

    assert [r.attempt for r in results if r is not None] == [1]


async def test_reclaiming_a_free_date_is_a_first_claim(store: Store) -> None:
    assert await store.reclaim_digest_run(run_on()) == run_on()


async def test_a_servers_runs_since_a_date_are_its_own(store: Store) -> None:
    for days in range(3):
        await store.add_digest_run(run_on(DAY + timedelta(days=days)))
    await store.add_digest_run(run_on(DAY + timedelta(days=2), guild_id=OTHER_GUILD))

    runs = await store.guild_digest_runs_since(GUILD, DAY + timedelta(days=1))

    assert list(runs) == [(GUILD, DAY + timedelta(days=1)), (GUILD, DAY + timedelta(days=2))]


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
