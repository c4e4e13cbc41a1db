"""The emulator, proven against the real discord.py client driving a tiny bot defined here."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands

from tests.discord_emulator import (
    BotCrashed,
    CommandNotAvailable,
    DiscordEmulator,
    RunningBot,
    running_bot,
)
from tests.discord_emulator.gateway import GatewaySession
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member

TOPICS = ["ai", "art", "astronomy", "science", "sports"]


@dataclass
class Seen:
    """What the tiny bot observed, with events so tests never poll."""

    messages: list[str] = field(default_factory=list)
    message_event: asyncio.Event = field(default_factory=asyncio.Event)
    late_errors: list[int] = field(default_factory=list)
    late_event: asyncio.Event = field(default_factory=asyncio.Event)


class VoteView(discord.ui.View):
    @discord.ui.button(label="Yes", custom_id="vote:yes", style=discord.ButtonStyle.success)
    async def yes(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.edit_message(
            content=f"Thanks for voting, {interaction.user.name}", view=None
        )


def build_bot() -> tuple[commands.Bot, Seen]:
    """A plain commands.Bot with a few app commands: NOT newsbot."""
    intents = discord.Intents.default()
    intents.message_content = True
    bot = commands.Bot(
        command_prefix="!", intents=intents, guild_ready_timeout=0.1, help_command=None
    )
    seen = Seen()
    tree = bot.tree

    async def setup_hook() -> None:
        await tree.sync()

    bot.setup_hook = setup_hook  # type: ignore[method-assign]

    async def before_identify_hook(shard_id: int | None, *, initial: bool = False) -> None:
        """The default sleeps 5 s before every re-IDENTIFY; tests need no such pause."""

    bot.before_identify_hook = before_identify_hook  # type: ignore[method-assign]

    async def on_message(message: discord.Message) -> None:
        seen.messages.append(message.content)
        seen.message_event.set()

    bot.add_listener(on_message, "on_message")

    @tree.command(description="Latest stories on a topic")
    async def news(interaction: discord.Interaction, topic: str) -> None:
        embed = discord.Embed(title=f"News about {topic}", description="Something happened.")
        await interaction.response.send_message(embed=embed)

    @news.autocomplete("topic")
    async def topic_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=t, value=t) for t in TOPICS if t.startswith(current)]

    @tree.command(description="Today's digest")
    async def digest(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("digest ready", embed=discord.Embed(title="Digest"))
        await interaction.followup.send("and one more thing")

    @tree.command(description="A private reply")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("psst", ephemeral=True)

    @tree.command(description="Vote")
    async def vote(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Vote?", view=VoteView())

    @tree.command(description="Answers too late")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.4)
        try:
            await interaction.response.send_message("finally")
        except discord.NotFound as exc:
            seen.late_errors.append(exc.code)
            seen.late_event.set()

    @tree.command(description="Daily digest in a channel")
    async def subscribe(
        interaction: discord.Interaction,
        channel: discord.TextChannel,
        hour: app_commands.Range[int, 0, 23] = 8,
    ) -> None:
        await interaction.response.send_message(f"digest in {channel.mention} at {hour}:00")

    @tree.command(description="Offers too many choices")
    async def pick(interaction: discord.Interaction, item: str) -> None:
        await interaction.response.send_message(item)

    @pick.autocomplete("item")
    async def pick_autocomplete(
        interaction: discord.Interaction, current: str
    ) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=f"item {i}", value=str(i)) for i in range(30)]

    admin = app_commands.Group(
        name="admin",
        description="Administration",
        default_permissions=discord.Permissions(manage_guild=True),
    )

    @admin.command(description="Reload the feeds")
    async def reload(interaction: discord.Interaction) -> None:
        # Discord hides the command, but stale clients exist: the bot checks by itself.
        if not interaction.permissions.manage_guild:
            await interaction.response.send_message("not allowed", ephemeral=True)
            return
        await interaction.response.send_message("reloaded", ephemeral=True)

    tree.add_command(admin)
    return bot, seen


@dataclass
class World:
    emu: DiscordEmulator
    guild: Guild
    channel: Channel
    alice: Member
    """A plain member."""
    boss: Member
    """A member with Manage Server."""


@pytest.fixture
def world(discord_emulator: DiscordEmulator) -> World:
    emu = discord_emulator
    guild = emu.add_guild("Test Guild")
    channel = emu.add_channel(guild, "news")
    alice = emu.add_member(guild, "alice")
    boss = emu.add_member(guild, "boss", permissions=MANAGE_GUILD)
    return World(emu, guild, channel, alice, boss)


@dataclass
class Bot:
    client: commands.Bot
    seen: Seen
    run: RunningBot

    def channel(self, world: World) -> discord.TextChannel:
        channel = self.client.get_channel(world.channel.id)
        assert isinstance(channel, discord.TextChannel)
        return channel


@pytest.fixture
async def bot(world: World) -> AsyncIterator[Bot]:
    client, seen = build_bot()
    async with running_bot(client, world.emu) as run:
        yield Bot(client, seen, run)


# --- login, READY, sync ----------------------------------------------------------------------


async def test_login_ready_and_guilds(world: World, bot: Bot) -> None:
    emu, client = world.emu, bot.client
    assert client.user is not None and client.user.id == emu.bot_user.id
    assert client.application_id == emu.application_id
    [guild] = client.guilds
    assert guild.id == world.guild.id and guild.name == "Test Guild"
    assert [c.name for c in guild.text_channels] == ["news"]
    assert guild.default_role.id == guild.id
    assert emu.gateway.identifies == 1
    [connect] = [r for r in emu.gateway.log if r.kind == "connect"]
    assert connect.detail["query"]["v"] == "10"
    # the client asks for compression but only inflates BINARY frames: TEXT frames just work
    assert connect.detail["query"]["compress"] in ("zlib-stream", "zstd-stream")
    assert emu.requests[0].path == "/users/@me"
    assert emu.unknown_requests == []


async def test_a_guild_joined_later_is_a_join_not_a_guild_coming_back(
    world: World, bot: Bot
) -> None:
    joined: asyncio.Queue[str] = asyncio.Queue()

    async def on_guild_join(guild: discord.Guild) -> None:
        joined.put_nowait(f"join {guild.name}")

    async def on_guild_available(guild: discord.Guild) -> None:
        joined.put_nowait(f"available {guild.name}")

    bot.client.add_listener(on_guild_join)
    bot.client.add_listener(on_guild_available)

    world.emu.add_guild("Later Guild")

    assert await asyncio.wait_for(joined.get(), 5) == "join Later Guild"
    [frame] = [f for f in world.emu.gateway.session.frames if f.get("t") == "GUILD_CREATE"][-1:]
    assert "unavailable" not in frame["d"]


async def test_wrong_token_is_a_login_failure(discord_emulator: DiscordEmulator) -> None:
    client, _ = build_bot()
    try:
        with pytest.raises(discord.LoginFailure):
            await client.login("not-the-token")
    finally:
        await client.close()
    assert discord_emulator.requests[-1].status == 401


async def test_command_sync_is_recorded(world: World, bot: Bot) -> None:
    registered = {c["name"]: c for c in world.emu.registered_commands()}
    assert set(registered) == {
        "news",
        "digest",
        "secret",
        "vote",
        "slow",
        "pick",
        "subscribe",
        "admin",
    }
    [topic] = registered["news"]["options"]
    assert (topic["name"], topic["type"], topic["required"], topic["autocomplete"]) == (
        "topic",
        3,
        True,
        True,
    )
    assert registered["news"]["default_member_permissions"] is None
    admin = registered["admin"]
    assert admin["default_member_permissions"] == str(MANAGE_GUILD)
    assert [(o["name"], o["type"]) for o in admin["options"]] == [("reload", 1)]
    assert all(c["id"] for c in registered.values())


# --- interactions ----------------------------------------------------------------------------


async def test_slash_command_answered_with_an_embed(world: World, bot: Bot) -> None:
    handle = await world.emu.invoke(
        world.guild, world.channel, world.alice, "news", {"topic": "ai"}
    )
    reply = await handle.response()
    assert reply.type == 4 and not reply.ephemeral
    assert reply.embeds[0]["title"] == "News about ai"
    [message] = world.emu.messages(world.channel)
    assert message.source == "interaction" and message.embeds[0]["title"] == "News about ai"
    assert message.payload["interaction_metadata"]["user"]["id"] == str(world.alice.id)


async def test_second_initial_response_is_refused(world: World, bot: Bot) -> None:
    handle = await world.emu.invoke(
        world.guild, world.channel, world.alice, "news", {"topic": "ai"}
    )
    await handle.response()
    url = f"{world.emu.api_base}/interactions/{handle.id}/{handle.token}/callback"
    async with aiohttp.ClientSession() as http, http.post(url, json={"type": 5}) as resp:
        assert resp.status == 400
        assert resp.headers["Content-Type"] == "application/json"
        assert (await resp.json())["code"] == 40060


async def test_channel_and_integer_options_are_resolved(world: World, bot: Bot) -> None:
    emu = world.emu
    options = {"channel": world.channel, "hour": 7}
    handle = await emu.invoke(world.guild, world.channel, world.alice, "subscribe", options)
    assert (await handle.response()).content == f"digest in <#{world.channel.id}> at 7:00"
    data = handle.payload["data"]
    assert data["resolved"]["channels"][str(world.channel.id)]["name"] == "news"
    assert [(o["name"], o["type"]) for o in data["options"]] == [("channel", 7), ("hour", 4)]
    with pytest.raises(ValueError, match="outside"):
        await emu.invoke(
            world.guild, world.channel, world.alice, "subscribe", {**options, "hour": 24}
        )
    with pytest.raises(TypeError, match="integer"):
        await emu.invoke(
            world.guild, world.channel, world.alice, "subscribe", {**options, "hour": "7"}
        )
    with pytest.raises(ValueError, match="required"):
        await emu.invoke(world.guild, world.channel, world.alice, "subscribe", {"hour": 7})


async def test_raw_options_are_sent_unchecked_as_a_modified_client_would(
    world: World, bot: Bot
) -> None:
    emu = world.emu
    elsewhere = emu.add_channel(emu.add_guild("Elsewhere"), "elsewhere")

    handle = await emu.invoke(
        world.guild, world.channel, world.alice, "subscribe", {"channel": world.channel},
        raw_options={"hour": 2**70},
    )  # fmt: skip
    foreign = await emu.invoke(
        world.guild, world.channel, world.alice, "subscribe", {"hour": 7},
        raw_options={"channel": elsewhere},
    )  # fmt: skip

    # discord.py does not hold values to Range on receipt: the command sees 2**70.
    assert (await handle.response()).content == f"digest in <#{world.channel.id}> at {2**70}:00"
    assert handle.payload["data"]["options"][1] == {"name": "hour", "type": 4, "value": 2**70}
    resolved = foreign.payload["data"]["resolved"]["channels"][str(elsewhere.id)]
    assert resolved["guild_id"] == str(elsewhere.guild_id)
    # It resolves channels in the interaction's guild only: this one fails to convert.
    record = await bot.run.wait_for_error("Ignoring exception in command 'subscribe'")
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], app_commands.TransformerError)
    bot.run.allow_error("Ignoring exception in command 'subscribe'")


async def test_followup_token_rules(world: World, bot: Bot) -> None:
    emu = world.emu
    handle = await emu.invoke(world.guild, world.channel, world.alice, "news", {"topic": "ai"})
    await handle.response()
    url = f"{emu.api_base}/webhooks/{emu.application_id}/{handle.token}?wait=1"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, json={"content": "later"}) as resp:
            assert resp.status == 200 and (await resp.json())["content"] == "later"
        emu.limits.followup_lifetime = 0.0  # the 15 minutes are over
        async with http.post(url, json={"content": "too late"}) as resp:
            assert resp.status == 401 and (await resp.json())["code"] == 50027
        async with http.post(url.replace(handle.token, "bogus"), json={"content": "x"}) as resp:
            assert resp.status == 404 and (await resp.json())["code"] == 10015


async def test_defer_then_followups(world: World, bot: Bot) -> None:
    handle = await world.emu.invoke(world.guild, world.channel, world.alice, "digest")
    assert (await handle.response()).type == 5
    first, second = await handle.followups(2)
    # Discord turns the first followup after a defer into the "thinking…" message itself.
    assert first.id == handle.original.id and not first.loading
    assert first.content == "digest ready" and first.embeds[0]["title"] == "Digest"
    assert second.id != first.id and second.content == "and one more thing"


async def test_ephemeral_reply(world: World, bot: Bot) -> None:
    handle = await world.emu.invoke(world.guild, world.channel, world.alice, "secret")
    reply = await handle.response()
    assert reply.ephemeral and reply.content == "psst"
    assert handle.original is not None and handle.original.ephemeral
    assert world.emu.messages(world.channel, include_ephemeral=False) == []
    assert "MESSAGE_CREATE" not in [f["t"] for f in world.emu.gateway.session.frames]


async def test_autocomplete_choices(world: World, bot: Bot) -> None:
    choices = await world.emu.autocomplete(
        world.guild, world.channel, world.alice, "news", focused="topic", value="a"
    )
    assert [c["value"] for c in choices] == ["ai", "art", "astronomy"]


async def test_autocomplete_over_25_choices_is_rejected(world: World, bot: Bot) -> None:
    bot.run.allow_error("Ignoring exception in autocomplete")
    with pytest.raises(AssertionError, match="50035"):
        await world.emu.autocomplete(
            world.guild, world.channel, world.alice, "pick", focused="item", value=""
        )


async def test_button_click_updates_the_message(world: World, bot: Bot) -> None:
    emu = world.emu
    handle = await emu.invoke(world.guild, world.channel, world.alice, "vote")
    await handle.response()
    message = handle.original
    assert message is not None and message.custom_ids() == ["vote:yes"]
    click = await emu.click(message, "vote:yes", world.boss)
    update = await click.response()
    assert update.type == 7
    assert emu.message(message.id).content == "Thanks for voting, boss"
    assert emu.message(message.id).components == []


async def test_late_answer_gets_unknown_interaction(world: World, bot: Bot) -> None:
    world.emu.limits.interaction_deadline = 0.2
    handle = await world.emu.invoke(world.guild, world.channel, world.alice, "slow")
    attempt = await handle.attempt(timeout=2)
    assert attempt.status == 404 and attempt.error["code"] == 10062
    assert attempt.after > 0.2
    await asyncio.wait_for(bot.seen.late_event.wait(), 2)
    assert bot.seen.late_errors == [10062]
    assert handle.acknowledged is None


async def test_hidden_admin_command(world: World, bot: Bot) -> None:
    emu = world.emu
    with pytest.raises(CommandNotAvailable):
        await emu.invoke(world.guild, world.channel, world.alice, "admin", subcommand="reload")
    stale = await emu.invoke(
        world.guild, world.channel, world.alice, "admin", subcommand="reload", force=True
    )
    assert (await stale.response()).content == "not allowed"
    allowed = await emu.invoke(world.guild, world.channel, world.boss, "admin", subcommand="reload")
    assert (await allowed.response()).content == "reloaded"


# --- the application's owners ------------------------------------------------------------------


async def test_application_names_its_owner_who_can_join_guilds(world: World, bot: Bot) -> None:
    emu = world.emu
    owner = emu.add_member(world.guild, "owner", user=emu.owner_user)

    info = await bot.client.application_info()

    assert (info.owner.id, info.team) == (emu.owner_user.id, None)
    assert owner.user is emu.owner_user
    assert await bot.client.is_owner(discord.Object(owner.id))  # type: ignore[arg-type]
    assert not await bot.client.is_owner(discord.Object(world.alice.id))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="already a member"):
        emu.add_member(world.guild, "again", user=emu.owner_user)


async def test_team_owned_application_lists_its_members_with_their_roles(world: World) -> None:
    emu = world.emu
    developer, viewer = emu.add_user("dev"), emu.add_user("viewer")
    team = emu.set_team("Newsroom", [(developer, "developer"), (viewer, "read_only")])
    client, _ = build_bot()

    async with running_bot(client, emu):
        info = await client.application_info()
        owners = {
            user.username: await client.is_owner(discord.Object(user.id))  # type: ignore[arg-type]
            for user in (emu.owner_user, developer, viewer, world.alice.user)
        }

    assert info.team is not None
    assert (info.team.id, info.team.name, info.team.owner_id) == (
        team.id,
        "Newsroom",
        emu.owner_user.id,
    )
    assert {(m.id, m.role.value) for m in info.team.members} == {
        (emu.owner_user.id, "admin"),
        (developer.id, "developer"),
        (viewer.id, "read_only"),
    }
    # Discord names a stand-in "team user" as the owner of a team-owned application.
    assert info.owner.id == team.id
    assert info.owner.public_flags.team_user
    assert owners == {"app-owner": True, "dev": True, "viewer": False, "alice": False}


# --- message limits and mentions -------------------------------------------------------------


@pytest.mark.parametrize(
    ("embeds", "path"),
    [
        ([discord.Embed(title="t" * 257)], "embeds.0.title"),
        ([discord.Embed(description="d" * 4097)], "embeds.0.description"),
        ([discord.Embed(description="d" * 3500), discord.Embed(description="d" * 3500)], "embeds"),
        ([discord.Embed(title="x").set_image(url="ftp://example.com/a.png")], "embeds.0.image.url"),
        (
            [discord.Embed(title="x").add_field(name="n", value="v" * 1025)],
            "embeds.0.fields.0.value",
        ),
    ],
)
async def test_embed_limits_are_enforced(
    world: World, bot: Bot, embeds: list[discord.Embed], path: str
) -> None:
    with pytest.raises(discord.HTTPException) as caught:
        await bot.channel(world).send(embeds=embeds)
    assert caught.value.status == 400 and caught.value.code == 50035
    assert f"In {path}:" in caught.value.text
    assert world.emu.messages(world.channel) == []


async def test_content_over_2000_is_rejected(world: World, bot: Bot) -> None:
    with pytest.raises(discord.HTTPException, match="content") as caught:
        await bot.channel(world).send("x" * 2001)
    assert caught.value.code == 50035


async def test_everyone_pings_unless_allowed_mentions_none(world: World, bot: Bot) -> None:
    emu, channel = world.emu, bot.channel(world)
    await channel.send("@everyone breaking news")
    await channel.send("@everyone breaking news", allowed_mentions=discord.AllowedMentions.none())
    await channel.send(embed=discord.Embed(description="@everyone inside an embed"))
    await channel.send(f"hi {world.alice.mention}", allowed_mentions=discord.AllowedMentions.none())
    loud, quiet, embed_only, user_quiet = emu.messages(world.channel)
    assert emu.would_ping(loud) and emu.pings(loud).everyone
    assert loud.allowed_mentions is None
    assert quiet.allowed_mentions == {"parse": []}
    assert not emu.would_ping(quiet)
    assert not emu.would_ping(embed_only)
    assert not emu.would_ping(user_quiet)


async def test_nonce_makes_a_retry_idempotent(world: World, bot: Bot) -> None:
    channel = bot.channel(world)
    first = await channel.send("daily digest", nonce="digest-2024-01-01")
    again = await channel.send("daily digest", nonce="digest-2024-01-01")
    assert first.id == again.id
    assert len(world.emu.messages(world.channel)) == 1


# --- gateway resilience ----------------------------------------------------------------------


async def test_resume_replays_missed_events(world: World, bot: Bot) -> None:
    emu = world.emu
    async with emu.gateway_outage(code=4000):
        emu.user_message(world.channel, world.alice, "sent while the bot was away")
    await emu.wait_for_resume()
    await asyncio.wait_for(bot.seen.message_event.wait(), 2)
    assert bot.seen.messages == ["sent while the bot was away"]
    [resume] = emu.gateway.resumes
    assert resume.replayed == ["MESSAGE_CREATE"] and resume.path == "/gateway/resume"
    assert emu.gateway.identifies == 1


async def test_reconnect_and_invalid_session(world: World, bot: Bot) -> None:
    emu = world.emu
    await emu.request_reconnect()
    await emu.wait_for_resume(1)
    await emu.invalidate_session(resumable=False)
    await emu.wait_until(lambda: emu.gateway.identifies == 2 and emu.gateway.ready_sent, 5)
    # discord.py quirk: after a RESUME its re-IDENTIFY goes to the (stale) resume URL.
    assert [r.detail["path"] for r in emu.gateway.log if r.kind == "connect"] == [
        "/gateway",
        "/gateway/resume",
        "/gateway/resume",
    ]
    handle = await emu.invoke(world.guild, world.channel, world.alice, "news", {"topic": "art"})
    assert (await handle.response()).embeds[0]["title"] == "News about art"


async def test_a_malformed_frame_is_one_text_frame_that_is_not_json(world: World) -> None:
    emu = world.emu
    async with aiohttp.ClientSession() as http, http.ws_connect(emu.gateway_url) as ws:
        hello = await ws.receive_json()
        await ws.send_json({"op": 2, "d": {"token": emu.token, "intents": 1, "properties": {}}})
        frames = [await ws.receive_json() for _ in range(2)]  # READY, GUILD_CREATE

        await emu.send_malformed_frame()
        malformed = await ws.receive()
        emu.add_channel(world.guild, "later")  # the session goes on
        after = await ws.receive_json()

    assert hello["op"] == 10
    assert [frame["t"] for frame in frames] == ["READY", "GUILD_CREATE"]
    assert malformed.type is aiohttp.WSMsgType.TEXT
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.data)
    assert (after["t"], after["s"]) == ("CHANNEL_CREATE", 3)
    assert [r.kind for r in emu.gateway.log].count("malformed") == 1


async def _bot_fed_a_malformed_frame(world: World) -> None:
    client, _ = build_bot()
    async with running_bot(client, world.emu):
        await world.emu.send_malformed_frame()
        await world.emu.wait_until(lambda: False, 2, "the crash to surface")


async def test_a_malformed_frame_ends_a_plain_discord_py_client(world: World) -> None:
    # discord.py's gateway loop does not catch the JSONDecodeError: bot.start() ends.
    with pytest.raises(BotCrashed, match="JSONDecodeError"):
        await _bot_fed_a_malformed_frame(world)


# --- rate limits and injected failures -------------------------------------------------------


async def test_429_then_success(world: World, bot: Bot) -> None:
    emu = world.emu
    rule = emu.fail_next("POST", "/channels/*/messages", 429, retry_after=0.1)
    started = time.monotonic()
    await bot.channel(world).send("after a rate limit")
    assert time.monotonic() - started >= 0.1
    assert [r.status for r in emu.requests_to("POST", "/channels/*/messages")] == [429, 200]
    assert rule.remaining == 0
    assert emu.rate_limit_hits == {"POST /channels/{channel_id}/messages": 1}
    assert [m.content for m in emu.messages(world.channel)] == ["after a rate limit"]


async def test_500_then_success(world: World, bot: Bot) -> None:
    emu = world.emu
    emu.fail_next("GET", "/channels/*", 500)
    fetched = await bot.client.fetch_channel(world.channel.id)  # discord.py retries after 1 s
    assert fetched.id == world.channel.id
    assert [r.status for r in emu.requests_to("GET", "/channels/*")] == [500, 200]


async def test_503_and_403_raise(world: World, bot: Bot) -> None:
    emu = world.emu
    emu.fail_next("GET", "/channels/*", 503)
    with pytest.raises(discord.DiscordServerError):
        await bot.client.fetch_channel(world.channel.id)
    emu.fail_next("POST", "/channels/*/messages", 403, code=50001)
    with pytest.raises(discord.Forbidden) as caught:
        await bot.channel(world).send("hello")
    assert caught.value.code == 50001


async def test_channel_bucket_is_honoured_without_429(world: World, bot: Bot) -> None:
    emu = world.emu
    emu.limits.channel_messages, emu.limits.channel_window = 2, 0.4
    started = time.monotonic()
    for i in range(3):
        await bot.channel(world).send(f"message {i}")
    assert time.monotonic() - started >= 0.3  # the client waited for the bucket to reset
    assert emu.rate_limit_hits == {}
    headers_seen = emu.requests_to("POST", "/channels/*/messages")
    assert [r.status for r in headers_seen] == [200, 200, 200]


async def test_global_limit_answers_429_and_client_retries(world: World, bot: Bot) -> None:
    emu = world.emu
    emu.limits.global_requests, emu.limits.global_window = 2, 0.3
    for _ in range(4):
        await bot.client.fetch_channel(world.channel.id)
    assert emu.rate_limit_hits["GET /channels/{channel_id}"] >= 1
    global_429 = [r for r in emu.requests if r.status == 429]
    assert global_429 and all(r.error["global"] for r in global_429)


async def test_missing_send_permission(world: World, bot: Bot) -> None:
    emu = world.emu
    emu.set_bot_permissions(world.channel, discord.Permissions(view_channel=True).value)
    with pytest.raises(discord.Forbidden) as caught:
        await bot.channel(world).send("hello")
    assert caught.value.code == 50013


async def test_unknown_routes_are_recorded(world: World, bot: Bot) -> None:
    route = discord.http.Route("GET", "/users/@me/connections")
    with pytest.raises(discord.NotFound):
        await bot.client.http.request(route)
    [unknown] = world.emu.unknown_requests
    assert unknown.path == "/users/@me/connections" and unknown.status == 404


# --- the harness itself ----------------------------------------------------------------------


async def _autocomplete_that_logs_an_error(world: World) -> None:
    client, _ = build_bot()
    async with running_bot(client, world.emu) as run:
        with pytest.raises(AssertionError, match="50035"):
            await world.emu.autocomplete(
                world.guild, world.channel, world.alice, "pick", focused="item"
            )
        await run.wait_for_error("Ignoring exception in autocomplete")


async def test_harness_fails_on_discord_error_logs(world: World) -> None:
    with pytest.raises(AssertionError, match=r"errors were logged during the test"):
        await _autocomplete_that_logs_an_error(world)


async def _bot_fed_a_malformed_dispatch(world: World) -> None:
    client, _ = build_bot()
    async with running_bot(client, world.emu):
        # The parser's KeyError ends bot.start() without any log line.
        world.emu.gateway.dispatch("MESSAGE_CREATE", {"id": "1"})
        await world.emu.wait_until(lambda: False, 2, "the crash to surface")


async def test_harness_notices_a_crashed_bot(world: World) -> None:
    with pytest.raises(BotCrashed, match="KeyError"):
        await _bot_fed_a_malformed_dispatch(world)


async def test_bot_can_restart_on_the_same_emulator(world: World) -> None:
    for _ in range(2):
        client, _ = build_bot()
        async with running_bot(client, world.emu):
            handle = await world.emu.invoke(world.guild, world.channel, world.alice, "secret")
            assert (await handle.response()).content == "psst"
    assert world.emu.gateway.identifies == 2
    assert len(world.emu.requests_to("PUT", "/applications/*/commands")) == 2


# --- nonces, history and faults after a message is created ------------------------------------


class NonceClock:
    """A hand-moved clock for the emulator's ``enforce_nonce`` window."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def nonce_clock(world: World) -> NonceClock:
    clock = NonceClock()
    world.emu.nonce_clock = clock
    return clock


