"""Shared pytest fixtures (the helpers they use are in tests/helpers.py).

``discord_emulator``: a started local Discord with discord.py pointed at it
(see tests/discord_emulator/__init__.py for its API).
``world``: newsbot itself, running against that emulator with the shipped seeds loaded, in a
server with a news channel, a reader and an admin (Manage Server).
``postgres_server``: one throwaway PostgreSQL server for the whole run (tests/postgres.py);
``postgres_url``: a new, empty database on it for one test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.log_format import quiet_voice_warnings
from tests.discord_emulator import DiscordEmulator
from tests.discord_emulator.fixtures import discord_emulator
from tests.helpers import FakeClock, World, serving
from tests.postgres import PostgresServer, start_or_give_up

__all__ = ["discord_emulator", "world"]

# As `newsbot run` does: discord.py warns about voice libraries once per process, from the first
# client it builds, which under pytest-xdist is whichever test a worker happens to run first.
quiet_voice_warnings()


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
    async with serving(
        discord_emulator, tmp_path, clock=clock, page_timeout=page_timeout
    ) as running:
        yield running


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Started at the first test that needs it, stopped after the last test of the run."""
    server = PostgresServer.from_environment(os.environ)
    start_or_give_up(server, os.environ)
    yield server
    server.stop()


@pytest.fixture
async def postgres_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A new, empty database of its own for one test, dropped afterwards."""
    url = await postgres_server.create_database()
    yield url
    await postgres_server.drop_database(url)
