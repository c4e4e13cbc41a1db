"""Interactions: building INTERACTION_CREATE payloads and enforcing Discord's response rules.

Modelled rules:

- the first callback must arrive within ``limits.interaction_deadline`` (3 s on Discord) of the
  interaction's creation, else 404 ``10062 Unknown interaction``; a second initial callback gets
  400 ``40060 Interaction has already been acknowledged``;
- allowed callback types depend on the interaction: commands take 4/5/9, components 4/5/6/7/9,
  autocomplete only 8 (autocomplete cannot be deferred);
- followups and ``@original`` edits need an acknowledged interaction and die after
  ``limits.followup_lifetime`` (15 min); before that: 404 ``10015 Unknown Webhook``;
- after a deferred reply (type 5) the first followup fills the "thinking" message (keeping the
  defer's ephemeral flag), as Discord does; for components, ``@original`` after type 6/7 is the
  message the component sits on.

The payload builder fills every key discord.py reads with ``data[...]`` (``attachment_size_limit``
included) plus ``channel``, ``member.permissions`` and ``app_permissions``; option values are
coerced to the types of the *registered* command's options and channel/user/role options get their
``resolved`` entries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .state import (
    ADMINISTRATOR,
    ALL_PERMISSIONS,
    FLAG_EPHEMERAL,
    Channel,
    Guild,
    Member,
    StoredMessage,
    interaction_token,
    walk_components,
)

if TYPE_CHECKING:
    from .emulator import DiscordEmulator

APPLICATION_COMMAND = 2
MESSAGE_COMPONENT = 3
AUTOCOMPLETE = 4

PONG = 1
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7
AUTOCOMPLETE_RESULT = 8
MODAL = 9

ALLOWED_CALLBACKS = {
    APPLICATION_COMMAND: {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL},
    MESSAGE_COMPONENT: {
        CHANNEL_MESSAGE,
        DEFERRED_CHANNEL_MESSAGE,
        DEFERRED_UPDATE_MESSAGE,
        UPDATE_MESSAGE,
        MODAL,
    },
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
}

ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024


class CommandNotAvailable(PermissionError):
    """Discord would not show this command to this member (``default_member_permissions``)."""


class InteractionNotAnswered(AssertionError):
    """The bot did not answer (or its answers were all rejected) in time."""


@dataclass
class CallbackRecord:
    """One POST to ``/interactions/{id}/{token}/callback``, accepted or not."""

    type: int
    data: dict[str, Any]
    status: int
    error: dict[str, Any] | None
    after: float
    """Seconds between the interaction's creation and this callback."""

    @property
    def accepted(self) -> bool:
        return self.status < 400

    @property
    def ephemeral(self) -> bool:
        return bool((self.data.get("flags") or 0) & FLAG_EPHEMERAL)

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.data.get("embeds") or []

    @property
    def content(self) -> str:
        return self.data.get("content") or ""

    @property
    def choices(self) -> list[dict[str, Any]]:
        return self.data.get("choices") or []


