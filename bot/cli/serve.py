"""`newsbot run` and `newsbot sync`: the two commands that talk to Discord."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import aiohttp
import discord

from bot import command_sync, config
from bot.app import build_bot, invite_url, use_endpoints
from bot.cli.common import EXIT_OK, Context, DiscordUnavailable, UserError
from bot.errors import one_line
from bot.settings_reload import SettingsReloader

log = logging.getLogger(__name__)

# Discord's JSON error code for a server the bot is not in (with 403 Forbidden).
MISSING_ACCESS = 50001
# Gateway close code: authentication failed (the token was revoked after login).
AUTHENTICATION_FAILED = 4004

MISSING_TOKEN = (
    "DISCORD_TOKEN is not set: create an application at https://discord.com/developers/"
    "applications, add a Bot, copy its token into DISCORD_TOKEN, and invite it with the scopes "
    "'bot applications.commands' and the permissions View Channels, Send Messages, Embed Links "
    "and Read Message History (the README has the invite link)"
)
REJECTED_TOKEN = (
    "Discord rejected the token in DISCORD_TOKEN: reset it in the Developer Portal (your "
    "application, Bot, Reset Token) and set DISCORD_TOKEN to the new one"
)


def _token(settings: config.Settings) -> str:
    if settings.discord_token is None:
        raise UserError(MISSING_TOKEN)
    return settings.discord_token.reveal()


@contextmanager
def discord_errors() -> Iterator[None]:
    """Discord's failures as one-line errors: refusals are the user's to fix (exit 2), an
    unreachable or failing Discord is worth another try later (exit 3)."""
    try:
        yield
    except discord.LoginFailure:
        raise UserError(REJECTED_TOKEN) from None
    except discord.PrivilegedIntentsRequired:
        raise UserError("Discord refused an intent newsbot did not ask for") from None
    except discord.ConnectionClosed as error:
        if error.code == AUTHENTICATION_FAILED:
            raise UserError(REJECTED_TOKEN) from None
        raise DiscordUnavailable(
            f"Discord closed the gateway connection (code {error.code}: {error.reason or 'none'})"
        ) from None
    except discord.DiscordServerError as error:
        raise DiscordUnavailable(
            f"Discord is failing ({one_line(error)}); try again later"
        ) from None
    except discord.HTTPException as error:
        raise UserError(f"Discord refused the request: {one_line(error)}") from None
    except (aiohttp.ClientError, OSError, TimeoutError, discord.GatewayNotFound) as error:
        raise DiscordUnavailable(
            f"cannot reach Discord at {discord.http.Route.BASE}: {one_line(error)}"
        ) from None


async def run_bot(args: argparse.Namespace, context: Context) -> int:
    """Run until SIGINT or SIGTERM, then stop gracefully (the digest message being sent is
    answered and recorded, nothing more is begun), close the gateway and the database and exit
    0; or until the bot stops on its own (database or lease lost), and exit 75 (see bot.cli).
    SIGHUP reloads the settings that can change while it runs (bot.settings_reload)."""
    token = _token(context.settings)
    use_endpoints(context.settings.discord)
    bot = build_bot(context.settings)
    reloader = SettingsReloader(bot, args.config)
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Task[None]] = []

    def stop(signum: signal.Signals) -> None:
        log.info("%s: stopping", signum.name)
        pending.append(loop.create_task(bot.close()))

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop, signum)
    loop.add_signal_handler(
        signal.SIGHUP, lambda: pending.append(loop.create_task(reloader.reload()))
    )
    try:
        with discord_errors():
            await bot.start(token)
    finally:
        if not bot.is_closed():
            await bot.close()
        await asyncio.gather(*pending)
    if bot.stopped_by is not None:
        raise bot.stopped_by
    return EXIT_OK


async def sync_commands(args: argparse.Namespace, context: Context) -> int:
    token = _token(context.settings)
    use_endpoints(context.settings.discord)
    # This command decides what gets synced, so the start-up sync policy stays out of it; it
    # serves no health checks either (the running bot may hold their port).
    never = replace(context.settings.discord, sync_commands="never")
    settings = replace(context.settings, discord=never, metrics=config.MetricsSettings())
    bot = build_bot(settings, reload_seeds_at_start=False, schedule_digests=False)
    try:
        with discord_errors():
            # login() is REST only (no gateway session) and runs setup_hook: store and cogs.
            await bot.login(token)
            try:
                count = await command_sync.sync(bot.tree, bot.store, args.guild)
            except discord.Forbidden as error:
                if args.guild is None or error.code != MISSING_ACCESS:
                    raise
                raise UserError(_not_in_server(args.guild, bot.application_id)) from None
    finally:
        await bot.close()
    where = f"server {args.guild}" if args.guild else "all servers (may take a while to show)"
    print(f"Synced {count} slash commands to {where}.", file=context.out)
    return EXIT_OK


def _not_in_server(guild_id: int, application_id: int | None) -> str:
    invite = f"invite it with {invite_url(application_id)}" if application_id else "invite it"
    return f"newsbot is not in server {guild_id}: {invite}, or sync everywhere without --guild"
