"""The token bucket in front of digest sends, on a fake clock: what it lets through, and when."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from bot.discord_limits import MAX_SEND_RATE, SEND_HEADROOM
from bot.metrics import Metrics
from bot.pacing import (
    RETRY_DATABASE,
    Pacer,
    SharedPacer,
    burst_for,
    fallback_share,
    shared_rate,
)
from bot.sharding import Shards
from bot.store.base import SendBudget, SendGrant, StoreError
from bot.store.sqlite import SqliteStore


class FakeTime:
    """A monotonic clock that only moves when the pacer sleeps or the test says so."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def pacer(time: FakeTime, rate: float, burst: int = 1) -> Pacer:
    return Pacer(rate, burst, clock=time.clock, sleep=time.sleep)


async def test_a_burst_goes_through_at_once_then_sends_are_spaced_by_the_rate() -> None:
    time = FakeTime()
    paced = pacer(time, rate=4.0, burst=3)

    for _ in range(5):
        await paced.acquire()

    assert time.sleeps == [0.25, 0.25]


async def test_sustained_sends_keep_to_the_rate_on_average() -> None:
    time = FakeTime()
    paced = pacer(time, rate=48.0, burst=5)
    start = time.now

    for _ in range(5 + 480):
        await paced.acquire()

    # After the burst, 480 more at 48 a second take ten seconds, no less.
    assert time.now - start == pytest.approx(10.0)


async def test_an_idle_pacer_fills_up_again_but_never_beyond_its_burst() -> None:
    time = FakeTime()
    paced = pacer(time, rate=2.0, burst=2)
    await paced.acquire()
    await paced.acquire()

    time.now += 60.0  # a quiet minute
    for _ in range(3):
        await paced.acquire()

    assert time.sleeps == [0.5]


async def test_concurrent_senders_share_one_rate() -> None:
    time = FakeTime()
    paced = pacer(time, rate=10.0)

    await asyncio.gather(*(paced.acquire() for _ in range(4)))

    assert time.sleeps == pytest.approx([0.1, 0.1, 0.1])


async def test_a_send_after_a_partial_wait_sleeps_only_the_rest() -> None:
    time = FakeTime()
    paced = pacer(time, rate=1.0)
    await paced.acquire()

    time.now += 0.75
    await paced.acquire()

    assert time.sleeps == pytest.approx([0.25])


@pytest.mark.parametrize(("rate", "burst"), [(0.0, 1), (-5.0, 1), (10.0, 0)])
def test_a_rate_that_is_not_positive_or_an_empty_burst_is_refused(rate: float, burst: int) -> None:
    with pytest.raises(ValueError, match="rate must be positive and burst at least 1"):
        Pacer(rate, burst)


# --- the budget shared by every process on one database ---------------------------------------