async def test_a_nonce_repeat_within_the_window_returns_the_first_message(
    world: World, bot: Bot, nonce_clock: NonceClock
) -> None:
    emu, channel = world.emu, bot.channel(world)
    first = await channel.send("digest part 1", nonce="dg-1")
    nonce_clock.now += emu.limits.nonce_window - 1
    again = await channel.send("digest part 1, edited", nonce="dg-1")
    assert again.id == first.id and again.content == "digest part 1"
    assert [r.status for r in emu.requests_to("POST", "/channels/*/messages")] == [200, 200]
    assert len(emu.messages(world.channel)) == 1


async def test_a_nonce_repeat_does_not_extend_the_window(
    world: World, bot: Bot, nonce_clock: NonceClock
) -> None:
    emu, channel = world.emu, bot.channel(world)
    window = emu.limits.nonce_window
    first = await channel.send("digest", nonce="dg-2")
    nonce_clock.now += window * 0.6
    assert (await channel.send("digest", nonce="dg-2")).id == first.id
    nonce_clock.now += window * 0.6  # 1.2 windows after the first, 0.6 after the repeat
    later = await channel.send("digest", nonce="dg-2")
    assert later.id != first.id
    assert [m.id for m in emu.messages(world.channel)] == [first.id, later.id]


async def test_nonce_is_echoed_on_create_and_message_create_but_never_in_history(
    world: World, bot: Bot
) -> None:
    emu, channel = world.emu, bot.channel(world)
    sent = await channel.send("digest", nonce="dg-3")
    assert sent.nonce == "dg-3"
    [created] = [f for f in emu.gateway.session.frames if f.get("t") == "MESSAGE_CREATE"]
    assert created["d"]["nonce"] == "dg-3"
    [listed] = [m async for m in channel.history(limit=10)]
    fetched = await channel.fetch_message(sent.id)
    assert listed.id == fetched.id == sent.id
    assert listed.nonce is None and fetched.nonce is None
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bot {emu.token}"}
        url = f"{emu.api_base}/channels/{world.channel.id}/messages"
        async with http.get(url, headers=headers) as resp:
            assert "nonce" not in (await resp.json())[0]


