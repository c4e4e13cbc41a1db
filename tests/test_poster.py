"""The digest poster's own units, without Discord: what it does before READY, and how it tells
a server's admins that their digest stopped. (Sending, retrying and failures end to end are in
tests/cogs/test_digest.py; the decisions the poster takes per server in tests/test_delivery.py.)"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import discord

from bot.pacing import Pacer
from bot.poster import ClaimBudget, DigestPoster, claim_cap

TEXT_ONLY = discord.Permissions(view_channel=True, send_messages=True)


class UntouchableStore:
    """A store that fails the test when anything reads or writes it."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the store was used: {name}")


class FakeChannel:
    def __init__(self, channel_id: int, position: int, *, fails: bool = False) -> None:
        self.id = channel_id
        self.position = position
        self.name = f"channel-{channel_id}"
        self.guild = SimpleNamespace(me=object())
        self.fails = fails
        self.sent: list[tuple[str, discord.AllowedMentions]] = []

    def permissions_for(self, member: object) -> discord.Permissions:
        return TEXT_ONLY

    async def send(self, content: str, *, allowed_mentions: discord.AllowedMentions) -> None:
        if self.fails:
            response: Any = SimpleNamespace(status=403, reason="Forbidden")
            raise discord.Forbidden(response, {"code": 50013, "message": "Missing Permissions"})
        self.sent.append((content, allowed_mentions))


def poster_for(client: Any, store: Any = None) -> DigestPoster:
    return DigestPoster(store or UntouchableStore(), client, pacer=Pacer(1000.0, burst=100))


async def test_a_tick_before_ready_leaves_the_ledger_alone() -> None:
    # Before READY the server cache is empty: every channel would look deleted.
    client = SimpleNamespace(is_ready=lambda: False)

    await poster_for(client).tick()


async def test_admins_are_told_in_the_next_channel_when_the_first_refuses() -> None:
    refusing = FakeChannel(2, position=0, fails=True)
    taking = FakeChannel(3, position=1)
    later = FakeChannel(4, position=2)
    guild = SimpleNamespace(system_channel=None, text_channels=[later, taking, refusing])
    client = SimpleNamespace(get_guild=lambda guild_id: guild)

    await poster_for(client)._tell_admins(1, 9, "the channel no longer exists")

    [(content, mentions)] = taking.sent
    assert content.startswith("newsbot paused this server's daily digest: the channel no longer")
    assert "/digest show" in content
    assert mentions.everyone is False and mentions.roles is False and mentions.users is False
    assert later.sent == []


async def test_admins_of_a_server_newsbot_left_are_not_looked_for() -> None:
    client = SimpleNamespace(get_guild=lambda guild_id: None)

    await poster_for(client)._tell_admins(1, 9, "newsbot is no longer in the server")


def test_a_round_claims_what_the_send_rate_sends_within_one_run_lease() -> None:
    assert claim_cap(48.0) == 1440  # 48 messages a second for 30 s
    assert claim_cap(0.01) == 1  # never nothing at all


def test_a_process_of_several_claims_its_shards_share_of_what_the_rate_sends() -> None:
    # Two shards of eight: the other processes take three quarters of the shared budget.
    assert claim_cap(48.0, share=2 / 8) == 360


def test_a_digest_larger_than_the_whole_budget_is_claimed_first_rather_than_never() -> None:
    budget = ClaimBudget(4)

    assert budget.take(6) is True
    assert budget.take(1) is False


def test_claims_fit_the_budget_until_the_next_one_would_not() -> None:
    budget = ClaimBudget(4)

    assert [budget.take(2), budget.take(2), budget.take(1)] == [True, True, False]
