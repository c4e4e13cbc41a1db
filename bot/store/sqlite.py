"""The embedded SQLite store: the default implementation of bot.store.base.Store.

All SQL of newsbot lives in this module and in the migrations next to it. The schema
(migrations/0001_initial.sql) is built so that every read the bot makes walks an index in the
order it returns rows, without sorting, at a million stories; this module keeps the data it
denormalises for that (topic rows, links, the full-text index, counts) in step on every write.

Two connections: reads go through a read-only one, so that while a reload is being applied
they keep seeing the last committed state (WAL) instead of waiting for it or, worse, seeing
half of it; the writer serialises reloads, seed index snapshots and the digest ledger's short
transactions behind a lock.

One running bot per database: acquire_instance_lock() holds an OS lock on a sibling
"<database>.lock" file until close(), so that two bots never post the same digest.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import re
import sqlite3
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, get_args

import aiosqlite

try:
    import fcntl
except ImportError:  # Windows: everything but the instance lock works there.
    fcntl = None  # type: ignore[assignment]

from bot.models import (
    DigestRun,
    DigestSettings,
    DigestStatus,
    Image,
    Provider,
    Related,
    Story,
    TopicCount,
    topic_key,
)
from bot.store.base import (
    EncodedStory,
    FileStatus,
    InstanceLocked,
    NoDatabase,
    ReloadChanges,
    SeedFileRecord,
    SeedIndex,
    SeedStatus,
    StaleReload,
    StoreError,
)

log = logging.getLogger(__name__)

_MIGRATIONS_PACKAGE = "bot.store.migrations"
_MIGRATION_FILE = re.compile(r"(\d{4})_\w+\.sql")

# Per connection, in KiB (negative cache_size means KiB): the writer and the reader at 16 MB
# and the searcher at 8 MB stay within the ~40 MB the bot can spare for SQLite out of its
# 150 MB budget at a million stories. No mmap: mapped pages count towards RSS and would eat
# that budget as the file grows.
_CACHE_KIB = 16 * 1024
# The search connection mostly streams through the full-text index: a small cache does.
_SEARCH_CACHE_KIB = 8 * 1024
# After a large reload has been checkpointed, give the disk back instead of keeping a WAL file
# as big as the largest reload ever was.
_WAL_SIZE_LIMIT = 64 * 1024 * 1024

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    f"PRAGMA cache_size = -{_CACHE_KIB}",
    f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}",
)

# Compact JSON for `extra` and ranks; one encoder, since json.dumps with options builds a new
# one per call, which shows at 20,000 stories.
_to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# Word tokens of a search; everything else (quotes, operators, parentheses) is dropped, so no
# user text ever reaches FTS5 query syntax.
_WORD = re.compile(r"\w+")

# The columns _story_from_row decodes, in its order.
_STORY_COLUMNS = (
    "s.id, s.url, s.title, s.excerpt, s.published_at, s.provider_name, s.provider_domain, "
    "s.quality, s.heat, s.extra"
)

_LATEST = (
    "SELECT " + _STORY_COLUMNS + " FROM stories AS s"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT ? OFFSET ?"
)
# CROSS JOIN pins story_topics as the outer loop: its primary key range for one topic is
# already in (published_at, id) order, so the LIMIT stops the scan early and nothing is sorted.
_LATEST_ON_TOPIC = (
    "SELECT " + _STORY_COLUMNS + " FROM story_topics AS st"
    " CROSS JOIN stories AS s ON s.id = st.story_id"
    " WHERE st.topic_id = (SELECT id FROM topics WHERE key = ?)"
    " ORDER BY st.published_at DESC, st.story_id DESC LIMIT ? OFFSET ?"
)
# Walks the stories newest first and keeps those among the matches, rather than looking up
# every match and sorting them: FTS5 yields matches in rowid (hash) order, and a common word
# matches most stories. Measured at a million stories: 0.6 s instead of 5.5 s for a query that
# matches 83% of them, 0.1 s instead of 1 ms for one that matches almost nothing.
_LATEST_MATCHING = (
    "SELECT " + _STORY_COLUMNS + " FROM stories AS s INDEXED BY stories_by_published"
    " WHERE s.id IN (SELECT rowid FROM stories_fts WHERE stories_fts MATCH ?)"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT ? OFFSET ?"
)
# Walks the topic newest first and keeps the stories that match, as _LATEST_MATCHING does.
_LATEST_ON_TOPIC_MATCHING = (
    "SELECT " + _STORY_COLUMNS + " FROM story_topics AS st"
    " CROSS JOIN stories AS s ON s.id = st.story_id"
    " WHERE st.topic_id = (SELECT id FROM topics WHERE key = ?)"
    " AND st.story_id IN (SELECT rowid FROM stories_fts WHERE stories_fts MATCH ?)"
    " ORDER BY st.published_at DESC, st.story_id DESC LIMIT ? OFFSET ?"
)
_STORY = "SELECT " + _STORY_COLUMNS + " FROM stories AS s WHERE s.id = ?"
_STORY_COUNT = "SELECT value FROM meta WHERE key = 'story_count'"
_TOPICS = (
    "SELECT name, story_count FROM topics WHERE story_count > 0"
    " ORDER BY story_count DESC, name COLLATE NOCASE, id"
)
_TOPIC = "SELECT name, story_count FROM topics WHERE key = ? AND story_count > 0"
# Autocomplete: names containing what was typed, those starting with it first. The topics
# table holds one row per topic, so filtering it is cheap even at a million stories.
_TOPICS_MATCHING = (
    "SELECT name, story_count FROM topics WHERE story_count > 0 AND key LIKE ? ESCAPE '\\'"
    " ORDER BY key NOT LIKE ? ESCAPE '\\', story_count DESC, name COLLATE NOCASE, id LIMIT ?"
)
_REJECTED_FILES = (
    "SELECT path, error, story_id FROM seed_files WHERE status = 'rejected' ORDER BY path"
)
_GET_STATE = "SELECT value FROM state WHERE key = ?"
_SET_STATE = (
    "INSERT INTO state (key, value) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)
# The first half checks that the linked story is stored; in the second the linking side always
# is (its links are deleted with it).
_LINKED = (
    "SELECT l.story_id, l.linked_id FROM story_links AS l"
    " WHERE l.story_id IN (SELECT value FROM json_each(?))"
    " AND l.linked_id <> l.story_id"
    " AND EXISTS (SELECT 1 FROM stories WHERE id = l.linked_id)"
    " UNION"
    " SELECT l.linked_id, l.story_id FROM story_links AS l"
    " WHERE l.linked_id IN (SELECT value FROM json_each(?))"
    " AND l.linked_id <> l.story_id"
)
_META = "SELECT key, value FROM meta"
_SEED_FILES = "SELECT path, size, mtime_ns, digest, status, story_id, rank, error FROM seed_files"

_GENERATION = "SELECT value FROM meta WHERE key = 'seed_generation'"
# What the search index holds for the stored stories among the given ids. An external-content
# FTS5 index can only forget a row given the text it indexed. json_each keeps the order of
# the (sorted) ids, which FTS5 needs to stay fast (see _ReloadRows).
_INDEXED_TEXT = (
    "SELECT s.id, s.title, s.excerpt FROM json_each(?) AS j"
    " CROSS JOIN stories AS s ON s.id = j.value"
)
_UNINDEX_STORY = (
    "INSERT INTO stories_fts (stories_fts, rowid, title, excerpt) VALUES ('delete', ?, ?, ?)"
)
_INDEX_STORY = "INSERT INTO stories_fts (rowid, title, excerpt) VALUES (?, ?, ?)"
# Topic rows of the stories about to go, per topic. The grouping only sees these stories'
# rows (found through story_topics_by_story), never the whole table.
_DELETED_TOPIC_ROWS = (
    "SELECT st.topic_id, count(*) FROM json_each(?) AS j"
    " CROSS JOIN story_topics AS st ON st.story_id = j.value GROUP BY st.topic_id"
)
_DELETE_STORY_TOPICS = "DELETE FROM story_topics WHERE story_id IN (SELECT value FROM json_each(?))"
_DELETE_LINKS = "DELETE FROM story_links WHERE story_id IN (SELECT value FROM json_each(?))"
_DELETE_STORIES = "DELETE FROM stories WHERE id IN (SELECT value FROM json_each(?))"
_TOPICS_BY_KEY = (
    "SELECT key, id, name, story_count FROM topics WHERE key IN (SELECT value FROM json_each(?))"
)
_TOPIC_IDS = "SELECT key, id FROM topics WHERE key IN (SELECT value FROM json_each(?))"
_PUT_TOPIC = (
    "INSERT INTO topics (key, name) VALUES (?, ?)"
    " ON CONFLICT (key) DO UPDATE SET name = excluded.name"
)
_ADD_TO_TOPIC = "UPDATE topics SET story_count = story_count + ? WHERE id = ?"
_ADD_TO_STORY_COUNT = "UPDATE meta SET value = value + ? WHERE key = 'story_count'"
_INSERT_STORY = (
    "INSERT INTO stories (id, url, title, excerpt, published_at, provider_name,"
    " provider_domain, quality, heat, extra, source_path)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_STORY_TOPIC = "INSERT INTO story_topics (topic_id, published_at, story_id) VALUES (?, ?, ?)"
# OR IGNORE: two related items of one story may point at the same story.
_INSERT_LINK = "INSERT OR IGNORE INTO story_links (story_id, linked_id) VALUES (?, ?)"
_PUT_FILE = (
    "INSERT INTO seed_files (path, size, mtime_ns, digest, status, story_id, rank, error)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns,"
    " digest = excluded.digest, status = excluded.status, story_id = excluded.story_id,"
    " rank = excluded.rank, error = excluded.error"
)
_DELETE_FILE = "DELETE FROM seed_files WHERE path = ?"
_SEED_FILE_CHUNK = 20_000
_FILE_STATUSES: dict[str, FileStatus] = {status: status for status in get_args(FileStatus)}
_SET_META = "UPDATE meta SET value = ? WHERE key = ?"

# --- daily digests ---------------------------------------------------------------------------

_DIGEST_SETTINGS_COLUMNS = (
    "guild_id, channel_id, local_time, timezone, topics, count, enabled, disabled_reason,"
    " effective_from, max_age"
)
_DIGEST_SETTINGS = "SELECT " + _DIGEST_SETTINGS_COLUMNS + " FROM digest_settings WHERE guild_id = ?"
_ENABLED_DIGEST_SETTINGS = (
    "SELECT " + _DIGEST_SETTINGS_COLUMNS + " FROM digest_settings WHERE enabled ORDER BY guild_id"
)
_PUT_DIGEST_SETTINGS = (
    "INSERT INTO digest_settings (" + _DIGEST_SETTINGS_COLUMNS + ")"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id) DO UPDATE SET channel_id = excluded.channel_id,"
    " local_time = excluded.local_time, timezone = excluded.timezone, topics = excluded.topics,"
    " count = excluded.count, enabled = excluded.enabled,"
    " disabled_reason = excluded.disabled_reason, effective_from = excluded.effective_from,"
    " max_age = excluded.max_age"
)
_DISABLE_DIGEST = "UPDATE digest_settings SET enabled = 0, disabled_reason = ? WHERE guild_id = ?"

_DIGEST_RUN_COLUMNS = (
    "guild_id, local_date, channel_id, status, scheduled_for, claimed_at, plan, sent_messages,"
    " finished_at, detail, attempt"
)
# DO NOTHING rather than OR IGNORE: only the primary key conflict means "already claimed"; a
# CHECK failure (an unknown status) must still raise.
_CLAIM_DIGEST_RUN = (
    "INSERT INTO digest_runs (" + _DIGEST_RUN_COLUMNS + ")"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id, local_date) DO NOTHING"
)
# /digest now: the same insert, or the next try at a date whose row is final without a digest
# in the channel (failed, skipped, empty). The WHERE is evaluated on the stored row inside the
# statement, so of two racing claims exactly one finds it still final and takes it; a sent or
# claimed row is never taken over.
_RECLAIM_DIGEST_RUN = (
    "INSERT INTO digest_runs (" + _DIGEST_RUN_COLUMNS + ")"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (guild_id, local_date) DO UPDATE SET channel_id = excluded.channel_id,"
    " status = excluded.status, scheduled_for = excluded.scheduled_for,"
    " claimed_at = excluded.claimed_at, plan = excluded.plan, sent_messages = 0,"
    " finished_at = NULL, detail = '', attempt = digest_runs.attempt + 1"
    " WHERE digest_runs.status IN ('failed', 'skipped', 'empty')"
)
_DIGEST_RUN = (
    "SELECT " + _DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = ? AND local_date = ?"
)
# One server's rows from a date on: a range of the primary key.
_GUILD_DIGEST_RUNS_SINCE = (
    "SELECT " + _DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = ? AND local_date >= ?"
    " ORDER BY local_date"
)
_DIGEST_RUNS_SINCE = (
    "SELECT " + _DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE local_date >= ?"
    " ORDER BY local_date, guild_id"
)
# The primary key range of one server, walked backwards: one row read.
_LAST_DIGEST_RUN = (
    "SELECT " + _DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE guild_id = ?"
    " ORDER BY local_date DESC LIMIT 1"
)
# The literal 'claimed' is what lets SQLite use the partial index digest_runs_unfinished.
_UNFINISHED_DIGEST_RUNS = (
    "SELECT " + _DIGEST_RUN_COLUMNS + " FROM digest_runs WHERE status = 'claimed'"
    " ORDER BY local_date, guild_id"
)
_SET_SENT_MESSAGES = (
    "UPDATE digest_runs SET sent_messages = ? WHERE guild_id = ? AND local_date = ?"
)
# A story delivered again keeps its first delivery. DO NOTHING rather than OR IGNORE, which
# would silently skip invalid rows (a NULL id) too.
_INSERT_DELIVERY = (
    "INSERT INTO deliveries (channel_id, story_id, delivered_at) VALUES (?, ?, ?)"
    " ON CONFLICT (channel_id, story_id) DO NOTHING"
)
_FINISH_DIGEST_RUN = (
    "UPDATE digest_runs SET status = ?, detail = ?, finished_at = ?"
    " WHERE guild_id = ? AND local_date = ?"
)

# A story counts as delivered to a channel when it has a row in the deliveries primary key;
# each candidate costs one lookup there.
_NOT_DELIVERED = (
    " NOT EXISTS (SELECT 1 FROM deliveries AS d WHERE d.channel_id = ? AND d.story_id = {id})"
)
# Walks the stories newest first (the backwards scan of _LATEST), skipping delivered ones: the
# LIMIT stops it early and nothing is sorted. INDEXED BY keeps it that way whatever the
# planner thinks of the NOT EXISTS.
_UNDELIVERED = (
    "SELECT " + _STORY_COLUMNS + " FROM stories AS s INDEXED BY stories_by_published"
    " WHERE" + _NOT_DELIVERED.format(id="s.id") + " ORDER BY s.published_at DESC, s.id DESC LIMIT ?"
)
# One topic's newest undelivered stories: a backwards walk of its story_topics primary key
# range, as _LATEST_ON_TOPIC does, stopped by the LIMIT.
_UNDELIVERED_ON_TOPIC = (
    "SELECT * FROM (SELECT st.published_at, st.story_id FROM story_topics AS st"
    " WHERE st.topic_id = (SELECT id FROM topics WHERE key = ?) AND"
    + _NOT_DELIVERED.format(id="st.story_id")
    + " ORDER BY st.published_at DESC, st.story_id DESC LIMIT ?)"
)
# The newest of the topics' walks (_UNDELIVERED_ON_TOPIC, joined by UNION, which also drops a
# story found on two topics): at most limit rows per topic are sorted, never a whole table.
_UNDELIVERED_ON_TOPICS = (
    "SELECT " + _STORY_COLUMNS + " FROM ({walks}) AS u CROSS JOIN stories AS s ON s.id = u.story_id"
    " ORDER BY u.published_at DESC, u.story_id DESC LIMIT ?"
)
# Past this many topics, one walk per topic would make a huge compound query (SQLite allows
# 500 parts, and old builds 999 parameters): walk all stories newest first instead and keep
# those on one of the topics, found through story_topics_by_story. So many topics usually
# cover most stories, so that walk stops early too.
_MAX_TOPIC_WALKS = 100
_UNDELIVERED_ON_MANY_TOPICS = (
    "SELECT " + _STORY_COLUMNS + " FROM stories AS s INDEXED BY stories_by_published"
    " WHERE" + _NOT_DELIVERED.format(id="s.id") + " AND EXISTS (SELECT 1 FROM story_topics AS st"
    " WHERE st.story_id = s.id AND +st.topic_id IN"
    " (SELECT id FROM topics WHERE key IN (SELECT value FROM json_each(?))))"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT ?"
)
# json_each keeps the ids' order; missing ids are simply not joined.
_STORIES_BY_ID = (
    "SELECT " + _STORY_COLUMNS + " FROM json_each(?) AS j CROSS JOIN stories AS s ON s.id = j.value"
)

# The pid in a lock file: what a refused second newsbot tells the user.
_PID_BYTES = 32

# Story fields stored as plain strings in `extra`, left out when empty to keep rows small.
_EXTRA_TEXT_FIELDS = (
    "category",
    "kind",
    "original_url",
    "amp_url",
    "cdn_amp_url",
    "body",
    "secured",
)


def encode_story(story: Story) -> EncodedStory:
    """A story as apply_reload writes it: its stories row (without the source path, which the
    plan decides), its topics as (key, spaced name), and the ids of its related coverage."""
    published_at = _unix(story.published_at)
    provider = story.provider
    row = (
        story.id,
        story.url,
        story.title,
        story.excerpt,
        published_at,
        provider.name if provider else None,
        provider.domain if provider else None,
        story.quality,
        story.heat,
        _encode_extra(story),
    )
    topics = tuple(
        (key, " ".join(name.split())) for name in story.topics if (key := topic_key(name))
    )
    linked = {related.story_id for related in story.related}
    linked.discard(story.id)
    return EncodedStory(story.id, story.title, (row, topics, tuple(linked)))


class SqliteStore:
    """Stories, topics, seed bookkeeping and digests in one SQLite file (see the module
    docstring)."""

    encode_story = staticmethod(encode_story)

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self._path = Path(path)
        # False: open() fails with NoDatabase rather than creating the file or its folder.
        self._create = create
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        # Word searches get a reader of their own: at a million stories one can take a few
        # hundred milliseconds, and the quick reads (topic pages, autocomplete) must not queue
        # behind it on one connection.
        self._searcher: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        # The open lock file while this store holds the instance lock.
        self._lock_fd: int | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def lock_path(self) -> Path:
        """The file whose OS lock says which process runs a bot on this database."""
        return self._path.with_name(self._path.name + ".lock")

    async def open(self) -> None:
        if self._writer is not None:
            return
        connections: list[aiosqlite.Connection] = []
        try:
            migrations = await asyncio.to_thread(self._prepare)
            writer = await self._connect(connections)
            await _migrate(writer, migrations, self._path)
            reader = await self._connect(connections)
            await reader.execute("PRAGMA query_only = ON")
            searcher = await self._connect(connections)
            await searcher.execute("PRAGMA query_only = ON")
            await searcher.execute(f"PRAGMA cache_size = -{_SEARCH_CACHE_KIB}")
        except BaseException as error:
            for connection in connections:
                await _close_quietly(connection)
            if isinstance(error, StoreError):
                raise
            if isinstance(error, sqlite3.Error | OSError):
                raise StoreError(
                    f"cannot open database {self._path}: {_one_line(error)}"
                ) from error
            raise
        self._writer, self._reader, self._searcher = writer, reader, searcher
        log.debug("opened %s", self._path)

    async def close(self) -> None:
        # Under the write lock, so that a reload being applied finishes rather than being cut
        # off mid-transaction.
        async with self._write_lock:
            writer, reader, searcher = self._writer, self._reader, self._searcher
            self._writer = self._reader = self._searcher = None
            for connection in (searcher, reader, writer):
                if connection is not None:
                    await _close_quietly(connection)
            # Last, so that no other bot starts writing before this one has stopped.
            lock_fd, self._lock_fd = self._lock_fd, None
            if lock_fd is not None:
                _unlock_quietly(lock_fd)

    async def latest(
        self,
        limit: int,
        *,
        offset: int = 0,
        topic: str | None = None,
        query: str | None = None,
    ) -> list[Story]:
        statement = _latest_statement(limit, offset, topic, query)
        if statement is None:
            return []
        rows = await self._read(*statement, searching=query is not None)
        return [_story_from_row(row) for row in rows]

    async def explain_latest(
        self, *, topic: str | None = None, query: str | None = None
    ) -> list[str]:
        """The query plan of `latest` with these filters, one line per step (tests, diagnosis)."""
        statement = _latest_statement(10, 0, topic, query)
        if statement is None:
            return []
        sql, params = statement
        rows = await self._read("EXPLAIN QUERY PLAN " + sql, params)
        return [row[3] for row in rows]

    async def story(self, story_id: int) -> Story | None:
        rows = await self._read(_STORY, (story_id,))
        return _story_from_row(rows[0]) if rows else None

    async def story_count(self) -> int:
        rows = await self._read(_STORY_COUNT, ())
        return int(rows[0][0])

    async def topics(self, *, matching: str = "", limit: int | None = None) -> list[TopicCount]:
        if matching:
            key = _escape_like(topic_key(matching))
            params: tuple[Any, ...] = (f"%{key}%", f"{key}%", -1 if limit is None else limit)
            rows = await self._read(_TOPICS_MATCHING, params)
        else:
            rows = await self._read(_TOPICS + " LIMIT ?", (-1 if limit is None else limit,))
        return [TopicCount(name, count) for name, count in rows]

    async def topic(self, name: str) -> TopicCount | None:
        rows = await self._read(_TOPIC, (topic_key(name),))
        return TopicCount(rows[0][0], rows[0][1]) if rows else None

    async def linked_stories(self, story_ids: Sequence[int]) -> dict[int, set[int]]:
        if not story_ids:
            return {}
        ids = _to_json(sorted(set(story_ids)))
        linked: dict[int, set[int]] = {}
        for story_id, other in await self._read(_LINKED, (ids, ids)):
            linked.setdefault(story_id, set()).add(other)
        return linked

    async def seed_index(self) -> SeedIndex:
        writer = self._require(self._writer)
        files: dict[str, SeedFileRecord] = {}
        async with self._write_lock:
            try:
                # One read transaction, so the generation belongs to exactly these records.
                await writer.execute("BEGIN")
                try:
                    meta = dict(await writer.execute_fetchall(_META))
                    # In chunks, each turned into records off the event loop: at a million
                    # seed files, all raw rows at once would double the peak memory, and
                    # building the records takes seconds.
                    async with writer.execute(_SEED_FILES) as cursor:
                        while rows := await cursor.fetchmany(_SEED_FILE_CHUNK):
                            await asyncio.to_thread(_add_seed_files, files, rows)
                finally:
                    await writer.execute("COMMIT")
            except sqlite3.Error as error:
                raise StoreError(f"database {self._path}: {_one_line(error)}") from error
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

    async def get_state(self, key: str) -> str | None:
        rows = await self._read(_GET_STATE, (key,))
        return rows[0][0] if rows else None

    async def set_state(self, key: str, value: str) -> None:
        await self._write(_SET_STATE, (key, value))

    # --- one bot per database ------------------------------------------------------------------

    async def acquire_instance_lock(self) -> None:
        # Under the write lock, so that it cannot interleave with close(), which releases it.
        async with self._write_lock:
            if self._lock_fd is None:
                self._lock_fd = await asyncio.to_thread(self._lock_instance)

    def _lock_instance(self) -> int:
        """Blocking part of acquire_instance_lock(): the locked lock file's descriptor.

        flock rather than a pid file alone: the OS drops the lock when its holder exits,
        however it exits, so a crash never leaves the database claimed. The lock belongs to
        this open of the file, so a second store in the same process is refused as well.
        """
        if fcntl is None:
            raise StoreError(f"cannot lock database {self._path}: no fcntl.flock on this system")
        path = self.lock_path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreError(f"cannot lock database {self._path}: {_one_line(error)}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # For humans only (and the message below): the lock is what counts. The file is
            # never deleted: another process may be about to lock this very file.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BlockingIOError as error:
            holder = _read_pid(fd)
            os.close(fd)
            pid = f" (pid {holder})" if holder is not None else ""
            raise InstanceLocked(
                f"another newsbot is already running on {self._path}{pid}; stop it first"
            ) from error
        except OSError as error:
            os.close(fd)
            raise StoreError(f"cannot lock database {self._path}: {_one_line(error)}") from error
        return fd

    # --- daily digests ---------------------------------------------------------------------------

    async def digest_settings(self, guild_id: int) -> DigestSettings | None:
        rows = await self._read(_DIGEST_SETTINGS, (guild_id,))
        return _digest_settings_from_row(rows[0]) if rows else None

    async def all_digest_settings(self) -> list[DigestSettings]:
        rows = await self._read(_ENABLED_DIGEST_SETTINGS, ())
        return [_digest_settings_from_row(row) for row in rows]

    async def save_digest_settings(self, settings: DigestSettings) -> None:
        await self._write(
            _PUT_DIGEST_SETTINGS,
            (
                settings.guild_id,
                settings.channel_id,
                f"{settings.local_time.hour:02d}:{settings.local_time.minute:02d}",
                settings.timezone,
                _to_json(list(settings.topics)),
                settings.count,
                settings.enabled,
                settings.disabled_reason,
                _unix(settings.effective_from),
                None if settings.max_age is None else int(settings.max_age.total_seconds()),
            ),
        )

    async def disable_digest(self, guild_id: int, reason: str | None) -> None:
        await self._write(_DISABLE_DIGEST, (reason, guild_id))

    async def digest_runs_since(self, local_date: date) -> dict[tuple[int, date], DigestRun]:
        rows = await self._read(_DIGEST_RUNS_SINCE, (local_date.isoformat(),))
        runs = (_digest_run_from_row(row) for row in rows)
        return {(run.guild_id, run.local_date): run for run in runs}

    async def last_digest_run(self, guild_id: int) -> DigestRun | None:
        rows = await self._read(_LAST_DIGEST_RUN, (guild_id,))
        return _digest_run_from_row(rows[0]) if rows else None

    async def unfinished_digest_runs(self) -> list[DigestRun]:
        rows = await self._read(_UNFINISHED_DIGEST_RUNS, ())
        return [_digest_run_from_row(row) for row in rows]

    async def claim_digest_run(self, run: DigestRun) -> bool:
        return await self._write(_CLAIM_DIGEST_RUN, _digest_run_row(run)) == 1

    async def reclaim_digest_run(self, run: DigestRun) -> DigestRun | None:
        if await self._write(_RECLAIM_DIGEST_RUN, _digest_run_row(run)) != 1:
            return None
        # The claim is ours now (no one else takes a claimed row): read back its attempt.
        rows = await self._read(_DIGEST_RUN, (run.guild_id, run.local_date.isoformat()))
        return _digest_run_from_row(rows[0])

    async def guild_digest_runs_since(
        self, guild_id: int, local_date: date
    ) -> dict[tuple[int, date], DigestRun]:
        rows = await self._read(_GUILD_DIGEST_RUNS_SINCE, (guild_id, local_date.isoformat()))
        runs = (_digest_run_from_row(row) for row in rows)
        return {(run.guild_id, run.local_date): run for run in runs}

    async def record_digest_message(
        self, guild_id: int, local_date: date, index: int, channel_id: int, story_ids: Sequence[int]
    ) -> None:
        writer = self._require(self._writer)
        delivered_at = _unix(datetime.now(UTC))
        deliveries = [(channel_id, story_id, delivered_at) for story_id in story_ids]
        async with self._write_lock:
            try:
                await writer.execute("BEGIN IMMEDIATE")
                try:
                    async with writer.execute(
                        _SET_SENT_MESSAGES, (index + 1, guild_id, local_date.isoformat())
                    ) as cursor:
                        found = cursor.rowcount == 1
                    if not found:
                        # A message of a run that was never claimed: recording its deliveries
                        # would hide stories from the channel with no ledger row to show why.
                        raise StoreError(
                            f"database {self._path}: no digest run for server {guild_id}"
                            f" on {local_date.isoformat()}"
                        )
                    await writer.executemany(_INSERT_DELIVERY, deliveries)
                    await writer.execute("COMMIT")
                except BaseException:
                    if writer.in_transaction:
                        await writer.execute("ROLLBACK")
                    raise
            except sqlite3.Error as error:
                raise StoreError(f"database {self._path}: {_one_line(error)}") from error

    async def finish_digest_run(
        self, guild_id: int, local_date: date, status: DigestStatus, detail: str = ""
    ) -> None:
        finished_at = _unix(datetime.now(UTC))
        params = (status, detail, finished_at, guild_id, local_date.isoformat())
        if await self._write(_FINISH_DIGEST_RUN, params) != 1:
            raise StoreError(
                f"database {self._path}: no digest run for server {guild_id}"
                f" on {local_date.isoformat()}"
            )

    async def record_digest_outcome(self, run: DigestRun) -> bool:
        return await self._write(_CLAIM_DIGEST_RUN, _digest_run_row(run)) == 1

    async def undelivered_stories(
        self, channel_id: int, topics: Sequence[str], limit: int
    ) -> list[Story]:
        statement = _undelivered_statement(channel_id, topics, limit)
        if statement is None:
            return []
        rows = await self._read(*statement)
        return [_story_from_row(row) for row in rows]

    async def explain_undelivered(self, channel_id: int, topics: Sequence[str] = ()) -> list[str]:
        """The query plan of `undelivered_stories`, one line per step (tests, diagnosis)."""
        statement = _undelivered_statement(channel_id, topics, 10)
        if statement is None:
            return []
        sql, params = statement
        rows = await self._read("EXPLAIN QUERY PLAN " + sql, params)
        return [row[3] for row in rows]

    async def stories_by_id(self, story_ids: Sequence[int]) -> dict[int, Story]:
        if not story_ids:
            return {}
        rows = await self._read(_STORIES_BY_ID, (_to_json(sorted(set(story_ids))),))
        stories = (_story_from_row(row) for row in rows)
        return {story.id: story for story in stories}

    async def apply_reload(self, changes: ReloadChanges) -> None:
        writer = self._require(self._writer)
        # Encoding 20,000 stories is about half a second of pure Python: done off the event
        # loop so that the Discord gateway heartbeat is not held up, and before taking the
        # write lock so that it is held for the SQL only.
        rows = await asyncio.to_thread(_ReloadRows.of, changes)
        async with self._write_lock:
            try:
                # Inside the try: another process's write transaction makes BEGIN itself fail.
                await writer.execute("BEGIN IMMEDIATE")
                await _apply(writer, changes, rows)
                await writer.execute("COMMIT")
            except BaseException as error:
                if writer.in_transaction:
                    try:
                        await writer.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.exception("rolling back a failed reload of %s failed", self._path)
                if isinstance(error, sqlite3.Error):
                    raise StoreError(
                        f"reload not applied to {self._path}: {_one_line(error)}"
                    ) from error
                raise
        log.info(
            "reload applied: generation %d, %d stories upserted, %d retired, "
            "%d seed file records written, %d deleted",
            changes.expected_generation + 1,
            len(rows.stories),
            len(changes.retire),
            len(rows.files),
            len(changes.delete_files),
        )

    async def _connect(self, opened: list[aiosqlite.Connection]) -> aiosqlite.Connection:
        # isolation_level=None: the store issues BEGIN/COMMIT itself, sqlite3 must not.
        if self._create:
            connection = await aiosqlite.connect(self._path, isolation_level=None)
        else:
            # mode=rw: SQLite itself refuses to create the file, even if it vanished meanwhile.
            uri = f"{self._path.absolute().as_uri()}?mode=rw"
            connection = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        opened.append(connection)
        for pragma in _PRAGMAS:
            rows = await connection.execute_fetchall(pragma)
            if pragma.startswith("PRAGMA journal_mode") and next(iter(rows))[0] != "wal":
                log.warning(
                    "%s: WAL is not available here; readers may wait for reloads", self._path
                )
        return connection

    def _prepare(self) -> list[tuple[int, str, str]]:
        """Blocking part of open(): make the folder (or check the file exists) and read the
        migrations."""
        if self._create:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        elif not self._path.is_file():
            raise NoDatabase(f"no database at {self._path}")
        return _load_migrations()

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one writing statement as its own transaction; returns the rows it changed."""
        writer = self._require(self._writer)
        async with self._write_lock:
            try:
                async with writer.execute(sql, params) as cursor:
                    return cursor.rowcount
            except sqlite3.Error as error:
                raise StoreError(f"database {self._path}: {_one_line(error)}") from error

    async def _read(self, sql: str, params: Sequence[Any], *, searching: bool = False) -> list[Any]:
        reader = self._require(self._searcher if searching else self._reader)
        try:
            return list(await reader.execute_fetchall(sql, params))
        except sqlite3.Error as error:
            raise StoreError(f"database {self._path}: {_one_line(error)}") from error

    def _require(self, connection: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if connection is None:
            raise StoreError(f"database {self._path} is not open")
        return connection


@dataclass(slots=True)
class _ReloadRows:
    """The parameter rows of one reload, computed before its transaction starts.

    Stories come in ascending id order throughout: FTS5 writes its in-memory buffer out as a
    new segment whenever a rowid arrives lower than the one before, and story ids are hashes,
    so 20,000 stories in seed order would make thousands of tiny segments.
    """

    # Retired and replaced stories, ascending.
    deleted_ids: list[int] = field(default_factory=list)
    # Rows of _INSERT_STORY.
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
    # Rows of _PUT_FILE, in path order so that the inserts append to the B-tree.
    files: list[tuple[Any, ...]] = field(default_factory=list)

    @classmethod
    def of(cls, changes: ReloadChanges) -> _ReloadRows:
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
        rows.files = [
            (
                record.path,
                record.size,
                record.mtime_ns,
                record.digest,
                record.status,
                record.story_id,
                _to_json(list(record.rank)),
                record.error,
            )
            for _, record in sorted(records.items())
        ]
        return rows

    def _add_topics(self, topics: tuple[tuple[str, str], ...]) -> set[str]:
        """Offer a story's topic names; returns its topic keys ("AI" and "ai" are one)."""
        keys: set[str] = set()
        for key, name in topics:
            self.topic_names[key] = _display_name(self.topic_names.get(key), name)
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


async def _apply(writer: aiosqlite.Connection, changes: ReloadChanges, rows: _ReloadRows) -> None:
    """The body of apply_reload's transaction."""
    generation = int(next(iter(await writer.execute_fetchall(_GENERATION)))[0])
    if generation != changes.expected_generation:
        raise StaleReload(
            f"seed index is at generation {generation}, "
            f"the reload was planned at {changes.expected_generation}"
        )
    # Counts are adjusted once per topic at the end rather than once per row.
    topic_deltas: Counter[int] = Counter()
    unchanged, removed = await _delete_stories(writer, rows, topic_deltas)
    await _insert_stories(writer, rows, unchanged, topic_deltas)
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


async def _delete_stories(
    writer: aiosqlite.Connection, rows: _ReloadRows, topic_deltas: Counter[int]
) -> tuple[set[int], int]:
    """Delete the retired and replaced stories with their topic rows, links and search
    entries, so that nothing of a replaced story's old version lingers.

    Returns the replaced stories whose search entries were kept because their title and
    excerpt do not change (indexing is the costliest part of a reload), and how many stored
    stories were deleted; subtracts the deleted topic rows from `topic_deltas`.
    """
    deleted = (_to_json(rows.deleted_ids),)
    old_texts = list(await writer.execute_fetchall(_INDEXED_TEXT, deleted))
    for topic_id, count in await writer.execute_fetchall(_DELETED_TOPIC_ROWS, deleted):
        topic_deltas[topic_id] -= count
    unchanged = {
        story_id
        for story_id, title, excerpt in old_texts
        if rows.texts.get(story_id) == (title, excerpt)
    }
    await writer.executemany(_UNINDEX_STORY, [row for row in old_texts if row[0] not in unchanged])
    await writer.execute(_DELETE_STORY_TOPICS, deleted)
    await writer.execute(_DELETE_LINKS, deleted)
    await writer.execute(_DELETE_STORIES, deleted)
    return unchanged, len(old_texts)


async def _insert_stories(
    writer: aiosqlite.Connection,
    rows: _ReloadRows,
    unchanged: set[int],
    topic_deltas: Counter[int],
) -> None:
    """Insert the upserted stories with their topics, topic rows, links and search entries;
    adds the topic rows to `topic_deltas`."""
    keys = (_to_json(list(rows.topic_names)),)
    stored_topics = await writer.execute_fetchall(_TOPICS_BY_KEY, keys)
    await writer.executemany(
        _PUT_TOPIC, _topic_names_to_write(rows.topic_names, stored_topics, topic_deltas)
    )
    topic_ids: dict[str, int] = dict(await writer.execute_fetchall(_TOPIC_IDS, keys))
    for key, count in rows.topic_counts.items():
        topic_deltas[topic_ids[key]] += count

    await writer.executemany(_INSERT_STORY, rows.stories)
    await writer.executemany(
        _INDEX_STORY,
        [
            (story_id, title, excerpt)
            for story_id, (title, excerpt) in rows.texts.items()
            if story_id not in unchanged
        ],
    )
    await writer.executemany(
        _INSERT_STORY_TOPIC,
        # In primary key order, so that the rows land next to each other in the index.
        sorted(
            (topic_ids[key], published_at, story_id)
            for key, published_at, story_id in rows.story_topics
        ),
    )
    await writer.executemany(_INSERT_LINK, rows.links)


def _add_seed_files(files: dict[str, SeedFileRecord], rows: Iterable[Sequence[Any]]) -> None:
    for path, size, mtime_ns, digest, status, story_id, rank, error in rows:
        files[path] = SeedFileRecord(
            path=path,
            size=size,
            mtime_ns=mtime_ns,
            digest=digest,
            # One shared string per status rather than one per record.
            status=_FILE_STATUSES[status],
            story_id=story_id,
            rank=_parse_rank(rank),
            error=error,
        )


def _parse_rank(text: str) -> tuple[int, ...]:
    """The rank tuple from its JSON text, which the store writes itself as a flat array of
    integers: splitting takes half the time of json.loads, which shows at a million files."""
    inner = text[1:-1]
    return tuple(map(int, inner.split(","))) if inner.strip() else ()


def _display_name(current: str | None, offered: str) -> str:
    """A topic keeps its first name, except that a capitalised one beats an all-lowercase one
    ("ai" then "AI" is "AI"): feeds that lower-case everything should not win over those that
    spell the name properly."""
    if current is None or (current == current.lower() and offered != offered.lower()):
        return offered
    return current


def _topic_names_to_write(
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
        chosen = name if count == 0 else _display_name(stored_name, name)
        if chosen != stored_name:
            rows.append((key, chosen))
    return rows


def _latest_statement(
    limit: int, offset: int, topic: str | None, query: str | None
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of one latest() call, or None when it cannot match anything."""
    if limit <= 0:
        return None
    offset = max(offset, 0)
    match = None
    if query is not None:
        match = _match_expression(query)
        if match is None:
            return None
    if topic is not None:
        key = topic_key(topic)
        if match is None:
            return _LATEST_ON_TOPIC, (key, limit, offset)
        return _LATEST_ON_TOPIC_MATCHING, (key, match, limit, offset)
    if match is not None:
        return _LATEST_MATCHING, (match, limit, offset)
    return _LATEST, (limit, offset)


def _undelivered_statement(
    channel_id: int, topics: Sequence[str], limit: int
) -> tuple[str, tuple[Any, ...]] | None:
    """The SQL and parameters of one undelivered_stories() call, or None when it cannot match
    anything. Topic names that are blank once spacing is ignored match no story."""
    if limit <= 0:
        return None
    if not topics:
        return _UNDELIVERED, (channel_id, limit)
    # dict.fromkeys: distinct keys in the order given, so that the SQL is stable.
    keys = [key for key in dict.fromkeys(map(topic_key, topics)) if key]
    if not keys:
        return None
    if len(keys) > _MAX_TOPIC_WALKS:
        return _UNDELIVERED_ON_MANY_TOPICS, (channel_id, _to_json(keys), limit)
    walks = " UNION ".join([_UNDELIVERED_ON_TOPIC] * len(keys))
    params = [value for key in keys for value in (key, channel_id, limit)]
    return _UNDELIVERED_ON_TOPICS.format(walks=walks), (*params, limit)


def _match_expression(query: str) -> str | None:
    """An FTS5 query requiring every word of `query` as a word prefix; None without words.

    Each word is a quoted string, so FTS5 operators typed by the user (AND, NEAR, *, ^) are
    plain words; a word cannot contain a double quote, so it cannot close its quotes.
    """
    words = _WORD.findall(query)
    if not words:
        return None
    return " AND ".join(f'"{word}"*' for word in words)


def _unix(moment: datetime) -> int:
    """Whole unix seconds (floored, like the second precision of the stored value), reading a
    naive datetime as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def _from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _encode_image(image: Image) -> list[Any]:
    return [image.url, image.width, image.height]


def _encode_related(related: Related) -> list[Any]:
    # Positional, in Related's field order: shorter to write and to read back than a dict, and
    # `extra` is never queried, so names in the JSON would serve no one.
    provider = related.provider
    image = related.image
    published_at = related.published_at
    return [
        related.title,
        related.url,
        related.story_id,
        related.excerpt,
        None if published_at is None else _unix(published_at),
        None if provider is None else [provider.name, provider.domain],
        related.quality,
        None if image is None else [image.url, image.width, image.height],
    ]


def _encode_extra(story: Story) -> str:
    extra: dict[str, Any] = {}
    if story.topics:
        extra["topics"] = list(story.topics)
    if story.images:
        extra["images"] = [_encode_image(image) for image in story.images]
    if story.related:
        extra["related"] = [_encode_related(related) for related in story.related]
    if story.published is not None:
        extra["published"] = story.published
    for name in _EXTRA_TEXT_FIELDS:
        value = getattr(story, name)
        if value:
            extra[name] = value
    return _to_json(extra)


def _decode_related(encoded: list[Any]) -> Related:
    title, url, story_id, excerpt, published_at, provider, quality, image = encoded
    return Related(
        title=title,
        url=url,
        story_id=story_id,
        excerpt=excerpt,
        published_at=None if published_at is None else _from_unix(published_at),
        provider=None if provider is None else Provider(*provider),
        quality=quality,
        image=None if image is None else Image(*image),
    )


def _story_from_row(row: Sequence[Any]) -> Story:
    (
        story_id,
        url,
        title,
        excerpt,
        published_at,
        provider_name,
        provider_domain,
        quality,
        heat,
        extra_text,
    ) = row
    extra = json.loads(extra_text)
    get = extra.get
    related = get("related")
    return Story(
        id=story_id,
        url=url,
        title=title,
        excerpt=excerpt,
        published_at=_from_unix(published_at),
        provider=None if provider_name is None else Provider(provider_name, provider_domain),
        topics=tuple(get("topics", ())),
        images=tuple(Image(*image) for image in get("images", ())),
        related=tuple(_decode_related(item) for item in related) if related else (),
        quality=quality,
        heat=heat,
        category=get("category", ""),
        kind=get("kind", ""),
        published=get("published"),
        original_url=get("original_url", ""),
        amp_url=get("amp_url", ""),
        cdn_amp_url=get("cdn_amp_url", ""),
        body=get("body", ""),
        secured=get("secured", ""),
    )


def _digest_settings_from_row(row: Sequence[Any]) -> DigestSettings:
    (
        guild_id,
        channel_id,
        local_time,
        timezone,
        topics,
        count,
        enabled,
        disabled_reason,
        effective_from,
        max_age,
    ) = row
    return DigestSettings(
        guild_id=guild_id,
        channel_id=channel_id,
        local_time=time.fromisoformat(local_time),
        timezone=timezone,
        topics=tuple(json.loads(topics)),
        count=count,
        enabled=bool(enabled),
        disabled_reason=disabled_reason,
        effective_from=_from_unix(effective_from),
        max_age=None if max_age is None else timedelta(seconds=max_age),
    )


def _digest_run_row(run: DigestRun) -> tuple[Any, ...]:
    """The parameters of _CLAIM_DIGEST_RUN."""
    return (
        run.guild_id,
        run.local_date.isoformat(),
        run.channel_id,
        run.status,
        _unix(run.scheduled_for),
        _unix(run.claimed_at),
        _to_json([list(message) for message in run.plan]),
        run.sent_messages,
        None if run.finished_at is None else _unix(run.finished_at),
        run.detail,
        run.attempt,
    )


def _digest_run_from_row(row: Sequence[Any]) -> DigestRun:
    (
        guild_id,
        local_date,
        channel_id,
        status,
        scheduled_for,
        claimed_at,
        plan,
        sent_messages,
        finished_at,
        detail,
        attempt,
    ) = row
    return DigestRun(
        guild_id=guild_id,
        local_date=date.fromisoformat(local_date),
        channel_id=channel_id,
        status=status,
        scheduled_for=_from_unix(scheduled_for),
        claimed_at=_from_unix(claimed_at),
        plan=tuple(tuple(message) for message in json.loads(plan)),
        sent_messages=sent_messages,
        finished_at=None if finished_at is None else _from_unix(finished_at),
        detail=detail,
        attempt=attempt,
    )


def _read_pid(fd: int) -> int | None:
    """The pid a lock file holds, if it reads as one (its holder may be writing it)."""
    try:
        text = os.pread(fd, _PID_BYTES, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _unlock_quietly(fd: int) -> None:
    # Closing the only descriptor of this open of the file releases the lock.
    try:
        os.close(fd)
    except OSError:
        log.warning("releasing the instance lock failed", exc_info=True)


def _load_migrations() -> list[tuple[int, str, str]]:
    """(number, file name, SQL) of every migration shipped with the package, in order."""
    found: list[tuple[int, str, str]] = []
    for entry in resources.files(_MIGRATIONS_PACKAGE).iterdir():
        matched = _MIGRATION_FILE.fullmatch(entry.name)
        if matched:
            found.append((int(matched[1]), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(found) + 1)):
        # A packaging mistake, not a user problem; refusing beats a half-built schema.
        raise StoreError(f"migrations of newsbot are not numbered 0001 onwards: {numbers}")
    return found


def _statements(script: str) -> list[str]:
    """Split a migration into statements (trigger bodies included) so that each runs inside
    the migration's own transaction; executescript would commit that transaction first."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    if pending.strip():
        # Only comments can trail the last statement; executing them is harmless.
        statements.append(pending)
    return statements


async def _migrate(
    connection: aiosqlite.Connection, migrations: list[tuple[int, str, str]], path: Path
) -> None:
    newest = migrations[-1][0] if migrations else 0
    version = await _user_version(connection)
    if version > newest:
        raise StoreError(
            f"database {path} has schema version {version}; this newsbot knows up to {newest}"
        )
    for number, name, sql in migrations:
        if number <= version:
            continue
        await connection.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated since the version was read.
            if await _user_version(connection) >= number:
                await connection.execute("COMMIT")
                continue
            for statement in _statements(sql):
                await connection.execute(statement)
            # PRAGMA takes no parameters; `number` is an int parsed from our own file name.
            await connection.execute(f"PRAGMA user_version = {number:d}")
            await connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                await connection.execute("ROLLBACK")
            raise
        log.info("%s: applied migration %s", path, name)


async def _user_version(connection: aiosqlite.Connection) -> int:
    rows = await connection.execute_fetchall("PRAGMA user_version")
    return int(next(iter(rows))[0])


async def _close_quietly(connection: aiosqlite.Connection) -> None:
    try:
        await connection.close()
    except (sqlite3.Error, ValueError):
        log.warning("closing a database connection failed", exc_info=True)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    if getattr(error, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
        # Another connection held a write transaction for longer than busy_timeout.
        text += " (another program, such as a running newsbot, is writing to it; try again)"
    return text
