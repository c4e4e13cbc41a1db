"""The poster's decisions about one server, without a bot or Discord: which failures are for
good, how sends are retried, what a channel lacks and where admins are told."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

import aiohttp
import discord
import pytest

from bot.app import invite_url
from bot.delivery import (
    REQUIRED,
    REQUIRED_PERMISSIONS,
    PermanentFailure,
    TransientFailure,
    admin_notice_channels,
    missing_permissions,
    send_failure,
    send_with_retries,
)
from bot.metrics import Metrics

EVERYTHING = discord.Permissions(view_channel=True, send_messages=True, embed_links=True)
TEXT_ONLY = discord.Permissions(view_channel=True, send_messages=True)


def http_error(kind: type[discord.HTTPException], status: int, code: int = 0) -> Exception:
    # discord.py reads only these two from the aiohttp response.
    response: Any = SimpleNamespace(status=status, reason="refused")
    return kind(response, {"code": code, "message": f"error {code}"})


# --- which failures are for good ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (http_error(discord.NotFound, 404, 10003), "the channel no longer exists"),
        (http_error(discord.Forbidden, 403, 50001), "newsbot has no access to the channel"),
        (http_error(discord.Forbidden, 403, 50013), "newsbot lacks a permission in the channel"),
        (http_error(discord.Forbidden, 403, 40001), "error 40001"),
        (http_error(discord.HTTPException, 400, 50035), "Discord refused the digest: error 50035"),
    ],
)
def test_a_gone_or_forbidden_channel_or_a_refused_message_is_permanent(
    error: Exception, reason: str
) -> None:
    failure = send_failure(error)

    assert isinstance(failure, PermanentFailure)
    assert str(failure) == reason


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (http_error(discord.DiscordServerError, 503), "HTTP 503"),
        (http_error(discord.HTTPException, 429), "HTTP 429"),
        (aiohttp.ClientConnectionError("reset"), "ClientConnectionError"),
        (TimeoutError(), "TimeoutError"),
        (ConnectionResetError(), "ConnectionResetError"),
    ],
)
def test_server_errors_rate_limits_and_the_network_are_transient(
    error: Exception, problem: str
) -> None:
    failure = send_failure(error)

    assert isinstance(failure, TransientFailure)
    assert str(failure) == problem


# --- the retry schedule ------------------------------------------------------------------------


class FlakySend:
    """A send that raises the given errors in turn, then succeeds; it counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    async def pace(self) -> None:
        self.events.append("pace")

    async def sleep(self, seconds: float) -> None:
        self.events.append(f"sleep {seconds:g}")


async def test_a_transient_failure_is_retried_after_each_delay_and_every_try_is_paced() -> None:
    send = FlakySend(http_error(discord.DiscordServerError, 503), TimeoutError())
    record = Recorder()

    await send_with_retries(send, (1.0, 2.0, 4.0), pace=record.pace, sleep=record.sleep)

    assert send.calls == 3
    assert record.events == ["pace", "sleep 1", "pace", "sleep 2", "pace"]


async def test_each_retry_is_counted_with_its_reason() -> None:
    send = FlakySend(
        http_error(discord.HTTPException, 429),
        http_error(discord.DiscordServerError, 503),
        TimeoutError(),
    )
    record = Recorder()
    metrics = Metrics()

    await send_with_retries(
        send, (1.0, 1.0, 1.0), pace=record.pace, sleep=record.sleep, metrics=metrics
    )

    retries = {
        reason: metrics.registry.get_sample_value("newsbot_send_retries_total", {"reason": reason})
        for reason in ("rate_limited", "server_error", "network")
    }
    assert retries == {"rate_limited": 1, "server_error": 1, "network": 1}


async def test_a_transient_failure_is_given_up_once_the_delays_are_used_up() -> None:
    send = FlakySend(*(http_error(discord.DiscordServerError, 503) for _ in range(4)))
    record = Recorder()

    with pytest.raises(TransientFailure, match="HTTP 503"):
        await send_with_retries(send, (1.0, 2.0, 4.0), pace=record.pace, sleep=record.sleep)

    assert send.calls == 4
    assert [event for event in record.events if event.startswith("sleep")] == [
        "sleep 1",
        "sleep 2",
        "sleep 4",
    ]


