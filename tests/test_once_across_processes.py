"""Several newsbot processes on one PostgreSQL database: a seed reload by one reaches the
others' topic autocompletes without a restart, and processes starting together sync the slash
commands once."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from bot.app import NewsBot, build_bot
from bot.config import DatabaseSettings, DiscordSettings, SeedSettings, Settings
from tests.cogs.test_seeds import write_story
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.helpers import SHIPPED_SEEDS


def process_on(url: str, seeds: Path, **discord: Any) -> NewsBot:
    """One `newsbot run` process on the PostgreSQL database at `url`."""
    settings = Settings(
        seeds=SeedSettings(folder=seeds, workers=1),
        database=DatabaseSettings(url=url),
        discord=DiscordSettings(**discord),
    )
    return build_bot(
        settings, reload_seeds_at_start=False, schedule_digests=False, guild_ready_timeout=0.1
    )


def seed_folder(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    return seeds


async def test_a_reload_by_one_process_reaches_anothers_autocomplete(
    discord_emulator: DiscordEmulator, postgres_url: str, tmp_path: Path
) -> None:
    emu = discord_emulator
    # Two processes, one shard each: the server's interactions reach the second alone.
    guild = emu.add_guild("Readers", shard=1, shard_count=2)
    channel = emu.add_channel(guild, "news")
    reader = emu.add_member(guild, "reader")
    seeds = seed_folder(tmp_path)
    first = process_on(postgres_url, seeds, shard_count=2, shard_ids=(0,))
    second = process_on(postgres_url, seeds, shard_count=2, shard_ids=(1,))

    async def offered(typed: str) -> list[str]:
        choices = await emu.autocomplete(
            guild, channel, reader, "news", focused="topic", value=typed
        )
        return [choice["value"] for choice in choices]

    async with running_bot(first, emu), running_bot(second, emu):
        refreshed = asyncio.ensure_future(second.wait_for("topics_refreshed", timeout=10))
        await first.reloader.reload()
        assert await refreshed == 1
        before = await offered("")
        write_story(seeds)
        refreshed = asyncio.ensure_future(second.wait_for("topics_refreshed", timeout=10))

        await first.reloader.reload()  # what /seeds reload in the first process does

        assert await refreshed == 2
        after = await offered("robo")

    assert before == ["AI", "Computer Vision"]
    assert after == ["Robotics"]


async def test_processes_starting_together_sync_the_commands_once(
    discord_emulator: DiscordEmulator, postgres_url: str, tmp_path: Path
) -> None:
    emu = discord_emulator
    emu.add_guild("Readers")
    seeds = seed_folder(tmp_path)
    bots = [process_on(postgres_url, seeds, sync_commands="auto") for _ in range(2)]
    started = [asyncio.Event() for _ in bots]
    first_sync: list[NewsBot] = []
    for bot, other in zip(bots, reversed(started), strict=True):
        # The first to sync waits until the other process is past its decision: without the
        # lock, both would find the commands unsynced and both would sync.
        bot.tree.sync = gated(bot, bot.tree.sync, other, first_sync)  # type: ignore[method-assign]
    for bot, done in zip(bots, started, strict=True):
        bot.setup_hook = signalling(bot.setup_hook, done)  # type: ignore[method-assign]

    async with AsyncExitStack() as stack:
        await asyncio.gather(*(stack.enter_async_context(running_bot(bot, emu)) for bot in bots))

    assert len(emu.requests_to("PUT", "/applications/*/commands")) == 1
    assert sorted(command["name"] for command in emu.registered_commands()) == [
        "digest",
        "news",
        "seeds",
        "topics",
    ]


def gated(
    bot: NewsBot,
    sync: Callable[[], Awaitable[Any]],
    other_started: asyncio.Event,
    first_sync: list[NewsBot],
) -> Callable[[], Awaitable[Any]]:
    async def wait_then_sync() -> Any:
        if not first_sync:
            first_sync.append(bot)
            await asyncio.wait_for(other_started.wait(), 10)
        return await sync()

    return wait_then_sync


def signalling(
    setup: Callable[[], Awaitable[None]], done: asyncio.Event
) -> Callable[[], Awaitable[None]]:
    async def setup_then_signal() -> None:
        try:
            await setup()
        finally:
            done.set()

    return setup_then_signal
