"""``DiscordEmulator``: the server, the world it holds, and the API tests drive it with."""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from . import interactions as ix
from .gateway import (
    INTENT_GUILD_MESSAGES,
    INTENT_GUILD_PRESENCES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    PRIVILEGED_INTENTS,
    Gateway,
    GatewaySession,
    shard_of,
)
from .limits import CreateFault, FailureRule, Limits, RateLimiter, error_body
from .mentions import Pings, compute_pings
from .rest import RestApi
from .state import (
    ALL_PERMISSIONS,
    DEFAULT_BOT_PERMISSIONS,
    DEFAULT_EVERYONE_PERMISSIONS,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    Channel,
    Guild,
    Member,
    Overwrite,
    Role,
    Snowflakes,
    StoredMessage,
    Team,
    User,
    iso_now,
    perm_value,
)

T = TypeVar("T")

# A MESSAGE_CREATE dispatch cut off mid-object: what a truncated gateway frame looks like.
TRUNCATED_DISPATCH = '{"op":0,"t":"MESSAGE_CREATE","s":7,"d":{"id":"1","content":"hel'


class BotCrashed(AssertionError):
    """A watched task (the bot's ``start()``) ended while a test was waiting on the emulator."""


@dataclass
class RequestRecord:
    """One REST request as the emulator saw and answered it."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    at: float
    route: str | None = None
    status: int = 0
    authorized: bool = False
    injected: bool = False
    fault: str | None = None
    """The ``after_create`` kind that spoiled this answer, if any."""
    error: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<{self.method} {self.path} -> {self.status}>"


class DiscordEmulator:
    """A local Discord (REST under ``/api/v10``, gateway at ``/gateway``) for one bot.

    See the package docstring for the API reference.
    """

    def __init__(
        self,
        token: str = "emulator-bot-token",
        *,
        bot_name: str = "newsbot",
        limits: Limits | None = None,
        privileged_intents: int = PRIVILEGED_INTENTS,
    ) -> None:
        self.token = token
        self.limits = limits or Limits()
        self.privileged_intents = privileged_intents
        self.snowflakes = Snowflakes()
        self.application_id = self.snowflakes.next()
        self.bot_user = User(self.application_id, bot_name, bot=True)
        self.owner_user = User(self.snowflakes.next(), "app-owner")
        self.team: Team | None = None
        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.commands: dict[int | None, dict[str, dict[str, Any]]] = {None: {}}
        """Registered commands per scope (None = global), keyed ``"{type}:{name}"``."""
        self.interactions: dict[int, ix.InteractionHandle] = {}
        self.requests: list[RequestRecord] = []
        self.unknown_requests: list[RequestRecord] = []
        self.rate_limit_hits: Counter[str] = Counter()
        self.failures: list[FailureRule] = []
        self.rate_limiter = RateLimiter()
        self.gateway = Gateway(self)
        self._messages: dict[int, list[StoredMessage]] = {}
        self._message_index: dict[int, StoredMessage] = {}
        self._nonces: dict[tuple[int, str], tuple[float, StoredMessage]] = {}
        self.nonce_clock: Callable[[], float] = time.monotonic
        """Seconds; the ``enforce_nonce`` window is measured on it (a test may plug its clock)."""
        self.create_faults: list[CreateFault] = []
        self.recommended_shards = 1
        """The ``shards`` that ``GET /gateway/bot`` recommends."""
        self.session_clock: Callable[[], float] = time.monotonic
        """Seconds; the daily session start budget and IDENTIFY pacing run on it."""
        self._changed = asyncio.Event()
        self._watched: list[asyncio.Task[Any]] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> DiscordEmulator:
        app = web.Application()
        rest = RestApi(self)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/resume", self.gateway.handle)
        app.router.add_route("*", "/api/v10/{tail:.*}", rest.handle)
        app.router.add_route("*", "/{tail:.*}", rest.handle_outside_api)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> DiscordEmulator:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    @property
    def resume_gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway/resume"

    # --- waiting -------------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake every ``wait_until``; called on each state change."""
        self._changed.set()
        self._changed = asyncio.Event()

    def watch(self, task: asyncio.Task[Any]) -> None:
        """Make ``wait_until`` fail fast with ``BotCrashed`` if ``task`` ends."""
        self._watched.append(task)
        task.add_done_callback(lambda _: self.notify())

    def unwatch(self, task: asyncio.Task[Any]) -> None:
        if task in self._watched:
            self._watched.remove(task)

    def _check_watched(self) -> None:
        for task in self._watched:
            if task.done():
                exc = None if task.cancelled() else task.exception()
                raise BotCrashed(f"the bot task ended while waiting: {exc!r}") from exc

    async def wait_until(
        self,
        predicate: Callable[[], T | None],
        timeout: float = 2.0,  # noqa: ASYNC109 - a per-wait deadline is the point of the API
        what: str = "condition",
    ) -> T:
        """Wait (event-driven, no polling) until ``predicate()`` is truthy and return it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if result := predicate():
                        return result
                    self._check_watched()
                    await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}") from None

    async def wait_for_ready(
        self,
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        shard: int | None = None,
    ) -> GatewaySession:
        """Wait until the bot IDENTIFYed and READY plus every GUILD_CREATE were sent to it
        (with ``shard``: to a session of that shard id); return that session."""

        def ready() -> GatewaySession | None:
            if shard is None:
                return self.gateway.session if self.gateway.ready_sent else None
            sessions = [s for s in self.gateway.sessions if s.shard_id == shard and s.ready_sent]
            return sessions[-1] if sessions else None

        what = "READY" if shard is None else f"READY on shard {shard}"
        return await self.wait_until(ready, timeout, what)

    # --- shards --------------------------------------------------------------------------------

    @property
    def sessions(self) -> list[GatewaySession]:
        """The connected gateway sessions of the token, oldest first (``.shard``, ``.shard_id``,
        ``.shard_count``, ``.intents``, ``.frames``)."""
        return [s for s in self.gateway.sessions if s.connected]

    def shard_of(self, guild: Guild | int, shard_count: int | None = None) -> int:
        """The shard id that receives ``guild``'s events; ``shard_count`` defaults to the one
        the connected sessions use (else ``recommended_shards``)."""
        guild_id = int(getattr(guild, "id", guild))
        if shard_count is None:
            counts = {s.shard_count for s in self.sessions}
            if len(counts) > 1:
                raise ValueError(f"sessions use several shard counts {sorted(counts)}: pass one")
            shard_count = counts.pop() if counts else self.recommended_shards
        return shard_of(guild_id, shard_count)

    def reset_token(self) -> str:
        """Discord resets a token that started too many sessions: the old one stops working."""
        self.token = f"{self.token.split('.reset')[0]}.reset{secrets.token_hex(4)}"
        return self.token

    async def wait_for_resume(self, count: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``count`` RESUMEs happened and the RESUMED dispatch went out."""
        await self.wait_until(
            lambda: len(self.gateway.resumes) >= count and self.gateway.connected,
            timeout,
            f"{count} RESUME(s)",
        )

    # --- building the world --------------------------------------------------------------------

    def add_guild(
        self,
        name: str,
        *,
        everyone_permissions: Any = DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: Any = DEFAULT_BOT_PERMISSIONS,
        shard: int | None = None,
        shard_count: int | None = None,
    ) -> Guild:
        """A guild the bot is in, with @everyone (id == guild id) and the bot's own role.
        ``shard`` and ``shard_count`` pick its id so that it lands on that shard."""
        owner = User(self.snowflakes.next(), f"{name}-owner")
        if (shard is None) != (shard_count is None):
            raise ValueError("pass both shard and shard_count, or neither")
        if shard is not None and shard_count is not None:
            guild_id = self.snowflakes.next_on_shard(shard, shard_count)
        else:
            guild_id = self.snowflakes.next()
        guild = Guild(id=guild_id, name=name, owner_id=owner.id)
        guild.roles[guild.id] = Role(guild.id, "@everyone", perm_value(everyone_permissions))
        bot_role = Role(
            self.snowflakes.next(), self.bot_user.username, perm_value(bot_permissions), 1
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = Member(owner, guild.id)
        guild.members[self.bot_user.id] = Member(self.bot_user, guild.id, [bot_role.id])
        self.guilds[guild.id] = guild
        self.commands.setdefault(guild.id, {})

        # The bot joins it: Discord leaves "unavailable" out of a join's GUILD_CREATE (false
        # means "available again after an outage"), which is how clients tell the two apart.
        def joined(intents: int) -> dict[str, Any]:
            payload = self.guild_create_payload(guild, intents)
            del payload["unavailable"]
            return payload

        self.gateway.dispatch(
            "GUILD_CREATE", {}, intent=INTENT_GUILDS, guild_id=guild.id, shape=joined
        )
        return guild

    def add_channel(
        self, guild: Guild, name: str, *, bot_permissions: Any = None, topic: str | None = None
    ) -> Channel:
        """A text channel; ``bot_permissions`` (if given) are exactly what the bot may do in it."""
        channel = Channel(self.snowflakes.next(), guild.id, name, len(guild.channels), topic=topic)
        if bot_permissions is not None:
            allow = perm_value(bot_permissions)
            channel.overwrites.append(
                Overwrite(self.bot_user.id, 1, allow, ALL_PERMISSIONS & ~allow)
            )
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        self._messages[channel.id] = []
        self.gateway.dispatch("CHANNEL_CREATE", channel.payload(), intent=INTENT_GUILDS)
        return channel

    def add_role(
        self, guild: Guild, name: str, *, permissions: Any = 0, mentionable: bool = False
    ) -> Role:
        role = Role(self.snowflakes.next(), name, perm_value(permissions), 1, mentionable)
        guild.roles[role.id] = role
        data = {"guild_id": str(guild.id), "role": role.payload()}
        self.gateway.dispatch("GUILD_ROLE_CREATE", data, intent=INTENT_GUILDS)
        return role

    def add_user(self, name: str) -> User:
        """A Discord account that is in no guild yet (``add_member(..., user=)`` adds it)."""
        return User(self.snowflakes.next(), name)

    def set_team(self, name: str, members: Iterable[tuple[User, str]] = ()) -> Team:
        """Make a team own the application, as when an app is transferred to a team: the
        ``owner_user`` becomes the team's owner (an admin); ``members`` are (user, role) pairs,
        role ``"admin"``, ``"developer"`` or ``"read_only"``. Served from then on by
        ``GET /oauth2/applications/@me``."""
        team = Team(self.snowflakes.next(), name, self.owner_user)
        team.members[self.owner_user.id] = (self.owner_user, "admin")
        for user, role in members:
            if role not in ("admin", "developer", "read_only"):
                raise ValueError(f"unknown team member role {role!r}")
            team.members[user.id] = (user, role)
        self.team = team
        return team

    def add_member(
        self,
        guild: Guild,
        name: str,
        *,
        permissions: Any = None,
        roles: tuple[Role, ...] = (),
        user: User | None = None,
    ) -> Member:
        """A human; ``permissions`` come through a personal role, on top of @everyone's.
        ``user`` makes an existing account (``owner_user``, a team member, a member of another
        guild) join ``guild``; otherwise a new account named ``name`` does."""
        if user is not None and user.id in guild.members:
            raise ValueError(f"{user.username} is already a member of {guild.name}")
        user = user or User(self.snowflakes.next(), name)
        role_ids = [r.id for r in roles]
        if permissions is not None:
            role_ids.append(self.add_role(guild, f"{name}-perms", permissions=permissions).id)
        member = Member(user, guild.id, role_ids)
        guild.members[user.id] = member
        data = {**member.payload(), "guild_id": str(guild.id)}
        self.gateway.dispatch("GUILD_MEMBER_ADD", data, intent=1 << 1)
        return member

    def set_bot_permissions(self, channel: Channel, permissions: Any) -> None:
        """Replace the bot's overwrite in ``channel`` (CHANNEL_UPDATE is dispatched)."""
        allow = perm_value(permissions)
        channel.overwrites = [o for o in channel.overwrites if o.id != self.bot_user.id]
        channel.overwrites.append(Overwrite(self.bot_user.id, 1, allow, ALL_PERMISSIONS & ~allow))
        self.gateway.dispatch("CHANNEL_UPDATE", channel.payload(), intent=INTENT_GUILDS)

    def delete_channel(self, channel: Channel) -> None:
        """Delete ``channel``: CHANNEL_DELETE, and REST answers 10003 Unknown Channel afterwards."""
        self.guilds[channel.guild_id].channels.pop(channel.id, None)
        self.channels.pop(channel.id, None)
        self.gateway.dispatch("CHANNEL_DELETE", channel.payload(), intent=INTENT_GUILDS)

    def remove_guild(self, guild: Guild) -> None:
        """The bot is removed from ``guild`` (GUILD_DELETE without ``unavailable``)."""
        self.guilds.pop(guild.id, None)
        for channel_id in guild.channels:
            self.channels.pop(channel_id, None)
        self.gateway.dispatch(
            "GUILD_DELETE", {"id": str(guild.id)}, intent=INTENT_GUILDS, guild_id=guild.id
        )

    def guild_create_payload(self, guild: Guild, intents: int | None = None) -> dict[str, Any]:
        """GUILD_CREATE for a session with ``intents`` (default: the newest session's)."""
        if intents is None:
            intents = self.gateway.intents
        members = list(guild.members.values())
        if not intents & INTENT_GUILD_PRESENCES:
            members = [guild.members[self.bot_user.id]]  # Discord sends only "me" then
        return guild.payload(members=members)

    def guild_of(self, channel: Channel) -> Guild:
        return self.guilds[channel.guild_id]

    # --- messages ------------------------------------------------------------------------------

    def messages(
        self, channel: Channel | int, *, include_ephemeral: bool = True
    ) -> list[StoredMessage]:
        """Messages in ``channel``, oldest first (deleted ones are gone)."""
        channel_id = int(getattr(channel, "id", channel))
        found = self._messages.get(channel_id, [])
        return [m for m in found if include_ephemeral or not m.ephemeral]

    def message(self, message_id: int) -> StoredMessage | None:
        return self._message_index.get(int(message_id))

    def pings(self, message: StoredMessage) -> Pings:
        """Who ``message`` notified (see ``mentions``)."""
        return message.pings

    def would_ping(self, message: StoredMessage) -> bool:
        return bool(message.pings)

    def user_message(self, channel: Channel, member: Member, content: str) -> StoredMessage:
        """A member posts in ``channel`` (MESSAGE_CREATE to the bot, per its intents)."""
        return self.create_message(
            channel, {"content": content}, author=member.user, source="user", member=member
        )

    def create_message(
        self,
        channel: Channel,
        body: dict[str, Any],
        *,
        author: User,
        source: str,
        ephemeral: bool = False,
        loading: bool = False,
        interaction: ix.InteractionHandle | None = None,
        member: Member | None = None,
        attachments: list[dict[str, Any]] | None = None,
    ) -> StoredMessage:
        """Store a message and dispatch MESSAGE_CREATE (not for ephemeral ones)."""
        flags = (body.get("flags") or 0) & ~FLAG_EPHEMERAL
        flags |= FLAG_EPHEMERAL if ephemeral else 0
        flags |= FLAG_LOADING if loading else 0
        payload: dict[str, Any] = {
            "id": str(self.snowflakes.next()),
            "channel_id": str(channel.id),
            "guild_id": str(channel.guild_id),
            "author": author.payload(),
            "content": "",
            "embeds": [],
            "attachments": attachments or [],
            "components": [],
            "timestamp": iso_now(),
            "edited_timestamp": None,
            "tts": bool(body.get("tts")),
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "pinned": False,
            "type": 0,
            "flags": flags,
        }
        if member is not None:
            payload["member"] = member.payload(with_user=False)
        replied_author = None
        if ref := body.get("message_reference"):
            target = self.message(int(ref["message_id"]))
            payload["type"] = 19
            payload["message_reference"] = {
                "message_id": str(ref["message_id"]),
                "channel_id": str(channel.id),
                "guild_id": str(channel.guild_id),
            }
            if target is not None:
                payload["referenced_message"] = target.payload
                replied_author = target.author_id
        if interaction is not None:
            self._mark_interaction(payload, interaction)
        stored = StoredMessage(
            payload=payload,
            channel_id=channel.id,
            source=source,
            allowed_mentions=body.get("allowed_mentions"),
            ephemeral=ephemeral,
            interaction_id=interaction.id if interaction else None,
            nonce=body.get("nonce"),
        )
        self._apply_body(stored, body, replied_author=replied_author)
        self._messages.setdefault(channel.id, []).append(stored)
        self._message_index[stored.id] = stored
        if not ephemeral:
            self._dispatch_message("MESSAGE_CREATE", stored)
        self.notify()
        return stored

    def edit_message(self, stored: StoredMessage, body: dict[str, Any]) -> StoredMessage:
        """Apply an edit; a "thinking" placeholder's first edit counts as its creation (pings)."""
        first_fill = stored.loading
        stored.payload["flags"] = stored.flags & ~FLAG_LOADING
        if "flags" in body and body["flags"] is not None:
            keep = stored.flags & FLAG_EPHEMERAL
            stored.payload["flags"] = (body["flags"] & ~FLAG_EPHEMERAL) | keep
        if first_fill:
            stored.allowed_mentions = body.get("allowed_mentions")
        else:
            stored.payload["edited_timestamp"] = iso_now()
        self._apply_body(stored, body, recompute_pings=first_fill)
        if not stored.ephemeral:
            self._dispatch_message("MESSAGE_UPDATE", stored)
        self.notify()
        return stored

    def delete_message(self, stored: StoredMessage) -> None:
        stored.deleted = True
        channel_messages = self._messages.get(stored.channel_id, [])
        if stored in channel_messages:
            channel_messages.remove(stored)
        if not stored.ephemeral:
            data = {
                "id": str(stored.id),
                "channel_id": str(stored.channel_id),
                "guild_id": stored.payload["guild_id"],
            }
            self.gateway.dispatch("MESSAGE_DELETE", data, intent=INTENT_GUILD_MESSAGES)
        self.notify()

    def find_nonce(self, author_id: int, nonce: str) -> StoredMessage | None:
        """``enforce_nonce``: the message this author already sent with ``nonce``, if recent.

        The window runs from the *first* message (a repeat does not refresh it), on
        ``nonce_clock`` so a test can move it with its fake clock."""
        now = self.nonce_clock()
        for key, (at, _) in list(self._nonces.items()):
            if now - at > self.limits.nonce_window:
                del self._nonces[key]
        hit = self._nonces.get((author_id, nonce))
        return hit[1] if hit else None

    def remember_nonce(self, author_id: int, nonce: str, message: StoredMessage) -> None:
        self._nonces[(author_id, nonce)] = (self.nonce_clock(), message)

    def _apply_body(
        self,
        stored: StoredMessage,
        body: dict[str, Any],
        *,
        replied_author: int | None = None,
        recompute_pings: bool = True,
    ) -> None:
        payload = stored.payload
        if "content" in body:
            payload["content"] = body["content"] or ""
        if "embeds" in body:
            payload["embeds"] = [{"type": "rich", **e} for e in body["embeds"] or []]
        if "components" in body:
            payload["components"] = body["components"] or []
        if "attachments" in body and body["attachments"] == []:
            payload["attachments"] = []
        if not recompute_pings or stored.ephemeral:
            return
        pings = compute_pings(
            payload["content"], stored.allowed_mentions, replied_author=replied_author
        )
        stored.pings = pings
        guild = self.guilds.get(int(payload["guild_id"]))
        payload["mention_everyone"] = pings.everyone
        payload["mention_roles"] = [str(r) for r in pings.roles]
        payload["mentions"] = [
            guild.members[u].user.payload() for u in pings.users if guild and u in guild.members
        ]

    def _mark_interaction(self, payload: dict[str, Any], handle: ix.InteractionHandle) -> None:
        user = handle.member.user.payload()
        payload["webhook_id"] = str(self.application_id)
        payload["application_id"] = str(self.application_id)
        payload["type"] = 20 if handle.type == ix.APPLICATION_COMMAND else 0
        payload["interaction_metadata"] = {
            "id": str(handle.id),
            "type": handle.type,
            "user": user,
            "authorizing_integration_owners": {"0": str(handle.guild.id)},
        }
        name = handle.payload["data"].get("name") or handle.payload["data"].get("custom_id", "")
        payload["interaction"] = {
            "id": str(handle.id),
            "type": handle.type,
            "name": name,
            "user": user,
        }

    def _dispatch_message(self, event: str, stored: StoredMessage) -> None:
        # Only MESSAGE_CREATE echoes the nonce; MESSAGE_UPDATE, like history, has none.
        data = dict(stored.created_payload() if event == "MESSAGE_CREATE" else stored.payload)
        readable = stored.author_id == self.bot_user.id or self.bot_user.id in stored.pings.users

        def for_session(intents: int) -> dict[str, Any]:
            if readable or intents & INTENT_MESSAGE_CONTENT:
                return data
            return {**data, "content": "", "embeds": [], "attachments": [], "components": []}

        self.gateway.dispatch(event, data, intent=INTENT_GUILD_MESSAGES, shape=for_session)

    # --- commands and interactions -------------------------------------------------------------

    def registered_commands(self, guild: Guild | None = None) -> list[dict[str, Any]]:
        """What the bot registered globally (``guild=None``) or for ``guild``."""
        return list(self.commands.get(guild.id if guild else None, {}).values())

    def find_command(self, guild: Guild, name: str, kind: int = 1) -> dict[str, Any]:
        for scope in (guild.id, None):
            if (cmd := self.commands.get(scope, {}).get(f"{kind}:{name}")) is not None:
                return cmd
        known = [c["name"] for c in self.registered_commands(guild) + self.registered_commands()]
        raise LookupError(f"no command /{name} registered for {guild.name}; registered: {known}")

    def _dispatch_interaction(
        self,
        *,
        type: int,
        guild: Guild,
        channel: Channel,
        member: Member,
        data: dict[str, Any],
        message: StoredMessage | None = None,
    ) -> ix.InteractionHandle:
        if not self.gateway.sessions_for(guild.id):
            raise RuntimeError(
                f"no gateway session has {guild.name}'s shard: nothing would receive this"
            )
        payload = ix.base_payload(
            self, type=type, guild=guild, channel=channel, member=member, data=data
        )
        if message is not None:
            payload["message"] = message.payload
        handle = ix.InteractionHandle(
            emu=self,
            id=int(payload["id"]),
            token=payload["token"],
            type=type,
            guild=guild,
            channel=channel,
            member=member,
            payload=payload,
            source_message=message,
        )
        self.interactions[handle.id] = handle
        self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=guild.id)
        return handle

    async def invoke(
        self,
        guild: Guild,
        channel: Channel,
        member: Member,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        force: bool = False,
        raw_options: dict[str, Any] | None = None,
    ) -> ix.InteractionHandle:
        """A member runs ``/name [subcommand] options...``; returns the dispatched interaction.

        Raises ``CommandNotAvailable`` when ``default_member_permissions`` hides the command from
        ``member`` (pass ``force=True`` to simulate a stale client that still shows it), and
        ``ValueError``/``TypeError`` for anything Discord's client would not let the user send.
        ``raw_options`` are sent unchecked, as a stale or modified client may: values out of
        range or of the wrong type, a channel of another guild (by object or id).
        """
        command = self.find_command(guild, name)
        if not force:
            ix.check_visible(command, guild, member, channel)
        data = ix.build_command_data(
            command,
            guild=guild,
            member=member,
            options=options or {},
            subcommand=subcommand,
            raw_options=raw_options,
            channels=self.channels,
        )
        return self._dispatch_interaction(
            type=ix.APPLICATION_COMMAND, guild=guild, channel=channel, member=member, data=data
        )

    async def autocomplete(
        self,
        guild: Guild,
        channel: Channel,
        member: Member,
        name: str,
        *,
        focused: str,
        value: str = "",
        options: dict[str, Any] | None = None,
        subcommand: str | None = None,
        timeout: float = 2.0,  # noqa: ASYNC109
    ) -> list[dict[str, Any]]:
        """The member types ``value`` into option ``focused``; returns the bot's choices."""
        command = self.find_command(guild, name)
        ix.check_visible(command, guild, member, channel)
        data = ix.build_command_data(
            command,
            guild=guild,
            member=member,
            options=options or {},
            subcommand=subcommand,
            focused=focused,
            focused_value=value,
        )
        handle = self._dispatch_interaction(
            type=ix.AUTOCOMPLETE, guild=guild, channel=channel, member=member, data=data
        )
        attempt = await handle.attempt(timeout)
        if not attempt.accepted:
            raise ix.InteractionNotAnswered(
                f"the autocomplete answer was rejected: {attempt.status} {attempt.error}"
            )
        return attempt.choices

    async def click(
        self, message: StoredMessage, custom_id: str, member: Member
    ) -> ix.InteractionHandle:
        """``member`` presses the button ``custom_id`` on a message the bot sent."""
        return self._component(message, custom_id, member, None)

    async def select(
        self, message: StoredMessage, custom_id: str, values: list[str], member: Member
    ) -> ix.InteractionHandle:
        """``member`` picks ``values`` in the select menu ``custom_id``."""
        return self._component(message, custom_id, member, values)

    def _component(
        self, message: StoredMessage, custom_id: str, member: Member, values: list[str] | None
    ) -> ix.InteractionHandle:
        if message.deleted:
            raise ValueError(f"message {message.id} was deleted")
        data = ix.component_data(message, custom_id, values)
        channel = self.channels[message.channel_id]
        return self._dispatch_interaction(
            type=ix.MESSAGE_COMPONENT,
            guild=self.guild_of(channel),
            channel=channel,
            member=member,
            data=data,
            message=message,
        )

    # --- failure injection and observation -----------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        body: dict[str, Any] | None = None,
        times: int = 1,
        *,
        code: int | None = None,
        retry_after: float | None = None,
    ) -> FailureRule:
        """Answer the next ``times`` requests matching ``method`` (or ``*``) and the glob
        ``path_pattern`` (path after ``/api/v10``, e.g. ``/channels/*/messages``) with ``status``.

        ``code`` picks a Discord error code for the body (50001, 50013, 10003, ...); 429s carry
        ``retry_after`` (default ``limits.retry_after``) and a ``Via`` header.
        """
        if body is None and code is not None:
            body = error_body(code)
        rule = FailureRule(method.upper(), path_pattern, status, body, times, retry_after)
        self.failures.append(rule)
        return rule

    def after_create(
        self,
        kind: str,
        *,
        times: int = 1,
        delay: float = 0.0,
        channel: Channel | int | None = None,
    ) -> CreateFault:
        """Let the next ``times`` channel messages (``POST /channels/{id}/messages``, in
        ``channel`` only if given) be created as usual, then answer them badly: ``kind`` is
        ``"delay"`` (answer after ``delay`` s), ``"error500"``, ``"malformed"`` (200, not JSON) or
        ``"cut"`` (connection closed, no answer). A repeat that ``enforce_nonce`` answers with
        the existing message creates nothing and is answered normally."""
        channel_id = None if channel is None else int(getattr(channel, "id", channel))
        rule = CreateFault(kind, times, delay, channel_id)
        self.create_faults.append(rule)
        return rule

    def take_create_fault(self, channel_id: int) -> CreateFault | None:
        return next((r for r in self.create_faults if r.matches(channel_id)), None)

    def take_failure(self, method: str, path: str) -> FailureRule | None:
        return next((r for r in self.failures if r.matches(method, path)), None)

    def requests_to(self, method: str = "*", pattern: str = "*") -> list[RequestRecord]:
        """Recorded requests whose method and path (glob) match."""
        return [
            r
            for r in self.requests
            if method in ("*", r.method) and fnmatch.fnmatchcase(r.path, pattern)
        ]

    # --- gateway controls ----------------------------------------------------------------------

    # ``shard`` picks the connected session of that shard id; None the newest session.

    async def drop_gateway(self, code: int = 4000, *, shard: int | None = None) -> None:
        await self.gateway.drop(code, shard=shard)

    @contextlib.asynccontextmanager
    async def gateway_outage(
        self, code: int = 4000, *, shard: int | None = None, refuse: bool = False
    ) -> AsyncIterator[None]:
        async with self.gateway.outage(code, shard=shard, refuse=refuse):
            yield

    async def request_reconnect(self, *, shard: int | None = None) -> None:
        await self.gateway.request_reconnect(shard=shard)

    async def invalidate_session(
        self, *, resumable: bool = False, shard: int | None = None
    ) -> None:
        await self.gateway.invalidate_session(resumable=resumable, shard=shard)

    async def send_malformed_frame(
        self, text: str = TRUNCATED_DISPATCH, *, shard: int | None = None
    ) -> None:
        """Send the bot one TEXT frame that is not valid JSON (by default a dispatch cut short)."""
        await self.gateway.send_malformed(text, shard=shard)