@dataclass(eq=False)
class InteractionHandle:
    """An interaction the emulator dispatched, and everything the bot did with it."""

    emu: DiscordEmulator = field(repr=False)
    id: int
    token: str
    type: int
    guild: Guild
    channel: Channel
    member: Member
    payload: dict[str, Any] = field(repr=False)
    source_message: StoredMessage | None = None
    created: float = field(default_factory=time.monotonic)
    callbacks: list[CallbackRecord] = field(default_factory=list)
    original: StoredMessage | None = None
    followup_messages: list[StoredMessage] = field(default_factory=list)

    @property
    def acknowledged(self) -> CallbackRecord | None:
        return next((c for c in self.callbacks if c.accepted), None)

    @property
    def rejected(self) -> list[CallbackRecord]:
        return [c for c in self.callbacks if not c.accepted]

    @property
    def age(self) -> float:
        return time.monotonic() - self.created

    async def response(self, timeout: float = 2.0) -> CallbackRecord:  # noqa: ASYNC109
        """The accepted initial callback (type 4/5/6/7/8/9); raises if none comes in time."""
        try:
            return await self.emu.wait_until(lambda: self.acknowledged, timeout, "a callback")
        except TimeoutError:
            raise InteractionNotAnswered(
                f"interaction {self.id} not acknowledged within {timeout}s; "
                f"rejected attempts: {[(c.type, c.status, c.error) for c in self.rejected]}"
            ) from None

    async def attempt(self, timeout: float = 2.0) -> CallbackRecord:  # noqa: ASYNC109
        """The first callback attempt, accepted or rejected (e.g. a late one that got 10062)."""
        return await self.emu.wait_until(
            lambda: self.callbacks[0] if self.callbacks else None, timeout, "a callback attempt"
        )

    async def followups(self, n: int = 1, timeout: float = 2.0) -> list[StoredMessage]:  # noqa: ASYNC109
        """Wait until the bot has sent ``n`` followup messages; return them all."""
        return await self.emu.wait_until(
            lambda: list(self.followup_messages) if len(self.followup_messages) >= n else None,
            timeout,
            f"{n} followup(s)",
        )

    async def original_message(self, timeout: float = 2.0) -> StoredMessage:  # noqa: ASYNC109
        """The response message once it is no longer a "thinking…" placeholder."""
        return await self.emu.wait_until(
            lambda: self.original if self.original and not self.original.loading else None,
            timeout,
            "the original response",
        )


# --- payload building ------------------------------------------------------------------------


def member_payload(guild: Guild, member: Member, channel: Channel | None) -> dict[str, Any]:
    data = member.payload()
    data["permissions"] = str(guild.permissions_for(member, channel))
    return data


def base_payload(
    emu: DiscordEmulator,
    *,
    type: int,
    guild: Guild,
    channel: Channel,
    member: Member,
    data: dict[str, Any],
) -> dict[str, Any]:
    """Every field discord.py 2.7 reads from an INTERACTION_CREATE."""
    member_perms = guild.permissions_for(member, channel)
    bot_perms = guild.permissions_for(guild.members[emu.bot_user.id], channel)
    return {
        "id": str(emu.snowflakes.next()),
        "application_id": str(emu.application_id),
        "type": type,
        "token": interaction_token(),
        "version": 1,
        "guild_id": str(guild.id),
        "guild": {"id": str(guild.id), "locale": "en-US", "features": []},
        "channel_id": str(channel.id),
        "channel": {**channel.payload(), "permissions": str(member_perms)},
        "member": member_payload(guild, member, channel),
        "app_permissions": str(bot_perms),
        "locale": "en-US",
        "guild_locale": "en-US",
        "entitlements": [],
        "authorizing_integration_owners": {"0": str(guild.id)},
        "context": 0,
        "attachment_size_limit": ATTACHMENT_SIZE_LIMIT,
        "data": data,
    }


def check_visible(command: dict[str, Any], guild: Guild, member: Member, channel: Channel) -> None:
    """Raise ``CommandNotAvailable`` when Discord would hide ``command`` from ``member``."""
    required = command.get("default_member_permissions")
    if required is None:
        return
    perms = guild.permissions_for(member, channel)
    needed = int(required)
    allowed = perms & ADMINISTRATOR or perms == ALL_PERMISSIONS
    if needed:
        allowed = allowed or perms & needed == needed
    if not allowed:
        raise CommandNotAvailable(
            f"/{command['name']} needs permissions {needed:#x} (default_member_permissions); "
            f"{member.user.username} has {perms:#x}. Pass force=True to simulate a stale client."
        )


