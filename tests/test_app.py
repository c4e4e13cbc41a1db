"""The bot as a whole: start-up, command sync policy, recovery from Discord failures, and
`newsbot run` as a real process against the local emulator."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import metadata
from pathlib import Path

import pytest

from bot.app import NewsBot, build_bot
from bot.checks import OPERATOR_REFUSAL
from bot.config import DatabaseSettings, SeedSettings, Settings
from bot.reload import SeedReloader
from bot.store import DatabaseLost, InstanceLost, StoreError
from bot.store.sqlite import SqliteStore
from bot.tree import STOPPING
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.state import MANAGE_GUILD
from tests.helpers import SHIPPED_SEEDS, World, build_newsbot, readers_server, start_newsbot

REPO = Path(__file__).resolve().parent.parent


async def test_the_factory_builds_newsbot_on_the_configured_database_and_seed_limits(
    tmp_path: Path,
) -> None:
    settings = Settings(
        seeds=SeedSettings(folder=SHIPPED_SEEDS, max_file_bytes=100, workers=1),
        database=DatabaseSettings(tmp_path / "news.db"),
    )

    bot = build_bot(settings, schedule_digests=False, guild_ready_timeout=0.1)
    await bot.store.open()
    try:
        report = await bot.reloader.reload()
    finally:
        await bot.store.close()

    assert (tmp_path / "news.db").is_file()
    assert bot.reloader.folder == SHIPPED_SEEDS
    # Every shipped seed is larger than the configured 100 bytes: the limit reached the reloader.
    assert len(report.rejected) == 5 and not report.added
    assert (bot.reload_seeds_at_start, bot.schedule_digests) == (True, False)


def command_syncs(emu: DiscordEmulator) -> int:
    return len(emu.requests_to("PUT", "/applications/*/commands"))


async def test_restart_with_unchanged_commands_does_not_sync_again(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    for _ in range(2):
        bot = build_newsbot(tmp_path, SHIPPED_SEEDS)
        async with running_bot(bot, emu, loggers=("discord", "bot")):
            pass

    assert command_syncs(emu) == 1


async def test_changed_commands_are_synced_at_start(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS)
    async with running_bot(bot, emu):
        pass
    changed = build_newsbot(tmp_path, SHIPPED_SEEDS)
    original_setup = changed.setup_hook

    async def setup_with_an_extra_command() -> None:
        @changed.tree.command(name="ping")
        async def ping(interaction) -> None:  # type: ignore[no-untyped-def]
            """Check the bot is alive."""

        await original_setup()

    changed.setup_hook = setup_with_an_extra_command  # type: ignore[method-assign]
    async with running_bot(changed, emu):
        pass

    assert command_syncs(emu) == 2
    assert "ping" in {command["name"] for command in emu.registered_commands()}


async def test_sync_never_leaves_registration_to_the_sync_command(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, sync_commands="never")
    async with running_bot(bot, discord_emulator):
        pass

    assert command_syncs(discord_emulator) == 0


async def test_start_logs_the_version_config_database_and_seed_folder_once(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS)

    with caplog.at_level(logging.INFO, logger="bot"):
        async with running_bot(bot, discord_emulator):
            pass

    assert [r.getMessage() for r in caplog.records if r.getMessage().startswith("newsbot ")] == [
        f"newsbot {metadata.version('newsbot')}: config none, database {tmp_path / 'news.db'}, "
        f"seed folder {SHIPPED_SEEDS}"
    ]


async def test_start_logs_which_shards_of_how_many_this_process_runs(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, shard_count=8, shard_ids=(3,))

    with caplog.at_level(logging.INFO, logger="bot"):
        async with running_bot(bot, discord_emulator):
            sessions = [session.shard for session in discord_emulator.sessions]

    assert sessions == [(3, 8)]
    messages = [record.getMessage() for record in caplog.records]
    assert "running shard 3 of 8" in messages
    assert any(message.endswith(" servers, shard 3 of 8") for message in messages)


async def test_logging_in_takes_its_requests_from_the_shared_send_budget(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    # A process restarting mid fan-out logs in while the others fill Discord's global limit:
    # each request of logging in waits for a slot of the one budget, as digest sends do.
    emu = discord_emulator
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, shard_count=2, shard_ids=(0, 1))
    requests_at_slots: list[int] = []
    acquire = bot.send_pacer.acquire

    async def counted() -> None:
        await acquire()
        requests_at_slots.append(len(emu.requests))

    bot.send_pacer.acquire = counted  # type: ignore[method-assign]
    async with running_bot(bot, emu, ready_timeout=20):
        requests = list(emu.requests)

    logging_in = [
        number
        for number, request in enumerate(requests)
        if request.method == "GET"
        and request.path in {"/users/@me", "/oauth2/applications/@me", "/gateway/bot"}
    ]
    assert len(logging_in) >= 4  # the user, the application, the gateway for each shard
    # Before the n-th of those requests, at least n slots were taken.
    for count, number in enumerate(logging_in, start=1):
        assert sum(1 for seen in requests_at_slots if seen <= number) >= count


async def test_unset_shards_run_as_many_as_discord_recommends_in_one_process(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    discord_emulator.recommended_shards = 2
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS)

    with caplog.at_level(logging.INFO, logger="bot"):
        async with running_bot(bot, discord_emulator, ready_timeout=20):
            sessions = sorted(session.shard for session in discord_emulator.sessions)

    assert sessions == [(0, 2), (1, 2)]
    assert any(r.getMessage().endswith(", shards 0-1 of 2") for r in caplog.records)


async def test_missing_seed_folder_at_start_is_one_warning_and_the_stored_stories_are_served(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu = discord_emulator
    guild, channel, reader, _ = readers_server(emu)
    store = SqliteStore(tmp_path / "news.db")
    await store.open()
    await SeedReloader(store, SHIPPED_SEEDS, workers=1).reload()
    await store.close()
    missing = tmp_path / "seeds"
    bot = build_newsbot(tmp_path, missing)

    with caplog.at_level(logging.INFO, logger="bot"):
        async with running_bot(bot, emu, loggers=("discord", "bot")):
            await bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
            handle = await emu.invoke(guild, channel, reader, "news", {"topic": "AI"})
            reply = await handle.response()

    problems = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert len(problems) == 1 and problems[0].exc_info is None
    assert f"{missing} does not exist" in problems[0].getMessage()
    assert "serving the stored stories" in problems[0].getMessage()
    assert len(reply.embeds) == 5


async def test_interaction_sent_while_the_gateway_is_down_is_answered_after_resume(
    world: World,
) -> None:
    async with world.emu.gateway_outage():
        handle = await world.invoke("topics")
    await world.emu.wait_for_resume()

    reply = await handle.response(timeout=3)

    assert world.emu.gateway.identifies == 1
    assert reply.embeds[0]["title"] == "Topics"


async def _send_invalid_json(emu: DiscordEmulator) -> None:
    await emu.send_malformed_frame()


async def _dispatch_without_a_required_key(emu: DiscordEmulator) -> None:
    emu.gateway.dispatch("CHANNEL_CREATE", {"id": "1"})  # discord.py's parser needs "type"


@pytest.mark.parametrize("fault", [_send_invalid_json, _dispatch_without_a_required_key])
async def test_a_frame_the_client_cannot_read_does_not_stop_the_bot(
    world: World, fault: Callable[[DiscordEmulator], Awaitable[None]]
) -> None:
    world.run.allow_error("could not read a frame from the gateway")

    await fault(world.emu)
    await world.emu.wait_until(
        lambda: world.emu.gateway.identifies == 2 and world.emu.gateway.ready_sent,
        # discord.py paces every IDENTIFY but a process's first by 5 s (Discord's limit).
        timeout=15,
        what="the bot to connect again",
    )
    reply = await (await world.invoke("news", {"topic": "AI", "count": 1})).response(timeout=3)

    assert len(reply.embeds) == 1
    await world.run.wait_for_error("could not read a frame from the gateway")


async def test_a_frame_one_shard_cannot_read_restarts_that_shard_only(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guilds = [emu.add_guild(f"Shard {n}", shard=n, shard_count=2) for n in range(2)]
    channels = [emu.add_channel(guild, "news") for guild in guilds]
    readers = [emu.add_member(guild, "reader") for guild in guilds]
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, shard_count=2)

    async with running_bot(bot, emu, loggers=("discord", "bot"), ready_timeout=20) as run:
        run.allow_error("could not read a frame from the gateway on shard 1")
        await bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
        untouched = next(s for s in emu.sessions if s.shard_id == 0)

        await emu.send_malformed_frame(shard=1)
        await emu.wait_until(
            lambda: emu.gateway.identifies == 3 and all(s.ready_sent for s in emu.sessions),
            # discord.py paces every IDENTIFY but a process's first by 5 s (Discord's limit).
            timeout=15,
            what="shard 1 to connect again",
        )
        replies = [
            await (await emu.invoke(g, c, r, "news", {"topic": "AI", "count": 1})).response(3)
            for g, c, r in zip(guilds, channels, readers, strict=True)
        ]

        assert [len(reply.embeds) for reply in replies] == [1, 1]
        identified = [r.detail["shard"] for r in emu.gateway.log if r.kind == "identify"]
        assert identified == [[0, 2], [1, 2], [1, 2]]
        assert untouched in emu.sessions and untouched.connected
        await run.wait_for_error("could not read a frame from the gateway on shard 1")


async def test_rate_limited_reply_is_retried_after_retry_after(world: World) -> None:
    rule = world.emu.fail_next("POST", "/interactions/*/*/callback", 429, retry_after=0.1)

    reply = await (await world.invoke("topics")).response(timeout=3)

    assert len(rule.hits) == 1
    assert reply.embeds[0]["title"] == "Topics"


async def test_server_error_on_a_reply_is_retried(world: World) -> None:
    rule = world.emu.fail_next("POST", "/interactions/*/*/callback", 500)

    reply = await (await world.invoke("topics")).response(timeout=3)

    assert len(rule.hits) == 1
    assert reply.embeds[0]["title"] == "Topics"


async def test_unexpected_error_is_logged_with_the_command_and_the_user_gets_an_apology(
    world: World,
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database on fire")

    world.run.allow_error("/topics failed")
    world.store.topics = broken  # type: ignore[method-assign]

    reply = await (await world.invoke("topics", {"private": False})).response()

    assert reply.ephemeral
    assert reply.content.startswith("Sorry, something went wrong")
    assert "fire" not in reply.content
    record = await world.run.wait_for_error("/topics failed")
    assert "'private': False" in record.getMessage()


# --- newsbot run, as a user starts it ----------------------------------------------------------


async def test_newsbot_run_serves_the_shipped_seeds_and_stops_cleanly_on_sigterm(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild, channel, reader, admin = readers_server(emu)
    operator = emu.add_member(guild, "operator", user=emu.owner_user, permissions=MANAGE_GUILD)
    process = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_for_ready(timeout=30)
        # The seeds load in the background after start: ask until the topic is there.
        async with asyncio.timeout(30):
            while True:
                handle = await emu.invoke(guild, channel, reader, "news", {"topic": "AI"})
                reply = await handle.response(timeout=5)
                if reply.embeds:
                    break
                await asyncio.sleep(0.2)
        choices = await emu.autocomplete(guild, channel, reader, "news", focused="topic", value="a")
        refused = await (
            await emu.invoke(guild, channel, reader, "seeds", {}, subcommand="reload", force=True)
        ).response()
        manager_refused = await (
            await emu.invoke(guild, channel, admin, "seeds", {}, subcommand="reload")
        ).response()
        reload = await emu.invoke(guild, channel, operator, "seeds", {}, subcommand="reload")
        await reload.response()
        [report] = await reload.followups(1, timeout=10)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, stderr.decode()
    assert len(reply.embeds) == 5
    assert reply.embeds[0]["url"].startswith("https://www.euronews.com/")
    assert all(message.allowed_mentions == {"parse": []} for message in emu.messages(channel))
    assert choices[0]["value"] == "AI"
    assert refused.content == manager_refused.content == OPERATOR_REFUSAL
    assert "0 added" in report.embeds[0]["description"]
    assert b"Traceback" not in stderr


async def test_newsbot_run_with_a_rejected_token_explains_what_to_do(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    process = await start_newsbot(discord_emulator, tmp_path, "not-the-token")

    _, stderr = await asyncio.wait_for(process.communicate(), 30)

    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 2
    assert lines[-1].startswith("newsbot: error: Discord rejected the token in DISCORD_TOKEN")
    assert "Traceback" not in stderr.decode()


async def test_newsbot_sync_registers_the_commands_in_one_server(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild = emu.add_guild("Dev")
    env = {
        **os.environ,
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "NEWSBOT_DB": str(tmp_path / "news.db"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sync", "--guild", str(guild.id),
        cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip

    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)

    assert process.returncode == 0, stderr.decode()
    assert "Synced 4 slash commands to server" in stdout.decode()
    assert {c["name"] for c in emu.registered_commands(guild)} == {
        "news",
        "topics",
        "seeds",
        "digest",
    }
    assert emu.registered_commands() == []
    assert emu.gateway.identifies == 0  # REST only: no gateway session


# --- the database or the lease lost under a running bot ----------------------------------------


@contextlib.asynccontextmanager
async def serving(bot: NewsBot, emu: DiscordEmulator) -> AsyncIterator[asyncio.Task[None]]:
    """`bot` started against `emu` and ready, for tests where it stops on its own (which the
    emulator's running_bot reports as a crash): the task ends when it has stopped."""
    logins = len(emu.requests_to("GET", "/users/@me"))
    task = asyncio.create_task(bot.start(emu.token), name="bot-under-test")
    try:
        await emu.wait_until(
            lambda: len(emu.requests_to("GET", "/users/@me")) > logins, 10, "the bot to log in"
        )
        await asyncio.wait_for(bot.wait_until_ready(), 10)
        yield task
    finally:
        await bot.close()
        await asyncio.wait_for(task, 10)


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_digest_set_after_the_database_was_deleted_is_refused_clearly_and_the_bot_stops(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    emu = discord_emulator
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    admin = emu.add_member(guild, "admin", permissions=MANAGE_GUILD)
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False)
    bot.database_watch = 3600.0  # the command's own write is what notices
    async with serving(bot, emu) as task:
        os.unlink(tmp_path / "news.db")
        handle = await emu.invoke(
            guild, channel, admin, "digest",
            {"channel": channel, "time": "09:00", "timezone": "Europe/Paris"}, subcommand="set",
        )  # fmt: skip
        reply = await handle.response()
        await asyncio.wait_for(task, 10)

    assert reply.ephemeral
    assert reply.content == STOPPING
    assert isinstance(bot.stopped_by, DatabaseLost)
    assert errors_logged(caplog) == [str(bot.stopped_by)]
    assert "news.db was deleted or replaced while newsbot was running" in str(bot.stopped_by)


async def test_the_database_watch_stops_the_bot_when_the_database_is_deleted(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False)
    bot.database_watch = 0.01
    async with serving(bot, discord_emulator) as task:
        await bot.store.check_database()
        os.unlink(tmp_path / "news.db")
        await asyncio.wait_for(task, 10)  # no command, no write: the watch alone

    assert isinstance(bot.stopped_by, DatabaseLost)
    assert "(the file is gone)" in str(bot.stopped_by)
    assert errors_logged(caplog) == [str(bot.stopped_by)]


async def test_a_seed_reload_that_finds_the_database_deleted_stops_the_bot_in_one_line(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False)
    bot.database_watch = 3600.0  # the reload's own write is what notices
    async with serving(bot, discord_emulator) as task:
        os.unlink(tmp_path / "news.db")
        await bot.get_cog("Seeds")._reload_at_start()  # type: ignore[union-attr]
        await asyncio.wait_for(task, 10)

    assert isinstance(bot.stopped_by, DatabaseLost)
    assert errors_logged(caplog) == [str(bot.stopped_by)]  # no traceback from the reload


async def test_a_guard_failing_for_a_while_warns_once_and_says_when_it_works_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False)
    rounds: list[int] = []
    done = asyncio.Event()

    async def check() -> None:
        rounds.append(1)
        if len(rounds) <= 5:
            raise StoreError("database busy")
        done.set()

    with caplog.at_level(logging.DEBUG, logger="bot.app"):
        bot._guard("lease renewal", 0.001, check)
        await asyncio.wait_for(done.wait(), 5)
        await bot.close()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["lease renewal failed: database busy"]  # five failures, one warning
    assert "lease renewal works again" in caplog.text