async def test_history_around_a_message_splits_the_limit_either_side(
    world: World, bot: Bot
) -> None:
    channel = bot.channel(world)
    sent = [await channel.send(f"m{i}") for i in range(7)]
    around = [m.content async for m in channel.history(limit=4, around=sent[3])]
    # newest first: two newer-or-equal and two older than m3
    assert around == ["m4", "m3", "m2", "m1"]
    [only] = [m async for m in channel.history(limit=1, around=sent[5])]
    assert only.id == sent[5].id


async def test_history_without_read_message_history_is_empty_and_a_fetch_is_forbidden(
    world: World, bot: Bot
) -> None:
    emu, channel = world.emu, bot.channel(world)
    sent = await channel.send("digest")
    emu.set_bot_permissions(world.channel, discord.Permissions(view_channel=True))
    # Discord: "no messages will be returned" (not an error) for a list...
    assert [m async for m in channel.history(limit=10)] == []
    # ...but a single message needs the permission: 403 Missing Permissions.
    with pytest.raises(discord.Forbidden) as caught:
        await channel.fetch_message(sent.id)
    assert caught.value.code == 50013


async def _only_message_then_resend(world: World, bot: Bot, clock: NonceClock, nonce: str) -> None:
    """The message exists once; a resend within the window is it, one after it is new."""
    emu, channel = world.emu, bot.channel(world)
    [stored] = emu.messages(world.channel)
    assert [m.id async for m in channel.history(limit=10)] == [stored.id]
    assert (await channel.send("digest", nonce=nonce)).id == stored.id
    clock.now += emu.limits.nonce_window + 1
    second = await channel.send("digest", nonce=nonce)
    assert second.id != stored.id
    assert len(emu.messages(world.channel)) == 2


