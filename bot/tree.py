"""The command tree's single error handler and the single way newsbot answers an interaction.

User mistakes become a short ephemeral explanation; anything unexpected is logged with the
command and its options, and the user gets a short apology instead of a traceback.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import discord
from discord import app_commands

from bot.errors import Unrecoverable, UserError
from bot.metrics import Metrics

log = logging.getLogger(__name__)

APOLOGY = "Sorry, something went wrong on our side. It has been logged; please try again later."
# The database went away under the bot (the operator's files: not named to a member).
STOPPING = (
    "Nothing was saved: newsbot lost its database and is stopping to start again. "
    "Try again in a few minutes."
)


class UserFacingError(UserError, app_commands.AppCommandError):
    """A mistake the user can fix; its message is shown to them as it is.

    Any `UserError` is; this one is also an `AppCommandError`, which a check must raise for
    discord.py to hand it to the tree's error handler."""


class BadOptionValue(app_commands.AppCommandError):
    """An option value outside the type or limits the command declares."""

    def __init__(self, parameter: app_commands.Parameter, value: object) -> None:
        super().__init__(f"option {parameter.display_name!r}: {value!r} is not acceptable")
        self.parameter = parameter
        self.value = value


def check_options(interaction: discord.Interaction) -> None:
    """Refuse option values outside what the command declares, before it runs.

    Discord's client enforces each option's type and limits, but a stale client or a command
    registered with older limits can send anything, and discord.py passes the values on
    unchecked: `Range` only declares the limits to Discord.
    """
    command = interaction.command
    if not isinstance(command, app_commands.Command):
        return
    parameters = {parameter.display_name: parameter for parameter in command.parameters}
    for name, value in interaction.namespace:
        parameter = parameters.get(name)
        if parameter is not None and not is_acceptable(parameter, value):
            raise BadOptionValue(parameter, value)


def is_acceptable(parameter: app_commands.Parameter, value: object) -> bool:
    """Whether `value` has the parameter's type and lies within its limits and choices."""
    kind = parameter.type
    if kind is discord.AppCommandOptionType.boolean:
        return isinstance(value, bool)
    if kind is discord.AppCommandOptionType.string:
        return (
            isinstance(value, str) and _within(len(value), parameter) and _chosen(value, parameter)
        )
    if kind in (discord.AppCommandOptionType.integer, discord.AppCommandOptionType.number):
        number = int if kind is discord.AppCommandOptionType.integer else (int, float)
        return (
            isinstance(value, number)
            and not isinstance(value, bool)
            # A huge int would overflow a float: only floats can be infinite or NaN.
            and (not isinstance(value, float) or math.isfinite(value))
            and _within(value, parameter)
            and _chosen(value, parameter)
        )
    return True  # users, channels, roles: discord.py resolves them; commands check the rest


def _within(value: float, parameter: app_commands.Parameter) -> bool:
    low, high = parameter.min_value, parameter.max_value
    return (low is None or value >= low) and (high is None or value <= high)


def _chosen(value: object, parameter: app_commands.Parameter) -> bool:
    return not parameter.choices or value in [choice.value for choice in parameter.choices]


def option_rule(parameter: app_commands.Parameter) -> str:
    """What a parameter accepts, as a sentence: "count must be a whole number between 1 and 10."."""
    name, kind, limits = parameter.display_name, parameter.type, _limits(parameter)
    if parameter.choices:
        return f"{name} must be one of {', '.join(choice.name for choice in parameter.choices)}."
    if kind is discord.AppCommandOptionType.boolean:
        return f"{name} must be true or false."
    if kind is discord.AppCommandOptionType.string:
        return f"{name} must be {limits} characters long." if limits else f"{name} must be text."
    noun = "a whole number" if kind is discord.AppCommandOptionType.integer else "a number"
    if limits.startswith("at "):
        limits = f"of {limits}"  # "a number of at least 0.5"
    return f"{name} must be {noun} {limits}." if limits else f"{name} must be {noun}."


def _limits(parameter: app_commands.Parameter) -> str:
    low, high = parameter.min_value, parameter.max_value
    if low is not None and high is not None:
        return f"between {low} and {high}"
    if low is not None:
        return f"at least {low}"
    return f"at most {high}" if high is not None else ""