async def test_a_bot_whose_lease_another_newsbot_took_stops(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False, schedule_digests=True)
    bot.lease_renewal = 0.01
    async with serving(bot, discord_emulator) as task:
        with sqlite3.connect(tmp_path / "news.db", timeout=10) as db:
            db.execute("UPDATE instance_lease SET owner = 'other:1:ab', host = 'other', pid = 1")
        await asyncio.wait_for(task, 10)

    assert isinstance(bot.stopped_by, InstanceLost)
    assert "(pid 1 on host other," in str(bot.stopped_by)
    assert errors_logged(caplog) == [str(bot.stopped_by)]


async def test_newsbot_run_exits_75_when_its_database_is_deleted_and_a_restart_serves_a_new_one(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild, channel, reader, admin = readers_server(emu)

    async def served_news() -> list[dict[str, object]]:
        # The seeds load in the background after start: ask until the topic is there.
        async with asyncio.timeout(30):
            while True:
                handle = await emu.invoke(guild, channel, reader, "news", {"topic": "AI"})
                reply = await handle.response(timeout=5)
                if reply.embeds:
                    return reply.embeds
                await asyncio.sleep(0.2)

    process = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_for_ready(timeout=30)
        await served_news()
        os.unlink(tmp_path / "news.db")
        handle = await emu.invoke(
            guild, channel, admin, "digest",
            {"channel": channel, "time": "09:00", "timezone": "Europe/Paris"}, subcommand="set",
        )  # fmt: skip
        refused = await handle.response(timeout=10)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    lines = stderr.decode().strip().splitlines()
    assert process.returncode == 75, stderr.decode()
    assert refused.content == STOPPING
    assert len([line for line in lines if " ERROR " in line]) == 1
    assert lines[-1].startswith(
        f"newsbot: error: database {tmp_path / 'news.db'} was deleted or replaced while newsbot "
        "was running (the file is gone); nothing more is saved; restart newsbot"
    )
    assert "Traceback" not in stderr.decode()

    restarted = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_until(lambda: emu.gateway.identifies >= 2 and emu.gateway.ready_sent, 30)
        assert len(await served_news()) == 5
    finally:
        restarted.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(restarted.communicate(), 30)
    assert restarted.returncode == 0, stderr.decode()


async def test_a_second_newsbot_run_through_a_symlink_is_refused_in_one_line(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    first = await start_newsbot(discord_emulator, tmp_path, discord_emulator.token)
    try:
        await discord_emulator.wait_for_ready(timeout=30)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "news.db").symlink_to(tmp_path / "news.db")

        second = await start_newsbot(discord_emulator, elsewhere, discord_emulator.token)
        _, stderr = await asyncio.wait_for(second.communicate(), 30)
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 30)

    lines = stderr.decode().strip().splitlines()
    assert second.returncode == 2
    assert lines[-1].startswith(
        f"newsbot: error: another newsbot is already running on {elsewhere / 'news.db'} "
        f"(pid {first.pid} on host {socket.gethostname()}, lease until "
    )
    assert "Traceback" not in stderr.decode()
    assert first.returncode == 0