async def test_after_create_delay_answers_late_and_the_message_is_there(
    world: World, bot: Bot, nonce_clock: NonceClock
) -> None:
    emu, channel = world.emu, bot.channel(world)
    rule = emu.after_create("delay", delay=5.0, channel=world.channel)
    with pytest.raises(TimeoutError):  # a client that gives up, or is killed, meanwhile
        await asyncio.wait_for(channel.send("digest", nonce="dg-delay"), 0.2)
    assert rule.message_ids == [emu.messages(world.channel)[0].id]
    assert rule.hits == [f"/channels/{world.channel.id}/messages"] and rule.remaining == 0
    await _only_message_then_resend(world, bot, nonce_clock, "dg-delay")


async def test_after_create_delay_that_is_waited_out_is_a_normal_answer(
    world: World, bot: Bot
) -> None:
    emu, channel = world.emu, bot.channel(world)
    emu.after_create("delay", delay=0.1)
    sent = await channel.send("digest", nonce="dg-slow")
    assert [m.id for m in emu.messages(world.channel)] == [sent.id]
    [record] = emu.requests_to("POST", "/channels/*/messages")
    assert record.status == 200 and record.fault == "delay"


async def test_after_create_error500_is_retried_by_discord_py_with_the_same_nonce(
    world: World, bot: Bot, nonce_clock: NonceClock
) -> None:
    emu, channel = world.emu, bot.channel(world)
    emu.after_create("error500", channel=world.channel)
    # discord.py retries a 500 by itself (after 1 s) with the same body, so the same nonce:
    # Discord answers the retry with the message the first try created.
    sent = await channel.send("digest", nonce="dg-500")
    posts = emu.requests_to("POST", "/channels/*/messages")
    assert [(r.status, r.json["nonce"]) for r in posts] == [(500, "dg-500"), (200, "dg-500")]
    assert posts[0].error == {"message": "500: Internal Server Error", "code": 0}
    assert [m.id for m in emu.messages(world.channel)] == [sent.id]
    await _only_message_then_resend(world, bot, nonce_clock, "dg-500")


