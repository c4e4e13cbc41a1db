"""Posting in a server's channel: what newsbot needs there, and what a failed send means.

The poster's decisions about one server, kept apart from its ledger and pacing so that each
reads (and is tested) on its own: whether a channel lets newsbot post, whether a failure is for
good (the digest is switched off) or for now (it is retried), and where to tell the server's
admins that its digest stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator, Sequence

import aiohttp
import discord

from bot.errors import DeliveryFailure
from bot.metrics import Metrics
from bot.tree import permission_label

# Discord error codes that will not go away by retrying: the digest is switched off.
PERMANENT_ERRORS = {
    10003: "the channel no longer exists",
    10004: "newsbot is no longer in the server",
    50001: "newsbot has no access to the channel",
    50013: "newsbot lacks a permission in the channel",
}
# What newsbot needs in a channel to post a digest: to see it, post in it, and show embeds
# there (a plain-text message needs the first two only). Named here rather than read back from
# a Permissions, which names View Channel by its old alias, read_messages.
REQUIRED = ("view_channel", "send_messages", "embed_links")
# What keeps a digest exactly once beyond Discord's nonce window: after a crash, newsbot looks
# for a message whose send it could not confirm in the channel's history before sending it.
# Without it digests still go out, with the nonce window as the only guard (/digest show says).
HISTORY = "read_message_history"
# All the invite asks for.
REQUIRED_PERMISSIONS = discord.Permissions(**dict.fromkeys((*REQUIRED, HISTORY), True))
# Seconds between tries of one message: about half a minute in all before a transient
# failure is given up on (the claimed digest is then resumed at a later tick).
RETRY_DELAYS = (1.0, 2.0, 4.0, 8.0, 16.0)
# What a send may raise that `send_failure` can judge; anything else is a bug. An answer that
# is not the JSON it claims to be (JSONDecodeError, which orjson's error subclasses too) is a
# failure of Discord's, like a 5xx: the message may have been created all the same.
SEND_ERRORS = (
    discord.HTTPException,
    aiohttp.ClientError,
    TimeoutError,
    OSError,
    json.JSONDecodeError,
)


class PermanentFailure(DeliveryFailure):
    """Posting to this server cannot work until an admin changes something."""


class TransientFailure(DeliveryFailure):
    """Discord or the network failed for now; the digest stays claimed and is resumed."""


def send_failure(error: Exception) -> PermanentFailure | TransientFailure:
    """What a failed send means for the digest: a channel that is gone or forbidden, or a
    refusal of the message itself, is permanent; a server error, a rate limit or the network
    is transient and worth retrying."""
    if isinstance(error, discord.Forbidden | discord.NotFound):
        return PermanentFailure(PERMANENT_ERRORS.get(error.code, error.text))
    if isinstance(error, discord.HTTPException):
        if error.status < 500 and error.status != 429:
            return PermanentFailure(f"Discord refused the digest: {error.text}")
        return TransientFailure(f"HTTP {error.status}")
    return TransientFailure(type(error).__name__)


async def send_with_retries(
    send: Callable[[], Awaitable[object]],
    delays: Sequence[float] = RETRY_DELAYS,
    *,
    pace: Callable[[], Awaitable[None]],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    metrics: Metrics | None = None,
) -> None:
    """Send, paced, trying again after each of `delays` while the failure is transient.

    Raises the PermanentFailure at once, or the last TransientFailure once the delays are used
    up. A repeat is safe: the message carries a deterministic nonce, and Discord drops a second
    one with the same nonce. Each repeat is counted in `metrics` with its reason."""
    for delay in (*delays, None):
        await pace()
        try:
            await send()
            return
        except SEND_ERRORS as error:
            failure = send_failure(error)
            if isinstance(failure, PermanentFailure) or delay is None:
                raise failure from error
            if metrics is not None:
                status = error.status if isinstance(error, discord.HTTPException) else None
                metrics.send_retried(status)
        await sleep(delay)


def admin_notice_channels(
    guild: discord.Guild, failed_channel_id: int
) -> Iterator[discord.TextChannel]:
    """Where to tell a server's admins that its digest stopped, best first: the system channel,
    then the text channels as the server lists them; never the channel that failed, nor one
    where newsbot cannot post text. Lazy: the first that takes the message ends the search."""
    candidates = [guild.system_channel, *sorted(guild.text_channels, key=lambda c: c.position)]
    for channel in candidates:
        if channel is None or channel.id == failed_channel_id:
            continue
        if not missing_permissions(channel, embeds=False):
            yield channel


def missing_permissions(channel: discord.abc.GuildChannel, *, embeds: bool = True) -> str:
    """The permissions newsbot needs and lacks in `channel`, as Discord names them ("" if none)."""
    granted = channel.permissions_for(channel.guild.me)
    needed = REQUIRED if embeds else REQUIRED[:2]
    return ", ".join(permission_label(name) for name in needed if not getattr(granted, name))


def reads_history(channel: discord.abc.GuildChannel) -> bool:
    """Whether newsbot can check the channel's history for a message it may have posted."""
    return channel.permissions_for(channel.guild.me).read_message_history
