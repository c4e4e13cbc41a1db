"""A SQLite database with N synthetic stories, built once and cached in bench/.cache/.

Stories are generated in memory (seeded random.Random, so the same (n, seed) always gives the
same stories) in the shape of the shipped seeds and bench/corpus.py: a 6-14 word title, a 40-70
word excerpt, a provider out of 12 outlets, 1-3 topics out of 24, a lead image on ~85%, 0-6
related items (each with outlet, date, quality and usually an image; ~30% of them point at
another stored story), published within four years. They are written straight through
`SqliteStore.apply_reload` in batches (no seed files, put_files=()), each batch sorted by id
(FTS5 starts a new segment whenever a rowid arrives lower than the one before). The opaque
`secured` token (1.5 KB in real seeds) is left out unless --secured is given: it is never read
on the hot paths, and it would double the file.

    python -m bench.million --n 1000000        # build (or reuse) and print the path

Benchmarks call `await million_store(n)` and get the path of the cached database. It is reused
when a file for the same (n, seed, secured, generator version) exists; a build writes to a
temporary name and renames it only once complete, so an interrupted build is never reused.

`await load_into_postgres(path, url)` copies such a database into an empty PostgreSQL database
(migrated by PostgresStore itself, so the schema is the store's): the rows are read from the
SQLite file and written with COPY on two connections, the secondary indexes and primary keys
are dropped first and built again after (a bulk index build is several times faster than
growing the index row by row), then VACUUM ANALYZE, as autovacuum would leave it.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import logging
import os
import random
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bench.common import CACHE
from bench.corpus import OUTLETS, TOPICS, WORDS
from bot.models import Image, Provider, Related, Story
from bot.store.base import ReloadChanges
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore, encode_story
from bot.urls import canonical_url, story_id

# Bump when the generated stories change, so that stale caches are not reused.
GENERATOR_VERSION = 1
BATCH = 20_000
EPOCH = datetime(2021, 1, 1, tzinfo=UTC)
SPAN_MINUTES = 4 * 365 * 24 * 60


def cache_path(n: int, seed: int = 1, secured: bool = False) -> Path:
    tag = "-secured" if secured else ""
    return CACHE / f"million-n{n}-s{seed}{tag}-v{GENERATOR_VERSION}.db"


def _words(rng: random.Random, low: int, high: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(low, high))).capitalize()


def _image(rng: random.Random, domain: str, index: int) -> Image:
    width = rng.choice((600, 800, 1000, 1024, 1200, 1280))
    return Image(
        f"https://{domain}/img/{index}/{rng.getrandbits(40):x}.jpg",
        width,
        width * rng.choice((9, 10, 12)) // 16,
    )


class StoryMaker:
    """Deterministic synthetic stories, one after another."""

    def __init__(self, seed: int, secured: bool = False) -> None:
        self.rng = random.Random(seed)
        self.secured = secured
        self.index = 0
        # URLs of recent stories, so that some related items are stored stories themselves.
        self.recent: list[tuple[str, str]] = []

    def story(self) -> Story:
        rng = self.rng
        index = self.index
        self.index += 1
        outlet, domain = rng.choice(OUTLETS)
        published = EPOCH + timedelta(minutes=rng.randrange(SPAN_MINUTES))
        raw_url = f"https://www.{domain}/article/{index}-{rng.getrandbits(48):x}/"
        url = canonical_url(raw_url)
        title = _words(rng, 6, 14)
        related = []
        for position in range(rng.randint(0, 6)):
            if self.recent and rng.random() < 0.3:
                other_url, other_title = rng.choice(self.recent)
                other_outlet, other_domain = rng.choice(OUTLETS)
            else:
                other_outlet, other_domain = rng.choice(OUTLETS)
                other_url = canonical_url(
                    f"https://{other_domain}/news/{index}-{position}-{rng.getrandbits(32):x}"
                )
                other_title = _words(rng, 6, 14)
            related.append(
                Related(
                    title=other_title,
                    url=other_url,
                    story_id=story_id(other_url),
                    excerpt=_words(rng, 10, 22) + ".",
                    published_at=published - timedelta(minutes=rng.randrange(3 * 24 * 60)),
                    provider=Provider(other_outlet, other_domain),
                    quality=rng.randint(10, 180),
                    image=_image(rng, other_domain, index) if rng.random() < 0.85 else None,
                )
            )
        images = (_image(rng, domain, index),) if rng.random() < 0.85 else ()
        heat = rng.choice((-1, -1, rng.randint(1, 100)))
        story = Story(
            id=story_id(url),
            url=url,
            title=title,
            excerpt=_words(rng, 40, 70) + ".",
            published_at=published,
            provider=Provider(outlet, domain),
            topics=tuple(rng.sample(TOPICS, rng.randint(1, 3))),
            images=images,
            related=tuple(related),
            quality=rng.randint(10, 180),
            heat=None if heat == -1 else heat,
            category="news",
            kind="article",
            published=False,
            original_url=raw_url,
            amp_url=f"{raw_url}amp/",
            cdn_amp_url=(
                f"https://{domain.replace('.', '-')}.cdn.ampproject.org/c/s/{raw_url[8:]}amp/"
            ),
            secured=(
                base64.b64encode(rng.randbytes(rng.randint(1500, 1650))).decode()
                if self.secured
                else ""
            ),
        )
        if len(self.recent) < 2000:
            self.recent.append((url, title))
        else:
            self.recent[rng.randrange(2000)] = (url, title)
        return story


async def build(
    n: int,
    path: Path,
    *,
    seed: int = 1,
    secured: bool = False,
    batch: int = BATCH,
    quiet: bool = False,
) -> None:
    """Write `n` stories into a new database at `path` (replaced if it exists)."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = SqliteStore(path)
    await store.open()
    maker = StoryMaker(seed, secured)
    started = time.perf_counter()
    generation = (await store.seed_index()).generation
    made = 0

    def generate(size: int) -> list[Story]:
        stories = [maker.story() for _ in range(size)]
        stories.sort(key=lambda story: story.id)
        return stories

    # Generating is pure Python, in a thread: the next batch is made while SQLite (which
    # releases the GIL) writes the current one.
    pending = asyncio.ensure_future(asyncio.to_thread(generate, min(batch, n)))
    try:
        while made < n:
            size = min(batch, n - made)
            stories = await pending
            following = min(batch, n - made - size)
            if following:
                pending = asyncio.ensure_future(asyncio.to_thread(generate, following))
            await store.apply_reload(
                ReloadChanges(
                    expected_generation=generation,
                    reloaded_at=datetime.now(UTC),
                    upsert=[
                        (encode_story(story), f"synthetic/{story.id:016x}.txt") for story in stories
                    ],
                    folder="",
                )
            )
            generation += 1
            made += size
            if not quiet:
                elapsed = time.perf_counter() - started
                print(
                    f"  {made:>9,} / {n:,} stories  {elapsed:7.1f} s  ({made / elapsed:,.0f}/s)",
                    flush=True,
                )
        stored = await store.story_count()
    finally:
        await store.close()
    # Leave a single file behind: checkpoint the WAL into the database.
    connection = sqlite3.connect(path)
    try:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.execute("ANALYZE")
    finally:
        connection.close()
    if not quiet:
        print(
            f"built {path} with {stored:,} stories (duplicate ids collapse) in "
            f"{time.perf_counter() - started:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB"
        )