async def test_after_create_malformed_answer_raises_a_json_error(
    world: World, bot: Bot, nonce_clock: NonceClock
) -> None:
    emu, channel = world.emu, bot.channel(world)
    emu.after_create("malformed")
    with pytest.raises(json.JSONDecodeError):
        await channel.send("digest", nonce="dg-bad")
    assert len(emu.requests_to("POST", "/channels/*/messages")) == 1
    await _only_message_then_resend(world, bot, nonce_clock, "dg-bad")


async def test_after_create_cut_raises_a_disconnect_and_discord_py_does_not_retry(
    world: World, bot: Bot, nonce_clock: NonceClock
) -> None:
    emu, channel = world.emu, bot.channel(world)
    emu.after_create("cut", channel=world.channel)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await channel.send("digest", nonce="dg-cut")
    [post] = emu.requests_to("POST", "/channels/*/messages")
    assert post.fault == "cut"
    await _only_message_then_resend(world, bot, nonce_clock, "dg-cut")


async def test_after_create_counts_creations_in_its_channel_only(world: World, bot: Bot) -> None:
    emu, channel = world.emu, bot.channel(world)
    other = emu.add_channel(world.guild, "elsewhere")
    rule = emu.after_create("malformed", times=2, channel=other)
    await channel.send("not in the rule's channel")
    elsewhere = bot.client.get_channel(other.id)
    assert isinstance(elsewhere, discord.TextChannel)
    for _ in range(2):
        with pytest.raises(json.JSONDecodeError):
            await elsewhere.send("spoiled")
    await elsewhere.send("answered normally again")
    assert rule.remaining == 0 and len(rule.message_ids) == 2
    assert len(emu.messages(other)) == 3


