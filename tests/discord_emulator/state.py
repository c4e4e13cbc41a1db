"""The emulator's world: snowflakes, permissions, guilds, channels, members and messages.

Everything here is plain data plus the JSON shapes Discord sends for it. Field names follow the
Discord API (and what discord.py 2.7 reads: a missing key the client indexes directly ends the
client's gateway task, so payloads carry every key the parsers require).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .mentions import Pings

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions), the ones tests use.
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
MENTION_EVERYONE = 1 << 17
USE_EXTERNAL_EMOJIS = 1 << 18
USE_APPLICATION_COMMANDS = 1 << 31
ALL_PERMISSIONS = (1 << 53) - 1

#: What @everyone can do in a fresh guild (the subset that matters to a text bot).
DEFAULT_EVERYONE_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | USE_APPLICATION_COMMANDS
)
#: What the bot's own role grants unless a test says otherwise.
DEFAULT_BOT_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | EMBED_LINKS | READ_MESSAGE_HISTORY

# Message flags.
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7


def perm_value(permissions: Any) -> int:
    """Accept an int or anything with ``.value`` (e.g. ``discord.Permissions``)."""
    if permissions is None:
        return 0
    return int(getattr(permissions, "value", permissions))


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Discord-shaped, strictly increasing ids (timestamp << 22 | counter)."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        candidate = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(candidate, self._last + 1)
        return self._last

    def next_on_shard(self, shard_id: int, shard_count: int) -> int:
        """The next id whose guild would land on ``shard_id`` of ``shard_count``
        (``(id >> 22) % shard_count``): the timestamp part moves on by at most
        ``shard_count - 1`` ms."""
        if not 0 <= shard_id < shard_count:
            raise ValueError(f"shard {shard_id} is not one of {shard_count} shards")
        candidate = self.next()
        millis = candidate >> 22
        ahead = (shard_id - millis) % shard_count
        if ahead:
            self._last = (millis + ahead) << 22
        return self._last


@dataclass
class User:
    id: int
    username: str
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": None if self.bot else self.username,
            "avatar": None,
            "bot": self.bot,
            "public_flags": 0,
        }


#: ``public_flags`` of the stand-in user that a team-owned application names as its owner.
TEAM_PSEUDO_USER = 1 << 10


@dataclass
class Team:
    """A developer team that owns the application: ``members`` maps each user to a role
    (``"admin"``, ``"developer"`` or ``"read_only"``); the team's owner is an admin."""

    id: int
    name: str
    owner: User
    members: dict[int, tuple[User, str]] = field(default_factory=dict)

    def owner_payload(self) -> dict[str, Any]:
        """What Discord puts in the application's ``owner`` field when a team owns it: a
        pseudo-user with the team's id and the TEAM_PSEUDO_USER flag, not a person."""
        return {
            "id": str(self.id),
            "username": f"team{self.id}",
            "discriminator": "0000",
            "global_name": None,
            "avatar": None,
            "public_flags": TEAM_PSEUDO_USER,
            "flags": TEAM_PSEUDO_USER,
        }

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_user_id": str(self.owner.id),
            "members": [
                {
                    "membership_state": 2,  # accepted
                    "team_id": str(self.id),
                    "user": user.payload(),
                    "role": role,
                    "permissions": ["*"],
                }
                for user, role in self.members.values()
            ],
        }


@dataclass
class Role:
    id: int
    name: str
    permissions: int
    position: int = 0
    mentionable: bool = False

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": 0,
            "hoist": False,
            "managed": False,
            "mentionable": self.mentionable,
            "flags": 0,
        }


@dataclass
class Overwrite:
    """A channel permission overwrite: ``type`` 0 targets a role, 1 a member."""

    id: int
    type: int
    allow: int = 0
    deny: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "allow": str(self.allow),
            "deny": str(self.deny),
        }


