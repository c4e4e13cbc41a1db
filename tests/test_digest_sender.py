"""Exactly once, end to end: a claimed digest survives crashes at every step, edits of its
stories, a database that stops taking writes, and another process, without a story posted
twice or lost. Through the emulator, which de-duplicates nonces as Discord does; "restarting"
is a new store (another owner) and poster on the same database, the clock moved past the
crashed owner's lease."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import discord
import pytest

from bot.delivery import TransientFailure, send_failure
from bot.digest import due_digests
from bot.digest_sender import NONCE_TRUST, RUN_LEASE, DigestSender, StorageAlarm
from bot.metrics import Metrics
from bot.models import DigestRun, DigestSettings, PlannedMessage
from bot.pacing import Pacer
from bot.poster import DigestPoster
from bot.sharding import Shards, shard_of
from bot.store import Store
from bot.store.sqlite import SqliteStore
from tests.discord_emulator.state import EMBED_LINKS, SEND_MESSAGES, VIEW_CHANNEL, Channel
from tests.helpers import FakeClock, World

DUE = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
FEBRUARY = datetime(2024, 2, 1, tzinfo=UTC)
# Long enough that two story embeds fill a message: five stories make three messages.
EXCERPT = "An excerpt long enough to matter. " * 70
LONG_SEED = (
    '---\ntitle: "{title}"\npublishedDateTime: 2024-03-01T0{n}:00:00Z\n'
    'webUrl: "https://long.example.com/{n}"\ntopics: [Long]\nexcerpt: "{excerpt}"\n---\n'
)
WITHIN_WINDOW = RUN_LEASE + (NONCE_TRUST - RUN_LEASE) / 2
BEYOND_WINDOW = timedelta(minutes=10)


class Crash(BaseException):
    """The process dies here (a BaseException, so that nothing on the way catches it)."""


def write_long_story(
    world: World, n: int, *, title: str | None = None, excerpt: str = EXCERPT
) -> None:
    text = LONG_SEED.format(n=n, title=title or f"Long story {n}", excerpt=excerpt)
    (world.seeds / f"long-{n}.txt").write_text(text)


async def three_message_digest(world: World) -> None:
    """Five long stories on a topic of their own, and a digest of that topic due at DUE."""
    for n in range(1, 6):
        write_long_story(world, n)
    await world.bot.reloader.reload()
    await world.store.save_digest_settings(
        DigestSettings(
            world.guild.id,
            world.channel.id,
            time(8),
            "UTC",
            topics=("Long",),
            effective_from=FEBRUARY,
        )
    )


def posts(world: World, channel: Channel) -> list[Any]:
    """The digest messages the bot posted in a channel (not answers to commands)."""
    return [m for m in world.emu.messages(channel) if m.source == "channel"]


def posted_messages(world: World) -> list[Any]:
    return posts(world, world.channel)


def story_counts(world: World) -> Counter[str]:
    """How many times each story (by its link) was posted in the channel."""
    return Counter(
        embed["url"]
        for message in posted_messages(world)
        for embed in message.embeds
        if "url" in embed
    )


def crash_at(
    store: Store, method: str, index: int, *, after_real: bool
) -> Callable[..., Awaitable[None]]:
    """Make `store.method` crash the process for message `index`, before or after it ran."""
    real = getattr(store, method)

    async def crashing(run: DigestRun, message_index: int, *args: Any, **kwargs: Any) -> None:
        if message_index == index and not after_real:
            raise Crash(f"died before {method} of message {index}")
        await real(run, message_index, *args, **kwargs)
        if message_index == index:
            raise Crash(f"died after {method} of message {index}")

    setattr(store, method, crashing)
    return real


def discord_follows(world: World, clock: FakeClock) -> None:
    """Let the emulator's nonce window run on the test's clock, as Discord's runs on real time."""
    world.emu.nonce_clock = lambda: clock.now.timestamp()


async def first_try(world: World, clock: FakeClock) -> None:
    """The digest due at DUE, sent until the crash `crash_at` set up."""
    clock.now = DUE
    discord_follows(world, clock)
    poster = DigestPoster(world.store, world.bot, clock=clock)
    due_now = due_digests(await world.store.all_digest_settings(), {}, clock())
    [due] = [due for due in due_now if due.local_date == DUE.date()]
    with pytest.raises(Crash):
        await poster._post(due)