class VirtualTime:
    """Wall-clock seconds for several tasks at once: a sleep ends at the instant it was asked
    for (not after every other task's sleep too), so concurrent pacers share one timeline."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        until = self.now + seconds
        await asyncio.sleep(0)
        self.now = max(self.now, until)


class FailingBudget:
    """A budget whose database fails while `failing` is set; grants plenty otherwise."""

    def __init__(self) -> None:
        self.failing = True
        self.takes = 0

    async def take_send_slots(self, want: int, rate: float, burst: int, now: float) -> SendGrant:
        self.takes += 1
        if self.failing:
            raise StoreError("database news.db: disk I/O error")
        return SendGrant(want)


def shared(budget: SendBudget, time: VirtualTime | FakeTime, rate: float, **kw: Any) -> SharedPacer:
    return SharedPacer(budget, rate, clock=time.clock, sleep=time.sleep, **kw)


async def test_two_processes_on_one_database_together_keep_to_the_rate(tmp_path: Path) -> None:
    time = VirtualTime()
    stores = [SqliteStore(tmp_path / "news.db"), SqliteStore(tmp_path / "news.db")]
    for store in stores:
        await store.open()
    try:
        pacers = [shared(store, time, rate=20.0, share=0.5, batch=5) for store in stores]
        start = time.now

        async def send(pacer: SharedPacer, count: int) -> None:
            for _ in range(count):
                await pacer.acquire()

        await asyncio.gather(*(send(pacer, 50) for pacer in pacers))
    finally:
        for store in stores:
            await store.close()

    # 100 sends at 20 a second, 5 of them a burst: no sooner than 4.75 s (each pacer alone
    # would have let its 50 through in 2.5 s).
    assert time.now - start >= (100 - 5) / 20.0 - 1e-6


async def test_a_process_takes_slots_from_the_database_a_batch_at_a_time() -> None:
    time = FakeTime()
    budget = FailingBudget()
    budget.failing = False
    pacer = shared(budget, time, rate=100.0, batch=10)

    for _ in range(25):
        await pacer.acquire()

    assert budget.takes == 3


async def test_every_wait_for_the_send_budget_is_counted_with_its_time() -> None:
    time = FakeTime()
    budget = FailingBudget()
    budget.failing = False
    metrics = Metrics()
    pacer = shared(budget, time, rate=10.0, batch=10, metrics=metrics)

    for _ in range(4):
        await pacer.acquire()

    # The first send goes at once; each of the other three waits a tenth of a second.
    waits = metrics.registry.get_sample_value("newsbot_send_budget_waits_total")
    waited = metrics.registry.get_sample_value("newsbot_send_budget_wait_seconds_total")
    assert (waits, waited) == (len(time.sleeps), pytest.approx(sum(time.sleeps)))
    assert waits == 3


async def test_a_new_rate_paces_the_sends_after_it() -> None:
    time = FakeTime()
    budget = FailingBudget()
    budget.failing = False
    pacer = shared(budget, time, rate=40.0)

    pacer.set_rate(4.0)
    for _ in range(3):
        await pacer.acquire()

    assert pacer.rate == 4.0
    assert time.sleeps == [0.25, 0.25]


@pytest.mark.parametrize(
    "gap",
    [
        pytest.param(60.0, id="an-idle-process"),
        # A loop held up for half a second: the other processes used the budget meanwhile.
        pytest.param(0.5, id="a-stalled-loop"),
    ],
)
async def test_slots_a_process_did_not_use_at_once_expire(gap: float) -> None:
    time = FakeTime()
    budget = FailingBudget()
    budget.failing = False
    pacer = shared(budget, time, rate=100.0, batch=10)
    await pacer.acquire()

    time.now += gap
    await pacer.acquire()

    assert budget.takes == 2


async def test_a_failing_database_slows_sends_to_the_share_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time = FakeTime()
    budget = FailingBudget()
    pacer = shared(budget, time, rate=10.0, share=0.5)
    start = time.now

    with caplog.at_level(logging.INFO, logger="bot.pacing"):
        for _ in range(11):
            await pacer.acquire()
        budget.failing = False
        time.now += RETRY_DATABASE
        await pacer.acquire()

    # Ten sends after the first at 5 a second; the database tried again once in those 2 s.
    assert time.now - start - RETRY_DATABASE == pytest.approx(2.0)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "sending at 5.0 a second" in warnings[0].getMessage()
    assert "works again" in caplog.records[-1].getMessage()
    assert budget.takes == 2


@pytest.mark.parametrize(
    ("shards", "share"),
    [(Shards(), 1.0), (Shards(8), 1.0), (Shards(8, (0, 1)), 0.25), (Shards(2, (1,)), 0.5)],
)
def test_a_process_falls_back_to_its_shards_share_of_the_rate(shards: Shards, share: float) -> None:
    assert fallback_share(shards) == share


def test_the_shared_burst_keeps_every_process_together_under_discords_global_limit() -> None:
    # rate x 1 s + burst is what all processes together may send in their first second; the
    # headroom stays free for what no budget paces exactly.
    assert burst_for(45.0) == 2
    rates = (1.0, 10.0, 40.0, 44.5, 45.0)
    assert all(rate + burst_for(rate) + SEND_HEADROOM <= 50 for rate in rates)
    assert burst_for(50.0) == 1  # never zero: sends must go on
    assert burst_for(5.0) == 10  # and a slow rate still takes a few slots per database write


async def test_four_processes_at_the_most_newsbot_sends_keep_to_it_together(
    tmp_path: Path,
) -> None:
    time = VirtualTime()
    stores = [SqliteStore(tmp_path / "news.db") for _ in range(4)]
    for store in stores:
        await store.open()
    try:
        pacers = [shared(store, time, rate=float(MAX_SEND_RATE), share=0.25) for store in stores]
        start = time.now

        async def send(pacer: SharedPacer, count: int) -> None:
            for _ in range(count):
                await pacer.acquire()

        await asyncio.gather(*(send(pacer, 100) for pacer in pacers))
    finally:
        for store in stores:
            await store.close()

    # 400 sends, 2 of them a burst, at 45 a second; each process alone would take 2.2 s.
    assert time.now - start >= (400 - 2) / MAX_SEND_RATE - 1e-6


def test_a_rate_that_would_eat_into_the_headroom_is_slowed_to_leave_it() -> None:
    assert shared_rate(20.0, 5) == 20.0
    assert shared_rate(45.0, burst_for(45.0)) == 45.0
    assert shared_rate(48.0, burst_for(48.0)) == 46.0
    assert shared_rate(50.0, burst_for(50.0)) == 46.0
