"""/digest set|show|preview|now|off (server managers only) and the scheduler that posts digests.

APScheduler runs one job in the bot's event loop: a tick on every minute. The database is the
source of truth (settings and the ledger), not APScheduler's job store, so a schedule change
takes effect at the next minute and a restart loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

import discord
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from discord import app_commands
from discord.ext import commands

from bot.cogs.news import suggest_topics
from bot.digest import matching_zones, next_run, parse_local_time, zone
from bot.embeds import ADMIN_COLOUR, CHOICE_LIMIT, WARNING_COLOUR, shorten, when
from bot.models import DigestRun, DigestSettings
from bot.pacing import Pacer
from bot.poster import DigestPoster, missing_permissions
from bot.tree import UserFacingError, reply

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

TICK_JOB = "digest-tick"


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class Digest(commands.GroupCog, group_name="digest", group_description="This server's daily news"):
    def __init__(self, bot: NewsBot) -> None:
        super().__init__()
        self.bot = bot
        self.store = bot.store
        config = bot.settings.digest
        self.poster = DigestPoster(
            bot.store,
            bot,
            clock=bot.clock,
            catch_up=timedelta(hours=config.catch_up_hours),
            pacer=Pacer(config.send_rate),
        )
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self._catch_up: asyncio.Task[None] | None = None

    async def cog_load(self) -> None:
        if not self.bot.schedule_digests:
            return
        self.scheduler.add_job(
            self.poster.tick,
            CronTrigger(second=0, timezone=UTC),
            id=TICK_JOB,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=30,
        )
        self.scheduler.start()
        self._catch_up = asyncio.create_task(self._tick_when_ready(), name="digest catch-up")

    async def cog_unload(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._catch_up is not None and not self._catch_up.done():
            self._catch_up.cancel()
            await asyncio.gather(self._catch_up, return_exceptions=True)

    async def _tick_when_ready(self) -> None:
        # At start: finish what a crash interrupted and catch up what downtime missed, without
        # waiting for the next minute.
        await self.bot.wait_until_ready()
        await self.poster.tick()

    # --- commands ---------------------------------------------------------------------------------

    @app_commands.command(name="set")
    @app_commands.describe(
        channel="Where the digest is posted",
        time="Local time of day, 24-hour HH:MM (for example 08:30)",
        timezone="Your time zone, such as Europe/Paris or America/New_York",
        topics="Only these topics, separated by commas (default: all)",
        count="How many stories (1-10, default 5)",
    )
    @app_commands.checks.has_permissions(manage_guild=True)
    async def set_digest(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        time: app_commands.Range[str, 1, 10],
        timezone: app_commands.Range[str, 1, 64],
        topics: app_commands.Range[str, 1, 500] | None = None,
        count: app_commands.Range[int, 1, 10] = 5,
    ) -> None:
        """Post a daily digest in a channel at a local time."""
        assert interaction.guild_id is not None
        try:
            local_time = parse_local_time(time)
            timezone = zone(timezone).key  # the canonical spelling of what was typed
        except ValueError as error:
            raise UserFacingError(f"{error}. Nothing was changed.") from None
        # discord.py resolves a TextChannel option from its cache, with its permissions.
        missing = missing_permissions(channel)
        if missing:
            raise UserFacingError(
                f"newsbot cannot post in {channel.mention}: it lacks {missing} there. Grant "
                "those or pick another channel. Nothing was changed."
            )
        settings = DigestSettings(
            guild_id=interaction.guild_id,
            channel_id=channel.id,
            local_time=local_time,
            timezone=timezone,
            topics=await self._resolve_topics(topics),
            count=count,
            effective_from=self.bot.clock().replace(microsecond=0),
        )
        await self.store.save_digest_settings(settings)
        upcoming = next_run(settings, {}, self.bot.clock())
        next_time = when(upcoming)
        await reply(
            interaction,
            f"Daily digest set: {channel.mention} at {local_time:%H:%M} ({timezone}), "
            f"{_about(settings)}. Next one: {next_time}.",
            ephemeral=True,
        )

    @set_digest.autocomplete("timezone")
    async def timezone_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=name, value=name) for name in matching_zones(current)]

    @set_digest.autocomplete("topics")
    async def topics_autocomplete(
        self, interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        # Complete the last comma-separated name, keeping the ones already typed.
        done, _, typing = current.rpartition(",")
        prefix = f"{done}, " if done else ""
        found = await self.store.topics(matching=typing.strip(), limit=25)
        choices = [shorten(prefix + topic.name, CHOICE_LIMIT) for topic in found]
        return [app_commands.Choice(name=choice, value=choice) for choice in choices]

    @app_commands.command(name="show")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def show(self, interaction: discord.Interaction) -> None:
        """This server's digest: settings, next and last run, and any problem."""
        settings = await self._settings(interaction)
        last = await self.store.last_digest_run(settings.guild_id)
        runs = {(last.guild_id, last.local_date): last} if last else {}
        upcoming = next_run(settings, runs, self.bot.clock())
        embed = discord.Embed(
            title="Daily digest",
            colour=ADMIN_COLOUR if settings.enabled else WARNING_COLOUR,
        )
        embed.add_field(name="Channel", value=f"<#{settings.channel_id}>", inline=True)
        embed.add_field(
            name="Time", value=f"{settings.local_time:%H:%M} {settings.timezone}", inline=True
        )
        embed.add_field(name="Content", value=_about(settings), inline=True)
        embed.add_field(name="Next run", value=when(upcoming, never="—"), inline=False)
        embed.add_field(name="Last run", value=_describe_run(last), inline=False)
        if not settings.enabled:
            why = settings.disabled_reason or "switched off with /digest off"
            embed.add_field(
                name="Paused",
                value=shorten(f"{why}. Run /digest set to resume.", 1024),
                inline=False,
            )
        missing = self._missing_in_channel(settings)
        if missing:
            embed.add_field(name="Missing permissions", value=missing, inline=False)
        await reply(interaction, embed=embed, ephemeral=True)

    @app_commands.command(name="preview")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def preview(self, interaction: discord.Interaction) -> None:
        """Show, only to you, exactly what the digest would post now."""
        settings = await self._settings(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        messages = await self.poster.preview(settings)
        if len(messages) <= 1 and not any(ids for _, ids in messages):
            await reply(interaction, "Nothing new to post right now.", ephemeral=True)
            return
        for embeds, _ in messages:
            await reply(interaction, embeds=embeds, ephemeral=True)

    @app_commands.command(name="now")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def now(self, interaction: discord.Interaction) -> None:
        """Post today's digest now (it counts as today's)."""
        settings = await self._settings(interaction)
        if not settings.enabled:
            raise UserFacingError("The digest is paused. Run /digest set to resume it first.")
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.poster.post_now(settings)
        messages = {
            "sent": f"Posted in <#{settings.channel_id}>: {result.detail}.",
            "empty": "Nothing new to post: today's digest is recorded as empty.",
            "failed": f"Could not post: {result.detail}. The digest is paused.",
            "claimed": f"Not posted yet: {result.detail}.",
        }
        await reply(
            interaction,
            messages.get(result.status or "", f"Nothing done: {result.detail}."),
            ephemeral=True,
        )

    @app_commands.command(name="off")
    @app_commands.checks.has_permissions(manage_guild=True)
    async def off(self, interaction: discord.Interaction) -> None:
        """Stop the daily digest (its settings are kept for /digest set)."""
        settings = await self._settings(interaction)
        await self.store.disable_digest(settings.guild_id, None)
        await reply(interaction, "The daily digest is off.", ephemeral=True)

    # --- helpers ----------------------------------------------------------------------------------

    async def _settings(self, interaction: discord.Interaction) -> DigestSettings:
        assert interaction.guild_id is not None
        settings = await self.store.digest_settings(interaction.guild_id)
        if settings is None:
            raise UserFacingError("This server has no daily digest yet: set one with /digest set.")
        return settings

    async def _resolve_topics(self, text: str | None) -> tuple[str, ...]:
        names = [name.strip() for name in (text or "").split(",") if name.strip()]
        resolved: list[str] = []
        for name in names:
            topic = await self.store.topic(name)
            if topic is None:
                known = [t.name for t in await self.store.topics()]
                close = suggest_topics(name, known)
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise UserFacingError(
                    f"There is no topic “{discord.utils.escape_markdown(name)}”.{hint} "
                    "/topics lists them all. Nothing was changed."
                )
            if topic.name not in resolved:
                resolved.append(topic.name)
        return tuple(resolved)

    def _missing_in_channel(self, settings: DigestSettings) -> str:
        guild = self.bot.get_guild(settings.guild_id)
        channel = guild.get_channel(settings.channel_id) if guild else None
        if not isinstance(channel, discord.TextChannel):
            return "the channel no longer exists or newsbot cannot see it"
        return missing_permissions(channel)


def _about(settings: DigestSettings) -> str:
    topics = ", ".join(settings.topics) if settings.topics else "all topics"
    return f"{settings.count} stories on {topics}"


def _describe_run(run: DigestRun | None) -> str:
    if run is None:
        return "none yet"
    outcome = {
        "sent": "posted",
        "empty": "nothing new, nothing posted",
        "skipped": "skipped",
        "failed": "failed",
        "claimed": "in progress",
    }[run.status]
    detail = f": {run.detail}" if run.detail else ""
    return shorten(f"{run.local_date:%Y-%m-%d} — {outcome}{detail}", 1024)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(Digest(bot))