class Restarted:
    """newsbot started again on the same database: a new store (a new owner) and poster; as
    `newsbot run` starts it (holding the instance lease) when `sole`, or running `shards`
    only (holding their leases)."""

    def __init__(
        self, world: World, clock: FakeClock, *, sole: bool = False, shards: Shards | None = None
    ) -> None:
        self.store = SqliteStore(world.store.path)
        self.poster = DigestPoster(self.store, world.bot, clock=clock, shards=shards)
        self.sole = sole
        self.shards = shards

    async def __aenter__(self) -> DigestPoster:
        await self.store.open()
        if self.sole:
            await self.store.acquire_instance_lock()
        if self.shards is not None:
            await self.store.acquire_shard_leases(self.shards)
        return self.poster

    async def __aexit__(self, *exc: object) -> None:
        await self.store.close()


async def every_story_posted_once(world: World) -> None:
    """The three-message digest is in the channel once, every story in it once, and done."""
    assert len(posted_messages(world)) == 3
    assert sorted(story_counts(world).values()) == [1] * 5
    assert (await ledger(world)).status == "sent"


async def ledger(world: World) -> DigestRun:
    run = await world.store.digest_run(world.guild.id, DUE.date())
    assert run is not None
    return run


# --- crashes ------------------------------------------------------------------------------------


CRASH_POINTS = {
    # message 1 recorded as being tried, then the process died before Discord got it
    "before send": ("begin_digest_message", True),
    # Discord posted message 1, the process died before recording it
    "after send": ("record_digest_message", False),
    # message 1 posted and recorded, the process died before message 2
    "after record": ("record_digest_message", True),
}


@pytest.mark.parametrize("restart_after", [WITHIN_WINDOW, BEYOND_WINDOW], ids=["within", "beyond"])
@pytest.mark.parametrize("point", sorted(CRASH_POINTS))
async def test_a_crash_at_any_step_of_a_digest_posts_every_story_exactly_once(
    world: World, clock: FakeClock, point: str, restart_after: timedelta
) -> None:
    await three_message_digest(world)
    method, after_real = CRASH_POINTS[point]
    crash_at(world.store, method, 1, after_real=after_real)
    await first_try(world, clock)

    clock.now += restart_after  # beyond: Discord has forgotten the nonces by then
    async with Restarted(world, clock) as poster:
        await poster.tick()

    messages = posted_messages(world)
    assert len(messages) == 3
    assert sorted(story_counts(world).values()) == [1] * 5
    run = await ledger(world)
    assert (run.status, run.sent_messages) == ("sent", 3)
    assert [m.message_id for m in run.messages] == [m.id for m in messages]


async def test_a_restart_before_the_lease_expires_leaves_the_digest_to_its_owner(
    world: World, clock: FakeClock
) -> None:
    await three_message_digest(world)
    crash_at(world.store, "record_digest_message", 1, after_real=False)
    await first_try(world, clock)

    clock.now += RUN_LEASE / 2
    async with Restarted(world, clock) as poster:
        await poster.tick()
        assert len(posted_messages(world)) == 2
        clock.now += RUN_LEASE
        await poster.tick()

    assert len(posted_messages(world)) == 3
    assert sorted(story_counts(world).values()) == [1] * 5


async def test_newsbot_restarted_quickly_resumes_at_once_inside_the_nonce_window(
    world: World, clock: FakeClock
) -> None:
    # The crashed process's lease has not expired, but the restarted one holds the instance
    # lease, so it is the only poster and resumes at once: Discord still de-duplicates the
    # unconfirmed message, which matters most where newsbot cannot read the history.
    await three_message_digest(world)
    world.emu.set_bot_permissions(world.channel, VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS)
    await until_bot_cannot_read_history(world)
    crash_at(world.store, "record_digest_message", 1, after_real=False)
    await first_try(world, clock)

    clock.now += timedelta(seconds=5)
    async with Restarted(world, clock, sole=True) as poster:
        await poster.tick()

    await every_story_posted_once(world)


def one_of_two_shards(world: World, *, the_servers: bool) -> Shards:
    """A process running the server's shard of two, or the other one."""
    shard = shard_of(world.guild.id, 2)
    return Shards(2, (shard if the_servers else 1 - shard,))


async def test_the_process_running_the_servers_shard_resumes_a_dead_owners_digest_at_once(
    world: World, clock: FakeClock
) -> None:
    # The crashed process's run lease has not expired, but whoever holds the shard's lease
    # runs that shard alone: the run's owner is gone, so it resumes within the nonce window.
    await three_message_digest(world)
    world.emu.set_bot_permissions(world.channel, VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS)
    await until_bot_cannot_read_history(world)
    crash_at(world.store, "record_digest_message", 1, after_real=False)
    await first_try(world, clock)

    clock.now += timedelta(seconds=5)
    async with Restarted(world, clock, shards=one_of_two_shards(world, the_servers=True)) as poster:
        await poster.tick()

    await every_story_posted_once(world)


