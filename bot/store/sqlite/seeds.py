"""Seed bookkeeping on SQLite: the seed index (what is known of each seed file), its status, and
applying one reload in one transaction.

A reload keeps the data the schema denormalises for fast reads (topic rows and counts, links,
the full-text index, the story count) in step with the stories it writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiosqlite

from bot.store.base import (
    ReloadChanges,
    SeedFileRecord,
    SeedIndex,
    SeedStatus,
    StaleReload,
    StoreError,
)
from bot.store.codec import SEED_FILE_COLUMNS, add_seed_files, to_json
from bot.store.reload_rows import ReloadRows, topic_names_to_write
from bot.store.sqlite.search_terms import record_words
from bot.store.sqlite.seed_watch import SeedWatchMixin

log = logging.getLogger(__name__)

_META = "SELECT key, value FROM meta"
_SEED_FILES = "SELECT " + SEED_FILE_COLUMNS + " FROM seed_files"
# Records read and decoded per step of seed_index().
_SEED_FILE_CHUNK = 20_000
_REJECTED_FILES = (
    "SELECT path, error, story_id FROM seed_files WHERE status = 'rejected' ORDER BY path"
)


class SeedsMixin(SeedWatchMixin):
    """The SeedBookkeeping role on SQLite."""

    async def seed_index(self) -> SeedIndex:
        files: dict[str, SeedFileRecord] = {}
        # One read transaction, so the generation belongs to exactly these records.
        async with self._transaction(immediate=False) as writer:
            meta: dict[str, str] = {
                key: value for key, value in await writer.execute_fetchall(_META)
            }
            # In chunks, each turned into records off the event loop: at a million seed files,
            # all raw rows at once would double the peak memory, and building the records
            # takes seconds.
            async with writer.execute(_SEED_FILES) as cursor:
                while rows := await cursor.fetchmany(_SEED_FILE_CHUNK):
                    await asyncio.to_thread(add_seed_files, files, rows)
        reloaded_at = meta.get("reloaded_at")
        return SeedIndex(
            generation=int(meta["seed_generation"]),
            files=files,
            reloaded_at=datetime.fromisoformat(reloaded_at) if reloaded_at else None,
            folder=meta.get("seed_folder") or "",
        )

    async def seed_status(self) -> SeedStatus:
        meta = dict(await self._read(_META, ()))
        rejected = await self._read(_REJECTED_FILES, ())
        reloaded_at = meta.get("reloaded_at")
        return SeedStatus(
            reloaded_at=datetime.fromisoformat(reloaded_at) if reloaded_at else None,
            folder=meta.get("seed_folder") or "",
            rejected=tuple(
                (path, error or "", story_id is not None) for path, error, story_id in rejected
            ),
        )

    async def apply_reload(self, changes: ReloadChanges) -> None:
        # Encoding 20,000 stories is about half a second of pure Python: done off the event
        # loop so that the Discord gateway heartbeat is not held up, and before taking the
        # write lock so that it is held for the SQL only.
        rows = await asyncio.to_thread(ReloadRows.of, changes)
        generation = changes.expected_generation + 1
        with self._own_reload(generation):
            async with self._transaction(failing="reload not applied to") as writer:
                await _apply(writer, changes, rows)
        log.info(
            "reload applied: generation %d, %d stories upserted, %d retired, "
            "%d seed file records written, %d deleted",
            changes.expected_generation + 1,
            len(rows.stories),
            len(changes.retire),
            len(rows.files),
            len(changes.delete_files),
        )


# --- the reload transaction ----------------------------------------------------------------------

_GENERATION = "SELECT value FROM meta WHERE key = 'seed_generation'"
_SET_META = "UPDATE meta SET value = ? WHERE key = ?"
_ADD_TO_TOPIC = "UPDATE topics SET story_count = story_count + ? WHERE id = ?"
_ADD_TO_STORY_COUNT = "UPDATE meta SET value = value + ? WHERE key = 'story_count'"
_PUT_FILE = (
    "INSERT INTO seed_files (" + SEED_FILE_COLUMNS + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
    " digest = excluded.digest, status = excluded.status, story_id = excluded.story_id,"
    " rank = excluded.rank, error = excluded.error"
)
_DELETE_FILE = "DELETE FROM seed_files WHERE path = ?"


async def _apply(writer: aiosqlite.Connection, changes: ReloadChanges, rows: ReloadRows) -> None:
    """The body of apply_reload's transaction."""
    generation = int(next(iter(await writer.execute_fetchall(_GENERATION)))[0])
    if generation != changes.expected_generation:
        raise StaleReload(
            f"seed index is at generation {generation}, "
            f"the reload was planned at {changes.expected_generation}"
        )
    # Counts are adjusted once per topic at the end rather than once per row.
    topic_deltas: Counter[int] = Counter()
    kept, removed = await _delete_stories(writer, rows, topic_deltas)
    await _insert_stories(writer, rows, kept, topic_deltas)
    await writer.executemany(
        _ADD_TO_TOPIC, [(delta, topic_id) for topic_id, delta in topic_deltas.items() if delta]
    )
    await writer.execute(_ADD_TO_STORY_COUNT, (len(rows.stories) - removed,))
    await writer.executemany(_PUT_FILE, rows.files)
    await writer.executemany(_DELETE_FILE, [(path,) for path in changes.delete_files])
    await writer.executemany(
        _SET_META,
        [
            (generation + 1, "seed_generation"),
            (changes.reloaded_at.isoformat(), "reloaded_at"),
            (changes.folder, "seed_folder"),
        ],
    )