async def test_a_fifth_newsbot_run_on_a_running_shard_is_refused_in_one_line(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    # Four processes run shards 0-3 of 4; the first is enough to stand for them all.
    first = await start_newsbot(
        discord_emulator, tmp_path, discord_emulator.token,
        NEWSBOT_SHARD_COUNT="4", NEWSBOT_SHARD_IDS="0",
    )  # fmt: skip
    try:
        await discord_emulator.wait_for_ready(timeout=30)
        fifth = await start_newsbot(
            discord_emulator, tmp_path, discord_emulator.token,
            NEWSBOT_SHARD_COUNT="4", NEWSBOT_SHARD_IDS="0",
        )  # fmt: skip
        _, stderr = await asyncio.wait_for(fifth.communicate(), 30)
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 30)

    lines = stderr.decode().strip().splitlines()
    assert fifth.returncode == 2, stderr.decode()
    assert lines[-1].startswith(
        f"newsbot: error: shard 0 of 4 is run by pid {first.pid} on host {socket.gethostname()}"
        " until "
    )
    assert lines[-1].endswith(" UTC; stop it first")
    assert "Traceback" not in stderr.decode()
    assert first.returncode == 0
    # The fifth never reached the gateway: only the first identified.
    identified = [r.detail["shard"] for r in discord_emulator.gateway.log if r.kind == "identify"]
    assert identified == [[0, 4]]


