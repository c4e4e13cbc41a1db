"""Turns at IDENTIFY across processes: the pacer on a fake clock, and two newsbot processes
starting at once against the emulator's IDENTIFY window."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from bot.app import NewsBot
from bot.identify import BACKOFF_CAP, TURN_MARGIN, IdentifyPacer, backoff
from bot.store.base import StoreError
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.helpers import SHIPPED_SEEDS, build_newsbot


class FakeTime:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Turns:
    """A database's turns: one bucket, a window apart (or failing)."""

    def __init__(self) -> None:
        self.last: dict[int, float] = {}
        self.failing = False

    async def take_identify_turn(self, bucket: int, window: float, now: float) -> float:
        if self.failing:
            raise StoreError("database news.db: disk I/O error")
        last = self.last.get(bucket)
        turn = now if last is None else max(now, last + window)
        self.last[bucket] = turn
        return turn


async def one_bucket() -> int:
    return 1


def pacer(turns: Turns, time: FakeTime) -> IdentifyPacer:
    return IdentifyPacer(turns, one_bucket, clock=time.clock, sleep=time.sleep)


async def test_an_identify_waits_for_the_turn_another_process_reserved() -> None:
    time, turns = FakeTime(), Turns()
    turns.last[0] = time.now + 3.0  # another process's turn, 3 s from now

    await pacer(turns, time).wait_turn(0)

    assert time.sleeps == [3.0 + 5.0 + TURN_MARGIN]


async def test_turns_are_more_than_a_window_apart_so_a_late_identify_does_not_refuse_the_next() -> (
    None
):
    time, turns = FakeTime(), Turns()
    first, second = pacer(turns, time), pacer(turns, time)  # two processes

    await first.wait_turn(0)
    started = time.now
    await second.wait_turn(1)

    assert time.now - started > 5.0


async def test_a_shard_identifying_again_and_again_backs_off_exponentially() -> None:
    time, turns = FakeTime(), Turns()
    identify = pacer(turns, time)
    starts = []
    for _ in range(5):
        await identify.wait_turn(0)
        starts.append(time.now)

    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # The first wait is the turn's (a window and the margin after the last), then the backoff's.
    assert gaps == [5.0 + TURN_MARGIN, 10.0, 20.0, 40.0]


def test_the_backoff_is_capped() -> None:
    assert backoff(0) == 0.0
    assert backoff(30) == BACKOFF_CAP


async def test_a_failing_database_still_lets_the_shard_connect_after_a_window(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time, turns = FakeTime(), Turns()
    turns.failing = True

    await pacer(turns, time).wait_turn(3)

    assert time.sleeps == [5.0]
    assert "no IDENTIFY turn from the database" in caplog.text


def shard_bot(tmp_path: Path, shard: int) -> NewsBot:
    folder = tmp_path / "seeds"
    if not folder.exists():
        shutil.copytree(SHIPPED_SEEDS, folder)
    root = tmp_path / f"shard-{shard}"
    root.mkdir()
    return build_newsbot(
        root,
        folder,
        reload_seeds_at_start=False,
        database=tmp_path / "news.db",
        shard_count=2,
        shard_ids=(shard,),
    )


async def test_two_processes_starting_at_once_identify_in_turn_without_an_invalid_session(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    emu.limits.identify_window = 5.0
    emu.limits.max_concurrency = 1
    emu.add_guild("Zero", shard=0, shard_count=2)
    emu.add_guild("One", shard=1, shard_count=2)
    bots = [shard_bot(tmp_path, 0), shard_bot(tmp_path, 1)]
    # Each opens the database before either connects, as two processes started together do.
    async with AsyncExitStack() as stack:
        await asyncio.gather(
            *(
                stack.enter_async_context(running_bot(bot, emu, loggers=("discord", "bot")))
                for bot in bots
            )
        )

        assert len(emu.gateway.session_starts) == 2
        first, second = emu.gateway.session_starts
        assert second - first >= 5.0
        assert [r for r in emu.gateway.log if r.kind == "invalid_session"] == []


class LateIdentifyBot(NewsBot):
    """A process whose IDENTIFY reaches Discord a moment after its turn (a slow connection, a
    busy loop): what happens between before_identify_hook and the IDENTIFY frame."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        await super().before_identify_hook(shard_id, initial=initial)
        await asyncio.sleep(0.3)


async def test_an_identify_that_reaches_discord_late_does_not_get_the_next_process_refused(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    emu.limits.identify_window = 5.0
    emu.limits.max_concurrency = 1
    emu.add_guild("Zero", shard=0, shard_count=2)
    emu.add_guild("One", shard=1, shard_count=2)
    late = shard_bot(tmp_path, 0)
    late.__class__ = LateIdentifyBot
    async with (
        running_bot(late, emu, loggers=("discord", "bot")),
        running_bot(shard_bot(tmp_path, 1), emu, loggers=("discord", "bot")),
    ):
        assert len(emu.gateway.session_starts) == 2
        assert [r for r in emu.gateway.log if r.kind == "invalid_session"] == []
