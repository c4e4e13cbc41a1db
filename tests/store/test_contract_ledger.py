"""The contract every store backend keeps for the digest ledger: claims with their messages,
owners and leases, intent and outcome of each message, and finishing. Runs against each backend
(see conftest.py)."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.store.base import LeaseLost, Store, StoreError
from tests.store.helpers import (
    CHANNEL,
    DAY,
    GUILD,
    SCHEDULED,
    claim_by,
    minutes,
    nth,
    planned,
    reload,
    run_on,
    story_at,
)

OTHER_GUILD = 1_100_000_000_000_000_002
OTHER_CHANNEL = 1_200_000_000_000_000_002
LEASE = SCHEDULED + timedelta(minutes=3)
LATER = SCHEDULED + timedelta(minutes=10)


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
        owner="host:12:ab",
        lease_until=LEASE,
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


async def test_a_claim_keeps_its_messages_exactly_as_planned(store: Store) -> None:
    embeds = (
        {"title": "Daily news", "color": 3447003, "type": "rich"},
        {"title": "Ünïcode “quotes”", "footer": {"text": "Part 1 of 2 · digest 0a1b2c3d"}},
    )
    run = claim_by(store, messages=(planned(0, (), embeds=embeds), planned(1, (nth(3), nth(1)))))
    await store.add_digest_run(run)

    stored = await store.digest_run(GUILD, DAY)
    assert stored == run
    assert stored is not None and stored.messages[0].marker == "Part 1 of 2 · digest 0a1b2c3d"
    # Lists of runs leave the messages out: the scheduler reads many rows each minute.
    assert (await store.digest_runs_since(DAY))[GUILD, DAY] == dataclasses.replace(run, messages=())
    assert await store.digest_run(GUILD, DAY + timedelta(days=1)) is None


async def test_recording_a_message_counts_it_keeps_its_id_and_delivers_its_stories(
    store: Store,
) -> None:
    await reload(store, [story_at(n) for n in range(1, 6)])
    run = claim_by(store)
    await store.add_digest_run(run)

    await store.record_digest_message(run, 0, 555, SCHEDULED, LEASE)
    stored = await store.digest_run(GUILD, DAY)
    assert stored is not None and stored.sent_messages == 1 and stored.status == "claimed"
    assert (stored.messages[0].message_id, stored.messages[0].sent_at) == (555, SCHEDULED)
    assert stored.messages[1].message_id is None
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [5, 4, 3]

    await store.record_digest_message(run, 1, 556, SCHEDULED, LEASE)
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [5, 4]


async def test_only_the_next_message_is_recorded_and_only_once(store: Store) -> None:
    run = claim_by(store)
    await store.add_digest_run(run)

    with pytest.raises(LeaseLost, match="message 1 of the digest of server"):
        await store.record_digest_message(run, 1, 556, SCHEDULED, LEASE)
    await store.record_digest_message(run, 0, 555, SCHEDULED, LEASE)
    with pytest.raises(LeaseLost):
        await store.record_digest_message(run, 0, 999, SCHEDULED, LEASE)

    stored = await store.digest_run(GUILD, DAY)
    assert stored is not None and stored.sent_messages == 1
    assert stored.messages[0].message_id == 555


async def test_a_message_that_cannot_be_recorded_records_nothing(store: Store) -> None:
    await reload(store, [story_at(n) for n in range(1, 4)])
    # The second delivery violates NOT NULL after the count and the first were written.
    run = claim_by(store, messages=(planned(0, (nth(1), None)),))
    await store.add_digest_run(run)

    with pytest.raises(StoreError, match="NOT NULL") as failed:
        await store.record_digest_message(run, 0, 555, SCHEDULED, LEASE)
    assert "\n" not in str(failed.value)
    stored = await store.digest_run(GUILD, DAY)
    assert stored is not None and stored.sent_messages == 0
    assert stored.messages[0].message_id is None
    assert minutes(await store.undelivered_stories(CHANNEL, (), 10)) == [3, 2, 1]


async def test_the_first_try_of_a_message_is_kept_until_a_new_window_starts(
    store: Store,
) -> None:
    run = claim_by(store)
    await store.add_digest_run(run)
    first, second, third = (SCHEDULED + timedelta(minutes=n) for n in (1, 2, 9))

    await store.begin_digest_message(run, 0, first, LEASE, restart=False)
    await store.begin_digest_message(run, 0, second, LEASE, restart=False)
    stored = await store.digest_run(GUILD, DAY)
    assert stored is not None and stored.messages[0].attempted_at == first

    await store.begin_digest_message(run, 0, third, LATER, restart=True)
    stored = await store.digest_run(GUILD, DAY)
    assert stored is not None and stored.messages[0].attempted_at == third
    assert stored.lease_until == LATER  # each step renews the claim
    with pytest.raises(LeaseLost):
        await store.begin_digest_message(run, 1, third, LATER, restart=False)


async def test_another_process_cannot_advance_or_finish_a_run_it_does_not_hold(
    store: Store, rival: Store
) -> None:
    run = claim_by(store)
    await store.add_digest_run(run)
    stolen = dataclasses.replace(run, owner=rival.owner)

    with pytest.raises(LeaseLost):
        await rival.begin_digest_message(stolen, 0, SCHEDULED, LEASE, restart=True)
    with pytest.raises(LeaseLost):
        await rival.record_digest_message(stolen, 0, 555, SCHEDULED, LEASE)
    with pytest.raises(LeaseLost):
        await rival.finish_digest_run(GUILD, DAY, "sent", "", owner=rival.owner)

    stored = await store.digest_run(GUILD, DAY)
    assert stored is not None and stored == run


async def test_a_run_is_resumed_by_its_owner_or_after_its_lease_expired(
    store: Store, rival: Store
) -> None:
    run = claim_by(store)
    await store.add_digest_run(run)

    # Its owner takes it back at any time, renewing the lease.
    taken = await store.take_digest_run(GUILD, DAY, LATER, SCHEDULED + timedelta(minutes=1))
    assert taken == dataclasses.replace(run, lease_until=LATER)
    # Another process only once the lease has expired; then the old owner is out.
    assert await rival.take_digest_run(GUILD, DAY, LATER, LATER - timedelta(seconds=1)) is None
    taken = await rival.take_digest_run(GUILD, DAY, LATER + timedelta(minutes=3), LATER)
    assert taken is not None and taken.owner == rival.owner and taken.messages == run.messages
    with pytest.raises(LeaseLost):
        await store.record_digest_message(run, 0, 555, SCHEDULED, LEASE)
    await rival.record_digest_message(taken, 0, 555, LATER, LATER)


async def test_the_only_poster_takes_over_a_run_whose_owner_died_at_once(
    store: Store, rival: Store
) -> None:
    run = claim_by(store)
    await store.add_digest_run(run)
    before_expiry = SCHEDULED + timedelta(seconds=10)

    taken = await rival.take_digest_run(GUILD, DAY, LATER, before_expiry, any_owner=True)

    assert taken is not None and taken.owner == rival.owner and taken.lease_until == LATER
    await store.finish_digest_run(GUILD, DAY, "sent", owner=rival.owner)
    assert await rival.take_digest_run(GUILD, DAY, LATER, LATER, any_owner=True) is None


async def test_racing_takeovers_of_an_expired_run_give_it_to_exactly_one(
    store: Store, rival: Store
) -> None:
    await store.add_digest_run(claim_by(store, owner="crashed:1:00"))

    results = await asyncio.gather(
        *(
            s.take_digest_run(GUILD, DAY, LATER + timedelta(minutes=3), LATER)
            for s in (store, rival) * 2
        )
    )

    winners = {run.owner for run in results if run is not None}
    assert len(winners) == 1 and winners <= {store.owner, rival.owner}


async def test_finished_runs_are_never_resumed(store: Store) -> None:
    await store.add_digest_run(claim_by(store))
    await store.finish_digest_run(GUILD, DAY, "sent", "2 stories", owner=store.owner)

    assert await store.take_digest_run(GUILD, DAY, LATER, LATER) is None
    with pytest.raises(LeaseLost):
        await store.finish_digest_run(GUILD, DAY, "failed", "again", owner=store.owner)


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
    final = claim_by(store, status=status, sent_messages=1, finished_at=SCHEDULED, detail="x")
    await store.add_digest_run(final)
    again = claim_by(
        store, claimed_at=SCHEDULED + timedelta(hours=3), attempt=1, messages=(planned(0, ()),)
    )

    # The scheduler's claim never takes over a row; /digest now's does, once per attempt.
    assert await store.add_digest_run(again) is False
    assert await store.reclaim_digest_run(again) is True
    assert await store.reclaim_digest_run(again) is False
    assert await store.digest_run(GUILD, DAY) == again
    # The messages of the earlier attempt are kept; the new attempt has its own.
    assert await store.reclaim_digest_run(dataclasses.replace(again, attempt=2)) is False

    # After that attempt fails too, the next one is attempt 2 (and only 2).
    await store.finish_digest_run(GUILD, DAY, "failed", "still no access")
    assert await store.reclaim_digest_run(dataclasses.replace(again, attempt=3)) is False
    assert await store.reclaim_digest_run(dataclasses.replace(again, attempt=2)) is True


@pytest.mark.parametrize("status", ["sent", "claimed"])
async def test_a_date_posted_or_being_posted_is_never_claimed_again(
    store: Store, status: str
) -> None:
    await store.add_digest_run(run_on())
    if status == "sent":
        await store.finish_digest_run(GUILD, DAY, "sent", "3 stories in 1 message")

    assert await store.reclaim_digest_run(run_on(channel_id=OTHER_CHANNEL, attempt=1)) is False
    last = await store.last_digest_run(GUILD)
    assert last is not None and (last.status, last.channel_id, last.attempt) == (status, CHANNEL, 0)


async def test_racing_reclaims_of_a_failed_date_give_it_to_exactly_one(
    store: Store,
) -> None:
    await store.add_digest_run(run_on(status="failed", plan=(), finished_at=SCHEDULED))

    results = await asyncio.gather(*(store.reclaim_digest_run(run_on(attempt=1)) for _ in range(8)))

    assert results.count(True) == 1


async def test_reclaiming_a_free_date_is_a_first_claim(store: Store) -> None:
    assert await store.reclaim_digest_run(run_on()) is True
    assert await store.digest_run(GUILD, DAY) == run_on()


async def test_a_servers_runs_since_a_date_are_its_own(store: Store) -> None:
    for days in range(3):
        await store.add_digest_run(run_on(DAY + timedelta(days=days)))
    await store.add_digest_run(run_on(DAY + timedelta(days=2), guild_id=OTHER_GUILD))

    runs = await store.guild_digest_runs_since(GUILD, DAY + timedelta(days=1))

    assert list(runs) == [(GUILD, DAY + timedelta(days=1)), (GUILD, DAY + timedelta(days=2))]