def test_after_create_refuses_an_unknown_kind(world: World) -> None:
    with pytest.raises(ValueError, match="unknown after_create kind"):
        world.emu.after_create("timeout")


# --- shards ----------------------------------------------------------------------------------


@dataclass
class ShardBot:
    """An ``AutoShardedBot`` running some shards, with what it saw (events, never polling)."""

    client: commands.AutoShardedBot
    messages: list[tuple[int | None, str]] = field(default_factory=list)
    """(shard id of the message's guild, content) of every MESSAGE_CREATE it got."""
    message_event: asyncio.Event = field(default_factory=asyncio.Event)
    joined: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    removed: asyncio.Queue[int] = field(default_factory=asyncio.Queue)
    identify_hooks: list[tuple[int | None, bool]] = field(default_factory=list)
    """(shard id, initial) of every ``before_identify_hook`` call."""


def build_sharded_bot(
    shard_ids: list[int] | None = None,
    shard_count: int | None = None,
    *,
    pace: Callable[[], None] = lambda: None,
) -> ShardBot:
    """A bot owning ``shard_ids`` of ``shard_count`` (both None: it asks ``/gateway/bot``).

    ``pace`` stands for discord.py's 5 s sleep before a non-initial IDENTIFY (a test moves
    the emulator's session clock instead of sleeping)."""
    intents = discord.Intents.default()
    intents.message_content = True
    client = commands.AutoShardedBot(
        command_prefix="!",
        intents=intents,
        shard_ids=shard_ids,
        shard_count=shard_count,
        guild_ready_timeout=0.1,
        help_command=None,
    )
    bot = ShardBot(client)

    async def before_identify_hook(shard_id: int | None, *, initial: bool = False) -> None:
        bot.identify_hooks.append((shard_id, initial))
        if not initial:
            pace()

    client.before_identify_hook = before_identify_hook  # type: ignore[method-assign]

    async def setup_hook() -> None:
        await client.tree.sync()

    client.setup_hook = setup_hook  # type: ignore[method-assign]

    async def on_message(message: discord.Message) -> None:
        if message.author == client.user:
            return  # its own replies
        shard = message.guild.shard_id if message.guild else None
        bot.messages.append((shard, message.content))
        bot.message_event.set()

    async def on_guild_join(guild: discord.Guild) -> None:
        bot.joined.put_nowait(guild.id)

    async def on_guild_remove(guild: discord.Guild) -> None:
        bot.removed.put_nowait(guild.id)

    client.add_listener(on_message, "on_message")
    client.add_listener(on_guild_join, "on_guild_join")
    client.add_listener(on_guild_remove, "on_guild_remove")

    @client.tree.command(description="Which shard answers")
    async def where(interaction: discord.Interaction) -> None:
        shard = interaction.guild.shard_id if interaction.guild else None
        await interaction.response.send_message(f"shard {shard}")

    return bot