def select_options(
    command: dict[str, Any], subcommand: str | None
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """The option definitions a (sub)command takes, and the path of subcommand layers to it."""
    defs = command.get("options") or []
    has_subs = any(o.get("type") in (1, 2) for o in defs)
    if subcommand is None:
        if has_subs:
            subs = [o["name"] for o in defs if o.get("type") in (1, 2)]
            raise ValueError(f"/{command['name']} needs a subcommand, one of {subs}")
        return defs, []
    path: list[tuple[int, str]] = []
    for part in subcommand.split():
        match = next((o for o in defs if o.get("type") in (1, 2) and o["name"] == part), None)
        if match is None:
            raise ValueError(f"/{command['name']} has no subcommand {subcommand!r}")
        path.append((match["type"], part))
        defs = match.get("options") or []
    if path[-1][0] != 1:
        raise ValueError(f"{subcommand!r} is a group: name one of its subcommands")
    return defs, path


def _coerce(
    opt: dict[str, Any],
    value: Any,
    guild: Guild,
    member: Member,
    resolved: dict[str, dict[str, Any]],
) -> Any:
    kind, name = opt["type"], opt["name"]
    if kind == 3:
        value = str(value)
        if len(value) < opt.get("min_length", 0) or len(value) > opt.get("max_length", 6000):
            raise ValueError(f"option {name!r}: length out of range")
    elif kind == 4:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"option {name!r} is an integer option, got {value!r}")
    elif kind == 5:
        if not isinstance(value, bool):
            raise TypeError(f"option {name!r} is a boolean option, got {value!r}")
    elif kind == 10:
        value = float(value)
    elif kind in (6, 7, 8, 9):
        return _resolve(opt, value, guild, member, resolved)
    else:
        raise TypeError(f"option {name!r}: option type {kind} is not supported by the emulator")
    if kind in (4, 10):
        lo, hi = opt.get("min_value"), opt.get("max_value")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"option {name!r}: {value} outside [{lo}, {hi}]")
    choices = [c["value"] for c in opt.get("choices") or []]
    if choices and value not in choices:
        raise ValueError(f"option {name!r}: {value!r} is not one of the choices {choices}")
    return value


def _resolve(
    opt: dict[str, Any],
    value: Any,
    guild: Guild,
    member: Member,
    resolved: dict[str, dict[str, Any]],
) -> str:
    kind, name = opt["type"], opt["name"]
    target_id = int(getattr(value, "id", value))
    if kind == 7:
        channel = guild.channels.get(target_id)
        if channel is None:
            raise ValueError(f"option {name!r}: no channel {target_id} in {guild.name}")
        types = opt.get("channel_types")
        if types and channel.type not in types:
            raise ValueError(f"option {name!r}: channel type {channel.type} not in {types}")
        resolved.setdefault("channels", {})[str(target_id)] = {
            "id": str(channel.id),
            "name": channel.name,
            "type": channel.type,
            "guild_id": str(guild.id),
            "parent_id": None,
            "nsfw": False,
            "topic": channel.topic,
            "position": channel.position,
            "permissions": str(guild.permissions_for(member, channel)),
        }
        return str(target_id)
    if target_id in guild.roles and kind in (8, 9):
        resolved.setdefault("roles", {})[str(target_id)] = guild.roles[target_id].payload()
        return str(target_id)
    if kind in (6, 9):
        target = guild.members.get(target_id)
        if target is None:
            raise ValueError(f"option {name!r}: no member {target_id} in {guild.name}")
        resolved.setdefault("users", {})[str(target_id)] = target.user.payload()
        resolved.setdefault("members", {})[str(target_id)] = {
            **target.payload(with_user=False),
            "permissions": str(guild.permissions_for(target)),
        }
        return str(target_id)
    raise ValueError(f"option {name!r}: no role {target_id} in {guild.name}")