async def test_a_sharded_bot_holds_its_shards_leases_and_releases_them_when_it_stops(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    bot = build_newsbot(
        tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False, schedule_digests=True,
        shard_count=2, shard_ids=(1,),
    )  # fmt: skip
    async with serving(bot, discord_emulator):
        with sqlite3.connect(tmp_path / "news.db", timeout=10) as db:
            held = db.execute("SELECT shard_count, shard_id, owner FROM shard_leases").fetchall()
            whole = db.execute("SELECT count(*) FROM instance_lease").fetchone()

    assert held == [(2, 1, bot.store.owner)]
    assert whole == (0,)
    with sqlite3.connect(tmp_path / "news.db") as db:
        assert db.execute("SELECT count(*) FROM shard_leases").fetchone() == (0,)


async def test_a_sharded_bot_whose_shard_another_newsbot_took_stops(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = build_newsbot(
        tmp_path, SHIPPED_SEEDS, reload_seeds_at_start=False, schedule_digests=True,
        shard_count=2, shard_ids=(0,),
    )  # fmt: skip
    bot.lease_renewal = 0.01
    async with serving(bot, discord_emulator) as task:
        with sqlite3.connect(tmp_path / "news.db", timeout=10) as db:
            db.execute("UPDATE shard_leases SET owner = 'other:1:ab', host = 'other', pid = 1")
        await asyncio.wait_for(task, 10)

    assert isinstance(bot.stopped_by, InstanceLost)
    assert str(bot.stopped_by).startswith("another newsbot took over shard 0 of 2 on ")
    assert "(pid 1 on host other)" in str(bot.stopped_by)
    assert errors_logged(caplog) == [str(bot.stopped_by)]
