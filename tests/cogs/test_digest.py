"""Daily digests end to end: the real client, the emulator, and a clock the tests move."""

from __future__ import annotations

import asyncio
import io
import logging
import signal
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import discord
import pytest

from bot.app import NewsBot
from bot.cli import main
from bot.cogs.digest import Digest
from bot.digest import DueDigest, digest_nonce, due_digests
from bot.models import DigestRun, DigestSettings
from bot.poster import DigestPoster
from bot.store import InstanceLocked
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.state import (
    EMBED_LINKS,
    MANAGE_GUILD,
    READ_MESSAGE_HISTORY,
    SEND_MESSAGES,
    VIEW_CHANNEL,
    Channel,
)
from tests.helpers import SHIPPED_SEEDS, FakeClock, World, build_newsbot, start_newsbot

NEW_YORK = "America/New_York"


def digest_cog(bot: NewsBot) -> Digest:
    # load_extension imports the cog module afresh, so isinstance against this test's import
    # of Digest would fail; the cog is found by name instead.
    cog = bot.get_cog("Digest")
    assert cog is not None
    return cog  # type: ignore[return-value]


def poster(world: World) -> DigestPoster:
    return digest_cog(world.bot).poster


def digest_posts(world: World, channel: Channel | None = None) -> list:
    """Messages the bot posted in the channel (not interaction answers)."""
    return [
        message
        for message in world.emu.messages(channel or world.channel)
        if message.source == "channel"
    ]


async def set_digest(
    world: World, *, at: str = "09:00", zone: str = "Europe/Paris", **options: object
):  # type: ignore[no-untyped-def]
    handle = await world.invoke(
        "digest",
        {"channel": world.channel, "time": at, "timezone": zone, **options},
        member=world.admin,
        subcommand="set",
    )
    return await handle.response()


async def save(world: World, *, at: time, zone: str, since: datetime, **fields: object) -> None:
    await world.store.save_digest_settings(
        DigestSettings(
            world.guild.id,
            world.channel.id,
            at,
            zone,
            effective_from=since,
            **fields,  # type: ignore[arg-type]
        )
    )


# --- /digest set and show -------------------------------------------------------------------


async def test_set_saves_the_schedule_and_says_when_the_next_one_comes(world: World) -> None:
    reply = await set_digest(world, zone="europe/paris", count=3)

    assert reply.ephemeral
    assert "09:00 (Europe/Paris)" in reply.content
    assert "<t:1709280000:F>" in reply.content  # 1 March 2024 09:00 in Paris = 08:00 UTC
    settings = await world.store.digest_settings(world.guild.id)
    assert settings is not None
    assert (settings.local_time, settings.timezone, settings.count) == (time(9), "Europe/Paris", 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"at": "25:00"}, "invalid time"),
        ({"at": "13pm"}, "invalid time '13pm': use 24-hour HH:MM, e.g. 09:00 or 20:30"),
        ({"zone": "Mars/Olympus"}, "unknown time zone"),
        (
            {"zone": "Europe/Pariss"},
            "unknown time zone 'Europe/Pariss'. Did you mean Europe/Paris?",
        ),
        ({"max_age": "3x"}, "invalid maximum age '3x': use a number and a unit, e.g. 24h"),
        ({"topics": "Gardening"}, "no topic “Gardening”"),
    ],
)
async def test_bad_input_is_explained_and_changes_nothing(
    world: World, options: dict, message: str
) -> None:
    reply = await set_digest(world, **options)

    assert reply.ephemeral
    assert message in reply.content
    assert "Nothing was changed" in reply.content
    assert await world.store.digest_settings(world.guild.id) is None


async def test_a_channel_where_newsbot_cannot_embed_is_refused(world: World) -> None:
    world.channel = world.emu.add_channel(
        world.guild,
        "no-embeds",
        bot_permissions=VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY,
    )

    reply = await set_digest(world)

    assert "lacks Embed Links" in reply.content
    assert await world.store.digest_settings(world.guild.id) is None


async def test_timezone_autocomplete_finds_zones_by_city(world: World) -> None:
    choices = await world.emu.autocomplete(
        world.guild, world.channel, world.admin, "digest", subcommand="set",
        focused="timezone", value="new york", options={"channel": world.channel, "time": "09:00"},
    )  # fmt: skip

    assert choices[0]["value"] == NEW_YORK


async def test_digest_commands_are_for_server_managers(world: World) -> None:
    handle = await world.invoke("digest", {}, subcommand="show", force=True)

    reply = await handle.response()

    assert reply.content == "You need the Manage Server permission to use this command."


# --- posting at the local time ----------------------------------------------------------------


async def test_digest_posts_once_at_the_local_time_with_clustered_coverage(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world)  # 09:00 Paris = 08:00 UTC; the clock says 07:00 UTC

    clock.now = datetime(2024, 3, 1, 7, 59, tzinfo=UTC)
    await poster(world).tick()
    assert digest_posts(world) == []
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()
    clock.advance(minutes=1)
    await poster(world).tick()

    [message] = digest_posts(world)
    header, *items = message.embeds
    assert header["title"] == "Daily news — Friday 1 March 2024"
    # Seed 002 lists seed 001's article as related coverage: one item, "also covered by"; the
    # header counts the stories shown, not the coverage under them.
    assert len(items) == 4
    assert header["description"] == "4 stories on all topics."
    assert message.allowed_mentions == {"parse": []}
    assert not world.emu.would_ping(message)


