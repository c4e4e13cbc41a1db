"""The token bucket in front of digest sends, on a fake clock: what it lets through, and when."""

from __future__ import annotations

import asyncio

import pytest

from bot.pacing import Pacer


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
