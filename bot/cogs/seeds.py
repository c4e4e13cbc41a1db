"""/seeds reload and /seeds status (newsbot's operator only), the reload at start, and the
seed folder watch (seeds.watch) that reloads on its own when files change.

The seed folder is shared by every server newsbot serves, so only whoever runs newsbot may
reload it or see where it lives (see bot/checks.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.checks import operator_only
from bot.embeds import reload_report_embed, seed_status_embed, when
from bot.reload import ReloadReport, SeedFolderError, SeedFolderMissing
from bot.reload.watch import SeedWatcher
from bot.store import LockedElsewhere, StoreLost, TaskHolder
from bot.tree import UserFacingError, reply

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)


# default_permissions only hides the group in Discord's UI (and only on the top-level command);
# operator_only on each subcommand is the check that holds when someone invokes it anyway.
@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Seeds(commands.GroupCog, group_name="seeds", group_description="Manage newsbot's stories"):
    def __init__(self, bot: NewsBot) -> None:
        super().__init__()
        self.bot = bot
        self.reloader = bot.reloader
        self.store = bot.store
        # Public so that tests (and a future health check) can wait for the first reload.
        self.startup_reload: asyncio.Task[None] | None = None
        self.watcher = SeedWatcher(self.reloader.folder, self._reload_on_change, self.store)

    async def cog_load(self) -> None:
        # Serve the seed folder as it is now without delaying login: an unchanged folder takes
        # a moment, a large new one a while, and commands answer from the store meanwhile.
        if self.bot.reload_seeds_at_start:
            self.startup_reload = asyncio.create_task(self._reload_at_start(), name="seed reload")
        if self.bot.settings.seeds.watch:
            # Watching starts with the reload at start, not after it, so that nothing changed
            # meanwhile is missed: a change reloads once that reload is done (SeedReloader
            # runs one at a time).
            self.watcher.start(catch_up=not self.bot.reload_seeds_at_start)

    async def cog_unload(self) -> None:
        await self.stop_watching()
        if self.startup_reload is not None and not self.startup_reload.done():
            self.startup_reload.cancel()
            await asyncio.gather(self.startup_reload, return_exceptions=True)

    def start_watching(self) -> None:
        """Reload on its own when the seed folder changes (seeds.watch), and once now for what
        changed while it did not; nothing if it watches already. With several processes on
        one database, only one of them watches."""
        self.watcher.start(catch_up=True)

    async def stop_watching(self) -> None:
        """No longer reload on changes; nothing if not watching."""
        await self.watcher.stop()

    async def _reload_on_change(self) -> ReloadReport:
        """The watcher's reload: SeedReloader.reload's errors are the watcher's to log."""
        try:
            report = await self.reloader.reload()
        except StoreLost as error:
            self.bot.dispatch("unrecoverable_error", error)
            raise
        await self._reloaded(report)
        return report

    async def _reloaded(self, report: ReloadReport) -> None:
        """After a reload this process applied: topics follow it, rejected files are named."""
        await self.bot.topic_cache.refresh()
        for rejection in report.rejected:
            log.warning("seed %s rejected: %s", rejection.source, rejection.reason)

    async def _reload_at_start(self) -> None:
        try:
            report = await self.reloader.reload()
        except LockedElsewhere as busy:
            # Another process of the database is loading the same folder: its reload is
            # announced here when it commits.
            log.info(
                "seed reload running in another newsbot process (%s); serving the stored stories",
                busy.holder.who(),
            )
            return
        except SeedFolderError as error:
            log.warning("cannot reload the seeds at start: %s; serving the stored stories", error)
            return
        except StoreLost as error:
            # The bot stops over it, and says why in one line (NewsBot.on_unrecoverable_error).
            self.bot.dispatch("unrecoverable_error", error)
            return
        except Exception:
            log.exception("reloading the seeds at start failed; serving the stored stories")
            return
        await self._reloaded(report)

    @app_commands.command(name="reload")
    @app_commands.describe(dry_run="Only report what would change")
    @operator_only()
    async def reload(self, interaction: discord.Interaction, dry_run: bool = False) -> None:
        """Reload the seed folder and report what changed."""
        # A large reload takes longer than Discord's 3-second deadline for the first answer.
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            report = await self.reloader.reload(dry_run=dry_run)
        except LockedElsewhere as busy:
            raise UserFacingError(reload_elsewhere(busy.holder)) from None
        except SeedFolderError as error:
            log.warning("/seeds reload: %s", error)
            raise UserFacingError(folder_problem(error)) from None
        if not dry_run:
            await self.bot.topic_cache.refresh()
        stored = await self.store.story_count()
        await reply(interaction, embed=reload_report_embed(report, stored=stored), ephemeral=True)

    @app_commands.command(name="status")
    @operator_only()
    async def status(self, interaction: discord.Interaction) -> None:
        """Stories stored, the seed folder, the last reload and the files it rejected."""
        status = await self.store.seed_status()
        stored = await self.store.story_count()
        folder = status.folder or str(self.reloader.folder.resolve())
        embed = seed_status_embed(status, stored=stored, folder=folder)
        await reply(interaction, embed=embed, ephemeral=True)


def folder_problem(error: SeedFolderError) -> str:
    """What the operator is told when the seed folder itself cannot be used (it names the
    folder: only the operator gets here)."""
    if isinstance(error, SeedFolderMissing):
        problem = f"The seed folder is missing: `{error.folder}`."
    else:
        problem = f"The seed folder `{error.folder}` {error.problem}."
    return f"{problem} Nothing was changed; the stored stories are still served."


def reload_elsewhere(holder: TaskHolder) -> str:
    """What the operator is told when another process of the database is reloading."""
    return (
        f"A seed reload is already running in another newsbot process ({holder.who()}, "
        f"started {when(holder.since)}); /seeds status shows its result when it is done."
    )


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(Seeds(bot))
