"""Topic names as people type them: the stored topic a name means, or close matches for a name
that is not a topic.

Shared by /news, /digest and the command line, so each finds and suggests the same topics; each
words the refusal its own way (an ephemeral message, a line on stderr).
"""

from __future__ import annotations

import difflib

from bot.store import Store


class UnknownTopic(Exception):
    """No stored topic has this name (in any case); `suggestions` are the close ones."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(f"no topic {name!r}")
        self.name = name
        self.suggestions = suggestions


class TwoTopics(Exception):
    """A search named one topic in its topic option and another in its words (topic:)."""

    def __init__(self, option: str, in_query: str) -> None:
        super().__init__(f"the topic option says {option!r} but the query says {in_query!r}")
        self.option = option
        self.in_query = in_query


async def resolve_search_topic(
    store: Store, option: str | None, in_query: str | None
) -> str | None:
    """The topic of a search: its topic option's or the topic: in its words, each resolved as
    resolve_topic does; TwoTopics when they are both given and mean different topics."""
    chosen = await resolve_topic(store, option) if option else None
    named = await resolve_topic(store, in_query) if in_query else None
    if chosen is not None and named is not None and chosen != named:
        raise TwoTopics(chosen, named)
    return chosen or named


async def resolve_topic(store: Store, name: str) -> str:
    """The stored topic `name` means, spelled as stored; UnknownTopic with suggestions if none."""
    found = await store.topic(name)
    if found is not None:
        return found.name
    # Only a miss reads the whole list: a known topic costs one lookup.
    raise UnknownTopic(name, suggest_topics(name, [topic.name for topic in await store.topics()]))


def suggest_topics(name: str, known: list[str]) -> list[str]:
    """Topics whose names are close to `name`, best first."""
    by_key = {topic.casefold(): topic for topic in known}
    close = difflib.get_close_matches(name.casefold(), list(by_key), n=3, cutoff=0.6)
    contained = [key for key in by_key if name.casefold() in key and key not in close]
    return [by_key[key] for key in [*close, *contained][:3]]
