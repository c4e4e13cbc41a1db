"""Shared pytest fixtures.

``discord_emulator``: a started local Discord with discord.py pointed at it
(see tests/discord_emulator/__init__.py for its API).
"""

from tests.discord_emulator.fixtures import discord_emulator

__all__ = ["discord_emulator"]
