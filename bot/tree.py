"""The command tree's single error handler and the single way newsbot answers an interaction.

User mistakes become a short ephemeral explanation; anything unexpected is logged with the
command and its options, and the user gets a short apology instead of a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

import discord
from discord import app_commands

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. It has been logged; please try again later."


class UserFacingError(app_commands.AppCommandError):
    """A mistake the user can fix; its message is shown to them as it is."""


async def reply(
    interaction: discord.Interaction, content: str | None = None, **kwargs: Any
) -> None:
    """Answer an interaction: the initial response if none was sent yet, else a followup.

    A deferred interaction already has its response (the "thinking" state), so the answer
    becomes the followup that replaces it.
    """
    if interaction.response.is_done():
        await interaction.followup.send(content, **kwargs)
    else:
        await interaction.response.send_message(content, **kwargs)


def explain(error: Exception) -> str | None:
    """The message for a user mistake, or None when the error is unexpected."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, UserFacingError):
        return str(error)
    if isinstance(error, app_commands.MissingPermissions):
        labels = [_permission_label(name) for name in error.missing_permissions]
        noun = "permission" if len(labels) == 1 else "permissions"
        return f"You need the {' and '.join(labels)} {noun} to use this command."
    if isinstance(error, app_commands.NoPrivateMessage):
        return "This command only works in a server."
    if isinstance(error, app_commands.CommandOnCooldown):
        return f"Slow down: try again in {error.retry_after:.0f} s."
    if isinstance(error, app_commands.CheckFailure):
        return "You cannot use this command here."
    return None


def _permission_label(name: str) -> str:
    # discord.py's names say "guild" where Discord's settings screens say "Server".
    return name.replace("guild", "server").replace("_", " ").title()


async def handle_error(interaction: discord.Interaction, error: Exception) -> None:
    """Explain a user mistake, or log the unexpected and apologise. Never raises."""
    message = explain(error)
    if message is None:
        command = interaction.command.qualified_name if interaction.command else "component"
        # A Namespace answers None for any attribute, so dict() would take it for a mapping.
        options = {name: value for name, value in interaction.namespace}
        original = getattr(error, "original", error)
        log.error(
            "/%s failed (options %s, user %s, guild %s)",
            command,
            options,
            interaction.user.id,
            interaction.guild_id,
            exc_info=original,
        )
        message = APOLOGY
    try:
        await reply(interaction, message, ephemeral=True)
    except discord.HTTPException:
        # The interaction expired or Discord is unreachable: the log line above is all we can do.
        log.warning("could not tell the user about a failed interaction", exc_info=True)


class NewsTree(app_commands.CommandTree):
    """newsbot's command tree: every command error goes through `handle_error`."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await handle_error(interaction, error)
