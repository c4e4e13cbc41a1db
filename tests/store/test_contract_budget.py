"""The contract every store backend keeps for the shared send budget: one token bucket for all
processes on the database. Runs against each backend (see conftest.py)."""

from __future__ import annotations

import asyncio

import pytest

from bot.store.base import Store

RATE = 10.0
BURST = 5
START = 1_700_000_000.0


async def test_a_fresh_budget_grants_its_burst_and_then_nothing_until_it_refills(
    store: Store,
) -> None:
    first = await store.take_send_slots(10, RATE, BURST, START)
    empty = await store.take_send_slots(10, RATE, BURST, START)

    assert first.slots == BURST
    assert empty.slots == 0 and empty.wait == pytest.approx(1 / RATE)


async def test_a_take_gets_what_it_asks_when_there_is_enough(store: Store) -> None:
    assert (await store.take_send_slots(2, RATE, BURST, START)).slots == 2
    assert (await store.take_send_slots(2, RATE, BURST, START)).slots == 2
    assert (await store.take_send_slots(2, RATE, BURST, START)).slots == 1


async def test_the_budget_refills_at_the_rate_but_never_beyond_the_burst(store: Store) -> None:
    await store.take_send_slots(BURST, RATE, BURST, START)

    after_a_fifth = await store.take_send_slots(10, RATE, BURST, START + 0.25)
    after_an_hour = await store.take_send_slots(10, RATE, BURST, START + 3600)

    assert after_a_fifth.slots == 2  # 2.5 slots refilled: the half stays for later
    assert after_an_hour.slots == BURST


async def test_a_clock_behind_the_last_take_adds_no_slots(store: Store) -> None:
    await store.take_send_slots(BURST, RATE, BURST, START)

    behind = await store.take_send_slots(10, RATE, BURST, START - 30)
    then = await store.take_send_slots(10, RATE, BURST, START + 0.15)

    assert behind.slots == 0
    assert then.slots == 1


async def test_two_processes_taking_at_once_never_get_more_than_rate_times_elapsed_plus_burst(
    store: Store, rival: Store
) -> None:
    granted = 0
    steps = 40
    for step in range(steps):
        now = START + step * 0.05
        grants = await asyncio.gather(
            *(taker.take_send_slots(3, RATE, BURST, now) for taker in (store, rival) * 3)
        )
        granted += sum(grant.slots for grant in grants)

    elapsed = (steps - 1) * 0.05
    assert granted <= RATE * elapsed + BURST
    # And the bucket is not starved either: nearly all of it was handed out.
    assert granted >= RATE * elapsed + BURST - 1


async def test_the_first_identify_of_a_bucket_goes_now(store: Store) -> None:
    assert await store.take_identify_turn(0, 5.0, START) == START


async def test_identify_turns_of_one_bucket_are_a_window_apart_whoever_takes_them(
    store: Store, rival: Store
) -> None:
    turns = [
        await store.take_identify_turn(0, 5.0, START),
        await rival.take_identify_turn(0, 5.0, START + 1),
        await store.take_identify_turn(0, 5.0, START + 2),
        await rival.take_identify_turn(1, 5.0, START + 2),  # another bucket: its own turns
        await rival.take_identify_turn(0, 5.0, START + 60),  # long after: at once
    ]

    assert turns == [START, START + 5, START + 10, START + 2, START + 60]


async def test_processes_starting_at_once_each_get_a_turn_of_their_own(
    store: Store, rival: Store
) -> None:
    turns = await asyncio.gather(
        *(taker.take_identify_turn(0, 5.0, START) for taker in (store, rival) * 2)
    )

    assert sorted(turns) == [START, START + 5, START + 10, START + 15]