@dataclass
class Member:
    user: User
    guild_id: int
    role_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=iso_now)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return self.user.mention

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.role_ids],
            "joined_at": self.joined_at,
            "nick": None,
            "avatar": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class Channel:
    id: int
    guild_id: int
    name: str
    position: int
    type: int = 0
    topic: str | None = None
    overwrites: list[Overwrite] = field(default_factory=list)

    @property
    def mention(self) -> str:
        return f"<#{self.id}>"

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "topic": self.topic,
            "nsfw": False,
            "parent_id": None,
            "rate_limit_per_user": 0,
            "last_message_id": None,
            "permission_overwrites": [o.payload() for o in self.overwrites],
        }


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    roles: dict[int, Role] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]

    def permissions_for(self, member: Member, channel: Channel | None = None) -> int:
        """Discord's permission algorithm: roles, administrator, then channel overwrites."""
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        base = self.everyone.permissions
        for role_id in member.role_ids:
            base |= self.roles[role_id].permissions
        if base & ADMINISTRATOR:
            return ALL_PERMISSIONS
        if channel is None:
            return base
        by_target = {(o.type, o.id): o for o in channel.overwrites}
        perms = base
        if everyone := by_target.get((0, self.id)):
            perms = (perms & ~everyone.deny) | everyone.allow
        allow = deny = 0
        for role_id in member.role_ids:
            if role_ow := by_target.get((0, role_id)):
                allow |= role_ow.allow
                deny |= role_ow.deny
        perms = (perms & ~deny) | allow
        if member_ow := by_target.get((1, member.id)):
            perms = (perms & ~member_ow.deny) | member_ow.allow
        return perms if perms & VIEW_CHANNEL else 0

    def payload(self, *, members: list[Member]) -> dict[str, Any]:
        """The GUILD_CREATE body."""
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "owner_id": str(self.owner_id),
            "unavailable": False,
            "member_count": len(self.members),
            "large": len(self.members) >= 250,
            "features": [],
            "preferred_locale": "en-US",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "system_channel_id": None,
            "joined_at": iso_now(),
            "roles": [r.payload() for r in self.roles.values()],
            "channels": [c.payload() for c in self.channels.values()],
            "members": [m.payload() for m in members],
            "threads": [],
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass(eq=False)
class StoredMessage:
    """A message as the emulator keeps it: Discord's message object plus what only the sender knew.

    ``payload`` is the message object Discord would return. ``allowed_mentions`` is what the
    sender asked for (None when the request had no such key), ``pings`` what Discord would have
    notified, ``source`` one of ``channel``, ``interaction``, ``followup`` or ``user``.
    ``nonce`` is what the sender sent: Discord echoes it in the create answer and MESSAGE_CREATE
    only (``created_payload``), never in history or a fetched message (``payload``).
    """

    payload: dict[str, Any]
    channel_id: int
    source: str
    allowed_mentions: dict[str, Any] | None = None
    ephemeral: bool = False
    interaction_id: int | None = None
    pings: Pings = field(default_factory=Pings)
    deleted: bool = False
    dropped_embeds: bool = False
    nonce: str | int | None = None

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def content(self) -> str:
        return self.payload.get("content") or ""

    @property
    def embeds(self) -> list[dict[str, Any]]:
        return self.payload.get("embeds", [])

    @property
    def components(self) -> list[dict[str, Any]]:
        return self.payload.get("components", [])

    @property
    def flags(self) -> int:
        return self.payload.get("flags", 0)

    @property
    def author_id(self) -> int:
        return int(self.payload["author"]["id"])

    @property
    def loading(self) -> bool:
        return bool(self.flags & FLAG_LOADING)

    def created_payload(self) -> dict[str, Any]:
        """The message as its create answer and MESSAGE_CREATE carry it: with the nonce."""
        if self.nonce is None:
            return self.payload
        return {**self.payload, "nonce": self.nonce}

    def custom_ids(self) -> list[str]:
        return [c["custom_id"] for c in walk_components(self.components) if "custom_id" in c]


def walk_components(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten action rows (and nested containers) into their leaf components."""
    out: list[dict[str, Any]] = []
    for comp in components:
        out.append(comp)
        out.extend(walk_components(comp.get("components", [])))
    return out


def interaction_token() -> str:
    """An opaque, unguessable interaction token (the real ones are long base64 strings)."""
    return "aW50ZXJhY3Rpb24." + secrets.token_urlsafe(48)
