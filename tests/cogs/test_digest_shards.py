"""Digests when newsbot runs as several processes, each some shards of one total, on one
database: each process posts, resumes, skips and switches off its own servers' digests only."""

from __future__ import annotations

import asyncio
import shutil
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from bot.app import NewsBot
from bot.models import DigestRun, DigestSettings
from bot.poster import DigestPoster
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.state import Channel, Guild
from tests.helpers import SHIPPED_SEEDS, FakeClock, build_newsbot

SINCE = datetime(2024, 2, 1, tzinfo=UTC)
EIGHT = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Server:
    guild: Guild
    channel: Channel


def poster(bot: NewsBot) -> DigestPoster:
    cog = bot.get_cog("Digest")
    assert cog is not None
    return cog.poster  # type: ignore[attr-defined,no-any-return]


def add_server(emu: DiscordEmulator, name: str, shard: int) -> Server:
    guild = emu.add_guild(name, shard=shard, shard_count=2)
    return Server(guild, emu.add_channel(guild, "news"))


async def due_at_eight(bot: NewsBot, *servers: Server) -> None:
    for server in servers:
        await bot.store.save_digest_settings(
            DigestSettings(server.guild.id, server.channel.id, time(8), "UTC", effective_from=SINCE)
        )


def digest_posts(emu: DiscordEmulator, server: Server) -> list:
    return [m for m in emu.messages(server.channel) if m.source == "channel"]


def shard_bot(
    tmp_path: Path, clock: FakeClock, shard: int, *, seeds: bool = True, schedule: bool = False
) -> NewsBot:
    """One newsbot process running shard `shard` of 2, on the test's one database."""
    folder = tmp_path / "seeds"
    if not folder.exists():
        shutil.copytree(SHIPPED_SEEDS, folder)
    root = tmp_path / f"shard-{shard}"
    root.mkdir()
    return build_newsbot(
        root,
        folder,
        clock=clock,
        reload_seeds_at_start=seeds,
        schedule_digests=schedule,
        database=tmp_path / "news.db",
        shard_count=2,
        shard_ids=(shard,),
    )


async def start(stack: AsyncExitStack, bot: NewsBot, emu: DiscordEmulator) -> None:
    await stack.enter_async_context(running_bot(bot, emu, loggers=("discord", "bot")))
    startup = bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
    if startup is not None:
        await startup


