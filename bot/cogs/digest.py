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

from bot.checks import manager_only
from bot.delivery import missing_permissions, reads_history
from bot.digest import (
    NextRun,
    describe_age,
    effective_max_age,
    matching_zones,
    parse_local_time,
    parse_max_age,
    suggest_zones,
    too_old_note,
    zone,
)
from bot.discord_limits import AUTOCOMPLETE_CHOICES, CHOICE_LIMIT, FIELD_VALUE_LIMIT
from bot.embeds import ADMIN_COLOUR, WARNING_COLOUR, shorten, when
from bot.models import DigestRun, DigestSettings
from bot.poster import DigestPoster, PostResult
from bot.topics import UnknownTopic, resolve_topic
from bot.tree import UserFacingError, reply

if TYPE_CHECKING:
    from bot.app import NewsBot

log = logging.getLogger(__name__)

TICK_JOB = "digest-tick"
NO_HISTORY_NOTE = (
    "newsbot cannot read this channel's history (Read Message History). Digests still go out,"
    " but if newsbot is restarted more than a minute after a crash in the middle of one, a"
    " message it could not confirm may be posted twice. Grant Read Message History to close"
    " that gap."
)


# Discord reads the hints only on the group; manager_only on each subcommand is the check that
# holds when someone invokes one anyway.
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
            # The rate is the whole bot's: every process on the database takes from one budget.
            pacer=bot.send_pacer,
            send_rate=config.send_rate,
            default_max_age=timedelta(days=config.max_age_days),
            shards=bot.settings.discord.shards,
            metrics=bot.metrics,
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
        # Stopping (SIGTERM): the digest message being sent is answered and recorded first,
        # so that the next start neither repeats nor has to look for it (bounded: STOP_GRACE).
        await self.poster.stop()
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
        time="Local time of day: 24-hour HH:MM such as 08:30 or 20:30 (8:30pm works too)",
        timezone="Your time zone, such as Europe/Paris or America/New_York",
        topics="Only these topics, separated by commas (default: all)",
        count="How many stories (1-10, default 5)",
        max_age="Leave out stories older than this, such as 24h or 7d; off for no limit",
    )
    @manager_only()
    async def set_digest(
        self,
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        time: app_commands.Range[str, 1, 10],
        timezone: app_commands.Range[str, 1, 64],
        topics: app_commands.Range[str, 1, 500] | None = None,
        count: app_commands.Range[int, 1, 10] = 5,
        max_age: app_commands.Range[str, 1, 20] | None = None,
    ) -> None:
        """Post a daily digest in a channel at a local time."""
        assert interaction.guild_id is not None
        try:
            local_time = parse_local_time(time)
            age = None if max_age is None else parse_max_age(max_age)
        except ValueError as error:
            raise UserFacingError(f"{error}. Nothing was changed.") from None
        try:
            timezone = zone(timezone).key  # the canonical spelling of what was typed
        except ValueError as error:
            close = suggest_zones(timezone)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise UserFacingError(f"{error}.{hint} Nothing was changed.") from None
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
            max_age=age,
        )
        await self.store.save_digest_settings(settings)
        upcoming = await self.poster.next_run(settings)
        await reply(
            interaction,
            f"Daily digest set: {channel.mention} at {local_time:%H:%M} ({timezone}), "
            f"{self._about(settings)}. {_next_one(upcoming)}",
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
        found = await self.bot.topic_cache.matching(typing.strip(), AUTOCOMPLETE_CHOICES)
        choices = [shorten(prefix + topic.name, CHOICE_LIMIT) for topic in found]
        return [app_commands.Choice(name=choice, value=choice) for choice in choices]

    @app_commands.command(name="show")
    @manager_only()
    async def show(self, interaction: discord.Interaction) -> None:
        """This server's digest: settings, next and last run, and any problem."""
        settings = await self._settings(interaction)
        last = await self.store.last_digest_run(settings.guild_id)
        upcoming = await self.poster.next_run(settings)
        embed = discord.Embed(
            title="Daily digest",
            colour=ADMIN_COLOUR if settings.enabled else WARNING_COLOUR,
        )
        embed.add_field(name="Channel", value=f"<#{settings.channel_id}>", inline=True)
        embed.add_field(
            name="Time", value=f"{settings.local_time:%H:%M} {settings.timezone}", inline=True
        )
        embed.add_field(name="Content", value=self._about(settings), inline=True)
        next_run = when(upcoming.at, never="—")
        if upcoming.reason:
            next_run += f"\n{upcoming.reason}."
        embed.add_field(name="Next run", value=next_run, inline=False)
        selection = await self.poster.select(settings)
        note = too_old_note(selection.max_age, selection.too_old, selection.too_old_exact)
        if note:
            embed.add_field(name="Freshness", value=note, inline=False)
        embed.add_field(name="Last run", value=_describe_run(last), inline=False)
        if not settings.enabled:
            why = settings.disabled_reason or "switched off with /digest off"
            embed.add_field(
                name="Paused",
                value=shorten(f"{why}. Run /digest set to resume.", FIELD_VALUE_LIMIT),
                inline=False,
            )
        missing = self._missing_in_channel(settings)
        if missing:
            embed.add_field(name="Missing permissions", value=missing, inline=False)
        elif not self._reads_history(settings):
            embed.add_field(name="Exactly once", value=NO_HISTORY_NOTE, inline=False)
        await reply(interaction, embed=embed, ephemeral=True)

    @app_commands.command(name="preview")
    @manager_only()
    async def preview(self, interaction: discord.Interaction) -> None:
        """Show, only to you, exactly what the digest would post now."""
        settings = await self._settings(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        selection = await self.poster.select(settings)
        note = too_old_note(selection.max_age, selection.too_old, selection.too_old_exact)
        if not selection.items:
            text = " ".join(filter(None, ("Nothing new to post right now.", note)))
            await reply(interaction, text, ephemeral=True)
            return
        # As the scheduled digest (the date's first try) would post it, footers included.
        for message in selection.planned_messages(settings.guild_id, attempt=0):
            # The note goes with the first message, not into the embeds that would be posted.
            content = note if note and message.index == 0 else None
            embeds = [discord.Embed.from_dict(embed) for embed in message.embeds]
            await reply(interaction, content, embeds=embeds, ephemeral=True)

    @app_commands.command(name="now")
    @manager_only()
    async def now(self, interaction: discord.Interaction) -> None:
        """Post today's digest now (it counts as today's)."""
        settings = await self._settings(interaction)
        if not settings.enabled and settings.disabled_reason is None:
            raise UserFacingError("The digest is off. Run /digest set to turn it back on first.")
        # A digest newsbot paused is tried anyway: the admin may have fixed the problem.
        await interaction.response.defer(ephemeral=True, thinking=True)
        result = await self.poster.post_now(settings)
        answer = _now_answer(result, settings)
        if result.resumed:
            upcoming = await self.poster.next_run(await self._settings(interaction))
            # Today's has just been posted: that is why the next one is not today.
            answer += f" The daily digest is back on. Next one: {when(upcoming.at)}."
        elif not settings.enabled and result.status != "failed":
            answer += " The daily digest is still paused: /digest set resumes it."
        await reply(interaction, answer, ephemeral=True)

    @app_commands.command(name="off")
    @manager_only()
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
            try:
                topic = await resolve_topic(self.store, name)
            except UnknownTopic as unknown:
                close = unknown.suggestions
                hint = f" Did you mean {', '.join(close)}?" if close else ""
                raise UserFacingError(
                    f"There is no topic “{discord.utils.escape_markdown(name)}”.{hint} "
                    "/topics lists them all. Nothing was changed."
                ) from None
            if topic not in resolved:
                resolved.append(topic)
        return tuple(resolved)

    def _about(self, settings: DigestSettings) -> str:
        topics = ", ".join(settings.topics) if settings.topics else "all topics"
        about = f"{settings.count} stories on {topics}"
        default = timedelta(days=self.bot.settings.digest.max_age_days)
        age = effective_max_age(settings, default)
        return f"{about}, none older than {describe_age(age)}" if age else about

    def _reads_history(self, settings: DigestSettings) -> bool:
        guild = self.bot.get_guild(settings.guild_id)
        channel = guild.get_channel(settings.channel_id) if guild else None
        return isinstance(channel, discord.TextChannel) and reads_history(channel)

    def _missing_in_channel(self, settings: DigestSettings) -> str:
        guild = self.bot.get_guild(settings.guild_id)
        channel = guild.get_channel(settings.channel_id) if guild else None
        if not isinstance(channel, discord.TextChannel):
            return "the channel no longer exists or newsbot cannot see it"
        return missing_permissions(channel)


def _next_one(upcoming: NextRun) -> str:
    """When the next digest comes, and why then when it is not what the settings suggest."""
    if upcoming.at is None:
        return "It is not scheduled."
    if not upcoming.reason:
        return f"Next one: {when(upcoming.at)}."
    day = "tomorrow, " if upcoming.tomorrow else ""
    return f"{upcoming.reason}, so the next one is {day}{when(upcoming.at)}."


def _now_answer(result: PostResult, settings: DigestSettings) -> str:
    """The truth about what /digest now did."""
    existing = result.existing
    if result.status is None:
        if existing is not None and existing.status == "sent":
            return (
                f"Today's digest was already posted {when(existing.finished_at)}: "
                f"{existing.detail}. Nothing was posted again."
            )
        return "Today's digest is being posted right now. Nothing more was done."
    return {
        "sent": f"Posted in <#{settings.channel_id}>: {result.detail}.",
        "empty": "Nothing new to post right now. Nothing was posted or recorded.",
        "failed": f"Could not post: {result.detail}. The digest is paused until that is fixed.",
    }.get(result.status, f"Not posted yet: {result.detail}.")


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
    return shorten(f"{run.local_date:%Y-%m-%d} — {outcome}{detail}", FIELD_VALUE_LIMIT)


async def setup(bot: NewsBot) -> None:
    await bot.add_cog(Digest(bot))
