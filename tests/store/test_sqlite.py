"""What only the SQLite backend does: its file, schema migrations, pragmas, query plans and
transactions seen through sqlite3 itself (the instance lease and the watch on the database file
are in test_sqlite_lease.py)."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

import bot.store.sqlite.digests as sqlite_digests
import bot.store.sqlite.seeds as sqlite_seeds
import bot.store.sqlite.stories as sqlite_stories
from bot.store.base import (
    Store,
    StoreError,
)
from bot.store.sqlite import SqliteStore
from bot.store.sqlite.migrations import load_migrations
from tests.store.helpers import (
    CHANNEL,
    DAY,
    GUILD,
    deliver,
    failing_reload,
    minutes,
    nth,
    reload,
    run_on,
    searchable,
    settings,
    state,
    story_at,
    titles,
)


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    """The SQLite store alone (the contract tests' `store` runs on every backend)."""
    store = SqliteStore(db_path)
    await store.open()
    yield store
    await store.close()


def newest_migration() -> int:
    return max(number for number, _, _ in load_migrations())


async def test_open_creates_the_folder_and_records_the_schema_version(db_path: Path) -> None:
    store = SqliteStore(db_path)
    assert not db_path.parent.exists()  # the constructor does no I/O
    await store.open()
    await store.close()

    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == newest_migration()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert {"stories", "topics", "story_topics", "story_links", "stories_fts"} <= tables
    assert {"seed_files", "meta"} <= tables


async def test_reopening_keeps_the_data_and_applies_nothing(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.open()
    await reload(store, [story_at(1)])
    await store.close()

    reopened = SqliteStore(db_path)
    await reopened.open()
    await reopened.open()  # opening an open store is a no-op too
    try:
        assert await reopened.story_count() == 1
        assert (await reopened.seed_index()).generation == 1
    finally:
        await reopened.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == newest_migration()


async def test_a_newer_schema_is_refused(db_path: Path) -> None:
    store = SqliteStore(db_path)
    await store.open()
    await store.close()
    newer = newest_migration() + 1
    with sqlite3.connect(db_path) as db:
        db.execute(f"PRAGMA user_version = {newer}")

    with pytest.raises(StoreError) as refused:
        await SqliteStore(db_path).open()
    assert str(refused.value) == (
        f"database {db_path} has schema version {newer}; "
        f"this newsbot knows up to {newest_migration()}"
    )


async def test_a_file_that_is_not_a_database_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n" * 200)

    with pytest.raises(StoreError) as refused:
        await SqliteStore(path).open()
    message = str(refused.value)
    assert str(path) in message
    assert "not a database" in message
    assert "\n" not in message
    assert "Traceback" not in message


async def test_a_path_that_cannot_be_created_is_refused_in_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    path = blocker / "news.db"

    with pytest.raises(StoreError) as refused:
        await SqliteStore(path).open()
    message = str(refused.value)
    assert str(path) in message
    assert "\n" not in message


async def test_queries_before_open_raise_store_error(db_path: Path) -> None:
    store = SqliteStore(db_path)
    with pytest.raises(StoreError, match="not open"):
        await store.latest(5)
    with pytest.raises(StoreError, match="not open"):
        await store.seed_index()


async def test_a_reload_interrupted_midway_changes_nothing(
    loaded: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await state(loaded)

    async def crash(*args: object) -> None:
        raise RuntimeError("disk on fire")

    # Stories are deleted by then, new ones not yet inserted.
    monkeypatch.setattr(sqlite_seeds, "_insert_stories", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await loaded.apply_reload(failing_reload(loaded))
    monkeypatch.undo()

    assert await state(loaded) == before
    # The store is still usable: the same reload now goes through.
    await loaded.apply_reload(failing_reload(loaded))
    assert titles(await loaded.latest(10)) == ["new", "changed"]


async def test_reloads_keep_counts_and_search_index_consistent(
    store: SqliteStore, db_path: Path
) -> None:
    await searchable(store)
    await reload(store, [story_at(n, topics=("AI", "Space")) for n in range(3, 9)])
    await reload(store, [story_at(4, topics=("Space",)), story_at(1)], retire=[story_at(5).id])
    await store.close()

    with sqlite3.connect(db_path) as db:
        # FTS5 checks its index against the stories table.
        db.execute("INSERT INTO stories_fts (stories_fts, rank) VALUES ('integrity-check', 1)")
        counted = dict(db.execute("SELECT topic_id, count(*) FROM story_topics GROUP BY topic_id"))
        stored = dict(db.execute("SELECT id, story_count FROM topics WHERE story_count > 0"))
        stories = db.execute("SELECT count(*) FROM stories").fetchone()[0]
        meta = db.execute("SELECT value FROM meta WHERE key = 'story_count'").fetchone()[0]
    assert stored == counted
    assert meta == stories == 7


async def test_latest_reads_indexes_in_order_without_sorting(store: SqliteStore) -> None:
    await searchable(store)
    plans = {
        "latest": await store.explain_latest(),
        "topic": await store.explain_latest(topic="AI"),
        "query": await store.explain_latest(query="rocket"),
        "topic and query": await store.explain_latest(topic="AI", query="rocket"),
    }
    for name, plan in plans.items():
        assert not any("TEMP B-TREE" in step for step in plan), (name, plan)
    assert any("INDEX stories_by_published" in step for step in plans["latest"])
    assert any("INDEX stories_by_published" in step for step in plans["query"])
    assert any("st USING PRIMARY KEY (topic_id=?)" in step for step in plans["topic"])


async def test_topics_are_listed_from_an_index_without_sorting(
    store: SqliteStore, db_path: Path
) -> None:
    await searchable(store)
    with sqlite3.connect(db_path) as db:
        plan = [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sqlite_stories._TOPICS)]
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert any("topics_by_count" in step for step in plan), plan


def test_sqlite_store_has_the_signatures_of_the_store_protocol() -> None:
    # Store is the union of the roles: its members are those of every protocol it extends.
    roles = [role for role in Store.__mro__ if getattr(role, "_is_protocol", False)]
    members = sorted({name for role in roles for name in vars(role) if not name.startswith("_")})
    assert "apply_reload" in members
    for name in members:
        declared = getattr(Store, name)
        if isinstance(declared, property):
            assert isinstance(getattr(SqliteStore, name), property), name
            continue
        expected = inspect.signature(declared)
        assert inspect.signature(getattr(SqliteStore, name)) == expected, name


async def test_state_values_survive_reopening(store: SqliteStore, db_path: Path) -> None:
    assert await store.get_state("command_sync") is None
    await store.set_state("command_sync", "abc")
    await store.set_state("command_sync", "def")
    await store.close()

    reopened = SqliteStore(db_path)
    await reopened.open()
    try:
        assert await reopened.get_state("command_sync") == "def"
    finally:
        await reopened.close()


async def test_undelivered_stories_on_very_many_topics_are_the_same(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reload(
        store,
        [story_at(n, topics=(f"Topic {n % 4}", f"Topic {n % 3}", "Other")) for n in range(1, 13)],
    )
    await deliver(store, CHANNEL, [12, 9, 4])
    topics = ["topic 0", "TOPIC 1", "Robotics"]
    walked = await store.undelivered_stories(CHANNEL, topics, 5)

    # Past the number of per-topic walks, one walk of all stories answers instead.
    monkeypatch.setattr(sqlite_digests, "_MAX_TOPIC_WALKS", 2)
    assert await store.undelivered_stories(CHANNEL, topics, 5) == walked
    assert minutes(walked) == [10, 8, 7, 6, 5]
    plan = await store.explain_undelivered(CHANNEL, topics)
    assert any("INDEX stories_by_published" in step for step in plan), plan


async def test_undelivered_stories_walk_indexes_without_sorting_the_stories(
    store: SqliteStore,
) -> None:
    await reload(store, [story_at(n, topics=("AI", "Space")) for n in range(5)])

    plan = await store.explain_undelivered(CHANNEL)
    assert not any("TEMP B-TREE" in step for step in plan), plan
    assert any("SCAN s USING INDEX stories_by_published" in step for step in plan), plan
    assert any("d USING PRIMARY KEY (channel_id=? AND story_id=?)" in step for step in plan)

    # On topics: one walk of each topic's primary key range; only their (limited) results
    # are merged and sorted.
    plan = await store.explain_undelivered(CHANNEL, ["AI", "space"])
    walks = [step for step in plan if "st USING PRIMARY KEY (topic_id=?)" in step]
    assert len(walks) == 2, plan
    assert not any("SCAN st" in step or "SCAN s " in step for step in plan), plan


async def test_a_digest_an_older_newsbot_was_sending_is_failed_for_digest_now_to_finish(
    store: SqliteStore, db_path: Path
) -> None:
    # An older newsbot kept no messages with its claims: such a run cannot be resumed exactly.
    await store.add_digest_run(run_on())
    await store.add_digest_run(run_on(DAY - timedelta(days=1), status="sent"))
    await store.close()
    with sqlite3.connect(db_path) as db:
        db.executescript("DROP TABLE send_budget; DROP TABLE identify_turns")  # migration 0008
        db.executescript(
            "DROP TABLE digest_messages; ALTER TABLE digest_runs DROP COLUMN owner;"
            " ALTER TABLE digest_runs DROP COLUMN lease_until;"
            " CREATE INDEX digest_runs_unfinished ON digest_runs (local_date, guild_id)"
            " WHERE status = 'claimed'; DROP TABLE instance_lease; DROP TABLE shard_leases;"
            " PRAGMA user_version = 4;"
        )

    reopened = SqliteStore(db_path)
    await reopened.open()
    try:
        runs = await reopened.digest_runs_since(DAY - timedelta(days=1))
    finally:
        await reopened.close()

    interrupted = runs[GUILD, DAY]
    assert interrupted.status == "failed" and interrupted.finished_at is not None
    assert interrupted.detail.endswith("/digest now posts the rest")
    assert runs[GUILD, DAY - timedelta(days=1)].status == "sent"


async def test_a_database_of_the_previous_schema_gains_the_digest_tables(
    store: SqliteStore, db_path: Path
) -> None:
    await reload(store, [story_at(1)])
    await store.close()
    with sqlite3.connect(db_path) as db:
        db.executescript("DROP TABLE send_budget; DROP TABLE identify_turns")  # migration 0008
        db.executescript(
            "DROP TABLE deliveries; DROP TABLE digest_runs; DROP TABLE digest_settings;"
            " DROP TABLE digest_messages; DROP TABLE instance_lease;"
            " DROP TABLE shard_leases; PRAGMA user_version = 2;"
        )

    reopened = SqliteStore(db_path)
    await reopened.open()
    try:
        assert await reopened.story(nth(1)) == story_at(1)
        assert await reopened.add_digest_run(run_on()) is True
        await reopened.save_digest_settings(settings())
        assert await reopened.all_digest_settings() == [settings()]
    finally:
        await reopened.close()
