"""Shared pytest fixtures.

``discord_emulator``: a started local Discord with discord.py pointed at it
(see tests/discord_emulator/__init__.py for its API).
``world``: newsbot itself, running against that emulator with the shipped seeds loaded, in a
server with a news channel, a reader and an admin (Manage Server).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import NewsBot
from bot.config import (
    DatabaseSettings,
    DiscordSettings,
    GlobalDigestSettings,
    SeedSettings,
    Settings,
)
from bot.reload import SeedReloader
from bot.store.sqlite import SqliteStore
from tests.discord_emulator import DiscordEmulator, RunningBot, running_bot
from tests.discord_emulator.fixtures import discord_emulator
from tests.discord_emulator.interactions import InteractionHandle
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member

__all__ = ["discord_emulator", "world"]

SHIPPED_SEEDS = Path(__file__).resolve().parent.parent / "seeds"


@dataclass
class World:
    """newsbot running against the emulator, and the server it serves."""

    emu: DiscordEmulator
    bot: NewsBot
    store: SqliteStore
    seeds: Path
    guild: Guild
    channel: Channel
    reader: Member
    admin: Member
    run: RunningBot

    async def invoke(
        self,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        member: Member | None = None,
        subcommand: str | None = None,
        force: bool = False,
        raw_options: Mapping[str, Any] | None = None,
    ) -> InteractionHandle:
        return await self.emu.invoke(
            self.guild,
            self.channel,
            member or self.reader,
            name,
            dict(options or {}),
            subcommand=subcommand,
            force=force,
            raw_options=dict(raw_options or {}),
        )


class FakeClock:
    """The time as newsbot sees it; tests move it instead of waiting."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


def build_newsbot(
    root: Path,
    seeds: Path,
    *,
    clock: Callable[[], datetime] | None = None,
    schedule_digests: bool = False,
    reload_seeds_at_start: bool = True,
    workers: int = 1,
    database: Path | None = None,
    digest: GlobalDigestSettings | None = None,
    **discord: Any,
) -> NewsBot:
    """newsbot as `main()` builds it; by default the digest scheduler is off so that tests
    drive each tick themselves with a fake clock."""
    settings = Settings(
        seeds=SeedSettings(folder=seeds, workers=workers),
        database=DatabaseSettings(database or root / "news.db"),
        discord=DiscordSettings(**discord),
        digest=digest or GlobalDigestSettings(),
    )
    store = SqliteStore(settings.database.path)
    reloader = SeedReloader(store, seeds, workers=workers)
    # A short guild_ready_timeout: discord.py otherwise waits 2 s of quiet before on_ready.
    return NewsBot(
        settings,
        store,
        reloader,
        reload_seeds_at_start=reload_seeds_at_start,
        schedule_digests=schedule_digests,
        clock=clock or (lambda: datetime.now(UTC)),
        guild_ready_timeout=0.1,
    )


@pytest.fixture
def clock() -> FakeClock:
    """Friday 1 March 2024, 07:00 UTC; digest tests move it."""
    return FakeClock(datetime(2024, 3, 1, 7, 0, tzinfo=UTC))


@pytest.fixture
def page_timeout() -> float:
    """How long /news buttons live; tests of the timeout override this fixture."""
    return 60.0


@pytest.fixture
async def world(
    discord_emulator: DiscordEmulator, tmp_path: Path, page_timeout: float, clock: FakeClock
) -> AsyncIterator[World]:
    emu = discord_emulator
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    reader = emu.add_member(guild, "reader")
    admin = emu.add_member(guild, "admin", permissions=MANAGE_GUILD)
    seeds = tmp_path / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    bot = build_newsbot(tmp_path, seeds, clock=clock, page_timeout=page_timeout)
    async with running_bot(bot, emu, loggers=("discord", "bot")) as run:
        startup = bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
        if startup is not None:
            await startup
        yield World(emu, bot, bot.store, seeds, guild, channel, reader, admin, run)  # type: ignore[arg-type]


async def start_newsbot(
    emu: DiscordEmulator, tmp_path: Path, token: str
) -> asyncio.subprocess.Process:
    seeds = tmp_path / "seeds"
    if not seeds.exists():
        shutil.copytree(SHIPPED_SEEDS, seeds)
    env = {
        **os.environ,
        "DISCORD_TOKEN": token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "NEWSBOT_DB": str(tmp_path / "news.db"),
        "NEWSBOT_SEEDS": str(seeds),
    }
    env.pop("NEWSBOT_CONFIG", None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=SHIPPED_SEEDS.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
