"""Who a message would notify, following Discord's ``allowed_mentions`` rules.

- No ``allowed_mentions`` in the request: Discord parses @everyone/@here, role and user mentions
  from ``content`` (and pings the author of a replied-to message).
- ``allowed_mentions`` present: only the kinds listed in ``parse`` are parsed; ``users``/``roles``
  list explicit ids that may be pinged; ``replied_user`` defaults to false.
- Text inside embeds never notifies; ephemeral messages notify nobody.

Permission gates (MENTION_EVERYONE, non-mentionable roles) are deliberately ignored: the helper
answers "would this ping if the bot had the permission", which is what a safety test wants.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

EVERYONE_RE = re.compile(r"@(everyone|here)")
USER_RE = re.compile(r"<@!?(\d+)>")
ROLE_RE = re.compile(r"<@&(\d+)>")


@dataclass(frozen=True)
class Pings:
    """What a message notified: @everyone/@here, user ids, role ids, the replied-to author."""

    everyone: bool = False
    users: frozenset[int] = field(default_factory=frozenset)
    roles: frozenset[int] = field(default_factory=frozenset)
    replied_user: int | None = None

    def __bool__(self) -> bool:
        return (
            self.everyone or bool(self.users) or bool(self.roles) or self.replied_user is not None
        )


def compute_pings(
    content: str | None,
    allowed_mentions: dict[str, Any] | None,
    *,
    replied_author: int | None = None,
) -> Pings:
    """Apply Discord's mention parsing to ``content`` under ``allowed_mentions``."""
    text = content or ""
    found_everyone = bool(EVERYONE_RE.search(text))
    found_users = {int(x) for x in USER_RE.findall(text)}
    found_roles = {int(x) for x in ROLE_RE.findall(text)}

    if allowed_mentions is None:
        return Pings(
            everyone=found_everyone,
            users=frozenset(found_users),
            roles=frozenset(found_roles),
            replied_user=replied_author,
        )

    parse = set(allowed_mentions.get("parse") or [])
    explicit_users = {int(x) for x in allowed_mentions.get("users") or []}
    explicit_roles = {int(x) for x in allowed_mentions.get("roles") or []}
    users = found_users if "users" in parse else found_users & explicit_users
    roles = found_roles if "roles" in parse else found_roles & explicit_roles
    replied = replied_author if allowed_mentions.get("replied_user") else None
    return Pings(
        everyone=found_everyone and "everyone" in parse,
        users=frozenset(users),
        roles=frozenset(roles),
        replied_user=replied,
    )
