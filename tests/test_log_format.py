"""Log records as plain lines or, with `log_format: json`, one JSON object per line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from apscheduler.events import EVENT_JOB_EXECUTED, JobExecutionEvent

from bot import config
from bot.config import ConfigError
from bot.log_format import (
    LIBRARY_FLOORS,
    REDACTED,
    JsonFormatter,
    formatter,
    quiet_voice_warnings,
    set_log_level,
)
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.helpers import SHIPPED_SEEDS, build_newsbot, readers_server, run_module, start_newsbot


def record(message: str, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("bot.poster", logging.WARNING, __file__, 1, message, (), None)
    made.__dict__.update(extra)
    made.created = 1_764_460_800.25  # 2025-11-30 00:00:00.250 UTC
    return made


def test_a_json_line_has_time_level_logger_message_and_the_events_fields() -> None:
    line = JsonFormatter().format(record("digest posted\nto #news", server=42, digest="d-7"))

    assert "\n" not in line
    assert json.loads(line) == {
        "time": "2025-11-30T00:00:00.250+00:00",
        "level": "WARNING",
        "logger": "bot.poster",
        "message": "digest posted\nto #news",
        "server": 42,
        "digest": "d-7",
    }


def test_a_json_line_carries_the_traceback_in_one_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        failed = record("send failed")
        failed.exc_info = sys.exc_info()

    entry = json.loads(JsonFormatter().format(failed))

    assert entry["message"] == "send failed"
    assert entry["exception"].startswith("Traceback") and "ValueError: boom" in entry["exception"]


def test_text_stays_the_plain_line() -> None:
    line = formatter("text").format(record("reloaded"))
    assert line.endswith("WARNING bot.poster: reloaded")


def test_log_format_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "newsbot.yaml"
    path.write_text("log_format: JSON\n")
    assert config.load(path, environ={}).log_format == "json"
    assert config.load(None, environ={"NEWSBOT_LOG_FORMAT": "text"}).log_format == "text"
    with pytest.raises(ConfigError, match=r"^log_format must be text or json, not 'xml'$"):
        config.load(None, environ={"NEWSBOT_LOG_FORMAT": "xml"})


def test_every_line_newsbot_logs_with_json_is_an_object(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "NEWSBOT_LOG_FORMAT": "json",
        "NEWSBOT_LOG_LEVEL": "DEBUG",  # terminal commands log only problems otherwise
        "NEWSBOT_DB": str(tmp_path / "news.db"),
    }
    loaded = run_module("bot", "seeds", "load", env=env, timeout=120)

    assert loaded.returncode == 0, loaded.stderr[-2000:]
    lines = loaded.stderr.splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(entries[0])
    assert any(entry["logger"].startswith("bot") for entry in entries)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_the_token_is_never_written_whatever_logs_it(log_format: str) -> None:
    token = "MTA1.fake-token.xyz"
    try:
        raise RuntimeError(f"refused {token}")
    except RuntimeError:
        leaking = record(f"Authorization: Bot {token}")
        leaking.exc_info = sys.exc_info()

    line = formatter(log_format, [token]).format(leaking)

    assert token not in line
    assert line.count(REDACTED) == 2


def loggers_in(log: str) -> set[str]:
    """The logger of every line of a text log ("date time LEVEL logger: message")."""
    return {line.split()[3].rstrip(":") for line in log.splitlines() if len(line.split()) > 3}


async def test_a_whole_run_at_debug_logs_newsbots_detail_but_not_the_token_nor_each_statement(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild, channel, reader, _ = readers_server(emu)
    process = await start_newsbot(emu, tmp_path, emu.token, NEWSBOT_LOG_LEVEL="DEBUG")
    try:
        await emu.wait_for_ready(timeout=30)
        await (await emu.invoke(guild, channel, reader, "topics", {})).response(timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)

    logged = (out + err).decode()
    # The run was logged, at DEBUG: the gateway's events included (the payloads where a token
    # could hide).
    assert "bot.tree: /topics answered" in logged
    assert "discord.gateway: For Shard ID 0: WebSocket Event:" in logged
    assert " DEBUG   bot.tree: /topics options" in logged
    assert emu.token not in logged
    # aiosqlite's two lines per statement would drown newsbot's own (log_format.LIBRARY_FLOORS).
    assert "aiosqlite" not in loggers_in(logged)


# --- how much the libraries say -----------------------------------------------------------------


@pytest.fixture
def log_levels() -> Iterator[None]:
    """The levels set_log_level changes, put back after the test."""
    names = ["", *LIBRARY_FLOORS]
    saved = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.usefixtures("log_levels")
async def test_digest_ticks_at_info_log_nothing_from_the_scheduler(
    discord_emulator: DiscordEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    set_log_level("INFO")
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, schedule_digests=True)
    async with running_bot(bot, discord_emulator, loggers=("discord", "bot")):
        scheduler = bot.get_cog("Digest").scheduler  # type: ignore[union-attr]
        [tick] = scheduler.get_jobs()
        for _ in range(2):
            ran = asyncio.get_running_loop().create_future()

            def done(event: JobExecutionEvent, ran: asyncio.Future[None] = ran) -> None:
                ran.get_loop().call_soon_threadsafe(ran.set_result, None)

            scheduler.add_listener(done, EVENT_JOB_EXECUTED)
            tick.modify(next_run_time=datetime.now(UTC))  # the minute's tick, now
            await asyncio.wait_for(ran, 10)
            scheduler.remove_listener(done)

    logged = {record.name for record in caplog.records}
    assert "bot.app" in logged  # newsbot's INFO lines are there...
    assert not {name for name in logged if name.startswith("apscheduler")}  # ...the ticks' not


@pytest.mark.usefixtures("log_levels")
def test_a_library_never_says_more_than_newsbots_own_level() -> None:
    set_log_level("WARNING")

    assert not logging.getLogger("aiosqlite").isEnabledFor(logging.INFO)
    assert logging.getLogger("bot.poster").getEffectiveLevel() == logging.WARNING


def test_discord_pys_voice_library_warnings_are_dropped_and_nothing_else() -> None:
    client = logging.getLogger("discord.client")
    quiet_voice_warnings()
    filters = len(client.filters)
    quiet_voice_warnings()  # again (newsbot run, then a settings reload): no second filter

    def passes(message: str) -> bool:
        made = logging.LogRecord("discord.client", logging.WARNING, __file__, 1, message, (), None)
        return bool(client.filter(made))

    assert not passes("PyNaCl is not installed, voice will NOT be supported")
    assert passes("Shard ID 0 has stopped responding to the gateway.")
    assert len(client.filters) == filters
