"""`newsbot seeds load` while another newsbot process reloads the same database: one line on
stderr, exit code 75 (try again later), nothing loaded."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.common import EXIT_TEMPFAIL
from bot.store.sqlite import SqliteStore
from tests.helpers import SHIPPED_SEEDS


async def test_seeds_load_while_another_process_reloads_says_so_and_exits_75(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "news.db"
    monkeypatch.setenv("NEWSBOT_DB", str(database))
    monkeypatch.setenv("NEWSBOT_SEEDS", str(SHIPPED_SEEDS))
    monkeypatch.delenv("NEWSBOT_CONFIG", raising=False)
    reloading = SqliteStore(database)  # a bot reloading at start, say
    await reloading.open()
    try:
        async with reloading.task_lock("seeds-reload"):
            code = await asyncio.to_thread(main, ["seeds", "load"])
        stored = await reloading.story_count()
    finally:
        await reloading.close()

    captured = capsys.readouterr()
    assert code == EXIT_TEMPFAIL == 75
    assert captured.out == ""
    assert captured.err.startswith(
        "newsbot: error: a seed reload is running in another newsbot process "
        f"(pid {os.getpid()} on {socket.gethostname()}, since "
    )
    assert captured.err.endswith(" UTC); try again when it is done\n")
    assert captured.err.count("\n") == 1
    assert stored == 0


def test_seeds_load_help_names_its_try_again_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["seeds", "load", "--help"]) == 0

    assert "Exit code 75" in " ".join(capsys.readouterr().out.split())
