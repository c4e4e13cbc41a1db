"""Guards for app commands that set Discord's UI hint and the real check together.

Discord's `default_permissions` only decides who *sees* a command, and server admins can change
it; a stale client can still invoke a hidden command. So every guard here is also a check that
the bot runs itself.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

import discord
from discord import app_commands

from bot.tree import UserFacingError

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

T = TypeVar("T")

OPERATOR_REFUSAL = "Only newsbot's operator can manage the seeds (they are shared by every server)."


class NotOperator(UserFacingError, app_commands.CheckFailure):
    """Someone who does not run this newsbot tried an operator command."""

    def __init__(self) -> None:
        super().__init__(OPERATOR_REFUSAL)


async def is_operator(interaction: discord.Interaction) -> bool:
    """Whether the user runs this newsbot: the application's owner or one of its team's admins
    and developers (as discord.py's `Bot.is_owner` resolves them), or a member with Manage
    Server in the configured operator server (`discord.operator_guild`)."""
    # Only NewsBot registers these commands, so the client that dispatches them is one.
    bot = cast("NewsBot", interaction.client)
    operator_guild = bot.settings.discord.operator_guild
    if (
        operator_guild is not None
        and interaction.guild_id == operator_guild
        and interaction.permissions.manage_guild
    ):
        return True
    try:
        return await bot.is_owner(interaction.user)
    except discord.HTTPException as error:
        # The first call asks Discord who owns the application. Refuse rather than guess; the
        # tree logs this and apologises.
        raise app_commands.AppCommandError("cannot tell who owns the application") from error


def manager_only() -> Callable[[T], T]:
    """Only the server's managers (Manage Server) may run the command, and only in a server.

    The hints (`default_permissions`, `guild_only`) decide who sees the command where Discord
    reads them, on a top-level command or group; `has_permissions` is the check that holds when
    someone invokes it anyway, and its refusal names the missing permission."""

    def decorate(command: T) -> T:
        checked = app_commands.checks.has_permissions(manage_guild=True)(command)
        hinted = app_commands.default_permissions(manage_guild=True)(checked)
        return app_commands.guild_only()(hinted)

    return decorate


def operator_only() -> Callable[[T], T]:
    """Only newsbot's operator may run the command (see `is_operator`); others get a short
    refusal. Discord offers the command only to members with Manage Server, so ordinary members
    do not see it; that hint counts only on a top-level command or group, so a group of operator
    commands carries `default_permissions(manage_guild=True)` as well."""

    async def predicate(interaction: discord.Interaction) -> bool:
        if not await is_operator(interaction):
            log.info(
                "refused /%s to user %s in guild %s: not the operator",
                interaction.command.qualified_name if interaction.command else "?",
                interaction.user.id,
                interaction.guild_id,
            )
            raise NotOperator()
        return True

    def decorate(command: T) -> T:
        hinted = app_commands.default_permissions(manage_guild=True)(command)
        return app_commands.check(predicate)(hinted)

    return decorate
