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
from bot.identify import BACKOFF_CAP, TURN_MARGIN, IdentifyPacer, SessionStarts, backoff
from bot.store.base import StoreError
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.state import Guild
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


class Discord:
    """GET /gateway/bot's session start limit: plenty left unless a test spends it; a start
    is counted when the pacer lets a shard IDENTIFY."""

    def __init__(self, remaining: int = 1000, max_concurrency: int = 1) -> None:
        self.remaining = remaining
        self.max_concurrency = max_concurrency
        self.resets_at: float | None = None
        self.time: FakeTime | None = None
        self.reads = 0

    async def session_starts(self) -> SessionStarts:
        self.reads += 1
        reset_after = 3600.0
        if self.time is not None and self.resets_at is not None:
            if self.time.now >= self.resets_at:
                self.remaining, self.resets_at = 1000, None
            else:
                reset_after = self.resets_at - self.time.now
        return SessionStarts(self.remaining, 1000, reset_after, self.max_concurrency)


def pacer(turns: Turns, time: FakeTime, discord: Discord | None = None) -> IdentifyPacer:
    source = discord or Discord()
    return IdentifyPacer(turns, source.session_starts, clock=time.clock, sleep=time.sleep)


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


async def test_a_spent_daily_session_budget_waits_for_its_reset_instead_of_identifying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    time, turns = FakeTime(), Turns()
    discord = Discord(remaining=0)
    reset = time.now + 7200.0
    discord.time, discord.resets_at = time, reset

    await pacer(turns, time, discord).wait_turn(2)

    # Past the reset, with a fresh turn (the first went stale during the wait).
    assert time.now >= reset
    assert turns.last[0] >= reset
    assert discord.remaining == 1000
    assert "daily limit of session starts is spent (0 of 1000 left)" in caplog.text
    assert "shard 2 waits 2h00m" in caplog.text


async def test_the_last_starts_are_kept_for_the_buckets_that_may_identify_at_once() -> None:
    time, turns = FakeTime(), Turns()
    # Four buckets may IDENTIFY in the same instant, from any process: three starts are
    # too few for a fourth one to be safe.
    discord = Discord(remaining=3, max_concurrency=4)
    discord.time, discord.resets_at = time, time.now + 60.0

    await pacer(turns, time, discord).wait_turn(0)

    assert time.sleeps == [61.0]


async def test_an_identify_reads_the_limit_once_and_again_only_after_waiting_its_turn() -> None:
    time, turns = FakeTime(), Turns()
    discord = Discord()
    identify = pacer(turns, time, discord)

    await identify.wait_turn(0)  # its turn is now: the reading for the buckets will do
    assert discord.reads == 1

    await identify.wait_turn(1)  # a window later: read again at the turn
    assert discord.reads == 2


async def test_a_bot_that_cannot_read_the_limit_still_connects() -> None:
    time, turns = FakeTime(), Turns()

    async def unknown() -> SessionStarts | None:
        return None

    await IdentifyPacer(turns, unknown, clock=time.clock, sleep=time.sleep).wait_turn(0)

    assert time.sleeps == []


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


def one_identify_per_window(emu: DiscordEmulator) -> None:
    """Discord's IDENTIFY limit as it is for most bots: one bucket, one IDENTIFY per 5 s."""
    emu.limits.identify_window = 5.0
    emu.limits.max_concurrency = 1


def a_server_on_each_of_two_shards(emu: DiscordEmulator) -> tuple[Guild, Guild]:
    return emu.add_guild("Zero", shard=0, shard_count=2), emu.add_guild(
        "One", shard=1, shard_count=2
    )


async def test_two_processes_starting_at_once_identify_in_turn_without_an_invalid_session(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    one_identify_per_window(emu)
    a_server_on_each_of_two_shards(emu)
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


async def test_a_second_process_waits_for_discords_session_count_to_reset_and_keeps_the_token(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu = discord_emulator
    # One start a (shortened) day: the first process spends it.
    emu.limits.session_start_total = 1
    emu.limits.session_start_window = 10.0  # longer than one IDENTIFY turn
    _, one = a_server_on_each_of_two_shards(emu)
    first, second = shard_bot(tmp_path, 0), shard_bot(tmp_path, 1)
    # The second one's wait is an ERROR for its operator, expected here: only discord.py's
    # errors fail the test.
    async with running_bot(first, emu), running_bot(second, emu, ready_timeout=60):
        assert second.get_guild(one.id) is not None
        identified = [r.detail["shard"] for r in emu.gateway.log if r.kind == "identify"]
        assert identified == [[0, 2], [1, 2]]

    # Had the second IDENTIFYed at once, the emulator would have reset the token, as Discord does.
    assert [r for r in emu.gateway.log if r.kind == "token_reset"] == []
    assert "daily limit of session starts is spent (0 of 1 left); shard 1 waits" in caplog.text


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
    one_identify_per_window(emu)
    a_server_on_each_of_two_shards(emu)
    late = shard_bot(tmp_path, 0)
    late.__class__ = LateIdentifyBot
    async with (
        running_bot(late, emu, loggers=("discord", "bot")),
        running_bot(shard_bot(tmp_path, 1), emu, loggers=("discord", "bot")),
    ):
        assert len(emu.gateway.session_starts) == 2
        assert [r for r in emu.gateway.log if r.kind == "invalid_session"] == []
