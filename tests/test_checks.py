"""Guards that set Discord's UI hint and the real check together."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import discord
import pytest
from discord import app_commands

from bot.checks import manager_only
from bot.cogs.digest import Digest
from bot.tree import explain

if TYPE_CHECKING:
    from tests.helpers import World


def guarded_command() -> app_commands.Command[Any, Any, None]:
    # A new callback each time: the decorators record their checks on the function.
    async def callback(interaction: discord.Interaction) -> None:
        raise AssertionError("never invoked")

    return app_commands.command(name="settings", description="Server settings")(
        manager_only()(callback)
    )


def an_interaction(permissions: discord.Permissions) -> Any:
    return SimpleNamespace(permissions=permissions)


def test_manager_only_hides_the_command_from_members_without_manage_server() -> None:
    command = guarded_command()

    assert command.default_permissions == discord.Permissions(manage_guild=True)
    assert command.guild_only


async def test_manager_only_refuses_a_member_without_manage_server() -> None:
    [check] = guarded_command().checks

    with pytest.raises(app_commands.MissingPermissions) as refused:
        await discord.utils.maybe_coroutine(check, an_interaction(discord.Permissions.none()))

    assert explain(refused.value) == "You need the Manage Server permission to use this command."


async def test_manager_only_lets_a_manager_and_an_administrator_through() -> None:
    [check] = guarded_command().checks
    for permissions in (discord.Permissions(manage_guild=True), discord.Permissions.all()):
        assert await discord.utils.maybe_coroutine(check, an_interaction(permissions))


def test_every_digest_subcommand_is_guarded_for_managers() -> None:
    for command in Digest.__cog_app_commands__:
        assert isinstance(command, app_commands.Command)
        assert len(command.checks) == 1, command.name
        assert command.default_permissions == discord.Permissions(manage_guild=True)


@pytest.mark.parametrize("subcommand", ["show", "preview", "now", "off"])
async def test_digest_subcommands_refuse_members_without_manage_server(
    world: World, subcommand: str
) -> None:
    handle = await world.invoke("digest", {}, subcommand=subcommand, force=True)

    reply = await handle.response()

    assert reply.content == "You need the Manage Server permission to use this command."
    assert reply.ephemeral
