"""When slash commands are registered with Discord ("synced").

Policy: `newsbot sync [--guild ID]` syncs on purpose; at start the bot syncs only when the
command definitions differ from the last sync, judged by a hash of the exact payload Discord
would receive. A blind global sync on every start would hit Discord's daily command-update
limit during a crash loop and briefly show users half-updated commands. Several processes
starting together on one database sync once: the one holding the "command-sync" task lock
compares, syncs and records; the others skip (the commands are the application's, not a
process's).
"""

from __future__ import annotations

import hashlib
import json
import logging

import discord
from discord import app_commands

from bot.store import LockedElsewhere, Store

log = logging.getLogger(__name__)

# The task lock of the sync at start: one process of the database syncs.
COMMAND_SYNC = "command-sync"


def _state_key(tree: app_commands.CommandTree) -> str:
    # Per application: the same database used with another bot token must sync again.
    return f"commands:global:{tree.client.application_id}"


def payload_hash(tree: app_commands.CommandTree) -> str:
    """A hash of the global command definitions exactly as they would be sent to Discord."""
    payload = [command.to_dict(tree) for command in tree.get_commands()]
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


async def sync_if_changed(tree: app_commands.CommandTree, store: Store) -> bool:
    """Sync the global commands if their definitions changed since the last sync, unless
    another process of the database is syncing them now."""
    try:
        async with store.task_lock(COMMAND_SYNC):
            return await _sync_if_changed(tree, store)
    except LockedElsewhere as busy:
        log.info(
            "another newsbot process (%s) is syncing the slash commands; not syncing",
            busy.holder.who(),
        )
        return False


async def _sync_if_changed(tree: app_commands.CommandTree, store: Store) -> bool:
    current = payload_hash(tree)
    if await store.get_state(_state_key(tree)) == current:
        log.info("slash commands unchanged since the last sync; not syncing")
        return False
    synced = await tree.sync()
    await store.set_state(_state_key(tree), current)
    log.info("synced %d slash commands globally", len(synced))
    return True


async def sync(tree: app_commands.CommandTree, store: Store, guild_id: int | None = None) -> int:
    """Sync now: globally, or to one server (instant there; handy while developing)."""
    if guild_id is None:
        synced = await tree.sync()
        await store.set_state(_state_key(tree), payload_hash(tree))
    else:
        guild = discord.Object(id=guild_id)
        tree.copy_global_to(guild=guild)
        synced = await tree.sync(guild=guild)
    return len(synced)