async def million_store(
    n: int, path: Path | None = None, *, seed: int = 1, secured: bool = False, quiet: bool = False
) -> Path:
    """The path of a database holding `n` synthetic stories, built unless already cached.

    With `path`, the cached database is copied there (benchmarks that write get their own copy);
    without, the cached file itself is returned (treat it as read-only).
    """
    cached = cache_path(n, seed, secured)
    if not cached.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        partial = cached.with_name(cached.name + f".partial-{os.getpid()}")
        if not quiet:
            print(f"building {cached.name}: {n:,} stories")
        await build(n, partial, seed=seed, secured=secured, quiet=quiet)
        for suffix in ("-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
        partial.replace(cached)
    elif not quiet:
        print(f"reusing {cached}")
    if path is None:
        return cached
    path.parent.mkdir(parents=True, exist_ok=True)
    await asyncio.to_thread(shutil.copyfile, cached, path)
    return path


# --- copying a build into PostgreSQL --------------------------------------------------------------

# Rows per COPY: big enough that a COPY's round trip is nothing, small enough to keep memory low.
COPY_CHUNK = 50_000
# The tables copied row for row, with the columns read from SQLite (the same names on both).
COPIED_TABLES = {
    "stories": (
        "id", "url", "title", "excerpt", "published_at", "provider_name", "provider_domain",
        "quality", "heat", "extra", "source_path",
    ),
    "story_topics": ("topic_id", "published_at", "story_id"),
    "story_links": ("story_id", "linked_id"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Spread:
    """A word added to the title of every `every`th story copied (load_into_postgres)."""

    word: str
    every: int


_CONSTRAINTS = (
    "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
    " FROM pg_constraint AS c WHERE c.contype = 'p' AND c.conrelid::regclass::text = ANY($1)"
)
_INDEXES = (
    "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY($1)"
    " AND indexname NOT IN (SELECT conname FROM pg_constraint)"
)


def _read_only(path: Path) -> sqlite3.Connection:
    # immutable: the cached build is shared, and nothing may write to it, not even a WAL.
    return sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)


def _sqlite_meta(path: Path) -> tuple[dict[str, str], list[tuple[int, str, str, int]]]:
    connection = _read_only(path)
    try:
        meta = dict(connection.execute("SELECT key, value FROM meta"))
        topics = connection.execute("SELECT id, key, name, story_count FROM topics").fetchall()
        return meta, topics
    finally:
        connection.close()


async def _copy_table(
    connections: list[asyncpg.Connection],
    path: Path,
    table: str,
    columns: tuple[str, ...],
    spread: Spread | None = None,
) -> None:
    """COPY one table, chunk by chunk, the chunks shared out over `connections` (one PostgreSQL
    backend each, so that computing the stories' search column uses both cores); with
    `spread`, its word added to the title of every `every`th row (stories)."""
    source = _read_only(path)
    cursor = source.execute(f"SELECT {', '.join(columns)} FROM {table}")
    reading = asyncio.Lock()
    copied = 0

    async def worker(connection: asyncpg.Connection) -> None:
        nonlocal copied
        while True:
            # Read in a thread, one chunk at a time: memory holds a chunk or two, not a table.
            async with reading:
                rows = await asyncio.to_thread(cursor.fetchmany, COPY_CHUNK)
                if spread is not None:
                    rows = _with_spread_word(rows, columns, spread, copied)
                copied += len(rows)
            if not rows:
                return
            await connection.copy_records_to_table(table, records=rows, columns=columns)

    try:
        await asyncio.gather(*(worker(connection) for connection in connections))
    finally:
        source.close()


async def load_into_postgres(
    path: Path, url: str, *, quiet: bool = False, spread_word: Spread | None = None
) -> float:
    """Copy the SQLite build at `path` into the empty database at `url`; returns the seconds
    it took (migrating, copying, building the indexes, VACUUM ANALYZE).
    With `spread_word`, its word is added to the title of every `every`th story copied, so
    that its stories lie spread over the whole table, as a word's stories do after years of
    reloads."""
    started = time.perf_counter()
    store = PostgresStore(url)
    await store.open()  # migrates: the schema is exactly the store's
    await store.close()
    connections = [await asyncpg.connect(url) for _ in range(2)]
    first = connections[0]
    try:
        tables = list(COPIED_TABLES)
        keys = await first.fetch(_CONSTRAINTS, tables)
        indexes = await first.fetch(_INDEXES, tables)
        for name, _ in indexes:
            await first.execute(f"DROP INDEX {name}")
        for table, name, _ in keys:
            await first.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        meta, topics = await asyncio.to_thread(_sqlite_meta, path)
        await first.executemany(
            "INSERT INTO topics (id, key, name, story_count) OVERRIDING SYSTEM VALUE"
            " VALUES ($1, $2, $3, $4)",
            topics,
        )
        await first.execute(
            "SELECT setval(pg_get_serial_sequence('topics', 'id'), max(id)) FROM topics"
        )
        await first.execute(
            "UPDATE meta SET seed_generation = $1, reloaded_at = $2, seed_folder = $3,"
            " story_count = $4",
            int(meta["seed_generation"]),
            datetime.fromisoformat(meta["reloaded_at"]) if meta.get("reloaded_at") else None,
            meta.get("seed_folder", ""),
            int(meta["story_count"]),
        )
        for table, columns in COPIED_TABLES.items():
            copy_started = time.perf_counter()
            spread = spread_word if table == "stories" else None
            await _copy_table(connections, path, table, columns, spread)
            if not quiet:
                print(f"  copied {table} in {time.perf_counter() - copy_started:.1f} s", flush=True)
        index_started = time.perf_counter()
        statements = [f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
                      for table, name, definition in keys]  # fmt: skip
        statements += [definition for _, definition in indexes]
        # The GIN index is the long one: it gets a connection to itself.
        statements.sort(key=lambda statement: "gin" not in statement)

        async def build_indexes(connection: asyncpg.Connection) -> None:
            await connection.execute("SET maintenance_work_mem = '1GB'")
            while statements:
                await connection.execute(statements.pop(0))

        await asyncio.gather(*(build_indexes(connection) for connection in connections))
        if not quiet:
            print(f"  built indexes in {time.perf_counter() - index_started:.1f} s", flush=True)
        await first.execute("VACUUM ANALYZE")
    finally:
        for connection in connections:
            await connection.close()
    seconds = time.perf_counter() - started
    if not quiet:
        print(f"loaded {path.name} into PostgreSQL in {seconds:.1f} s", flush=True)
    return seconds


def _with_spread_word(
    rows: list[tuple[Any, ...]], columns: tuple[str, ...], spread: Spread, first: int
) -> list[tuple[Any, ...]]:
    """`rows` (the `first`th row copied onwards) with the spread word at the end of the title of
    every `spread.every`th."""
    title = columns.index("title")
    changed = []
    for number, row in enumerate(rows, start=first):
        if number % spread.every == 0:
            row = (*row[:title], f"{row[title]} {spread.word}", *row[title + 1 :])
        changed.append(row)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--secured", action="store_true", help="include 1.5 KB secured tokens")
    parser.add_argument("--rebuild", action="store_true", help="ignore an existing cache file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.rebuild:
        cache_path(args.n, args.seed, args.secured).unlink(missing_ok=True)
    print(asyncio.run(million_store(args.n, seed=args.seed, secured=args.secured)))


if __name__ == "__main__":
    main()
