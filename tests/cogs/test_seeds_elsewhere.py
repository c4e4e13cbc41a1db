"""Seeds loaded once across processes: a reload (at start, /seeds reload) while another
process of the database reloads is left to that one, and a reload committed elsewhere reaches
this bot's topic autocompletes without a restart."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.reload import SeedReloader
from bot.store.sqlite import SqliteStore
from tests.cogs.test_seeds import write_story
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.state import MANAGE_GUILD, Member
from tests.helpers import SHIPPED_SEEDS, World, build_newsbot

HOST = socket.gethostname()


@pytest.fixture
def operator(world: World) -> Member:
    return world.emu.add_member(
        world.guild, "operator", user=world.emu.owner_user, permissions=MANAGE_GUILD
    )


@pytest.fixture
async def other_process(world: World) -> AsyncIterator[SqliteStore]:
    """Another process's store on the bot's database (`newsbot seeds load`, say)."""
    store = SqliteStore(world.store.path)
    await store.open()
    yield store
    await store.close()


async def offered(world: World, typed: str) -> list[str]:
    choices = await world.emu.autocomplete(
        world.guild, world.channel, world.reader, "news", focused="topic", value=typed
    )
    return [choice["value"] for choice in choices]


async def test_seeds_reload_while_another_process_reloads_says_who_and_where_to_look(
    world: World, operator: Member, other_process: SqliteStore
) -> None:
    write_story(world.seeds)

    async with other_process.task_lock("seeds-reload"):
        handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
        await handle.response()
        [answer] = await handle.followups(1)

    assert answer.ephemeral
    assert answer.content.startswith(
        "A seed reload is already running in another newsbot process "
        f"(pid {os.getpid()} on {HOST}, started <t:"
    )
    assert answer.content.endswith("/seeds status shows its result when it is done.")
    assert "\n" not in answer.content
    assert await world.store.story_count() == 5


async def test_a_dry_run_needs_no_lock(
    world: World, operator: Member, other_process: SqliteStore
) -> None:
    write_story(world.seeds)

    async with other_process.task_lock("seeds-reload"):
        handle = await world.invoke(
            "seeds", {"dry_run": True}, member=operator, subcommand="reload"
        )
        await handle.response()
        [report] = await handle.followups(1)

    assert "1 added" in report.embeds[0]["description"]


async def test_a_reload_here_offers_its_new_topic_in_the_autocomplete(
    world: World, operator: Member
) -> None:
    assert "Robotics" not in await offered(world, "")  # the list is in memory now
    write_story(world.seeds)

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    await handle.response()
    await handle.followups(1)

    assert await offered(world, "robo") == ["Robotics"]


async def test_a_reload_by_another_process_reaches_the_autocomplete(
    discord_emulator: DiscordEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing announces a reload on SQLite: the bot looks at the seed generation, here often.
    monkeypatch.setattr(SqliteStore, "seed_watch_interval", 0.01)
    emu = discord_emulator
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    reader = emu.add_member(guild, "reader")
    seeds = tmp_path / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    bot = build_newsbot(tmp_path, seeds)
    caplog.set_level(logging.INFO, logger="bot.app")
    async with running_bot(bot, emu, loggers=("discord", "bot")):
        await bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
        before = await emu.autocomplete(guild, channel, reader, "news", focused="topic")
        write_story(seeds)
        refreshed = asyncio.ensure_future(bot.wait_for("topics_refreshed", timeout=10))

        # `newsbot seeds load` from another process: its own store on the same file.
        loader = SqliteStore(tmp_path / "news.db")
        await loader.open()
        try:
            await SeedReloader(loader, seeds, workers=1).reload()
        finally:
            await loader.close()
        assert await refreshed == 2
        after = await emu.autocomplete(
            guild, channel, reader, "news", focused="topic", value="robo"
        )

    assert "Robotics" not in [choice["value"] for choice in before]
    assert [choice["value"] for choice in after] == ["Robotics"]
    heard = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert "seeds reloaded by another process: generation 2" in heard


async def test_at_start_a_reload_running_in_another_process_is_left_to_it(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    loader = SqliteStore(tmp_path / "news.db")
    await loader.open()
    bot = build_newsbot(tmp_path, seeds)
    caplog.set_level(logging.INFO, logger="bot")
    try:
        async with (
            loader.task_lock("seeds-reload"),
            running_bot(bot, discord_emulator, loggers=("discord", "bot")),
        ):
            await bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
            stored = await bot.store.story_count()
    finally:
        await loader.close()

    assert stored == 0
    seeds_lines = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "bot.cogs.seeds"
    ]
    assert seeds_lines == [
        (
            "INFO",
            f"seed reload running in another newsbot process (pid {os.getpid()} on {HOST}); "
            "serving the stored stories",
        )
    ]
