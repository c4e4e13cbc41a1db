"""The topics and their story counts, kept in memory for the topic autocompletes of /news and
/digest: Discord asks at every keystroke and shows nothing that comes late, so they answer
from here rather than from the database.

Filled at first use; refreshed after a reload, this process's own (bot.cogs.seeds) or another
process's (announced by the store, see NewsBot). Until a refresh is done, the previous list is
served: a topic a reload adds appears a moment after it commits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.models import TopicCount, topic_key
from bot.store import StoreError, StoryReader

log = logging.getLogger(__name__)


def matching_topics(
    topics: Sequence[tuple[str, TopicCount]], typed: str, limit: int
) -> list[TopicCount]:
    """What StoryReader.topics(matching=typed, limit=limit) answers, from (key, topic) pairs in
    the store's order (most stories first): names containing what was typed in any case and
    spacing, those starting with it first."""
    key = topic_key(typed)
    if not key:
        return [topic for _, topic in topics[:limit]]
    found = [(name_key, topic) for name_key, topic in topics if key in name_key]
    starting = [topic for name_key, topic in found if name_key.startswith(key)]
    inside = [topic for name_key, topic in found if not name_key.startswith(key)]
    return [*starting, *inside][:limit]


class TopicCache:
    """Every topic with stories, in the store's order, read once and after each reload."""

    def __init__(self, store: StoryReader) -> None:
        self._store = store
        self._topics: list[tuple[str, TopicCount]] | None = None
        # Refreshes asked for, and the one the list in hand was read for: a read that started
        # before a later refresh was asked for never replaces that refresh's.
        self._asked = 0
        self._read_for = -1
        self._refreshing: set[asyncio.Task[None]] = set()

    async def matching(self, typed: str, limit: int) -> list[TopicCount]:
        if self._topics is None:
            await self._fill(self._asked)
        return matching_topics(self._topics or [], typed, limit)

    def refresh(self) -> asyncio.Task[None]:
        """Read the topics again (a reload committed), in the background; the task is done
        once the new list is in use."""
        self._asked += 1
        task = asyncio.create_task(self._refresh(self._asked), name="newsbot topic cache")
        self._refreshing.add(task)
        task.add_done_callback(self._refreshing.discard)
        return task

    async def close(self) -> None:
        for task in list(self._refreshing):
            task.cancel()
        await asyncio.gather(*self._refreshing, return_exceptions=True)

    async def _refresh(self, asked: int) -> None:
        try:
            await self._fill(asked)
        except StoreError as error:
            # The next autocomplete reads them itself.
            log.warning("refreshing the topic list failed: %s", error)
            if asked >= self._read_for:
                self._topics = None

    async def _fill(self, asked: int) -> None:
        topics = await self._store.topics()
        if asked >= self._read_for:
            self._topics = [(topic_key(topic.name), topic) for topic in topics]
            self._read_for = asked