async def test_a_process_posts_only_its_own_shards_digests_and_leaves_the_others_alone(
    discord_emulator: DiscordEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    emu = discord_emulator
    mine, theirs = add_server(emu, "Mine", shard=0), add_server(emu, "Theirs", shard=1)
    bot = shard_bot(tmp_path, clock, shard=0)
    async with AsyncExitStack() as stack:
        await start(stack, bot, emu)
        await due_at_eight(bot, mine, theirs)
        clock.now = EIGHT

        await poster(bot).tick()
        await poster(bot).tick()

        assert len(digest_posts(emu, mine)) == 1
        assert digest_posts(emu, theirs) == []
        # Not taken for a server newsbot has left: no ledger row, still switched on.
        assert await bot.store.last_digest_run(theirs.guild.id) is None
        settings = await bot.store.digest_settings(theirs.guild.id)
        assert settings is not None and settings.enabled and settings.disabled_reason is None


async def test_a_process_neither_skips_nor_resumes_another_shards_digests(
    discord_emulator: DiscordEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    emu = discord_emulator
    theirs, late = add_server(emu, "Theirs", shard=1), add_server(emu, "Late", shard=1)
    bot = shard_bot(tmp_path, clock, shard=0)
    async with AsyncExitStack() as stack:
        await start(stack, bot, emu)
        await due_at_eight(bot, theirs, late)
        # Theirs: a run its process claimed and then died with (lease long expired); Late:
        # a digest missed by seven hours, which its own process records as skipped.
        claimed = DigestRun(
            guild_id=theirs.guild.id,
            local_date=date(2024, 3, 1),
            channel_id=theirs.channel.id,
            status="claimed",
            scheduled_for=EIGHT,
            claimed_at=EIGHT,
            plan=(),
            owner="another process",
            lease_until=EIGHT + timedelta(minutes=1),
        )
        await bot.store.add_digest_run(claimed)
        await bot.store.save_digest_settings(
            DigestSettings(late.guild.id, late.channel.id, time(9), "UTC", effective_from=SINCE)
        )
        clock.now = datetime(2024, 3, 1, 16, 0, tzinfo=UTC)

        await poster(bot).tick()

        run = await bot.store.last_digest_run(theirs.guild.id)
        assert run is not None and (run.status, run.owner) == ("claimed", "another process")
        assert await bot.store.last_digest_run(late.guild.id) is None
        assert digest_posts(emu, theirs) == digest_posts(emu, late) == []


async def test_two_processes_each_its_shard_on_one_database_post_each_digest_once(
    discord_emulator: DiscordEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    emu = discord_emulator
    servers = [add_server(emu, f"Server {n}", shard=n % 2) for n in range(4)]
    first = shard_bot(tmp_path, clock, shard=0)
    second = shard_bot(tmp_path, clock, shard=1, seeds=False)
    async with AsyncExitStack() as stack:
        await start(stack, first, emu)
        await start(stack, second, emu)
        await due_at_eight(first, *servers)
        clock.now = EIGHT

        await asyncio.gather(poster(first).tick(), poster(second).tick())
        clock.advance(minutes=1)
        await asyncio.gather(poster(first).tick(), poster(second).tick())

        assert [len(digest_posts(emu, server)) for server in servers] == [1, 1, 1, 1]
        assert [s.shard for s in emu.sessions] == [(0, 2), (1, 2)]
        for server in servers:
            run = await first.store.last_digest_run(server.guild.id)
            assert run is not None and run.status == "sent"
            # Posted by the process of the server's shard (each store is its own owner).
            bot = first if emu.shard_of(server.guild, 2) == 0 else second
            assert run.owner == bot.store.owner


async def test_another_shards_server_reaching_the_sender_is_not_taken_for_one_newsbot_left(
    discord_emulator: DiscordEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    emu = discord_emulator
    theirs = add_server(emu, "Theirs", shard=1)
    bot = shard_bot(tmp_path, clock, shard=0)
    async with AsyncExitStack() as stack:
        await start(stack, bot, emu)
        await due_at_eight(bot, theirs)
        settings = await bot.store.digest_settings(theirs.guild.id)
        assert settings is not None
        clock.now = EIGHT

        result = await poster(bot).post_now(settings)

        assert result.status == "claimed"
        assert "another newsbot process" in result.detail
        after = await bot.store.digest_settings(theirs.guild.id)
        assert after is not None and after.enabled and after.disabled_reason is None
        assert digest_posts(emu, theirs) == []


async def test_processes_running_some_shards_each_share_the_database_with_digests_scheduled(
    discord_emulator: DiscordEmulator, tmp_path: Path, clock: FakeClock
) -> None:
    # One bot serving every server holds the database alone (the instance lease); processes
    # that split the shards share it, each holding its own shards' leases.
    first = shard_bot(tmp_path, clock, shard=0, schedule=True)
    second = shard_bot(tmp_path, clock, shard=1, seeds=False, schedule=True)
    async with AsyncExitStack() as stack:
        await start(stack, first, discord_emulator)
        await start(stack, second, discord_emulator)

        assert poster(first) is not poster(second)
        assert not first.store.holds_instance_lock and not second.store.holds_instance_lock
        servers = [(0 << 22), (1 << 22)]  # one server on each shard of two
        assert [first.store.holds_lease_of(guild) for guild in servers] == [True, False]
        assert [second.store.holds_lease_of(guild) for guild in servers] == [False, True]
