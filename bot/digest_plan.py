"""What a digest carries: the stories selected for it from the store, and the messages they
render to, either for a preview or as the fixed plan a claim records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, cast

import discord

from bot.digest import (
    DigestItem,
    digest_nonce,
    digest_reference,
    effective_max_age,
    local_date_of,
    select_items,
    split_by_age,
)
from bot.embeds import digest_messages
from bot.models import DigestSettings, PlannedMessage, Story
from bot.store import Store

Messages = list[tuple[list[discord.Embed], tuple[int, ...]]]

# How many of the newest undelivered stories compete for a digest's places.
CANDIDATES = 100


@dataclass(frozen=True, slots=True)
class Selection:
    """What a digest with some settings would carry now, and what its age limit left out."""

    local_date: date
    topics: tuple[str, ...]
    items: list[DigestItem]
    max_age: timedelta | None  # the limit applied; None: no limit
    too_old: int = 0  # candidates left out for being older than max_age
    # False when there may be more too-old stories than counted (the candidate list was full).
    too_old_exact: bool = True

    @property
    def messages(self) -> Messages:
        """The digest as a preview shows it: the one rendering of a selection."""
        return digest_messages(self.local_date, self.topics, _pairs(self.items))

    def planned_messages(self, guild_id: int, attempt: int) -> tuple[PlannedMessage, ...]:
        """The digest as try `attempt` posts it: payloads, nonces and stories, fixed for good."""
        reference = digest_reference(guild_id, self.local_date, attempt)
        rendered = digest_messages(self.local_date, self.topics, _pairs(self.items), reference)
        return tuple(
            PlannedMessage(
                index=index,
                nonce=digest_nonce(guild_id, self.local_date, index, attempt),
                embeds=tuple(cast(dict[str, Any], embed.to_dict()) for embed in embeds),
                story_ids=story_ids,
            )
            for index, (embeds, story_ids) in enumerate(rendered)
        )


async def select_digest(
    store: Store,
    settings: DigestSettings,
    now: datetime,
    default_max_age: timedelta | None = None,
) -> Selection:
    """What a digest with these settings would carry now: the newest stories not yet
    delivered to its channel, on its topics, no older than its maximum age (the server's,
    else `default_max_age`; zero or None: no limit), clustered and ranked."""
    max_age = effective_max_age(settings, default_max_age)
    candidates = await store.undelivered_stories(settings.channel_id, settings.topics, CANDIDATES)
    # Candidates come newest first, so every fresh story is among them whenever a too-old one
    # is; only the count of too-old ones can be cut short by the limit.
    fresh, too_old = split_by_age(candidates, now, max_age)
    links = await store.linked_stories([story.id for story in fresh])
    return Selection(
        local_date=local_date_of(now, settings.timezone),
        topics=settings.topics,
        items=select_items(fresh, links, settings.count, now),
        max_age=max_age,
        too_old=len(too_old),
        too_old_exact=len(candidates) < CANDIDATES,
    )


def _pairs(items: Sequence[DigestItem]) -> list[tuple[Story, list[Story]]]:
    return [(item.story, list(item.also)) for item in items]
