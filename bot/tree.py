"""The command tree's single error handler and the single way newsbot answers an interaction.

User mistakes become a short ephemeral explanation; anything unexpected is logged with the
command and its options, and the user gets a short apology instead of a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
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
    if isinstance(error, app_commands.TransformerError):
        return _unusable_value(error)
    return None


def _unusable_value(error: app_commands.TransformerError) -> str:
    # discord.py resolves a channel option among the channels it knows in the interaction's
    # server: one from another server (or one newsbot cannot see) ends here.
    if error.type is discord.AppCommandOptionType.channel:
        return "That channel is not in this server (or newsbot cannot see it). Nothing was done."
    shown = repr(error.value)
    shown = shown if len(shown) <= 40 else shown[:39] + "…"
    return f"{shown} is not a value newsbot can use there. Nothing was done."


def out_of_limits(command: object, values: Mapping[str, object]) -> str | None:
    """What is wrong with an option value (by option name) outside the limits the command
    declares (Range, type), or None. Discord's client keeps users within them, but a stale or
    modified client does not, and discord.py passes such values through unchecked."""
    if not isinstance(command, app_commands.Command):
        return None
    for parameter in command.parameters:
        if parameter.display_name in values:
            problem = _outside(parameter, values[parameter.display_name])
            if problem:
                return f"{parameter.display_name} must be {problem}. Nothing was done."
    return None


def _outside(parameter: app_commands.Parameter, value: object) -> str | None:
    """The rule `value` breaks ("a whole number from 1 to 10"), or None."""
    kind = parameter.type
    low, high = parameter.min_value, parameter.max_value
    if kind is discord.AppCommandOptionType.boolean:
        return None if isinstance(value, bool) else "true or false"
    if kind is discord.AppCommandOptionType.integer:
        number = value if isinstance(value, int) and not isinstance(value, bool) else None
        return _within("a whole number", number, low, high)
    if kind is discord.AppCommandOptionType.number:
        valid = isinstance(value, int | float) and not isinstance(value, bool) and value == value
        return _within("a number", value if valid else None, low, high)  # type: ignore[arg-type]
    if kind is discord.AppCommandOptionType.string:
        if not isinstance(value, str):
            return "text"
        if _within("", len(value), low, high) is not None:
            return f"{_span(low, high)} characters long"
    return None


def _within(what: str, number: float | None, low: float | None, high: float | None) -> str | None:
    """None when `number` (None: not a number at all) is in [low, high]; else the rule."""
    if number is not None and (low is None or number >= low) and (high is None or number <= high):
        return None
    span = _span(low, high)
    return f"{what} {span}" if span else what


def _span(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    if low is not None:
        return f"at least {low:g}"
    return f"at most {high:g}" if high is not None else ""


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
    """newsbot's command tree: option values are held to the declared limits, and every
    command error goes through `handle_error`."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Before any command runs, so that no command sees a value outside its own signature.
        if interaction.type is discord.InteractionType.application_command:
            values = {name: value for name, value in interaction.namespace}
            problem = out_of_limits(interaction.command, values)
            if problem:
                raise UserFacingError(problem)
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await handle_error(interaction, error)
