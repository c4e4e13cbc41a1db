"""Settings reloaded while newsbot runs: which changed (pure), what the running bot takes up,
and what a reload says. The signal itself is tests/test_signals.py's."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from bot.config import DatabaseSettings, GlobalDigestSettings, Secret, Settings
from bot.settings_reload import APPLIERS, Change, SettingsReloader, changes, reloaded
from tests.helpers import World

RUNNING = Settings()


def test_identical_settings_have_no_changes() -> None:
    assert changes(RUNNING, Settings()) == []


def test_each_changed_setting_is_named_by_its_dotted_name_with_both_values() -> None:
    new = replace(RUNNING, log_level="DEBUG", digest=replace(RUNNING.digest, send_rate=10.0))

    found = changes(RUNNING, new)

    assert found == [
        Change("digest.send_rate", 45.0, 10.0),
        Change("log_level", "INFO", "DEBUG"),
    ]
    assert str(found[0]) == "digest.send_rate 45.0 -> 10.0"


def test_a_changed_token_or_database_password_is_never_shown() -> None:
    old = replace(
        RUNNING,
        discord_token=Secret("old-token"),
        database=DatabaseSettings(url="postgresql://newsbot:old-pw@db/newsbot"),
    )
    new = replace(
        RUNNING,
        discord_token=Secret("new-token"),
        database=DatabaseSettings(url="postgresql://newsbot:new-pw@db/newsbot"),
    )

    shown = ", ".join(map(str, changes(old, new)))

    assert "database.url" in shown and "discord_token" in shown
    for secret in ("old-token", "new-token", "old-pw", "new-pw"):
        assert secret not in shown


def test_the_running_settings_take_only_the_applied_changes() -> None:
    new = replace(RUNNING, log_level="DEBUG", database=DatabaseSettings(path=Path("other.db")))
    applied = [change for change in changes(RUNNING, new) if change.setting in APPLIERS]

    running = reloaded(RUNNING, applied)

    assert running.log_level == "DEBUG"
    assert running.database == RUNNING.database  # needs a restart: still the one in use


async def test_a_reload_applies_the_send_rate_and_names_what_needs_a_restart(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "newsbot.yaml"
    path.write_text("digest:\n  send_rate: 5\n")
    # The running settings as they would have come from the file: only the reload's differ.
    world.bot.settings = replace(
        world.bot.settings, digest=GlobalDigestSettings(), config_path=path
    )
    caplog.set_level(logging.INFO, logger="bot.settings_reload")

    await SettingsReloader(world.bot, path).reload()

    assert world.bot.send_pacer.rate == 5.0
    assert world.bot.settings.digest.send_rate == 5.0
    lines = [
        (r.levelname, r.getMessage()) for r in caplog.records if r.name == "bot.settings_reload"
    ]
    assert lines[0] == ("INFO", f"settings reloaded from {path}: digest.send_rate 45.0 -> 5.0")
    # The world's bot runs on tmp_path's seeds and database, not the file's defaults.
    assert lines[1][0] == "WARNING"
    assert lines[1][1].startswith("settings changed that take effect only after a restart: seeds.")
    assert len(lines) == 2


async def test_a_config_file_that_no_longer_parses_keeps_the_running_settings(
    world: World, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "newsbot.yaml"
    path.write_text("digest: [send_rate: 5\n")
    before = world.bot.settings
    world.run.allow_error("settings not reloaded")

    await SettingsReloader(world.bot, path).reload()

    assert world.bot.settings is before
    [error] = [r for r in caplog.records if r.name == "bot.settings_reload"]
    assert error.levelname == "ERROR"
    assert error.getMessage() == (
        f"settings not reloaded, the running ones stay: config file {path} is not valid YAML"
        " (line 2)"
    )


async def test_a_reload_switches_the_seed_watch_on_and_off(world: World, tmp_path: Path) -> None:
    path = tmp_path / "newsbot.yaml"
    world.bot.settings = replace(world.bot.settings, config_path=path)
    watcher = world.bot.get_cog("Seeds").watcher  # type: ignore[union-attr]
    assert not watcher.running

    path.write_text("seeds:\n  watch: true\n")
    await SettingsReloader(world.bot, path).reload()

    assert watcher.running
    assert world.bot.settings.seeds.watch

    path.write_text("seeds:\n  watch: false\n")
    await SettingsReloader(world.bot, path).reload()

    assert not watcher.running
    assert not world.bot.settings.seeds.watch
