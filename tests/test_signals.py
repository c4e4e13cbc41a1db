"""`newsbot run` and the signals a supervisor sends it, as real processes against the emulator:
SIGTERM stops it gracefully (the digest message in flight is answered and recorded, nothing
after it is sent, exit 0), and the next start sends the rest of the digest exactly once;
SIGHUP reloads the settings that can change while it runs, and says what changed."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.corpus import generate
from bot.app import seed_reloader
from bot.config import SeedSettings
from bot.models import DigestSettings
from bot.store.sqlite import SqliteStore
from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.state import Channel, Guild, StoredMessage
from tests.helpers import readers_server, start_newsbot

# A digest this long takes several messages (at most 10 embeds each).
DIGEST_STORIES = 25
# How long the emulator holds the answer to the digest's first message: SIGTERM comes meanwhile.
HELD_ANSWER = 2.0
# What a supervisor gives newsbot between SIGTERM and SIGKILL (newsbot.service: 15 s).
STOP_WITHIN = 10.0


async def due_digest(tmp_path: Path, guild: Guild, channel: Channel) -> None:
    """A seed folder and database where the server's digest is due (a few minutes ago): the
    catch-up tick of `newsbot run` posts it as soon as the bot is ready."""
    seeds = tmp_path / "seeds"
    generate(seeds, DIGEST_STORIES + 5)
    store = SqliteStore(tmp_path / "news.db")
    await store.open()
    try:
        await seed_reloader(store, SeedSettings(folder=seeds, workers=1)).reload()
        now = datetime.now(UTC)
        await store.save_digest_settings(
            DigestSettings(
                guild_id=guild.id,
                channel_id=channel.id,
                local_time=(now - timedelta(minutes=3)).time().replace(second=0, microsecond=0),
                timezone="UTC",
                count=DIGEST_STORIES,
                effective_from=now - timedelta(days=1),
            )
        )
    finally:
        await store.close()


def ledger(tmp_path: Path) -> tuple[str, list[int | None]]:
    """The digest's status and, per planned message, the id it was recorded as posted with."""
    with sqlite3.connect(tmp_path / "news.db") as db:
        (status,) = db.execute("SELECT status FROM digest_runs").fetchone()
        posted = [
            row[0] for row in db.execute("SELECT message_id FROM digest_messages ORDER BY idx")
        ]
    return status, posted


def posts(emu: DiscordEmulator, channel: Channel) -> list[StoredMessage]:
    return [message for message in emu.messages(channel) if message.source == "channel"]


async def stop(process: asyncio.subprocess.Process) -> str:
    """SIGTERM, then newsbot's log once it exited (killed if it outlives STOP_WITHIN)."""
    process.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(process.communicate(), STOP_WITHIN)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return err.decode()


class Log:
    """A running newsbot's log, read line by line as it comes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self.lines: list[str] = []

    async def until(self, text: str) -> str:
        """The next line containing `text` (those before it are kept in `lines` too)."""
        async with asyncio.timeout(30):
            while True:
                line = (await self._stream.readline()).decode()
                if not line:
                    raise AssertionError(f"newsbot ended without logging {text!r}: {self.lines}")
                self.lines.append(line.rstrip("\n"))
                if text in line:
                    return self.lines[-1]


async def test_sigterm_during_a_digest_send_records_that_message_and_the_next_start_sends_the_rest(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    await due_digest(tmp_path, guild, channel)
    emu.after_create("delay", delay=HELD_ANSWER, channel=channel.id)
    process = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_until(lambda: posts(emu, channel), 30, "the digest's first message")
    finally:
        log = await stop(process)

    assert process.returncode == 0, log
    [first] = posts(emu, channel)
    status, recorded = ledger(tmp_path)
    assert len(recorded) > 1
    assert (status, recorded) == ("claimed", [first.id] + [None] * (len(recorded) - 1)), log

    restarted = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_until(
            lambda: len(posts(emu, channel)) >= len(recorded), 30, "the rest of the digest"
        )
    finally:
        # Whatever of the last message is still under way (its answer, its record, the run's
        # end) a graceful stop finishes.
        log = await stop(restarted)

    assert restarted.returncode == 0, log
    status, recorded = ledger(tmp_path)
    assert status == "sent"
    assert [message.id for message in posts(emu, channel)] == recorded


async def test_sighup_applies_the_reloadable_settings_and_names_the_rest(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild, channel, reader, _ = readers_server(emu)
    path = tmp_path / "newsbot.yaml"
    path.write_text("log_level: INFO\n")
    process = await start_newsbot(emu, tmp_path, emu.token, config=path)
    log = Log(process)
    try:
        await log.until("bot.app: logged in as")
        path.write_text(
            "log_level: DEBUG\ndigest:\n  send_rate: 10\ndiscord:\n  page_timeout: 60\n"
        )
        process.send_signal(signal.SIGHUP)
        applied = await log.until("bot.settings_reload")
        restart = await log.until("bot.settings_reload")
        before = len(log.lines)
        await (await emu.invoke(guild, channel, reader, "topics", {})).response(timeout=10)
        debug = await log.until("bot.tree: /topics options")
        path.write_text("log_level: [DEBUG\n")
        process.send_signal(signal.SIGHUP)
        refused = await log.until("bot.settings_reload")
    finally:
        await stop(process)

    assert process.returncode == 0
    assert applied.endswith(
        f" INFO    bot.settings_reload: settings reloaded from {path}: digest.send_rate 45.0 ->"
        " 10.0, log_level INFO -> DEBUG"
    )
    assert restart.endswith(
        " WARNING bot.settings_reload: settings changed that take effect only after a restart:"
        " discord.page_timeout 180.0 -> 60.0"
    )
    # DEBUG from the reload on, not before it.
    assert not [line for line in log.lines[: before - 2] if " DEBUG " in line]
    assert " DEBUG   bot.tree: " in debug
    assert refused.endswith(
        " ERROR   bot.settings_reload: settings not reloaded, the running ones stay: config file"
        f" {path} is not valid YAML (line 2)"
    )