async def test_a_permanent_failure_is_not_retried() -> None:
    send = FlakySend(http_error(discord.Forbidden, 403, 50013))
    record = Recorder()

    with pytest.raises(PermanentFailure, match="lacks a permission"):
        await send_with_retries(send, (1.0, 2.0), pace=record.pace, sleep=record.sleep)

    assert send.calls == 1
    assert record.events == ["pace"]


async def test_an_unexpected_error_is_not_taken_for_a_discord_failure() -> None:
    send = FlakySend(KeyError("bug"))
    record = Recorder()

    with pytest.raises(KeyError):
        await send_with_retries(send, (1.0,), pace=record.pace, sleep=record.sleep)

    assert send.calls == 1


# --- what a channel lacks, and where admins are told -------------------------------------------


def fake_channel(
    channel_id: int, granted: discord.Permissions, *, position: int = 0, name: str = "news"
) -> Any:
    channel = SimpleNamespace(id=channel_id, position=position, name=name)
    channel.guild = SimpleNamespace(me=object())
    channel.permissions_for = lambda member: granted
    return channel


def fake_guild(system: Any, *channels: Any) -> Any:
    return SimpleNamespace(system_channel=system, text_channels=list(channels))


def test_missing_permissions_are_named_as_discord_shows_them_in_a_fixed_order() -> None:
    assert missing_permissions(fake_channel(1, EVERYTHING)) == ""
    assert missing_permissions(fake_channel(1, TEXT_ONLY)) == "Embed Links"
    assert (
        missing_permissions(fake_channel(1, discord.Permissions.none()))
        == "View Channel, Send Messages, Embed Links"
    )


def test_a_plain_text_message_needs_no_embed_links() -> None:
    assert missing_permissions(fake_channel(1, TEXT_ONLY), embeds=False) == ""
    assert missing_permissions(
        fake_channel(1, discord.Permissions(view_channel=True)), embeds=False
    ) == ("Send Messages")


def test_the_invite_asks_for_what_a_digest_needs_and_the_history_that_keeps_it_exact() -> None:
    assert {name for name, granted in REQUIRED_PERMISSIONS if granted} == {
        "read_messages",  # discord.py's name for View Channel
        "send_messages",
        "embed_links",
        "read_message_history",
    }
    assert len(REQUIRED) == 3  # what posting is checked for: history is not needed to post
    assert REQUIRED_PERMISSIONS.value == 84992  # what the README's invite link carries
    assert f"permissions={REQUIRED_PERMISSIONS.value}" in invite_url(1234)


def ids(channels: Iterable[Any]) -> list[int]:
    return [channel.id for channel in channels]


def test_admins_are_told_in_the_system_channel_first_then_in_the_listed_order() -> None:
    system = fake_channel(5, TEXT_ONLY, position=9)
    first = fake_channel(7, TEXT_ONLY, position=0)
    second = fake_channel(6, TEXT_ONLY, position=1)
    guild = fake_guild(system, second, system, first)

    # The system channel is also among the text channels; it comes first all the same.
    assert ids(admin_notice_channels(guild, failed_channel_id=99))[:3] == [5, 7, 6]


def test_admins_are_never_told_in_the_failed_channel_nor_where_newsbot_cannot_post() -> None:
    failed = fake_channel(1, EVERYTHING, position=0)
    mute = fake_channel(2, discord.Permissions(view_channel=True), position=1)
    hidden = fake_channel(3, discord.Permissions(send_messages=True), position=2)
    open_channel = fake_channel(4, TEXT_ONLY, position=3)
    guild = fake_guild(None, open_channel, hidden, mute, failed)

    assert ids(admin_notice_channels(guild, failed_channel_id=1)) == [4]


def test_a_server_with_nowhere_to_post_tells_nobody() -> None:
    guild = fake_guild(None, fake_channel(1, EVERYTHING))

    assert ids(admin_notice_channels(guild, failed_channel_id=1)) == []
