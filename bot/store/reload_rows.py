"""What one reload writes, planned before its transaction starts: the same rows for both
backends (bot.store.sqlite.seeds and bot.store.postgres.seeds write them, each its own way).
Pure, no SQL."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from bot.store.base import ReloadChanges
from bot.store.codec import seed_file_row


@dataclass(slots=True)
class ReloadRows:
    """The parameter rows of one reload, computed before its transaction starts.

    Stories come in ascending id order throughout: FTS5 writes its in-memory buffer out as a
    new segment whenever a rowid arrives lower than the one before, and story ids are hashes,
    so 20,000 stories in seed order would make thousands of tiny segments.
    """

    # Retired and replaced stories, ascending.
    deleted_ids: list[int] = field(default_factory=list)
    # The stories' rows (the story columns, then the seed file that holds it).
    stories: list[tuple[Any, ...]] = field(default_factory=list)
    # Story id -> (title, excerpt), for the search index.
    texts: dict[int, tuple[str, str]] = field(default_factory=dict)
    # Topic key -> display name offered by this reload.
    topic_names: dict[str, str] = field(default_factory=dict)
    # Topic key -> number of upserted stories that carry it.
    topic_counts: Counter[str] = field(default_factory=Counter)
    # (topic key, published_at, story id), one per topic of a story.
    story_topics: list[tuple[str, int, int]] = field(default_factory=list)
    # (story id, linked id), in primary key order.
    links: list[tuple[int, int]] = field(default_factory=list)
    # Seed file rows, in path order so that the inserts append to the B-tree.
    files: list[tuple[Any, ...]] = field(default_factory=list)

    @classmethod
    def of(cls, changes: ReloadChanges) -> ReloadRows:
        rows = cls()
        # A story or file listed twice is written once, as its last version.
        upserts = {story.id: (story.data, source) for story, source in changes.upsert}
        records = {record.path: record for record in changes.put_files}
        rows.deleted_ids = sorted({*changes.retire, *upserts})
        # Topic names in the order the stories were given, so that "first" means first listed.
        topic_keys = {
            story_id: rows._add_topics(data[1]) for story_id, (data, _) in upserts.items()
        }
        for story_id in sorted(upserts):
            data, source = upserts[story_id]
            rows._add_story(data, source, topic_keys[story_id])
        rows.files = [seed_file_row(record) for _, record in sorted(records.items())]
        return rows

    def _add_topics(self, topics: tuple[tuple[str, str], ...]) -> set[str]:
        """Offer a story's topic names; returns its topic keys ("AI" and "ai" are one)."""
        keys: set[str] = set()
        for key, name in topics:
            self.topic_names[key] = display_name(self.topic_names.get(key), name)
            keys.add(key)
        self.topic_counts.update(keys)
        return keys

    def _add_story(self, data: Any, source: str, topic_keys: set[str]) -> None:
        row, _, linked = data
        story_id, published_at = row[0], row[4]
        self.stories.append((*row, source))
        self.texts[story_id] = (row[2], row[3])
        self.story_topics.extend((key, published_at, story_id) for key in topic_keys)
        self.links.extend((story_id, linked_id) for linked_id in sorted(linked))


def display_name(current: str | None, offered: str) -> str:
    """A topic keeps its first name, except that a capitalised one beats an all-lowercase one
    ("ai" then "AI" is "AI"): feeds that lower-case everything should not win over those that
    spell the name properly."""
    if current is None or (current == current.lower() and offered != offered.lower()):
        return offered
    return current


def topic_names_to_write(
    offered: dict[str, str],
    stored: Iterable[tuple[str, int, str, int]],
    deltas: Counter[int],
) -> list[tuple[str, str]]:
    """The (key, name) rows to write: new topics, and stored ones whose name changes.

    `deltas` holds what this reload's deletions take from each topic's count: a topic left
    without stories is as good as new and takes the name offered now.
    """
    current = {key: (name, count + deltas[topic_id]) for key, topic_id, name, count in stored}
    rows: list[tuple[str, str]] = []
    for key, name in offered.items():
        if key not in current:
            rows.append((key, name))
            continue
        stored_name, count = current[key]
        chosen = name if count == 0 else display_name(stored_name, name)
        if chosen != stored_name:
            rows.append((key, chosen))
    return rows