async def start_failing(client: discord.Client, token: str) -> discord.ConnectionClosed:
    """Run ``client`` until the gateway closes it for good; return how it was closed."""
    try:
        with pytest.raises(discord.ConnectionClosed) as caught:
            await asyncio.wait_for(client.start(token), 10)
    finally:
        await client.close()
    return caught.value


def all_sent(session: GatewaySession) -> bool:
    return session.connection is not None and session.connection.sent_upto == session.seq


def message_contents(session: GatewaySession) -> list[str]:
    return [f["d"]["content"] for f in session.frames if f["t"] == "MESSAGE_CREATE"]


def identify_refusals(emu: DiscordEmulator) -> list[list[int] | None]:
    """The shards whose IDENTIFY got op 9 instead of a session."""
    return [
        list(r.detail["shard"]) if r.detail["shard"] else None
        for r in emu.gateway.log
        if r.kind == "invalid_session" and r.detail.get("on") == "identify"
    ]


def test_a_guild_can_be_placed_on_a_chosen_shard(discord_emulator: DiscordEmulator) -> None:
    emu = discord_emulator
    placed = [
        (shard, count, emu.add_guild(f"g{shard}of{count}", shard=shard, shard_count=count))
        for count in (1, 2, 3, 16)
        for shard in reversed(range(count))
    ]
    assert all(emu.shard_of(guild, count) == shard for shard, count, guild in placed)
    ids = [guild.id for _, _, guild in placed]
    assert ids == sorted(set(ids))  # still strictly increasing snowflakes
    with pytest.raises(ValueError, match="not one of 2 shards"):
        emu.add_guild("nowhere", shard=2, shard_count=2)


