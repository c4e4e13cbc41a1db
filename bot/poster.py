"""Posting daily digests: exactly once per server and local date, paced, calm under failure.

Every minute `tick` resumes digests a crash interrupted, records the ones missed for too long
as skipped, and posts the due ones. A digest is claimed in the ledger (one row per server and
local date, with its exact plan) before anything is sent; each message carries a deterministic
nonce and is recorded as sent together with the stories it delivered. A resumed digest
therefore continues where it stopped, and a repeated send of the same message is dropped by
Discord instead of posted twice.

Failures: a server whose channel is gone or forbidden has its digest switched off, with the
reason recorded for /digest show and told to its admins where newsbot can still post;
transient errors are retried with backoff, and one server's trouble never holds up another's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import discord

from bot.config import GlobalDigestSettings
from bot.delivery import (
    RETRY_DELAYS,
    PermanentFailure,
    TransientFailure,
    admin_notice_channels,
    missing_permissions,
    send_with_retries,
)
from bot.digest import (
    DEFAULT_CATCH_UP,
    DigestItem,
    DueDigest,
    NextRun,
    digest_nonce,
    due_digests,
    effective_max_age,
    explain_next_run,
    local_date_of,
    select_items,
    split_by_age,
)
from bot.embeds import digest_messages
from bot.models import DigestRun, DigestSettings, DigestStatus, Story
from bot.pacing import Pacer
from bot.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Messages = list[tuple[list[discord.Embed], tuple[int, ...]]]

# How many of the newest undelivered stories compete for a digest's places.
CANDIDATES = 100


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class PostResult:
    # None: nothing was done (already posted, or in progress); "empty" from /digest now: there
    # was nothing new, and nothing was recorded.
    status: DigestStatus | None
    detail: str
    # The ledger row that stopped /digest now (already sent, or being sent).
    existing: DigestRun | None = None
    # /digest now posted the digest of a server whose digest newsbot had paused, and so
    # switched it back on: the problem is evidently fixed.
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class Selection:
    """What a digest with some settings would carry now, and what its age limit left out."""

    local_date: date
    topics: tuple[str, ...]
    items: list[DigestItem]
    max_age: timedelta | None  # the limit applied; None: no limit
    too_old: int = 0  # candidates left out for being older than max_age
    # False when there may be more too-old stories than counted (the candidate list was full).
    too_old_exact: bool = True

    @property
    def messages(self) -> Messages:
        """The digest as it would be posted: the one rendering of a selection."""
        return digest_messages(self.local_date, self.topics, _pairs(self.items))


class DigestPoster:
    def __init__(
        self,
        store: Store,
        client: discord.Client,
        *,
        clock: Clock = utc_now,
        catch_up: timedelta = DEFAULT_CATCH_UP,
        pacer: Pacer | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        default_max_age: timedelta | None = None,
    ) -> None:
        self._store = store
        self._default_max_age = default_max_age
        self._client = client
        self._clock = clock
        self._catch_up = catch_up
        self._pacer = pacer or Pacer(GlobalDigestSettings().send_rate)
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        # Digests being sent by this process: a tick never starts a second send of one.
        self._in_flight: set[tuple[int, date]] = set()
        # A thousand servers due at once would queue a thousand selections on the database
        # before the first send; a few at a time keep sends (and users' commands) flowing.
        self._preparing = asyncio.Semaphore(4)
        self._tick_lock = asyncio.Lock()

    # --- the scheduler's entry point --------------------------------------------------------------

    async def tick(self) -> None:
        """Resume interrupted digests, record long-missed ones as skipped, post the due ones."""
        if not self._client.is_ready():
            # Before READY the server cache is empty: every channel would look deleted.
            return
        async with self._tick_lock:
            now = self._clock()
            settings = await self._store.all_digest_settings()
            oldest = min((local_date_of(now, s.timezone) for s in settings), default=now.date())
            runs = await self._store.digest_runs_since(oldest - timedelta(days=1))
            jobs = [self._resume(run) for run in runs.values() if run.status == "claimed"]
            for due in due_digests(settings, runs, now, self._catch_up):
                if due.action == "skip":
                    await self._record_skipped(due, now)
                else:
                    jobs.append(self._post(due))
        # Each server's digest is its own task: one slow or failing server holds up no other.
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                log.error("a digest failed unexpectedly", exc_info=result)

    async def post_now(self, settings: DigestSettings) -> PostResult:
        """/digest now: post today's digest at once; it counts as today's.

        A date already sent (or being sent) is left alone, and the row says when. A date that
        failed, was skipped or was empty is tried again. With nothing new, nothing is posted
        and nothing recorded, so today's scheduled digest still runs. A digest newsbot paused
        is switched back on once this posts it, since the problem is evidently fixed."""
        now = self._clock()
        local_date = local_date_of(now, settings.timezone)
        runs = await self._store.guild_digest_runs_since(settings.guild_id, local_date)
        existing = runs.get((settings.guild_id, local_date))
        if existing is not None and existing.status in ("sent", "claimed"):
            return PostResult(None, existing.detail, existing=existing)
        result = await self._post(DueDigest(settings, local_date, now, "post"), manual=True)
        if result.status == "sent" and not settings.enabled and settings.disabled_reason:
            resumed = replace(settings, enabled=True, disabled_reason=None, effective_from=now)
            await self._store.save_digest_settings(resumed)
            log.info("digest of %s switched back on by /digest now", settings.guild_id)
            return replace(result, resumed=True)
        return result

    async def select(self, settings: DigestSettings) -> Selection:
        """What a digest with these settings would carry now (nothing is claimed or sent):
        /digest preview and show, and the command line's preview."""
        return await select_digest(self._store, settings, self._clock(), self._default_max_age)

    async def next_run(self, settings: DigestSettings) -> NextRun:
        """When this server's digest really comes next, from its settings and the ledger."""
        now = self._clock()
        # Every zone's today is within a day of UTC's: this covers today's row in any zone.
        since = now.astimezone(UTC).date() - timedelta(days=1)
        runs = await self._store.guild_digest_runs_since(settings.guild_id, since)
        return explain_next_run(settings, runs, now)

    # --- one digest -------------------------------------------------------------------------------

    async def _post(self, due: DueDigest, *, manual: bool = False) -> PostResult:
        settings = due.settings
        key = (settings.guild_id, due.local_date)
        if key in self._in_flight:
            return PostResult(None, "already being posted")
        self._in_flight.add(key)
        try:
            async with self._preparing:
                prepared = await self._prepare(due, manual=manual)
            if prepared is None:
                runs = await self._store.guild_digest_runs_since(settings.guild_id, due.local_date)
                existing = runs.get(key)
                return PostResult(None, existing.detail if existing else "", existing=existing)
            if isinstance(prepared, PostResult):
                return prepared
            return await self._deliver(prepared, settings.topics, announce=not manual)
        finally:
            self._in_flight.discard(key)

    async def _prepare(self, due: DueDigest, *, manual: bool) -> DigestRun | PostResult | None:
        """Select the stories and claim the ledger row: the run to deliver, or the outcome
        (empty), or None when the date already has a row (that /digest now may not retry)."""
        settings = due.settings
        now = self._clock()
        items = (await self._select(settings, now)).items
        run = DigestRun(
            guild_id=settings.guild_id,
            local_date=due.local_date,
            channel_id=settings.channel_id,
            status="claimed",
            scheduled_for=due.scheduled_for,
            claimed_at=now,
            plan=tuple(item.story_ids for item in items),
        )
        if not items:
            if manual:
                # Recording it would use up the day: the scheduled digest would not run.
                return PostResult("empty", "no new stories")
            empty = replace(run, status="empty", finished_at=now, detail="no new stories")
            if await self._store.add_digest_run(empty):
                return PostResult("empty", "no new stories")
            return None
        if manual:
            return await self._store.reclaim_digest_run(run)
        return run if await self._store.add_digest_run(run) else None

    async def _resume(self, run: DigestRun) -> PostResult:
        key = (run.guild_id, run.local_date)
        if key in self._in_flight:
            return PostResult(None, "already being posted")
        self._in_flight.add(key)
        try:
            log.info("resuming the digest of %s for %s", run.guild_id, run.local_date)
            settings = await self._store.digest_settings(run.guild_id)
            return await self._deliver(run, settings.topics if settings else ())
        finally:
            self._in_flight.discard(key)

    async def _select(self, settings: DigestSettings, now: datetime) -> Selection:
        return await select_digest(self._store, settings, now, self._default_max_age)

    async def _deliver(
        self, run: DigestRun, topics: Sequence[str], *, announce: bool = True
    ) -> PostResult:
        try:
            channel = self._channel(run)
            items = await self._items(run)
            messages = digest_messages(run.local_date, topics, items)
            for index in range(run.sent_messages, len(messages)):
                embeds, story_ids = messages[index]
                nonce = digest_nonce(run.guild_id, run.local_date, index, run.attempt)
                await self._send(channel, embeds, nonce)
                await self._store.record_digest_message(
                    run.guild_id, run.local_date, index, run.channel_id, story_ids
                )
        except PermanentFailure as failure:
            reason = str(failure)
            log.warning("digest of %s switched off: %s", run.guild_id, reason)
            await self._store.finish_digest_run(run.guild_id, run.local_date, "failed", reason)
            await self._store.disable_digest(run.guild_id, reason)
            if announce:
                # /digest now tells the admin who asked instead.
                await self._tell_admins(run.guild_id, run.channel_id, reason)
            return PostResult("failed", reason)
        except TransientFailure as failure:
            log.warning("digest of %s not posted yet (%s); will retry", run.guild_id, failure)
            return PostResult("claimed", f"Discord is not answering ({failure}); retrying")
        # Stories as the header counts them: one per item shown, clustered coverage included
        # in its item.
        detail = f"{_count(len(items), 'story', 'stories')} in {_count(len(messages), 'message')}"
        await self._store.finish_digest_run(run.guild_id, run.local_date, "sent", detail)
        log.info(
            "digest posted: server %s, channel %s, %s",
            run.guild_id,
            run.channel_id,
            detail,
        )
        return PostResult("sent", detail)

    async def _items(self, run: DigestRun) -> list[tuple[Story, list[Story]]]:
        stories = await self._store.stories_by_id([i for group in run.plan for i in group])
        items = []
        for group in run.plan:
            present = [stories[i] for i in group if i in stories]
            # A story retired since the claim is simply left out.
            if present:
                items.append((present[0], present[1:]))
        return items

    def _channel(self, run: DigestRun) -> discord.TextChannel:
        guild = self._client.get_guild(run.guild_id)
        if guild is None:
            raise PermanentFailure("newsbot is no longer in the server")
        if guild.unavailable:
            raise TransientFailure("the server is unavailable (a Discord outage)")
        channel = guild.get_channel(run.channel_id)
        if not isinstance(channel, discord.TextChannel):
            raise PermanentFailure("the digest channel no longer exists")
        missing = missing_permissions(channel)
        if missing:
            raise PermanentFailure(f"newsbot lacks {missing} in #{channel.name}")
        return channel

    async def _send(
        self, channel: discord.abc.Messageable, embeds: list[discord.Embed], nonce: str
    ) -> None:
        await send_with_retries(
            lambda: channel.send(
                embeds=embeds, nonce=nonce, allowed_mentions=discord.AllowedMentions.none()
            ),
            self._retry_delays,
            pace=self._pacer.acquire,
            sleep=self._sleep,
        )

    async def _tell_admins(self, guild_id: int, failed_channel_id: int, reason: str) -> None:
        """Say why the digest stopped, in a channel where newsbot can still post, if any."""
        guild = self._client.get_guild(guild_id)
        if guild is None:
            return
        for channel in admin_notice_channels(guild, failed_channel_id):
            await self._pacer.acquire()
            try:
                await channel.send(
                    f"newsbot paused this server's daily digest: {reason}. A server manager "
                    "can fix that and run /digest set again; /digest show has the details.",
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            except discord.HTTPException:
                log.info("could not tell %s about its paused digest in #%s", guild_id, channel)
                continue
            return

    async def _record_skipped(self, due: DueDigest, now: datetime) -> None:
        late = now - due.scheduled_for
        hours = late.total_seconds() / 3600
        await self._store.add_digest_run(
            DigestRun(
                guild_id=due.settings.guild_id,
                local_date=due.local_date,
                channel_id=due.settings.channel_id,
                status="skipped",
                scheduled_for=due.scheduled_for,
                claimed_at=now,
                finished_at=now,
                detail=f"missed by {hours:.1f} h while newsbot was not running; not posted late",
            )
        )


async def select_digest(
    store: Store,
    settings: DigestSettings,
    now: datetime,
    default_max_age: timedelta | None = None,
) -> Selection:
    """What a digest with these settings would carry now: the newest stories not yet
    delivered to its channel, on its topics, no older than its maximum age (the server's,
    else `default_max_age`; zero or None: no limit), clustered and ranked."""
    max_age = effective_max_age(settings, default_max_age)
    candidates = await store.undelivered_stories(settings.channel_id, settings.topics, CANDIDATES)
    # Candidates come newest first, so every fresh story is among them whenever a too-old one
    # is; only the count of too-old ones can be cut short by the limit.
    fresh, too_old = split_by_age(candidates, now, max_age)
    links = await store.linked_stories([story.id for story in fresh])
    return Selection(
        local_date=local_date_of(now, settings.timezone),
        topics=settings.topics,
        items=select_items(fresh, links, settings.count, now),
        max_age=max_age,
        too_old=len(too_old),
        too_old_exact=len(candidates) < CANDIDATES,
    )


def _pairs(items: Sequence[DigestItem]) -> list[tuple[Story, list[Story]]]:
    return [(item.story, list(item.also)) for item in items]


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"
