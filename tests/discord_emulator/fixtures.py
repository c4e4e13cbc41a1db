"""pytest fixtures for tests that run a bot against the emulator (exposed by tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .emulator import DiscordEmulator
from .harness import point_client_at


@pytest.fixture
async def discord_emulator(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[DiscordEmulator]:
    """A started emulator with discord.py pointed at it (restored afterwards).

    Tune ``discord_emulator.limits`` (deadlines, rate limits) before starting the bot.
    """
    async with DiscordEmulator() as emu:
        point_client_at(emu, monkeypatch)
        yield emu