# What the search index holds for the stored stories among the given ids. An external-content
# FTS5 index can only forget a row given the text it indexed.
_INDEXED_TEXT = (
    "SELECT s.id, s.search_key, s.title, s.excerpt FROM json_each(?) AS j"
    " CROSS JOIN stories AS s ON s.id = j.value"
)
_UNINDEX_STORY = (
    "INSERT INTO stories_fts (stories_fts, rowid, title, excerpt) VALUES ('delete', ?, ?, ?)"
)
# Topic rows of the stories about to go, per topic. The grouping only sees these stories'
# rows (found through story_topics_by_story), never the whole table.
_DELETED_TOPIC_ROWS = (
    "SELECT st.topic_id, count(*) FROM json_each(?) AS j"
    " CROSS JOIN story_topics AS st ON st.story_id = j.value GROUP BY st.topic_id"
)
_DELETE_STORY_TOPICS = "DELETE FROM story_topics WHERE story_id IN (SELECT value FROM json_each(?))"
_DELETE_LINKS = "DELETE FROM story_links WHERE story_id IN (SELECT value FROM json_each(?))"
_DELETE_STORIES = "DELETE FROM stories WHERE id IN (SELECT value FROM json_each(?))"


async def _delete_stories(
    writer: aiosqlite.Connection, rows: ReloadRows, topic_deltas: Counter[int]
) -> tuple[dict[int, int], int]:
    """Delete the retired and replaced stories with their topic rows, links and search
    entries, so that nothing of a replaced story's old version lingers.

    Returns the replaced stories whose search entries were kept because their title and
    excerpt do not change (indexing is the costliest part of a reload), with the search key
    each is indexed under, and how many stored stories were deleted; subtracts the deleted
    topic rows from `topic_deltas`.
    """
    deleted = (to_json(rows.deleted_ids),)
    old_texts = list(await writer.execute_fetchall(_INDEXED_TEXT, deleted))
    for topic_id, count in await writer.execute_fetchall(_DELETED_TOPIC_ROWS, deleted):
        topic_deltas[topic_id] -= count
    kept = {
        story_id: search_key
        for story_id, search_key, title, excerpt in old_texts
        if rows.texts.get(story_id) == (title, excerpt)
    }
    await writer.executemany(
        _UNINDEX_STORY,
        sorted(
            (search_key, title, excerpt)
            for story_id, search_key, title, excerpt in old_texts
            if story_id not in kept
        ),
    )
    await writer.execute(_DELETE_STORY_TOPICS, deleted)
    await writer.execute(_DELETE_LINKS, deleted)
    await writer.execute(_DELETE_STORIES, deleted)
    return kept, len(old_texts)