def _raw_channel(
    value: Any, channels: dict[int, Channel], resolved: dict[str, dict[str, Any]]
) -> str:
    """A channel option naming any channel the emulator knows, resolved as Discord would
    describe it (its own guild_id, no permissions for a guild the member is not in)."""
    channel = channels.get(int(getattr(value, "id", value)))
    if channel is None:
        return str(getattr(value, "id", value))
    resolved.setdefault("channels", {})[str(channel.id)] = {
        "id": str(channel.id),
        "name": channel.name,
        "type": channel.type,
        "guild_id": str(channel.guild_id),
        "parent_id": None,
        "nsfw": False,
        "topic": channel.topic,
        "position": channel.position,
        "permissions": "0",
    }
    return str(channel.id)


def build_command_data(
    command: dict[str, Any],
    *,
    guild: Guild,
    member: Member,
    options: dict[str, Any],
    subcommand: str | None,
    focused: str | None = None,
    focused_value: str = "",
    raw_options: dict[str, Any] | None = None,
    channels: dict[int, Channel] | None = None,
) -> dict[str, Any]:
    """``data`` of a slash command (or its autocomplete) interaction.

    ``raw_options`` are sent as given, unchecked (what a stale or modified client sends): any
    value of any type, and for channel options the id of a channel of any guild in
    ``channels``, resolved with the guild it really belongs to."""
    defs, path = select_options(command, subcommand)
    by_name = {o["name"]: o for o in defs}
    resolved: dict[str, dict[str, Any]] = {}
    leaf: list[dict[str, Any]] = []
    given = dict(options)
    if focused is not None:
        if focused not in by_name:
            raise ValueError(f"/{command['name']} has no option {focused!r}")
        given.pop(focused, None)
    for name, value in given.items():
        opt = by_name.get(name)
        if opt is None:
            raise ValueError(f"/{command['name']} has no option {name!r}; it has {list(by_name)}")
        leaf.append(
            {
                "name": name,
                "type": opt["type"],
                "value": _coerce(opt, value, guild, member, resolved),
            }
        )
    for name, value in (raw_options or {}).items():
        opt = by_name.get(name)
        if opt is None:
            raise ValueError(f"/{command['name']} has no option {name!r}; it has {list(by_name)}")
        if opt["type"] == 7:
            value = _raw_channel(value, channels or {}, resolved)
        leaf.append({"name": name, "type": opt["type"], "value": value})
        given[name] = value
    if focused is not None:
        opt = by_name[focused]
        if not opt.get("autocomplete"):
            raise ValueError(f"option {focused!r} of /{command['name']} has no autocomplete")
        leaf.append({"name": focused, "type": opt["type"], "value": focused_value, "focused": True})
    else:
        missing = [o["name"] for o in defs if o.get("required") and o["name"] not in given]
        if missing:
            raise ValueError(f"/{command['name']}: required option(s) missing: {missing}")
    nested = leaf
    for kind, name in reversed(path):
        nested = [{"name": name, "type": kind, "options": nested}]
    data: dict[str, Any] = {
        "id": command["id"],
        "name": command["name"],
        "type": command.get("type", 1),
        "options": nested,
    }
    if command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    if resolved:
        data["resolved"] = resolved
    return data


def component_data(
    message: StoredMessage, custom_id: str, values: list[str] | None
) -> dict[str, Any]:
    """``data`` of a component interaction, after checking the component exists and is enabled."""
    comp = next(
        (c for c in walk_components(message.components) if c.get("custom_id") == custom_id), None
    )
    if comp is None:
        raise ValueError(
            f"message {message.id} has no component {custom_id!r}: {message.custom_ids()}"
        )
    if comp.get("disabled"):
        raise ValueError(
            f"component {custom_id!r} is disabled; Discord would not let anyone use it"
        )
    data: dict[str, Any] = {"custom_id": custom_id, "component_type": comp["type"]}
    if comp["type"] == 2:
        if values is not None:
            raise ValueError("buttons take no values")
    else:
        if values is None:
            raise ValueError(f"component {custom_id!r} is a select menu: pass values")
        data["values"] = list(values)
    return data
