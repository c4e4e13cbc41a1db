"""Posting daily digests: exactly once per server and local date, paced, calm under failure.

Every minute `tick` resumes digests a crash or fault interrupted, records the ones missed for
too long as skipped, and posts the due ones. A digest is claimed in the ledger (one row per
server and local date) together with its messages, rendered once: a resumed digest sends
exactly those, whatever happened to the stories since. How each message is sent at most once
(intent, send, record; unknown outcomes settled by nonce or history) is bot.digest_sender's.

Failures: a server whose channel is gone or forbidden has its digest switched off, with the
reason recorded for /digest show and told to its admins where newsbot can still post;
transient errors are retried with backoff, a database that refuses writes pauses digests (one
ERROR line) until it accepts them again, and one server's trouble never holds up another's.

Several newsbot processes may share one database, each running some of the bot's shards: each
takes care of the digests of its own shards' servers only, and never takes a server it cannot
see because it lives on another shard for one newsbot has left. The process holding a shard's
lease runs it alone, so a digest of that shard another process left claimed was left by one
that died: it is resumed at once. A tick claims no more new digests than the pacer sends
within one run lease, so that no claim waits out its lease before its first message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import discord

from bot.config import GlobalDigestSettings
from bot.delivery import (
    RETRY_DELAYS,
    PermanentFailure,
    TransientFailure,
    admin_notice_channels,
    missing_permissions,
)
from bot.digest import (
    DEFAULT_CATCH_UP,
    DueDigest,
    NextRun,
    due_digests,
    explain_next_run,
    local_date_of,
)
from bot.digest_plan import Selection, select_digest
from bot.digest_sender import RUN_LEASE, DigestSender, Stopping, StorageAlarm, StorageDown
from bot.metrics import Metrics
from bot.models import DigestRun, DigestSettings, DigestStatus
from bot.pacing import Pacer, Pacing, fallback_share
from bot.sharding import Shards
from bot.store import LeaseLost, Store, StoreError

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How long a run the database would not let continue waits before it is tried again, doubling
# from the first up to the last while the database keeps refusing: a run resumes at most two
# minutes after the database is back.
STORAGE_BACKOFF = (timedelta(minutes=1), timedelta(minutes=2))
# Ticks come a minute apart, each a moment after the minute: a wait of n minutes that started
# during one tick is over at the tick n minutes later, not the one after.
TICK_SLACK = timedelta(seconds=30)
# How long a stopping newsbot waits for the digest messages being sent to be answered and
# recorded: inside the 10 s a supervisor (systemd, Docker) gives before it kills. A message
# still unanswered then is settled at the next start, by its nonce or the channel's history.
STOP_GRACE = 8.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def claim_cap(send_rate: float, share: float = 1.0) -> int:
    """How many messages one round of claims may plan: what this process can count on sending
    within one run lease, its `share` of the bot's rate (its shards out of all: the other
    processes take from the same budget). A run waiting its turn behind more than that would
    outlive its lease before its first message renews it, and be resumed (its messages sent
    again, where Discord no longer de-duplicates) by whoever runs its shard after a crash."""
    return max(1, int(send_rate * share * RUN_LEASE.total_seconds()))


@dataclass(slots=True)
class ClaimBudget:
    """The messages one round of a tick's new claims may still plan. The first claim always
    fits, so a digest larger than the whole budget is sent a round at a time, not never."""

    left: int
    claimed: bool = False
    # Some due digest did not fit: the tick claims another round once this one is sent.
    refused: bool = False

    def take(self, messages: int) -> bool:
        """Whether a run of `messages` may be claimed now (and count it if so)."""
        if self.claimed and messages > self.left:
            self.refused = True
            return False
        self.left -= messages
        self.claimed = True
        return True


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


class DigestPoster:
    def __init__(
        self,
        store: Store,
        client: discord.Client,
        *,
        clock: Clock = utc_now,
        catch_up: timedelta = DEFAULT_CATCH_UP,
        pacer: Pacing | None = None,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        default_max_age: timedelta | None = None,
        shards: Shards | None = None,
        send_rate: float | None = None,
        metrics: Metrics | None = None,
        stop_grace: float = STOP_GRACE,
    ) -> None:
        self._store = store
        self._metrics = metrics or Metrics()
        # The servers this process serves: with several processes sharing the database, each
        # schedules, resumes, skips and switches off the digests of its own shards' servers.
        self._shards = shards or Shards()
        self._default_max_age = default_max_age
        self._client = client
        self._clock = clock
        self._catch_up = catch_up
        send_rate = send_rate or GlobalDigestSettings().send_rate
        self._pacer = pacer or Pacer(send_rate)
        self._claim_cap = claim_cap(send_rate, fallback_share(self._shards))
        self._alarm = StorageAlarm()
        self._sender = DigestSender(
            store,
            clock=clock,
            pacer=self._pacer,
            alarm=self._alarm,
            retry_delays=retry_delays,
            sleep=sleep,
            metrics=self._metrics,
        )
        # Digests being sent by this process: a tick never starts a second send of one.
        self._in_flight: set[tuple[int, date]] = set()
        # Runs stopped by a database refusing writes: when each may be tried again, and the
        # wait before that (doubled while it keeps refusing).
        self._paused: dict[tuple[int, date], tuple[datetime, timedelta]] = {}
        # A thousand servers due at once would queue a thousand selections on the database
        # before the first send; a few at a time keep sends (and users' commands) flowing.
        self._preparing = asyncio.Semaphore(4)
        self._tick_lock = asyncio.Lock()
        # Ticks and /digest now posts under way: what stop() waits for.
        self._active: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self._stop_grace = stop_grace

    def set_send_rate(self, send_rate: float) -> None:
        """How many digest messages a second the pacer now sends (a settings reload changed
        it there): a round's claims are sized to what that rate sends within a run lease."""
        self._claim_cap = claim_cap(send_rate, fallback_share(self._shards))

    # --- stopping -------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Claim and begin nothing more, and let the messages being sent finish and be recorded,
        for at most the stop grace; then cancel what is left. A digest stopped between two
        messages stays claimed with what it sent recorded: the next start sends the rest."""
        self._stopping = True
        self._sender.stop()
        active = self._active - {asyncio.current_task()}
        if not active:
            return
        _, late = await asyncio.wait(active, timeout=self._stop_grace)
        if late:
            log.warning(
                "stopping: a digest message still unanswered after %.0f s is left for the next"
                " start to settle",
                self._stop_grace,
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    @asynccontextmanager
    async def _tracked(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        try:
            yield
        finally:
            self._active.discard(task)

    # --- the scheduler's entry point --------------------------------------------------------------

    async def tick(self) -> None:
        """Resume interrupted digests, record long-missed ones as skipped, post the due ones.

        In rounds: each claims what can be sent within one run lease (claim_cap), and the
        next is claimed once those are sent, until every due digest is. A minute's tick that
        comes while rounds go on is skipped (the scheduler runs one at a time): the next round
        looks at the clock again and takes whatever came due meanwhile."""
        # The scheduler is alive (readiness asks), whatever this tick then finds to do.
        self._metrics.digest_ticked()
        if not self._client.is_ready():
            # Before READY the server cache is empty: every channel would look deleted.
            return
        async with self._tracked():
            await self._tick_rounds()

    async def _tick_rounds(self) -> None:
        # Digests this tick has taken up: a later round does not resume one that is still
        # unfinished (a send that failed for now), leaving it to the next tick as before.
        handled: set[tuple[int, date]] = set()
        while not self._stopping:
            # A long fan-out is rounds of one lease each: each is a sign of life too, since
            # the scheduler skips the minutes' ticks meanwhile.
            self._metrics.digest_ticked()
            budget = ClaimBudget(self._claim_cap)
            async with self._tick_lock:
                now = self._clock()
                try:
                    jobs = await self._plan_tick(now, budget, handled)
                except StoreError as error:
                    self._alarm.failed(error, now)
                    return
            # Each server's digest is its own task: one slow or failing server holds up no other.
            results = await asyncio.gather(*jobs, return_exceptions=True)
            for result in results:
                if isinstance(result, BaseException):
                    log.error("a digest failed unexpectedly", exc_info=result)
            if not (budget.refused and budget.claimed):
                return

    async def _plan_tick(
        self, now: datetime, budget: ClaimBudget, handled: set[tuple[int, date]]
    ) -> list[Coroutine[Any, Any, PostResult]]:
        owns = self._shards.owns
        settings = [s for s in await self._store.all_digest_settings() if owns(s.guild_id)]
        oldest = min((local_date_of(now, s.timezone) for s in settings), default=now.date())
        runs = await self._store.digest_runs_since(oldest - timedelta(days=1))
        runs = {key: run for key, run in runs.items() if owns(run.guild_id)}
        resumable = [
            run for key, run in runs.items() if key not in handled and self._resumable(run, now)
        ]
        handled.update((run.guild_id, run.local_date) for run in resumable)
        jobs = [self._resume(run) for run in resumable]
        for due in due_digests(settings, runs, now, self._catch_up):
            if due.action == "skip":
                await self._record_skipped(due, now)
            else:
                # Due again next round only if this round's claims left no room for it.
                handled.add((due.settings.guild_id, due.local_date))
                jobs.append(self._post(due, budget=budget))
        return jobs

    def _resumable(self, run: DigestRun, now: datetime) -> bool:
        """A claimed run this process holds, or whose holder's lease expired, or of a server
        whose lease (its shard's, or the instance lease) this process holds; and that is not
        waiting out a database outage."""
        if run.status != "claimed":
            return False
        leased = run.lease_until is not None and run.lease_until > now
        theirs = run.owner != self._store.owner and not self._store.holds_lease_of(run.guild_id)
        if leased and theirs:
            return False
        paused = self._paused.get((run.guild_id, run.local_date))
        return paused is None or paused[0] <= now

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
        attempt = 0 if existing is None else existing.attempt + 1
        due = DueDigest(settings, local_date, now, "post")
        async with self._tracked():
            result = await self._post(due, manual=True, attempt=attempt)
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

    async def _post(
        self,
        due: DueDigest,
        *,
        manual: bool = False,
        attempt: int = 0,
        budget: ClaimBudget | None = None,
    ) -> PostResult:
        settings = due.settings
        key = (settings.guild_id, due.local_date)
        if key in self._in_flight:
            return PostResult(None, "already being posted")
        self._in_flight.add(key)
        try:
            async with self._preparing:
                prepared = await self._prepare(due, manual=manual, attempt=attempt, budget=budget)
            if prepared is None:
                runs = await self._store.guild_digest_runs_since(settings.guild_id, due.local_date)
                existing = runs.get(key)
                return PostResult(None, existing.detail if existing else "", existing=existing)
            if isinstance(prepared, PostResult):
                return prepared
            return await self._deliver(prepared, announce=not manual)
        except StoreError as error:
            if manual:
                raise
            # Nothing was claimed: the next tick claims it again.
            self._alarm.failed(error, self._clock())
            return PostResult(None, f"the database refuses writes ({error})")
        finally:
            self._in_flight.discard(key)

    async def _prepare(
        self, due: DueDigest, *, manual: bool, attempt: int, budget: ClaimBudget | None
    ) -> DigestRun | PostResult | None:
        """Select the stories, render the messages and claim the ledger row with them: the run
        to deliver, or the outcome (empty, or left for the next tick when the tick's `budget`
        is spent), or None when the date already has a row (that /digest now may not retry)."""
        settings = due.settings
        now = self._clock()
        selection = await self._select(settings, now)
        items = selection.items
        run = DigestRun(
            guild_id=settings.guild_id,
            local_date=due.local_date,
            channel_id=settings.channel_id,
            status="claimed",
            scheduled_for=due.scheduled_for,
            claimed_at=now,
            plan=tuple(item.story_ids for item in items),
            attempt=attempt,
            owner=self._store.owner,
            lease_until=now + RUN_LEASE,
        )
        if not items:
            if manual:
                # Recording it would use up the day: the scheduled digest would not run.
                return PostResult("empty", "no new stories")
            empty = replace(
                run, status="empty", finished_at=now, detail="no new stories", lease_until=None
            )
            if await self._store.add_digest_run(empty):
                return PostResult("empty", "no new stories")
            return None
        # Rendered for the date being posted (a catch-up after midnight keeps its own date).
        selection = replace(selection, local_date=due.local_date)
        run = replace(run, messages=selection.planned_messages(settings.guild_id, attempt))
        if budget is not None and not budget.take(len(run.messages)):
            return PostResult(None, "waits for the next round: this one's claims fill a lease")
        if self._stopping:
            return PostResult(None, "newsbot is stopping")
        claim = self._store.reclaim_digest_run if manual else self._store.add_digest_run
        return run if await claim(run) else None

    async def _resume(self, listed: DigestRun) -> PostResult:
        key = (listed.guild_id, listed.local_date)
        if key in self._in_flight:
            return PostResult(None, "already being posted")
        self._in_flight.add(key)
        try:
            now = self._clock()
            try:
                # The holder of the lease covering the server (its shard's, or the instance
                # lease) is its only poster: a run another owner left claimed was left by a
                # process that died, and waiting for the run's lease would only let Discord's
                # nonce window pass.
                run = await self._store.take_digest_run(
                    *key, now + RUN_LEASE, now, any_owner=self._store.holds_lease_of(key[0])
                )
            except StoreError as error:
                self._pause(key, error)
                return PostResult("claimed", f"the database refuses writes ({error})")
            if run is None:
                return PostResult(None, "being posted by another newsbot process")
            log.info(
                "resuming the digest of %s for %s", run.guild_id, run.local_date, extra=_about(run)
            )
            return await self._deliver(run)
        finally:
            self._in_flight.discard(key)

    async def _select(self, settings: DigestSettings, now: datetime) -> Selection:
        return await select_digest(self._store, settings, now, self._default_max_age)

    async def _deliver(self, run: DigestRun, *, announce: bool = True) -> PostResult:
        key = (run.guild_id, run.local_date)
        try:
            channel = self._channel(run)
            await self._sender.send(run, channel)
            detail = (
                f"{_count(len(run.plan), 'story', 'stories')}"
                f" in {_count(len(run.messages), 'message')}"
            )
            await self._store.finish_digest_run(*key, "sent", detail, owner=run.owner)
        except PermanentFailure as failure:
            reason = str(failure)
            log.warning("digest of %s switched off: %s", run.guild_id, reason, extra=_about(run))
            await self._store.finish_digest_run(*key, "failed", reason, owner=run.owner)
            await self._store.disable_digest(run.guild_id, reason)
            self._metrics.digests_paused.inc()
            if announce:
                # /digest now tells the admin who asked instead.
                await self._tell_admins(run.guild_id, run.channel_id, reason)
            return PostResult("failed", reason)
        except TransientFailure as failure:
            log.warning(
                "digest of %s not posted yet (%s); will retry",
                run.guild_id,
                failure,
                extra=_about(run),
            )
            self._metrics.digests_failed.labels("discord").inc()
            return PostResult("claimed", f"Discord is not answering ({failure}); retrying")
        except LeaseLost as lost:
            log.warning(
                "digest of %s left to another newsbot process: %s",
                run.guild_id,
                lost,
                extra=_about(run),
            )
            return PostResult(None, "being posted by another newsbot process")
        except (StorageDown, StoreError) as error:
            self._pause(key, error)
            self._metrics.digests_failed.labels("database").inc()
            return PostResult("claimed", f"the database refuses writes ({error}); waiting")
        except Stopping as stopped:
            log.info(
                "digest of %s %s: newsbot is stopping; the rest is sent when it starts again",
                run.guild_id,
                stopped,
                extra=_about(run),
            )
            return PostResult("claimed", "newsbot stopped; the rest follows when it starts")
        self._paused.pop(key, None)
        self._metrics.digests_posted.inc()
        log.info(
            "digest posted: server %s, channel %s, %s",
            run.guild_id,
            run.channel_id,
            detail,
            extra=_about(run),
        )
        return PostResult("sent", detail)

    def _pause(self, key: tuple[int, date], error: Exception) -> None:
        """Leave a run the database stopped until the next wait of STORAGE_BACKOFF is over."""
        now = self._clock()
        if isinstance(error, StoreError):
            self._alarm.failed(error, now)
        _, last = self._paused.get(key, (now, timedelta(0)))
        wait = next((step for step in STORAGE_BACKOFF if step > last), STORAGE_BACKOFF[-1])
        self._paused[key] = (now + wait - TICK_SLACK, wait)

    def _channel(self, run: DigestRun) -> discord.TextChannel:
        if not self._shards.owns(run.guild_id):
            # Another process's server: absent from this one's cache, yet newsbot is there.
            raise TransientFailure("the server is on a shard another newsbot process runs")
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
            self._metrics.messages_sent.labels("notice").inc()
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


def _count(number: int, singular: str, plural: str | None = None) -> str:
    return f"{number} {singular if number == 1 else plural or singular + 's'}"


def _about(run: DigestRun) -> dict[str, object]:
    """What a log record of this digest is about, as fields of their own (log_format: json)."""
    return {
        "server": run.guild_id,
        "channel": run.channel_id,
        "digest": f"{run.guild_id}/{run.local_date.isoformat()}",
    }
