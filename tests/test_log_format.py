"""Log records as plain lines or, with `log_format: json`, one JSON object per line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path

import pytest

from bot import config
from bot.config import ConfigError
from bot.log_format import REDACTED, JsonFormatter, formatter
from tests.discord_emulator import DiscordEmulator
from tests.helpers import run_module, start_newsbot


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


async def test_a_whole_run_at_debug_never_logs_the_token(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    emu = discord_emulator
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    reader = emu.add_member(guild, "reader")
    process = await start_newsbot(emu, tmp_path, emu.token, NEWSBOT_LOG_LEVEL="DEBUG")
    try:
        await emu.wait_for_ready(timeout=30)
        await (await emu.invoke(guild, channel, reader, "topics", {})).response(timeout=10)
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = await asyncio.wait_for(process.communicate(), 30)

    logged = (out + err).decode()
    # The run was logged, at DEBUG: the gateway's events and the REST requests included.
    assert "bot.tree: /topics answered" in logged
    assert "discord.gateway" in logged and len(logged.splitlines()) > 50
    assert emu.token not in logged