async def test_gateway_bot_recommends_shards_and_counts_session_starts(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.recommended_shards = 3
    emu.limits.session_start_total = 10
    emu.limits.max_concurrency = 2
    emu.add_guild("Readers")
    bot = build_sharded_bot()  # no shard_count: discord.py takes the recommendation

    async with running_bot(bot.client, emu):
        limits = await bot.client.fetch_session_start_limits()
        shards = sorted(s.shard for s in emu.sessions if s.shard)

    assert bot.client.shard_count == 3
    assert shards == [(0, 3), (1, 3), (2, 3)]
    assert (limits.total, limits.remaining, limits.max_concurrency) == (10, 7, 2)
    assert 0 < limits.reset_after <= 24 * 3600 * 1000


async def test_each_shard_session_gets_only_its_guilds_and_their_events(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    first = emu.add_guild("Shard Zero", shard=0, shard_count=2)
    second = emu.add_guild("Shard One", shard=1, shard_count=2)
    news0, news1 = emu.add_channel(first, "news"), emu.add_channel(second, "news")
    alice = emu.add_member(first, "alice")
    bob = emu.add_member(second, "bob")
    zero, one = build_sharded_bot([0], 2), build_sharded_bot([1], 2)

    async with running_bot(zero.client, emu), running_bot(one.client, emu):
        session0 = await emu.wait_for_ready(shard=0)
        session1 = await emu.wait_for_ready(shard=1)
        emu.user_message(news1, bob, "hello shard one")
        await asyncio.wait_for(one.message_event.wait(), 5)
        reply = await (await emu.invoke(first, news0, alice, "where")).response()
        later = emu.add_guild("Later", shard=1, shard_count=2)
        assert await asyncio.wait_for(one.joined.get(), 5) == later.id
        emu.add_channel(first, "more news")
        assert emu.shard_of(later) == 1
        guilds = {0: [g.id for g in zero.client.guilds], 1: [g.id for g in one.client.guilds]}
        emu.remove_guild(later)
        assert await asyncio.wait_for(one.removed.get(), 5) == later.id
        emu.gateway.dispatch("USER_UPDATE", emu.bot_user.payload())  # no guild: shard 0 only
        await emu.wait_until(lambda: all_sent(session0), what="USER_UPDATE to shard 0")

    assert session0.frames[0]["d"]["shard"] == [0, 2]
    assert [g["id"] for g in session0.frames[0]["d"]["guilds"]] == [str(first.id)]
    assert [g["id"] for g in session1.frames[0]["d"]["guilds"]] == [str(second.id)]
    assert guilds == {0: [first.id], 1: sorted([second.id, later.id])}
    assert one.messages == [(1, "hello shard one")] and zero.messages == []
    assert reply.content == "shard 0"
    events0 = [f["t"] for f in session0.frames]
    events1 = [f["t"] for f in session1.frames]
    assert message_contents(session0) == ["shard 0"]  # the reply in its own guild
    assert message_contents(session1) == ["hello shard one"]
    assert "INTERACTION_CREATE" in events0 and "INTERACTION_CREATE" not in events1
    assert events0.count("GUILD_CREATE") == 1 and events1.count("GUILD_CREATE") == 2
    assert "CHANNEL_CREATE" in events0 and "CHANNEL_CREATE" not in events1
    assert "GUILD_DELETE" in events1 and "GUILD_DELETE" not in events0
    assert "USER_UPDATE" in events0 and "USER_UPDATE" not in events1


async def test_two_sessions_on_one_shard_both_stay_and_both_get_its_events(
    world: World,
) -> None:
    emu = world.emu
    first, second = build_sharded_bot([0], 1), build_sharded_bot([0], 1)

    async with running_bot(first.client, emu), running_bot(second.client, emu):
        emu.user_message(world.channel, world.alice, "to every session of shard 0")
        await asyncio.wait_for(first.message_event.wait(), 5)
        await asyncio.wait_for(second.message_event.wait(), 5)
        shards = [s.shard for s in emu.sessions]

    assert shards == [(0, 1), (0, 1)]
    assert first.messages == second.messages == [(0, "to every session of shard 0")]
    assert [r for r in emu.gateway.log if r.kind == "close" and r.detail["server_code"]] == []


@pytest.mark.parametrize(("shard_ids", "shard_count"), [([2], 2), ([0], 0)])
async def test_a_shard_outside_its_count_is_closed_with_invalid_shard(
    world: World, shard_ids: list[int], shard_count: int
) -> None:
    bot = build_sharded_bot(shard_ids, shard_count)

    closed = await start_failing(bot.client, world.emu.token)

    assert closed.code == 4010
    assert world.emu.gateway.identifies == 0


async def test_too_many_guilds_for_one_session_is_closed_with_sharding_required(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.limits.guilds_per_shard = 2
    for n in range(3):
        emu.add_guild(f"guild {n}", shard=n % 2, shard_count=2)
    unsharded, _ = build_bot()

    closed = await start_failing(unsharded, emu.token)
    sharded = build_sharded_bot(None, 2)
    async with running_bot(sharded.client, emu):
        guilds = len(sharded.client.guilds)

    assert closed.code == 4011
    assert guilds == 3


async def test_an_identify_beyond_the_daily_budget_resets_the_token_and_ends_every_session(
    world: World,
) -> None:
    emu, old_token = world.emu, world.emu.token
    emu.limits.session_start_total = 2
    first = build_sharded_bot(None, 2)
    running = asyncio.create_task(first.client.start(old_token))
    try:
        await emu.wait_for_ready(shard=1)
        remaining = (await first.client.fetch_session_start_limits()).remaining
        late, _ = build_bot()

        closed = await start_failing(late, old_token)

        with pytest.raises(discord.ConnectionClosed) as ended:
            await asyncio.wait_for(running, 5)
    finally:
        await first.client.close()
    relogin, _ = build_bot()
    try:
        with pytest.raises(discord.LoginFailure):
            await relogin.login(old_token)
    finally:
        await relogin.close()

    assert remaining == 0
    assert closed.code == ended.value.code == 4004
    assert emu.token != old_token and emu.gateway.sessions == []
    assert [r.kind for r in emu.gateway.log].count("token_reset") == 1


@pytest.mark.parametrize(("max_concurrency", "refused"), [(1, [[1, 2]]), (2, [])])
async def test_an_identify_too_soon_in_its_concurrency_bucket_gets_invalid_session(
    discord_emulator: DiscordEmulator, max_concurrency: int, refused: list[list[int]]
) -> None:
    emu = discord_emulator
    clock = [1000.0]
    emu.session_clock = lambda: clock[0]
    emu.limits.identify_window = 5.0  # Discord's
    emu.limits.max_concurrency = max_concurrency
    emu.add_guild("Zero", shard=0, shard_count=2)
    emu.add_guild("One", shard=1, shard_count=2)

    def wait_five_seconds() -> None:  # what discord.py's own hook would sleep
        clock[0] += 5.0

    zero = build_sharded_bot([0], 2)
    one = build_sharded_bot([1], 2, pace=wait_five_seconds)  # another process: it starts at once
    async with running_bot(zero.client, emu), running_bot(one.client, emu):
        shards = sorted(s.shard for s in emu.sessions if s.shard)

    assert identify_refusals(emu) == refused
    assert one.identify_hooks == [(1, True)] + [(1, False)] * len(refused)
    assert shards == [(0, 2), (1, 2)]
    assert emu.gateway.identifies == 2  # a refused IDENTIFY starts no session


async def test_two_shards_share_the_token_s_global_rest_limit(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    first = emu.add_guild("Shard Zero", shard=0, shard_count=2)
    second = emu.add_guild("Shard One", shard=1, shard_count=2)
    channels = [emu.add_channel(first, "news"), emu.add_channel(second, "news")]
    zero, one = build_sharded_bot([0], 2), build_sharded_bot([1], 2)

    async with running_bot(zero.client, emu), running_bot(one.client, emu):
        emu.limits.global_requests, emu.limits.global_window = 4, 2.0
        posted_before = len(emu.requests)
        sends = []
        for bot, channel in zip((zero, one), channels, strict=True):
            target = bot.client.get_channel(channel.id)
            assert isinstance(target, discord.TextChannel)
            sends += [target.send(f"post {n}") for n in range(3)]  # 3 each: under 4 alone
        await asyncio.gather(*sends)
        posts = emu.requests[posted_before:]

    global_429s = [r for r in posts if r.status == 429 and (r.error or {}).get("global")]
    assert len(global_429s) == 2  # the 5th and 6th request of the token, whichever shard
    assert [len(emu.messages(c)) for c in channels] == [3, 3]


async def test_dropping_one_shard_resumes_that_shard_only(
    discord_emulator: DiscordEmulator,
) -> None:
    emu = discord_emulator
    emu.add_guild("Zero", shard=0, shard_count=2)
    emu.add_guild("One", shard=1, shard_count=2)
    bot = build_sharded_bot(None, 2)

    async with running_bot(bot.client, emu):
        one = await emu.wait_for_ready(shard=1)
        await emu.drop_gateway(shard=1)
        await emu.wait_for_resume()
        shards = sorted(s.shard for s in emu.sessions if s.shard)

    assert [r.session_id for r in emu.gateway.resumes] == [one.id]
    assert shards == [(0, 2), (1, 2)] and emu.gateway.identifies == 2
    assert emu.gateway.session_start_limit()["remaining"] == 998  # a RESUME starts no session


async def test_an_outage_that_refuses_connections_fails_their_handshake_until_it_ends(
    world: World, bot: Bot
) -> None:
    emu = world.emu
    # What discord.py logs, at ERROR, each time its reconnect fails.
    bot.run.allow_error("Attempting a reconnect")
    async with emu.gateway_outage(code=4000, refuse=True):
        await emu.wait_until(
            lambda: any(r.kind == "connection_refused" for r in emu.gateway.log),
            5,
            what="the client's reconnect refused",
        )
        async with aiohttp.ClientSession() as http:
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await http.ws_connect(emu.gateway_url)
        assert refused.value.status == 503
        assert not emu.gateway.connected
        emu.user_message(world.channel, world.alice, "sent during the outage")

    # discord.py backs off between tries (up to 2 s, then 4 s): the next one resumes.
    await emu.wait_for_resume(timeout=10)
    await asyncio.wait_for(bot.seen.message_event.wait(), 10)
    assert bot.seen.messages == ["sent during the outage"]
    assert emu.gateway.identifies == 1