async def reply(
    interaction: discord.Interaction, content: str | None = None, **kwargs: Any
) -> None:
    """Answer an interaction: the initial response if none was sent yet, else a followup.

    A deferred interaction already has its response (the "thinking" state), so the answer
    becomes the followup that replaces it.
    """
    if interaction.response.is_done():
        # discord.py annotates a followup's content as str, but sends None as "no content",
        # as send_message (annotated Optional[str]) does.
        await interaction.followup.send(content, **kwargs)  # type: ignore[arg-type]
    else:
        await interaction.response.send_message(content, **kwargs)


def explain(error: Exception) -> str | None:
    """The message for a user mistake, or None when the error is unexpected."""
    if isinstance(error, app_commands.CommandInvokeError):
        error = error.original
    if isinstance(error, UserError):
        return str(error)
    if isinstance(error, BadOptionValue):
        return option_rule(error.parameter)
    if isinstance(error, app_commands.MissingPermissions):
        labels = [permission_label(name) for name in error.missing_permissions]
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


def permission_label(name: str) -> str:
    """A permission as Discord's settings screens name it: manage_guild -> Manage Server."""
    # discord.py's names say "guild" where Discord's settings screens say "Server".
    return name.replace("guild", "server").replace("_", " ").title()


# Where interaction_check notes when a command started, for log_command.
_STARTED = "newsbot_started"


def log_command(interaction: discord.Interaction, outcome: str) -> None:
    """One INFO line per command run: which, what came of it, how long it took, who and where
    (as the record's own fields too); what was typed in its options only at DEBUG, since it
    is the user's text. The same count and time go to the bot's metrics."""
    command = interaction.command.qualified_name if interaction.command else "?"
    started = interaction.extras.get(_STARTED)
    seconds = time.monotonic() - started if started is not None else None
    took = f" in {seconds * 1000:.0f} ms" if seconds is not None else ""
    metrics = getattr(interaction.client, "metrics", None)
    if isinstance(metrics, Metrics):  # newsbot's client; a bare one in some unit tests
        metrics.command_done(command, outcome, seconds)
    about: dict[str, object] = {"server": interaction.guild_id, "channel": interaction.channel_id}
    log.info(
        "/%s %s%s (user %s, server %s, channel %s)",
        command,
        outcome,
        took,
        interaction.user.id,
        interaction.guild_id,
        interaction.channel_id,
        extra=about,
    )
    if log.isEnabledFor(logging.DEBUG):
        options = {name: value for name, value in interaction.namespace}
        log.debug("/%s options: %s", command, options, extra=about)


async def handle_error(interaction: discord.Interaction, error: Exception) -> None:
    """Explain a user mistake, or log the unexpected and apologise. Never raises.

    An Unrecoverable error is said plainly and handed to the bot, which logs it once and stops.
    """
    original = getattr(error, "original", error)
    unrecoverable = isinstance(original, Unrecoverable)
    message = STOPPING if unrecoverable else explain(error)
    if message is None:
        command = interaction.command.qualified_name if interaction.command else "component"
        # A Namespace answers None for any attribute, so dict() would take it for a mapping.
        options = {name: value for name, value in interaction.namespace}
        log.error(
            "/%s failed (options %s, user %s, guild %s)",
            command,
            options,
            interaction.user.id,
            interaction.guild_id,
            exc_info=original,
        )
        message = APOLOGY
    if interaction.command is not None:  # not a button's or a menu's
        log_command(interaction, "failed" if message in (APOLOGY, STOPPING) else "refused")
    try:
        await reply(interaction, message, ephemeral=True)
    except discord.HTTPException:
        # The interaction expired or Discord is unreachable: the log line above is all we can do.
        log.warning("could not tell the user about a failed interaction", exc_info=True)
    if unrecoverable:
        # After the answer: stopping closes the bot's connections to Discord.
        interaction.client.dispatch("unrecoverable_error", original)


class NewsTree(app_commands.CommandTree):
    """newsbot's command tree: option values are checked before a command runs, and every
    command error goes through `handle_error`."""

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        # Autocomplete sees half-typed values by design: only a command's run is checked.
        if interaction.type is discord.InteractionType.application_command:
            interaction.extras[_STARTED] = time.monotonic()
            check_options(interaction)
        return True

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        await handle_error(interaction, error)