async def test_clustered_stories_appear_once_with_the_other_in_also_covered_by(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

    await poster(world).tick()

    [message] = digest_posts(world)
    titles = [embed["title"] for embed in message.embeds[1:]]
    politico = "European Parliament calls for a ban on facial recognition"
    techstory = "European Parliament entreats a ban on facial recognition."
    assert (politico in titles) != (techstory in titles)
    kept = next(embed for embed in message.embeds[1:] if embed["title"] in (politico, techstory))
    [coverage] = [f["value"] for f in kept["fields"] if f["name"] == "Also covered by"]
    other_url = "techstory.in" if kept["title"] == politico else "politico.eu"
    assert other_url in coverage.splitlines()[0]


async def test_a_story_is_never_delivered_twice_and_nothing_new_posts_nothing(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    clock.now = datetime(2024, 3, 2, 8, 0, tzinfo=UTC)
    await poster(world).tick()
    assert len(digest_posts(world)) == 1
    last = await world.store.last_digest_run(world.guild.id)
    assert last is not None
    assert (last.local_date, last.status) == (date(2024, 3, 2), "empty")

    (world.seeds / "new.txt").write_text(
        '---\ntitle: "Fresh news"\npublishedDateTime: 2024-03-02T12:00:00Z\n'
        'webUrl: "https://fresh.example.com/a"\ntopics: [AI]\n---\n'
    )
    await world.bot.reloader.reload()
    clock.now = datetime(2024, 3, 3, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    third = digest_posts(world)[-1]
    assert [embed["title"] for embed in third.embeds[1:]] == ["Fresh news"]


async def test_topics_limit_what_a_digest_carries(world: World, clock: FakeClock) -> None:
    (world.seeds / "robots.txt").write_text(
        '---\ntitle: "Robots everywhere"\npublishedDateTime: 2024-03-01T06:00:00Z\n'
        'webUrl: "https://robots.example.com/a"\ntopics: [Robotics]\n---\n'
    )
    await world.bot.reloader.reload()
    await set_digest(world, topics="robotics")
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

    await poster(world).tick()

    [message] = digest_posts(world)
    assert [embed["title"] for embed in message.embeds[1:]] == ["Robots everywhere"]
    assert "on Robotics" in message.embeds[0]["description"]


async def minute_by_minute(world: World, clock: FakeClock, start: datetime, minutes: int) -> None:
    clock.now = start
    for _ in range(minutes):
        await poster(world).tick()
        clock.advance(minutes=1)


async def test_repeated_hour_on_fall_back_day_posts_once(world: World, clock: FakeClock) -> None:
    # 2024-11-03 in New York: 01:00-02:00 happens twice; 01:30 is first at 05:30 UTC.
    await save(world, at=time(1, 30), zone=NEW_YORK, since=datetime(2024, 11, 3, 3, tzinfo=UTC))

    await minute_by_minute(world, clock, datetime(2024, 11, 3, 4, 0, tzinfo=UTC), 4 * 60)

    [message] = digest_posts(world)
    run = await world.store.last_digest_run(world.guild.id)
    assert run is not None
    assert run.scheduled_for == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)
    assert message.embeds[0]["title"] == "Daily news — Sunday 3 November 2024"


async def test_skipped_hour_on_spring_forward_day_still_posts_once(
    world: World, clock: FakeClock
) -> None:
    # 2024-03-10 in New York: 02:00-03:00 does not exist; 02:30 posts at 03:30 EDT (07:30 UTC).
    await save(world, at=time(2, 30), zone=NEW_YORK, since=datetime(2024, 3, 10, 5, tzinfo=UTC))

    await minute_by_minute(world, clock, datetime(2024, 3, 10, 6, 0, tzinfo=UTC), 3 * 60)

    assert len(digest_posts(world)) == 1
    run = await world.store.last_digest_run(world.guild.id)
    assert run is not None
    assert run.scheduled_for == datetime(2024, 3, 10, 7, 30, tzinfo=UTC)


# --- downtime, crashes, failures ----------------------------------------------------------------


async def test_digest_missed_within_the_window_is_posted_once_at_start(
    world: World, clock: FakeClock
) -> None:
    await save(world, at=time(9), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    clock.now = datetime(2024, 3, 1, 11, 0, tzinfo=UTC)  # back up two hours late

    await poster(world).tick()
    await poster(world).tick()

    assert len(digest_posts(world)) == 1


async def test_digest_missed_beyond_the_window_is_recorded_as_skipped(
    world: World, clock: FakeClock
) -> None:
    await save(world, at=time(9), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    clock.now = datetime(2024, 3, 1, 16, 0, tzinfo=UTC)  # seven hours late

    await poster(world).tick()

    assert digest_posts(world) == []
    run = await world.store.last_digest_run(world.guild.id)
    assert run is not None
    assert run.status == "skipped"
    show = await (
        await world.invoke("digest", {}, member=world.admin, subcommand="show")
    ).response()
    last_run = next(f for f in show.embeds[0]["fields"] if f["name"] == "Last run")
    assert "skipped" in last_run["value"]


async def test_crash_between_sending_and_recording_does_not_post_twice(
    world: World, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    await save(world, at=time(8), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    real_record = world.store.record_digest_message

    async def crash(*args: object, **kwargs: object) -> None:
        raise SystemExit("the process died right after Discord accepted the message")

    monkeypatch.setattr(world.store, "record_digest_message", crash)
    with pytest.raises(SystemExit):
        # What a tick does for a due digest, run alone so the crash surfaces here.
        await poster(world)._post(await _due_today(world, clock))
    monkeypatch.setattr(world.store, "record_digest_message", real_record)
    unfinished = await world.store.last_digest_run(world.guild.id)
    assert unfinished is not None and unfinished.status == "claimed"
    assert unfinished.sent_messages == 0
    assert len(digest_posts(world)) == 1

    # After a restart, a new poster resumes the claimed run with the same nonce.
    fresh = DigestPoster(world.store, world.bot, clock=clock)
    await fresh.tick()

    assert len(digest_posts(world)) == 1
    run = await world.store.last_digest_run(world.guild.id)
    assert run is not None
    assert run.status != "claimed"
    assert run.status == "sent"


async def _due_today(world: World, clock: FakeClock) -> DueDigest:
    settings = await world.store.all_digest_settings()
    due = [d for d in due_digests(settings, {}, clock()) if d.local_date == date(2024, 3, 1)]
    assert [d.action for d in due] == ["post"]
    return due[0]


async def test_forbidden_channel_switches_the_digest_off_and_tells_the_admins(
    world: World, clock: FakeClock
) -> None:
    lobby = world.emu.add_channel(world.guild, "lobby")
    await save(world, at=time(8), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    world.emu.fail_next("POST", f"/channels/{world.channel.id}/messages", 403, code=50013)

    await poster(world).tick()
    clock.advance(days=1)
    await poster(world).tick()

    settings = await world.store.digest_settings(world.guild.id)
    assert settings is not None
    assert not settings.enabled
    assert settings.disabled_reason == "newsbot lacks a permission in the channel"
    assert digest_posts(world) == []
    notices = [
        m
        for m in world.emu.messages(world.channel) + world.emu.messages(lobby)
        if m.source == "channel"
    ]
    assert len(notices) == 1
    assert "paused this server's daily digest" in notices[0].content
    assert not world.emu.would_ping(notices[0])
    show = await (
        await world.invoke("digest", {}, member=world.admin, subcommand="show")
    ).response()
    paused = next(f for f in show.embeds[0]["fields"] if f["name"] == "Paused")
    assert "lacks a permission" in paused["value"]


async def test_missing_embed_permission_is_noticed_before_sending(
    world: World, clock: FakeClock
) -> None:
    await save(world, at=time(8), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    world.emu.set_bot_permissions(world.channel, VIEW_CHANNEL | SEND_MESSAGES)
    await _until_bot_sees_no_embed_links(world)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

    await poster(world).tick()

    settings = await world.store.digest_settings(world.guild.id)
    assert settings is not None
    assert settings.disabled_reason is not None
    assert "Embed Links" in settings.disabled_reason
    # Known from the permissions Discord sent: no request Discord would refuse was made.
    assert world.emu.requests_to("POST", f"/channels/{world.channel.id}/messages") == []


async def _until_bot_sees_no_embed_links(world: World) -> None:
    # The emulator's waits wake on its own changes, not the bot's cache: poll the cache.
    channel = world.bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    async with asyncio.timeout(5):
        while channel.permissions_for(channel.guild.me).embed_links:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("status", [429, 500, 502])
async def test_transient_errors_are_retried_and_post_exactly_once(
    world: World, clock: FakeClock, status: int
) -> None:
    await save(world, at=time(8), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    rule = world.emu.fail_next(
        "POST", f"/channels/{world.channel.id}/messages", status, retry_after=0.05
    )

    await poster(world).tick()

    assert len(rule.hits) == 1
    assert len(digest_posts(world)) == 1
    run = await world.store.last_digest_run(world.guild.id)
    assert run is not None
    assert run.status == "sent"


async def test_two_hundred_servers_due_at_once_get_exactly_one_digest_each(
    world: World, clock: FakeClock
) -> None:
    channels = []
    for number in range(200):
        guild = world.emu.add_guild(f"Server {number}")
        channel = world.emu.add_channel(guild, "news")
        channels.append(channel)
        await world.store.save_digest_settings(
            DigestSettings(
                guild.id,
                channel.id,
                time(8),
                "UTC",
                effective_from=datetime(2024, 2, 1, tzinfo=UTC),
            )
        )
    await world.emu.wait_until(
        lambda: all(world.bot.get_channel(c.id) for c in channels), timeout=10, what="guilds"
    )
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

    await poster(world).tick()
    await poster(world).tick()

    counts = [len([m for m in world.emu.messages(c) if m.source == "channel"]) for c in channels]
    assert counts == [1] * 200
    assert sum(world.emu.rate_limit_hits.values()) == 0
    assert all(m.allowed_mentions == {"parse": []} for c in channels for m in world.emu.messages(c))


async def test_racing_ticks_and_a_second_poster_post_one_digest(
    world: World, clock: FakeClock
) -> None:
    await save(world, at=time(8), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    other = DigestPoster(world.store, world.bot, clock=clock)

    await asyncio.gather(poster(world).tick(), poster(world).tick(), other.tick())

    assert len(digest_posts(world)) == 1


async def test_one_servers_failure_does_not_hold_up_the_others(
    world: World, clock: FakeClock
) -> None:
    healthy = []
    for number in range(3):
        guild = world.emu.add_guild(f"Healthy {number}")
        healthy.append(world.emu.add_channel(guild, "news"))
        await world.store.save_digest_settings(
            DigestSettings(
                guild.id,
                healthy[-1].id,
                time(8),
                "UTC",
                effective_from=datetime(2024, 2, 1, tzinfo=UTC),
            )
        )
    await save(world, at=time(8), zone="UTC", since=datetime(2024, 2, 1, tzinfo=UTC))
    await world.emu.wait_until(lambda: all(world.bot.get_channel(c.id) for c in healthy), timeout=5)
    world.emu.fail_next("POST", f"/channels/{world.channel.id}/messages", 503, times=20)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    slow = DigestPoster(world.store, world.bot, clock=clock, retry_delays=(0.5, 0.5))

    await slow.tick()

    assert [len(digest_posts(world, channel)) for channel in healthy] == [1, 1, 1]
    assert digest_posts(world) == []
    unfinished = await world.store.last_digest_run(world.guild.id)
    # kept claimed: the next tick resumes it
    assert unfinished is not None and unfinished.status == "claimed"


# --- /digest preview, now, off, show --------------------------------------------------------------


async def test_preview_shows_exactly_what_would_be_posted_only_to_the_admin(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world)

    handle = await world.invoke("digest", {}, member=world.admin, subcommand="preview")
    await handle.response()
    [preview] = await handle.followups(1)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    assert preview.ephemeral
    [posted] = digest_posts(world)
    assert preview.embeds == posted.embeds


async def test_now_posts_today_and_counts_as_todays_digest(world: World, clock: FakeClock) -> None:
    await set_digest(world)

    handle = await world.invoke("digest", {}, member=world.admin, subcommand="now")
    await handle.response()
    [answer] = await handle.followups(1)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    assert answer.content.startswith("Posted in")
    assert len(digest_posts(world)) == 1


async def test_off_stops_the_digest(world: World, clock: FakeClock) -> None:
    await set_digest(world)

    reply = await (
        await world.invoke("digest", {}, member=world.admin, subcommand="off")
    ).response()
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    assert reply.content == "The daily digest is off."
    assert digest_posts(world) == []


async def test_show_describes_settings_next_run_and_last_result(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world, topics="AI, computer vision", count=3)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    reply = await (
        await world.invoke("digest", {}, member=world.admin, subcommand="show")
    ).response()

    fields = {f["name"]: f["value"] for f in reply.embeds[0]["fields"]}
    assert fields["Channel"] == f"<#{world.channel.id}>"
    assert fields["Time"] == "09:00 Europe/Paris"
    assert fields["Content"] == "3 stories on AI, Computer Vision"
    assert "<t:1709366400:F>" in fields["Next run"]  # 2 March, 08:00 UTC
    assert fields["Last run"].startswith("2024-03-01 — posted")
    assert "Missing permissions" not in fields
    assert "Exactly once" not in fields


async def test_show_says_what_is_at_stake_without_read_message_history(world: World) -> None:
    await set_digest(world)
    world.emu.set_bot_permissions(world.channel, VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS)
    channel = world.bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await until(lambda: not channel.permissions_for(channel.guild.me).read_message_history)

    fields = await show_fields(world)

    assert "Missing permissions" not in fields  # digests still go out
    assert fields["Exactly once"].startswith(
        "newsbot cannot read this channel's history (Read Message History)."
    )
    assert "may be posted twice" in fields["Exactly once"]


async def test_show_without_a_digest_says_how_to_set_one(world: World) -> None:
    reply = await (
        await world.invoke("digest", {}, member=world.admin, subcommand="show")
    ).response()

    assert "/digest set" in reply.content


async def test_closing_the_bot_stops_the_ticks(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    # That the scheduler ticks at each minute is shown by the real process posting a digest
    # on time (test_newsbot_run_posts_a_digest_set_for_the_next_minute_once_even_after_a_restart).
    bot = build_newsbot(tmp_path, SHIPPED_SEEDS, schedule_digests=True)
    async with running_bot(bot, discord_emulator, loggers=("discord", "bot")):
        cog = digest_cog(bot)
        assert cog.scheduler.running

    assert not cog.scheduler.running


async def test_a_second_bot_on_the_same_database_refuses_to_start(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    first = build_newsbot(tmp_path, SHIPPED_SEEDS, schedule_digests=True)
    async with running_bot(first, discord_emulator):
        second = build_newsbot(tmp_path, SHIPPED_SEEDS, schedule_digests=True)
        with pytest.raises(InstanceLocked, match="another newsbot is already running"):
            await second.login(discord_emulator.token)
        await second.close()


# --- the whole story, as an admin lives it ------------------------------------------------------


async def test_newsbot_run_posts_a_digest_set_for_the_next_minute_once_even_after_a_restart(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> None:
    """The real process, the real scheduler and the real clock: up to about a minute."""
    emu = discord_emulator
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    admin = emu.add_member(guild, "admin", permissions=MANAGE_GUILD)
    process = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_for_ready(timeout=30)
        await _until_seeds_are_loaded(emu, guild, channel, admin)
        now = datetime.now(UTC)
        # The next minute at least 8 s away: setting it takes well under that.
        due = (now + timedelta(seconds=68)).replace(second=0, microsecond=0)
        options = {"channel": channel, "time": f"{due:%H:%M}", "timezone": "UTC"}
        handle = await emu.invoke(guild, channel, admin, "digest", options, subcommand="set")
        assert "Daily digest set" in (await handle.response()).content

        await emu.wait_until(
            lambda: _channel_posts(emu, channel), timeout=140, what="the digest to be posted"
        )
        posted_at = datetime.now(UTC)
        [digest] = _channel_posts(emu, channel)
        show = await _show_when_finished(emu, guild, channel, admin)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0

    restarted = await start_newsbot(emu, tmp_path, emu.token)
    try:
        await emu.wait_for_ready(timeout=30)
        preview = await emu.invoke(guild, channel, admin, "digest", {}, subcommand="preview")
        await preview.response(timeout=5)
        [nothing_new] = await preview.followups(1, timeout=10)
        # The restarted bot ticks right after connecting (the catch-up); let that tick finish.
        await asyncio.sleep(2)
    finally:
        restarted.send_signal(signal.SIGTERM)
        await asyncio.wait_for(restarted.communicate(), 30)

    assert posted_at - due < timedelta(seconds=30)
    header, *items = digest.embeds
    assert header["title"].startswith("Daily news")
    assert len(items) == 4  # five shipped stories, two of them one event
    assert any(
        field["name"] == "Also covered by"
        and ("techstory.in" in field["value"] or "politico.eu" in field["value"])
        for item in items
        for field in item.get("fields", [])
    )
    assert digest.allowed_mentions == {"parse": []}
    fields = {field["name"]: field["value"] for field in show.embeds[0]["fields"]}
    assert fields["Last run"].endswith("posted: 4 stories in 1 message")
    assert nothing_new.content == "Nothing new to post right now."
    assert len(_channel_posts(emu, channel)) == 1


async def _show_when_finished(emu: DiscordEmulator, guild, channel, admin):  # type: ignore[no-untyped-def]
    # The message appears a moment before the run is recorded as finished.
    async with asyncio.timeout(10):
        while True:
            handle = await emu.invoke(guild, channel, admin, "digest", {}, subcommand="show")
            show = await handle.response()
            last = next(f["value"] for f in show.embeds[0]["fields"] if f["name"] == "Last run")
            if "in progress" not in last:
                return show
            await asyncio.sleep(0.1)


def _channel_posts(emu: DiscordEmulator, channel: Channel) -> list:
    return [message for message in emu.messages(channel) if message.source == "channel"]


async def _until_seeds_are_loaded(emu: DiscordEmulator, guild, channel, member) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(30):
        while True:
            reply = await (await emu.invoke(guild, channel, member, "topics")).response(timeout=5)
            if "AI" in (reply.embeds[0].get("description") or ""):
                return
            await asyncio.sleep(0.2)


# --- promises that hold: the next run, /digest now, story counts, freshness ---------------------

EVERYTHING = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY
FRESH_SEED = (
    '---\ntitle: "Fresh news"\npublishedDateTime: {published}\n'
    'webUrl: "https://fresh.example.com/{slug}"\ntopics: [AI]\n---\n'
)


def stamp(moment: datetime) -> str:
    """How `when` shows an instant: Discord timestamps, full and relative."""
    seconds = int(moment.timestamp())
    return f"<t:{seconds}:F> (<t:{seconds}:R>)"


async def add_fresh_story(world: World, published: str, slug: str = "a") -> None:
    text = FRESH_SEED.format(published=published, slug=slug)
    (world.seeds / f"fresh-{slug}.txt").write_text(text)
    await world.bot.reloader.reload()


async def admin_command(world: World, subcommand: str, **options: object) -> str:
    """Run /digest <subcommand> as the admin; the text of the answer (deferred or not)."""
    handle = await world.invoke("digest", options, member=world.admin, subcommand=subcommand)
    first = await handle.response()
    assert first.ephemeral
    if first.type == 5:  # deferred: the answer is the followup
        [answer] = await handle.followups(1)
        assert answer.ephemeral
        return answer.content
    return first.content


async def show_fields(world: World) -> dict[str, str]:
    handle = await world.invoke("digest", {}, member=world.admin, subcommand="show")
    reply = await handle.response()
    return {field["name"]: field["value"] for field in reply.embeds[0]["fields"]}


async def until(condition: Callable[[], object]) -> None:
    """Wait for the bot's own state (the emulator's waits wake on the emulator's changes)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def until_bot_sees_embed_links(world: World, granted: bool) -> None:
    channel = world.bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await until(lambda: channel.permissions_for(channel.guild.me).embed_links == granted)


async def test_the_admins_day_post_reschedule_show_fail_restore_now_gets_true_answers(
    world: World, clock: FakeClock
) -> None:
    """Post today, /digest set a new time later today, /digest show, fail a run by removing
    Embed Links, restore it, /digest now: every answer is true, and so is what was posted."""
    channel = f"<#{world.channel.id}>"
    # 1. Set at 07:00 for 08:00 UTC; today's digest is posted at 08:00.
    answer = await admin_command(world, "set", channel=world.channel, time="08:00", timezone="UTC")
    assert answer == (
        f"Daily digest set: {channel} at 08:00 (UTC), 5 stories on all topics. "
        f"Next one: {stamp(datetime(2024, 3, 1, 8, 0, tzinfo=UTC))}."
    )
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()
    [first] = digest_posts(world)
    assert first.embeds[0]["description"] == "4 stories on all topics."
    assert len(first.embeds) == 1 + 4

    # 2. At 10:00, move the time to 20:00: still ahead today, but today's digest was posted.
    clock.now = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    tomorrow_20 = datetime(2024, 3, 2, 20, 0, tzinfo=UTC)
    answer = await admin_command(world, "set", channel=world.channel, time="8pm", timezone="UTC")
    assert answer == (
        f"Daily digest set: {channel} at 20:00 (UTC), 5 stories on all topics. "
        f"Today's digest was already posted, so the next one is tomorrow, {stamp(tomorrow_20)}."
    )
    clock.now = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)
    await poster(world).tick()
    assert len(digest_posts(world)) == 1  # the promise held: nothing at 20:00 today

    # 3. /digest show says the same.
    fields = await show_fields(world)
    assert fields["Next run"] == f"{stamp(tomorrow_20)}\nToday's digest was already posted."
    assert fields["Last run"] == "2024-03-01 — posted: 4 stories in 1 message"
    assert "Paused" not in fields

    # 4. A new story arrives; Embed Links is taken away; tomorrow's run fails and pauses.
    await add_fresh_story(world, "2024-03-02T12:00:00Z")
    world.emu.set_bot_permissions(
        world.channel, VIEW_CHANNEL | SEND_MESSAGES | READ_MESSAGE_HISTORY
    )
    await until_bot_sees_embed_links(world, False)
    clock.now = tomorrow_20
    await poster(world).tick()
    assert len(digest_posts(world)) == 1
    fields = await show_fields(world)
    assert fields["Last run"] == ("2024-03-02 — failed: newsbot lacks Embed Links in #news")
    assert fields["Paused"] == "newsbot lacks Embed Links in #news. Run /digest set to resume."
    assert fields["Next run"] == "—"

    # 5. Embed Links is back; /digest now posts the failed day's digest and resumes the schedule.
    world.emu.set_bot_permissions(world.channel, EVERYTHING)
    await until_bot_sees_embed_links(world, True)
    clock.now = datetime(2024, 3, 2, 20, 5, tzinfo=UTC)
    answer = await admin_command(world, "now")
    assert answer == (
        f"Posted in {channel}: 1 story in 1 message. The daily digest is back on. "
        f"Next one: {stamp(datetime(2024, 3, 3, 20, 0, tzinfo=UTC))}."
    )
    first_again, second = digest_posts(world)
    assert first_again.id == first.id
    assert second.embeds[0]["title"] == "Daily news — Saturday 2 March 2024"
    assert second.embeds[0]["description"] == "1 story on all topics."
    assert [embed["title"] for embed in second.embeds[1:]] == ["Fresh news"]
    assert not world.emu.would_ping(second)
    # And a second /digest now says, truly, that today's is done.
    answer = await admin_command(world, "now")
    assert answer.startswith("Today's digest was already posted <t:")
    assert answer.endswith(": 1 story in 1 message. Nothing was posted again.")
    assert len(digest_posts(world)) == 2


async def test_now_with_nothing_new_records_nothing_and_the_scheduled_digest_still_runs(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world, at="18:00", zone="UTC")
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await admin_command(world, "now")  # delivers all five stories
    clock.now = datetime(2024, 3, 2, 9, 0, tzinfo=UTC)

    answer = await admin_command(world, "now")

    assert answer == "Nothing new to post right now. Nothing was posted or recorded."
    last = await world.store.last_digest_run(world.guild.id)
    assert last is not None and last.local_date == date(2024, 3, 1)
    await add_fresh_story(world, "2024-03-02T12:00:00Z")
    clock.now = datetime(2024, 3, 2, 18, 0, tzinfo=UTC)
    await poster(world).tick()
    assert [embed["title"] for embed in digest_posts(world)[-1].embeds[1:]] == ["Fresh news"]


@pytest.mark.parametrize("status", ["failed", "skipped", "empty"])
async def test_now_posts_a_day_whose_digest_did_not_go_out(
    world: World, clock: FakeClock, status: str
) -> None:
    await set_digest(world, at="08:00", zone="UTC")
    clock.now = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    await world.store.add_digest_run(
        DigestRun(world.guild.id, date(2024, 3, 1), world.channel.id, status,  # type: ignore[arg-type]
                  clock.now, clock.now, finished_at=clock.now, detail="earlier")
    )  # fmt: skip

    answer = await admin_command(world, "now")

    assert answer == f"Posted in <#{world.channel.id}>: 4 stories in 1 message."
    assert len(digest_posts(world)) == 1
    run = await world.store.last_digest_run(world.guild.id)
    assert run is not None and (run.status, run.attempt) == ("sent", 1)


async def test_now_after_a_try_whose_message_got_through_is_not_swallowed_as_a_repeat(
    world: World, clock: FakeClock
) -> None:
    # The first try's first message reached Discord (its nonce is now taken), then it failed.
    await set_digest(world, at="08:00", zone="UTC")
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    today = date(2024, 3, 1)
    channel = world.bot.get_channel(world.channel.id)
    assert isinstance(channel, discord.TextChannel)
    await channel.send("first try", nonce=digest_nonce(world.guild.id, today, 0))
    await world.store.add_digest_run(
        DigestRun(world.guild.id, today, world.channel.id, "failed", clock.now, clock.now,
                  finished_at=clock.now, detail="Discord refused the digest")
    )  # fmt: skip

    answer = await admin_command(world, "now")

    assert answer.startswith("Posted in")
    earlier, retried = digest_posts(world)
    assert earlier.content == "first try"
    assert retried.embeds[0]["title"] == "Daily news — Friday 1 March 2024"


async def test_now_when_a_digest_was_switched_off_by_an_admin_says_to_set_it(
    world: World,
) -> None:
    await set_digest(world)
    await admin_command(world, "off")

    answer = await admin_command(world, "now")

    assert answer == "The digest is off. Run /digest set to turn it back on first."
    assert digest_posts(world) == []


async def test_moving_the_digest_to_another_channel_after_todays_says_it_comes_tomorrow(
    world: World, clock: FakeClock
) -> None:
    await set_digest(world, at="08:00", zone="UTC")
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()
    clock.now = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
    world.channel = world.emu.add_channel(world.guild, "briefing")
    await until(lambda: world.bot.get_channel(world.channel.id))

    answer = await admin_command(world, "set", channel=world.channel, time="18:00", timezone="UTC")
    clock.now = datetime(2024, 3, 1, 18, 0, tzinfo=UTC)
    await poster(world).tick()

    tomorrow = stamp(datetime(2024, 3, 2, 18, 0, tzinfo=UTC))
    assert answer.endswith(
        f"Today's digest was already posted, so the next one is tomorrow, {tomorrow}."
    )
    assert digest_posts(world) == []  # the new channel gets nothing today, as promised


async def test_a_time_zone_where_it_is_already_tomorrow_gets_its_digest_today(
    world: World, clock: FakeClock
) -> None:
    # Posted at 08:00 UTC on 1 March; at noon UTC it is already 2 March in Auckland (UTC+13).
    await set_digest(world, at="08:00", zone="UTC")
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()
    await add_fresh_story(world, "2024-03-01T10:00:00Z")
    clock.now = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)

    answer = await admin_command(
        world, "set", channel=world.channel, time="09:00", timezone="Pacific/Auckland"
    )
    clock.now = datetime(2024, 3, 1, 20, 0, tzinfo=UTC)  # 09:00 on 2 March in Auckland
    await poster(world).tick()

    assert answer.endswith(f"Next one: {stamp(clock.now)}.")
    assert digest_posts(world)[-1].embeds[0]["title"] == "Daily news — Saturday 2 March 2024"


async def test_set_in_the_evening_says_todays_time_has_passed(
    world: World, clock: FakeClock
) -> None:
    clock.now = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)

    answer = await admin_command(world, "set", channel=world.channel, time="9:00", timezone="UTC")

    tomorrow = stamp(datetime(2024, 3, 2, 9, 0, tzinfo=UTC))
    assert answer.endswith(
        f"09:00 has already passed today, so the next one is tomorrow, {tomorrow}."
    )


# --- freshness ---------------------------------------------------------------------------------


async def test_a_maximum_age_leaves_out_old_stories_and_preview_and_show_count_them(
    world: World, clock: FakeClock
) -> None:
    await add_fresh_story(world, "2024-03-01T06:00:00Z")

    answer = await admin_command(
        world, "set", channel=world.channel, time="08:00", timezone="UTC", max_age="24h"
    )
    handle = await world.invoke("digest", {}, member=world.admin, subcommand="preview")
    await handle.response()
    [preview] = await handle.followups(1)
    fields = await show_fields(world)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    await poster(world).tick()

    assert "5 stories on all topics, none older than 24 hours." in answer
    assert preview.content == "Left out as older than 24 hours: 5 stories."
    assert [embed["title"] for embed in preview.embeds[1:]] == ["Fresh news"]
    assert fields["Freshness"] == "Left out as older than 24 hours: 5 stories."
    [posted] = digest_posts(world)
    assert posted.embeds == preview.embeds
    assert posted.content == ""


async def test_off_as_maximum_age_overrides_the_configured_default(
    world: World, clock: FakeClock
) -> None:
    week = DigestPoster(world.store, world.bot, clock=clock, default_max_age=timedelta(days=7))
    base = DigestSettings(world.guild.id, world.channel.id, time(8), "UTC")

    by_default = await week.select(base)
    unlimited = await week.select(replace(base, max_age=timedelta(0)))

    assert (by_default.items, by_default.too_old, by_default.max_age) == ([], 5, timedelta(days=7))
    assert (len(unlimited.items), unlimited.too_old, unlimited.max_age) == (4, 0, None)


async def test_preview_with_nothing_fresh_says_nothing_new_and_how_many_were_too_old(
    world: World,
) -> None:
    await admin_command(
        world, "set", channel=world.channel, time="08:00", timezone="UTC", max_age="2w"
    )

    answer = await admin_command(world, "preview")

    assert answer == "Nothing new to post right now. Left out as older than 2 weeks: 5 stories."


async def test_command_line_preview_lists_what_digest_preview_shows(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_digest(world, count=3)
    handle = await world.invoke("digest", {}, member=world.admin, subcommand="preview")
    await handle.response()
    [preview] = await handle.followups(1)
    monkeypatch.setenv("NEWSBOT_DB", str(world.store.path))
    monkeypatch.setenv("NEWSBOT_SEEDS", str(world.seeds))
    monkeypatch.delenv("NEWSBOT_CONFIG", raising=False)
    out = io.StringIO()

    code = await asyncio.to_thread(main, ["digest", "preview", "--count", "3"], out)

    lines = out.getvalue().splitlines()
    assert code == 0
    assert lines[1] == preview.embeds[0]["description"] == "3 stories on all topics."
    listed = [line.split(". ", 1)[1] for line in lines if line[:3] in {"1. ", "2. ", "3. "}]
    assert listed == [embed["title"] for embed in preview.embeds[1:]]


# --- values a stale or modified client sends ---------------------------------------------------


COUNT_RULE = "count must be a whole number between 1 and 10."


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"count": 0}, COUNT_RULE),
        ({"count": -1}, COUNT_RULE),
        ({"count": 11}, COUNT_RULE),
        ({"count": 2**70}, COUNT_RULE),
        ({"count": "five"}, COUNT_RULE),
        ({"count": True}, COUNT_RULE),
        ({"time": 900}, "time must be between 1 and 10 characters long."),
        ({"time": ""}, "time must be between 1 and 10 characters long."),
        (
            {"timezone": "x" * 65},
            "timezone must be between 1 and 64 characters long.",
        ),
        (
            {"topics": "AI," * 200},
            "topics must be between 1 and 500 characters long.",
        ),
    ],
)
async def test_out_of_range_values_get_a_clear_private_answer_and_change_nothing(
    world: World, raw: dict, message: str
) -> None:
    options = {"channel": world.channel, "time": "09:00", "timezone": "UTC"}
    options = {name: value for name, value in options.items() if name not in raw}
    handle = await world.emu.invoke(
        world.guild, world.channel, world.admin, "digest", options,
        subcommand="set", raw_options=raw,
    )  # fmt: skip

    reply = await handle.response()

    assert reply.ephemeral
    assert reply.content == message
    assert await world.store.digest_settings(world.guild.id) is None


async def test_a_channel_of_another_server_is_refused(world: World) -> None:
    elsewhere = world.emu.add_guild("Elsewhere")
    foreign = world.emu.add_channel(elsewhere, "news")
    await until(lambda: world.bot.get_channel(foreign.id))
    handle = await world.emu.invoke(
        world.guild, world.channel, world.admin, "digest", {"time": "09:00", "timezone": "UTC"},
        subcommand="set", raw_options={"channel": foreign},
    )  # fmt: skip

    reply = await handle.response()

    assert reply.ephemeral
    assert reply.content == (
        "That channel is not in this server (or newsbot cannot see it). Nothing was done."
    )
    assert await world.store.digest_settings(world.guild.id) is None
    assert world.emu.messages(foreign) == []


# --- what the log says --------------------------------------------------------------------------


async def test_a_posted_digest_is_logged_once_at_info_with_server_channel_and_counts(
    world: World, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    await set_digest(world)
    clock.now = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

    with caplog.at_level(logging.INFO, logger="bot"):
        await poster(world).tick()
        await poster(world).tick()

    posted = [r for r in caplog.records if r.name == "bot.poster" and r.levelno == logging.INFO]
    assert [r.getMessage() for r in posted] == [
        f"digest posted: server {world.guild.id}, channel {world.channel.id}, "
        "4 stories in 1 message"
    ]
    # As fields of their own too, for log_format: json.
    [record] = posted
    assert (record.server, record.channel) == (world.guild.id, world.channel.id)
    assert record.digest == f"{world.guild.id}/2024-03-01"


async def test_joining_and_leaving_a_server_is_logged(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.app"):
        guild = world.emu.add_guild("Newcomers")
        await until(lambda: any("joined server" in r.getMessage() for r in caplog.records))
        world.emu.remove_guild(guild)
        await until(lambda: any("left server" in r.getMessage() for r in caplog.records))

    messages = [r.getMessage() for r in caplog.records if r.name == "bot.app"]
    assert f"joined server {guild.id} (Newcomers), now in 2 servers" in messages
    assert f"left server {guild.id} (Newcomers), now in 1 servers" in messages
