"""What tests share: newsbot built as the command line builds it, the world it serves, a clock
tests move by hand, and `newsbot run` started as a real process.

Fixtures live in conftest.py; test modules and benchmarks import these helpers from here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from bot.app import NewsBot, build_bot
from bot.config import (
    DatabaseSettings,
    DiscordSettings,
    GlobalDigestSettings,
    MetricsSettings,
    SeedSettings,
    Settings,
)
from bot.store.sqlite import SqliteStore
from tests.discord_emulator import DiscordEmulator, RunningBot, running_bot
from tests.discord_emulator.interactions import InteractionHandle
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member

REPO = Path(__file__).resolve().parent.parent
SHIPPED_SEEDS = REPO / "seeds"


def run_module(
    module: str, *args: str, env: Mapping[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m module args` in a process of its own, from the repository's root, its output
    captured as text; whatever it exits with is the caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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


class ReadersServer(NamedTuple):
    guild: Guild
    channel: Channel
    reader: Member
    admin: Member


def readers_server(emu: DiscordEmulator) -> ReadersServer:
    """The server tests serve: "Readers", with a #news channel, a reader and an admin (Manage
    Server)."""
    guild = emu.add_guild("Readers")
    return ReadersServer(
        guild,
        emu.add_channel(guild, "news"),
        emu.add_member(guild, "reader"),
        emu.add_member(guild, "admin", permissions=MANAGE_GUILD),
    )


@asynccontextmanager
async def serving(emu: DiscordEmulator, root: Path, **build_options: Any) -> AsyncIterator[World]:
    """newsbot (`build_newsbot(root, ..., **build_options)`) running against the emulator with
    a copy of the shipped seeds loaded, in a server with a news channel, a reader and an admin
    (Manage Server): the `world` fixture, and the fixtures that vary its settings."""
    guild, channel, reader, admin = readers_server(emu)
    seeds = root / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    bot = build_newsbot(root, seeds, **build_options)
    async with running_bot(bot, emu, loggers=("discord", "bot")) as run:
        startup = bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
        if startup is not None:
            await startup
        yield World(emu, bot, bot.store, seeds, guild, channel, reader, admin, run)  # type: ignore[arg-type]


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
    watch_seeds: bool = False,
    database: Path | None = None,
    digest: GlobalDigestSettings | None = None,
    metrics_listen: str | None = None,
    **discord: Any,
) -> NewsBot:
    """newsbot as `main()` builds it (through the same factory); by default the digest
    scheduler is off so that tests drive each tick themselves with a fake clock."""
    settings = Settings(
        seeds=SeedSettings(folder=seeds, workers=workers, watch=watch_seeds),
        database=DatabaseSettings(database or root / "news.db"),
        discord=DiscordSettings(**discord),
        digest=digest or GlobalDigestSettings(),
        metrics=MetricsSettings(listen=metrics_listen),
    )
    overrides: dict[str, Any] = {"clock": clock} if clock else {}
    # A short guild_ready_timeout: discord.py otherwise waits 2 s of quiet before on_ready.
    return build_bot(
        settings,
        reload_seeds_at_start=reload_seeds_at_start,
        schedule_digests=schedule_digests,
        guild_ready_timeout=0.1,
        **overrides,
    )


async def start_newsbot(
    emu: DiscordEmulator, tmp_path: Path, token: str, *, config: Path | None = None, **settings: str
) -> asyncio.subprocess.Process:
    """`newsbot run` as a user starts it, on `tmp_path`'s database and seeds, with the shipped
    config file or `config`; `settings` are more environment variables (NEWSBOT_SHARD_IDS="0")."""
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
        **settings,
    }
    env.pop("NEWSBOT_CONFIG", None)
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *(["--config", str(config)] if config else []),
        "run",
        cwd=SHIPPED_SEEDS.parent,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
