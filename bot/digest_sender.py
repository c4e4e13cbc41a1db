"""Sending one claimed digest exactly once: the recorded messages, in order, each at most once.

A claimed run carries its messages as rendered at claim time (payload, nonce, stories). For
each message not yet recorded as posted:

1. If an earlier try's outcome is unknown (it was attempted, never recorded: a crash, a
   timeout, a cut connection, a 5xx or unreadable answer after Discord may have posted it),
   that is settled first. Within NONCE_TRUST of the nonce's first try, the message is simply
   sent again with the same nonce: Discord answers a repeat with the original message. Later
   than that, the bot's own messages in the channel's history are searched for the message's
   marker (its footer) and, if found, recorded; only if it is not there is it sent, under a
   fresh window. Without Read Message History the guarantee is the nonce window alone.
2. The intent is recorded (message i is being tried, since when), then the message is sent,
   then its id and stories are recorded. Both writes succeed only for the run's owner and only
   for the next message, so two processes never both advance one run.

A database that refuses writes stops the run, never the bot: nothing more of that run is sent,
a posted but unrecorded message is remembered and recorded once writes work again, and the
operator gets one ERROR line per outage (StorageAlarm).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime, timedelta

import discord

from bot.delivery import (
    RETRY_DELAYS,
    SEND_ERRORS,
    TransientFailure,
    reads_history,
    send_failure,
    send_with_retries,
)
from bot.metrics import Metrics
from bot.models import DigestRun, PlannedMessage
from bot.pacing import Pacing
from bot.store import LeaseLost, Store, StoreError, StoreLost

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# How long after a nonce's first try a repeat is trusted to be de-duplicated by Discord, which
# only promises "the past few minutes": a safe margin inside that.
NONCE_TRUST = timedelta(seconds=60)
# How long a claim holds without being renewed (each message renews it): another process, or
# this one restarted after a crash, resumes a run only once its owner has been silent this
# long. Shorter than NONCE_TRUST, so that a quick restart still finds Discord de-duplicating;
# a live owner slower than this (a send retried for long) and its successor then send the
# same nonce, and only one of them can record it.
RUN_LEASE = timedelta(seconds=30)
# How long one send may take before it counts as failed (its outcome unknown): Discord answers
# in well under a second, and a send that waits for a rate limit waits before it is sent.
SEND_TIMEOUT = 30.0
# How far back the history search for an unrecorded message goes, at most.
HISTORY_SCAN = 500
# Seconds between tries of a write that failed after a message was posted, before the run is
# left for a later tick.
RECORD_RETRY_DELAYS = (1.0, 2.0, 4.0)


class StorageDown(Exception):
    """The database refused a write the run needs: the run stops here, to resume later."""


class Stopping(Exception):
    """newsbot is shutting down: the run stops before its next message, to resume at the next
    start (the run stays claimed, its sent messages recorded)."""


class StorageAlarm:
    """One ERROR line when the database starts refusing writes, one INFO when it accepts them
    again: an outage of ten minutes is one message to the operator, not one per try."""

    def __init__(self) -> None:
        self.failing_since: datetime | None = None

    def failed(self, error: StoreError, now: datetime) -> None:
        if isinstance(error, StoreLost):
            # The bot is stopping over it, and says why itself: the run just waits.
            return
        if self.failing_since is None:
            self.failing_since = now
            log.error(
                "the database refuses writes (%s): digests are paused, nothing more is posted"
                " until it accepts them again; /news and other reads still work",
                error,
            )

    def recovered(self) -> None:
        if self.failing_since is not None:
            self.failing_since = None
            log.info("the database accepts writes again: paused digests continue")


class DigestSender:
    """Sends claimed runs for one process (the store's owner)."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        pacer: Pacing,
        alarm: StorageAlarm,
        retry_delays: Sequence[float] = RETRY_DELAYS,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._pacer = pacer
        self._alarm = alarm
        self._metrics = metrics or Metrics()
        self._retry_delays = tuple(retry_delays)
        self._sleep = sleep
        # Messages posted whose record the database refused: (guild, date) -> (index, id).
        # Recorded first when the run resumes, without asking Discord again.
        self._unrecorded: dict[tuple[int, date], tuple[int, int]] = {}
        self._stopping = False

    def stop(self) -> None:
        """Begin no further message: a message already begun is still sent and recorded."""
        self._stopping = True

    async def send(self, run: DigestRun, channel: discord.TextChannel) -> None:
        """Send the run's messages from the first unrecorded one. Raises PermanentFailure,
        TransientFailure, LeaseLost, StorageDown or Stopping when it stops early."""
        for message in run.messages[run.sent_messages :]:
            if self._stopping:
                raise Stopping(f"stopped before message {message.index}")
            await self._send_one(run, channel, message)

    async def _send_one(
        self, run: DigestRun, channel: discord.TextChannel, message: PlannedMessage
    ) -> None:
        known = self._unrecorded.get((run.guild_id, run.local_date))
        if known is not None and known[0] == message.index:
            await self._record(run, message.index, known[1])
            return
        restart = True
        if message.attempted_at is not None:
            posted, restart = await self._settle(run, channel, message)
            if posted is not None:
                log.info(
                    "digest of %s: message %d had been posted (%s); recorded",
                    run.guild_id,
                    message.index,
                    posted,
                )
                await self._record(run, message.index, posted)
                return
        now = self._clock()
        await self._write(
            self._store.begin_digest_message(
                run, message.index, now, now + RUN_LEASE, restart=restart
            )
        )
        posted_id = await self._post(channel, message)
        await self._record(run, message.index, posted_id)

    async def _settle(
        self, run: DigestRun, channel: discord.TextChannel, message: PlannedMessage
    ) -> tuple[int | None, bool]:
        """An earlier try of `message` may have been posted: its id if it is found, else
        whether the next send starts a new nonce window (False: repeat within the old one)."""
        assert message.attempted_at is not None
        if self._clock() - message.attempted_at < NONCE_TRUST:
            # Discord answers the repeat with the original message, if there was one.
            return None, False
        if not reads_history(channel):
            log.warning(
                "digest of %s: message %d may have been posted %s ago, past Discord's nonce"
                " window, and newsbot cannot read #%s's history to check (Read Message"
                " History): sending it, which may post it twice",
                run.guild_id,
                message.index,
                self._clock() - message.attempted_at,
                channel.name,
            )
            return None, True
        after = run.messages[message.index - 1].message_id if message.index else None
        return await self._find_posted(channel, message, after), True

    async def _find_posted(
        self, channel: discord.TextChannel, message: PlannedMessage, after: int | None
    ) -> int | None:
        """The id of newsbot's own message in the channel carrying `message`'s marker, looked
        for newest first back to the run's previous message (`after`) or HISTORY_SCAN."""
        me = channel.guild.me.id
        try:
            async for posted in channel.history(limit=HISTORY_SCAN):
                if after is not None and posted.id <= after:
                    break
                if posted.author.id == me and any(
                    embed.footer.text == message.marker for embed in posted.embeds
                ):
                    return posted.id
        except SEND_ERRORS as error:
            raise send_failure(error) from error
        return None

    async def _post(self, channel: discord.TextChannel, message: PlannedMessage) -> int:
        """Send the message, repeating it (same nonce) after a failure only while Discord is
        sure to answer a repeat with the original; past that, the run stops and the message
        is settled from the channel's history when the run resumes."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        posted: list[discord.Message] = []
        tries: list[float] = []

        async def attempt() -> None:
            if tries and loop.time() - started >= NONCE_TRUST.total_seconds():
                raise TransientFailure("no answer in time to repeat the message safely")
            tries.append(loop.time())
            async with asyncio.timeout(SEND_TIMEOUT):
                sent = await channel.send(
                    embeds=[discord.Embed.from_dict(embed) for embed in message.embeds],
                    nonce=message.nonce,
                    allowed_mentions=discord.AllowedMentions.none(),
                )
            posted.append(sent)

        await send_with_retries(
            attempt,
            self._retry_delays,
            pace=self._pacer.acquire,
            sleep=self._sleep,
            metrics=self._metrics,
        )
        # Counted once however many tries it took (a repeat with the nonce posts nothing new).
        self._metrics.messages_sent.labels("digest").inc()
        return posted[-1].id

    async def _record(self, run: DigestRun, index: int, message_id: int) -> None:
        key = (run.guild_id, run.local_date)
        for delay in (*RECORD_RETRY_DELAYS, None):
            now = self._clock()
            try:
                await self._store.record_digest_message(
                    run, index, message_id, now, now + RUN_LEASE
                )
            except LeaseLost:
                self._unrecorded.pop(key, None)
                raise
            except StoreError as error:
                self._unrecorded[key] = (index, message_id)
                self._alarm.failed(error, now)
                if delay is None:
                    raise StorageDown(str(error)) from error
                await self._sleep(delay)
                continue
            self._unrecorded.pop(key, None)
            self._alarm.recovered()
            return

    async def _write(self, write: Awaitable[None]) -> None:
        try:
            await write
        except LeaseLost:
            raise
        except StoreError as error:
            self._alarm.failed(error, self._clock())
            raise StorageDown(str(error)) from error
        self._alarm.recovered()