async def test_a_process_running_other_shards_never_takes_over_the_servers_digest(
    world: World, clock: FakeClock
) -> None:
    await three_message_digest(world)
    crash_at(world.store, "record_digest_message", 1, after_real=False)
    await first_try(world, clock)

    clock.now += BEYOND_WINDOW  # the run's lease long expired
    other = one_of_two_shards(world, the_servers=False)
    async with Restarted(world, clock, shards=other) as poster:
        await poster.tick()
        claimed = await ledger(world)

    assert len(posted_messages(world)) == 2  # message 1 got through before the crash
    assert (claimed.status, claimed.owner) == ("claimed", world.store.owner)


async def test_a_tick_claims_a_run_lease_of_messages_at_a_time_and_the_rest_once_those_are_sent(
    world: World, clock: FakeClock
) -> None:
    # Three servers due at once, three messages each; at this rate one lease sends four.
    await three_message_digest(world)
    channels = [world.channel]
    for number in (2, 3):
        guild = world.emu.add_guild(f"Server {number}")
        channels.append(world.emu.add_channel(guild, "news"))
        await world.store.save_digest_settings(
            DigestSettings(
                guild.id, channels[-1].id, time(8), "UTC", topics=("Long",), effective_from=FEBRUARY
            )
        )
    await world.emu.wait_until(
        lambda: all(world.bot.get_channel(c.id) for c in channels), timeout=10, what="guilds"
    )
    rate = 4 / RUN_LEASE.total_seconds()
    metrics = TickCount()
    poster = DigestPoster(
        world.store,
        world.bot,
        clock=clock,
        pacer=Pacer(1000.0, burst=100),
        send_rate=rate,
        metrics=metrics,
    )
    clock.now = DUE
    # What the ledger held today when each digest was claimed.
    seen_at_claims: list[list[str]] = []
    claim = world.store.add_digest_run

    async def watched_claim(run: DigestRun) -> bool:
        before = await world.store.digest_runs_since(DUE.date())
        if run.status == "claimed":
            seen_at_claims.append(sorted(r.status for r in before.values()))
        return await claim(run)

    world.store.add_digest_run = watched_claim  # type: ignore[method-assign]

    await poster.tick()

    # A run of three fits the four; the next would not, and is claimed once the first is sent,
    # in the same tick; so is the third.
    assert seen_at_claims == [[], ["sent"], ["sent", "sent"]]
    assert [len(posts(world, channel)) for channel in channels] == [3, 3, 3]
    # The tick, and each of its three rounds: signs of life for /readyz while the minutes'
    # ticks are skipped.
    assert metrics.ticks == 1 + 3


class TickCount(Metrics):
    def __init__(self) -> None:
        super().__init__()
        self.ticks = 0

    def digest_ticked(self) -> None:
        self.ticks += 1


async def test_a_resumed_digest_sends_what_was_claimed_whatever_happened_to_its_stories(
    world: World, clock: FakeClock
) -> None:
    # Message 1 was in flight when the process died; meanwhile a story of message 0 got a
    # longer title, one of message 1 a shorter excerpt, and the one in message 2 was retired.
    await three_message_digest(world)
    crash_at(world.store, "record_digest_message", 1, after_real=False)
    await first_try(world, clock)
    claimed = await ledger(world)
    write_long_story(world, 5, title="Long story 5, " + "now with a much longer title " * 5)
    write_long_story(world, 3, excerpt="Short now.")
    (world.seeds / "long-1.txt").unlink()
    await world.bot.reloader.reload()

    clock.now += BEYOND_WINDOW
    async with Restarted(world, clock) as poster:
        await poster.tick()

    messages = posted_messages(world)
    assert [m.embeds for m in messages] == [list(m.embeds) for m in claimed.messages]
    assert sorted(story_counts(world).values()) == [1] * 5
    assert (await ledger(world)).status == "sent"