_TOPICS_BY_KEY = (
    "SELECT key, id, name, story_count FROM topics WHERE key IN (SELECT value FROM json_each(?))"
)
_TOPIC_IDS = "SELECT key, id FROM topics WHERE key IN (SELECT value FROM json_each(?))"
_PUT_TOPIC = (
    "INSERT INTO topics (key, name) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET name = excluded.name"
)
_INSERT_STORY = (
    "INSERT INTO stories (id, url, title, excerpt, published_at, provider_name,"
    " provider_domain, quality, heat, extra, source_path, search_key)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INDEX_STORY = "INSERT INTO stories_fts (rowid, title, excerpt) VALUES (?, ?, ?)"
_INSERT_STORY_TOPIC = "INSERT INTO story_topics (topic_id, published_at, story_id) VALUES (?, ?, ?)"
# OR IGNORE: two related items of one story may point at the same story.
_INSERT_LINK = "INSERT OR IGNORE INTO story_links (story_id, linked_id) VALUES (?, ?)"
# The stored stories published in the same seconds as the upserted ones (after the deletions),
# through stories_by_published.
_SAME_SECOND = (
    "SELECT s.id, s.published_at, s.search_key, s.title, s.excerpt"
    " FROM json_each(?) AS j CROSS JOIN stories AS s ON s.published_at = j.value"
)
_SET_SEARCH_KEY = "UPDATE stories SET search_key = ? WHERE id = ?"


async def _insert_stories(
    writer: aiosqlite.Connection,
    rows: ReloadRows,
    kept: dict[int, int],
    topic_deltas: Counter[int],
) -> None:
    """Insert the upserted stories with their topics, topic rows, links and search entries;
    adds the topic rows to `topic_deltas`."""
    keys = (to_json(list(rows.topic_names)),)
    stored_topics: list[Any] = list(await writer.execute_fetchall(_TOPICS_BY_KEY, keys))
    await writer.executemany(
        _PUT_TOPIC, topic_names_to_write(rows.topic_names, stored_topics, topic_deltas)
    )
    topic_ids: dict[str, int] = {
        key: topic_id for key, topic_id in await writer.execute_fetchall(_TOPIC_IDS, keys)
    }
    for key, count in rows.topic_counts.items():
        topic_deltas[topic_ids[key]] += count

    search = await _search_keys(writer, rows, kept)
    await writer.executemany(_INSERT_STORY, [(*row, search.keys[row[0]]) for row in rows.stories])
    await writer.executemany(_SET_SEARCH_KEY, search.moved)
    # Every removal before any addition: a key given up may be taken by another story.
    await writer.executemany(_UNINDEX_STORY, sorted(search.unindex))
    await writer.executemany(_INDEX_STORY, sorted(search.index))
    await record_words(writer, [(title, excerpt) for _, title, excerpt in search.index])
    await writer.executemany(
        _INSERT_STORY_TOPIC,
        # In primary key order, so that the rows land next to each other in the index.
        sorted(
            (topic_ids[key], published_at, story_id)
            for key, published_at, story_id in rows.story_topics
        ),
    )
    await writer.executemany(_INSERT_LINK, rows.links)


async def _search_keys(
    writer: aiosqlite.Connection, rows: ReloadRows, kept: dict[int, int]
) -> SearchKeys:
    """The search keys of the upserted stories, and what to re-index for them."""
    seconds = sorted({row[4] for row in rows.stories})
    neighbours = await writer.execute_fetchall(_SAME_SECOND, (to_json(seconds),))
    return plan_search_keys(rows.stories, rows.texts, kept, neighbours)


@dataclass(slots=True)
class SearchKeys:
    """Search keys (migrations/0010) for one reload, and the index writes they take."""

    # Upserted story id -> its search key.
    keys: dict[int, int] = field(default_factory=dict)
    # (search key, id) of stored stories renumbered within their second.
    moved: list[tuple[int, int]] = field(default_factory=list)
    # (search key, title, excerpt) entries to remove from and to add to the search index.
    unindex: list[tuple[int, str, str]] = field(default_factory=list)
    index: list[tuple[int, str, str]] = field(default_factory=list)


# Search keys leave this many numbers to each second of publication.
SLOTS_PER_SECOND = 65536


def plan_search_keys(
    stories: Iterable[tuple[Any, ...]],
    texts: dict[int, tuple[str, str]],
    kept: dict[int, int],
    # (id, published_at, search_key, title, excerpt) rows.
    neighbours: Iterable[Any],
) -> SearchKeys:
    """Number each second's stories (the upserted and the stored `neighbours`) by id.

    A story's key is published_at * SLOTS_PER_SECOND + its rank by id in its second, so the
    keys sort as (published_at, id) do. Stored stories whose rank changes are renumbered and
    re-indexed; upserted stories are indexed unless `kept` already holds them under that key.
    """
    by_second: dict[int, list[int]] = {}
    stored: dict[int, tuple[int, str, str]] = {}
    for story_id, published_at, search_key, title, excerpt in neighbours:
        by_second.setdefault(published_at, []).append(story_id)
        stored[story_id] = (search_key, title, excerpt)
    for row in stories:
        by_second.setdefault(row[4], []).append(row[0])
    plan = SearchKeys()
    for published_at, story_ids in by_second.items():
        if len(story_ids) > SLOTS_PER_SECOND:
            raise StoreError(
                f"more than {SLOTS_PER_SECOND} stories published in one second ({published_at})"
            )
        for slot, story_id in enumerate(sorted(story_ids)):
            key = published_at * SLOTS_PER_SECOND + slot
            if story_id in stored:
                old_key, title, excerpt = stored[story_id]
                if old_key != key:
                    plan.moved.append((key, story_id))
                    plan.unindex.append((old_key, title, excerpt))
                    plan.index.append((key, title, excerpt))
                continue
            plan.keys[story_id] = key
            indexed_as = kept.get(story_id)
            if indexed_as == key:
                continue
            title, excerpt = texts[story_id]
            if indexed_as is not None:
                plan.unindex.append((indexed_as, title, excerpt))
            plan.index.append((key, title, excerpt))
    return plan