async def test_without_read_message_history_a_late_restart_is_warned_about(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await three_message_digest(world)
    world.emu.set_bot_permissions(world.channel, VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS)
    await until_bot_cannot_read_history(world)
    crash_at(world.store, "begin_digest_message", 1, after_real=True)
    await first_try(world, clock)

    clock.now += BEYOND_WINDOW
    async with Restarted(world, clock) as poster:
        with caplog.at_level(logging.WARNING, logger="bot"):
            await poster.tick()

    # Message 1 had not reached Discord: sending it was right, and the operator knows the risk.
    assert len(posted_messages(world)) == 3
    assert "cannot read #news's history to check (Read Message History)" in caplog.text


# --- answers that leave the outcome open ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["error500", "malformed", "cut"])
async def test_a_message_created_but_answered_badly_is_posted_once(
    world: World, clock: FakeClock, kind: str
) -> None:
    await three_message_digest(world)
    clock.now = DUE
    discord_follows(world, clock)
    spoiled = world.emu.after_create(kind, channel=world.channel)
    poster = DigestPoster(world.store, world.bot, clock=clock, sleep=_no_wait)

    await poster.tick()

    assert spoiled.hits  # Discord created message 0, then answered it badly
    messages = posted_messages(world)
    assert len(messages) == 3
    assert sorted(story_counts(world).values()) == [1] * 5
    run = await ledger(world)
    assert run.status == "sent" and [m.message_id for m in run.messages] == [m.id for m in messages]


async def test_a_stop_gives_up_on_an_answer_that_does_not_come_within_its_grace(
    world: World, clock: FakeClock
) -> None:
    await three_message_digest(world)
    clock.now = DUE
    discord_follows(world, clock)
    world.emu.after_create("delay", delay=1.0, channel=world.channel)
    poster = DigestPoster(world.store, world.bot, clock=clock, stop_grace=0.1)
    tick = asyncio.create_task(poster.tick())
    await until(lambda: len(posted_messages(world)) == 1)

    await poster.stop()

    assert tick.done()  # given up on, not waited for
    stopped = await ledger(world)
    assert stopped.status == "claimed"
    assert stopped.messages[0].attempted_at is not None and stopped.messages[0].message_id is None
    # The next start settles the unanswered message (by its nonce) and sends the rest.
    await DigestPoster(world.store, world.bot, clock=clock).tick()
    assert len(posted_messages(world)) == 3
    assert sorted(story_counts(world).values()) == [1] * 5
    assert (await ledger(world)).status == "sent"


@pytest.mark.parametrize("restart_after", [WITHIN_WINDOW, BEYOND_WINDOW], ids=["within", "beyond"])
async def test_killed_mid_fan_out_and_restarted_no_channel_gets_a_message_twice(
    world: World, clock: FakeClock, restart_after: timedelta
) -> None:
    # Many servers due at once, Discord slow to answer: the process dies with every message
    # created and none of them answered, so none recorded.
    channels = [world.channel]
    for n in range(11):
        guild = world.emu.add_guild(f"Server {n}")
        channels.append(world.emu.add_channel(guild, "news"))
    await until(lambda: len(world.bot.guilds) == len(channels))
    for channel in channels:
        settings = DigestSettings(
            channel.guild_id, channel.id, time(8), "UTC", effective_from=FEBRUARY
        )
        await world.store.save_digest_settings(settings)
    clock.now = DUE
    discord_follows(world, clock)
    world.emu.after_create("delay", delay=1.0, times=len(channels))
    tick = asyncio.create_task(DigestPoster(world.store, world.bot, clock=clock).tick())
    await until(lambda: sum(len(posts(world, c)) for c in channels) == len(channels))
    tick.cancel()  # kill -9: nothing after this point ran
    await asyncio.gather(tick, return_exceptions=True)

    clock.now += restart_after
    async with Restarted(world, clock) as poster:
        await poster.tick()

    assert [len(posts(world, channel)) for channel in channels] == [1] * len(channels)
    runs = await world.store.digest_runs_since(DUE.date())
    assert {run.status for run in runs.values()} == {"sent"}


# --- the database refusing writes ---------------------------------------------------------------


def refuse_writes(store: SqliteStore, refusing: bool) -> Awaitable[Any]:
    """The database turns read-only (or writable again): SQLite then answers every write with
    "attempt to write a readonly database", as for a file that lost its write permission."""
    writer = store._writer
    assert writer is not None
    return writer.execute(f"PRAGMA query_only = {'ON' if refusing else 'OFF'}")


async def test_a_database_that_refuses_writes_for_twelve_minutes_duplicates_nothing(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await three_message_digest(world)
    world.run.allow_error("the database refuses writes")
    clock.now = DUE
    discord_follows(world, clock)  # twelve minutes: past Discord's nonce window

    async def waiting(seconds: float) -> None:  # the poster's waits take time on the clock too
        clock.advance(seconds=seconds)

    poster = DigestPoster(world.store, world.bot, clock=clock, retry_delays=(), sleep=waiting)
    real_record = world.store.record_digest_message

    async def break_after_first(run: DigestRun, index: int, *args: Any) -> None:
        await refuse_writes(world.store, True)  # the disk fills as message 0 is posted
        await real_record(run, index, *args)

    async def tick_at(minute: int) -> None:
        # The scheduler's ticks come a moment after each minute.
        clock.now = DUE + timedelta(minutes=minute, milliseconds=200)
        await poster.tick()

    world.store.record_digest_message = break_after_first  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="bot"):
        await tick_at(0)
        world.store.record_digest_message = real_record  # type: ignore[method-assign]
        for minute in range(1, 13):
            await tick_at(minute)
        assert len(posted_messages(world)) == 1
        await refuse_writes(world.store, False)
        # With the database back, the run resumes within two minutes.
        for minute in (13, 14):
            await tick_at(minute)

    await every_story_posted_once(world)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "the database refuses writes (database" in errors[0].getMessage()
    assert "readonly database" in errors[0].getMessage()
    assert "accepts writes again" in caplog.text


async def test_reads_keep_working_while_the_database_refuses_writes(world: World) -> None:
    await refuse_writes(world.store, True)
    try:
        reply = await (await world.invoke("news", {"topic": "AI"})).response()
    finally:
        await refuse_writes(world.store, False)

    assert reply.embeds


# --- several processes --------------------------------------------------------------------------


async def test_two_processes_racing_on_one_database_post_each_digest_once(
    world: World, clock: FakeClock
) -> None:
    guilds = [world.guild]
    channels = [world.channel]
    for n in range(7):
        guild = world.emu.add_guild(f"Server {n}")
        guilds.append(guild)
        channels.append(world.emu.add_channel(guild, "news"))
    await world.bot.wait_until_ready()
    for guild, channel in zip(guilds, channels, strict=True):
        await world.store.save_digest_settings(
            DigestSettings(
                guild.id,
                channel.id,
                time(8),
                "UTC",
                effective_from=FEBRUARY,
            )
        )
    clock.now = DUE
    # Two processes without the one-bot guard (as two shards of one database will be).
    async with Restarted(world, clock) as other:
        mine = DigestPoster(world.store, world.bot, clock=clock)
        await asyncio.wait_for(asyncio.gather(mine.tick(), other.tick(), mine.tick()), 60)

    for channel in channels:
        posts = [m for m in world.emu.messages(channel) if m.source == "channel"]
        assert len(posts) == 1, channel.name


async def _no_wait(seconds: float) -> None:
    return None


async def until(condition: Callable[[], object]) -> None:
    """Wait for the bot's own state to change (it follows the emulator's events)."""
    async with asyncio.timeout(10):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def until_bot_cannot_read_history(world: World) -> None:
    channel = world.bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await until(lambda: not channel.permissions_for(channel.guild.me).read_message_history)


# --- one send ------------------------------------------------------------------------------------


class SilentChannel:
    """A channel whose sends never get an answer (the message may or may not exist)."""

    def __init__(self) -> None:
        self.sends = 0

    async def send(self, **fields: Any) -> None:
        self.sends += 1
        raise TimeoutError


async def test_a_send_is_not_repeated_once_discord_may_have_forgotten_its_nonce(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # Past the trusted window a repeat could post a second copy: the run stops instead, and
    # the message is settled from the channel's history when it resumes.
    monkeypatch.setattr("bot.digest_sender.NONCE_TRUST", timedelta(0))
    sender = DigestSender(
        SqliteStore(tmp_path / "unused.db"),
        clock=lambda: DUE,
        pacer=Pacer(1000.0, burst=100),
        alarm=StorageAlarm(),
        sleep=_no_wait,
    )
    channel = SilentChannel()
    message = PlannedMessage(0, "dg-nonce", ({"title": "x"},), ())

    with pytest.raises(TransientFailure, match="no answer in time to repeat"):
        await sender._post(channel, message)  # type: ignore[arg-type]

    assert channel.sends == 1


def test_an_answer_that_is_not_json_leaves_the_outcome_open_like_a_server_error() -> None:
    failure = send_failure(json.JSONDecodeError("Expecting value", "<html>", 0))

    assert isinstance(failure, TransientFailure)
