"""What only the SQLite backend does: its file, schema migrations, pragmas, query plans and
transactions seen through sqlite3 itself (the instance lease and the watch on the database file
are in test_sqlite_lease.py)."""

from __future__ import annotations

import asyncio
import inspect
import random
import re
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import aiosqlite
import pytest

import bot.store.sqlite.digests as sqlite_digests
import bot.store.sqlite.search as sqlite_search
import bot.store.sqlite.search_terms as sqlite_search_terms
import bot.store.sqlite.seeds as sqlite_seeds
import bot.store.sqlite.stories as sqlite_stories
from bot.models import Story
from bot.search_query import parse_query
from bot.store.base import (
    Store,
    StoreError,
)
from bot.store.sqlite import SqliteStore
from bot.store.sqlite.migrations import Migration, load_migrations, migrate
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


async def test_open_waits_while_another_process_holds_a_new_database_before_it_is_in_wal(
    db_path: Path,
) -> None:
    # A second newsbot starting at the same moment: the first is still migrating the file,
    # which is not in WAL mode yet, and SQLite refuses the switch at once instead of waiting.
    db_path.parent.mkdir(parents=True)
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE being_migrated (x)")
    store = SqliteStore(db_path)
    opening = asyncio.create_task(store.open())
    await asyncio.sleep(0.3)
    assert not opening.done()
    other.execute("ROLLBACK")
    other.close()
    await asyncio.wait_for(opening, 10)
    await store.close()
    with sqlite3.connect(db_path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


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
        "query": await store.explain_latest(query=parse_query("rocket")),
        "topic and query": await store.explain_latest(topic="AI", query=parse_query("rocket")),
    }
    for name, plan in plans.items():
        assert not any("TEMP B-TREE" in step for step in plan), (name, plan)
    assert any("INDEX stories_by_published" in step for step in plans["latest"])
    assert walks_the_search_index_newest_first(plans["query"])
    assert walks_the_search_index_newest_first(plans["topic and query"])
    assert any("st USING PRIMARY KEY (topic_id=?)" in step for step in plans["topic"])


# Takes a database back to before migration 0010: the search index of migrations 0001-0009,
# keyed by story id.
BEFORE_0010 = (
    "DROP TABLE search_terms; DROP TABLE stories_fts; DROP INDEX stories_by_search_key;"
    " ALTER TABLE stories DROP COLUMN search_key;"
    " CREATE VIRTUAL TABLE stories_fts USING fts5 (title, excerpt,"
    " content = 'stories', content_rowid = 'id',"
    ' tokenize = "unicode61 remove_diacritics 2");'
    " INSERT INTO stories_fts (stories_fts) VALUES ('rebuild');"
)


# FTS5's xBestIndex flags (idxNum) for "rows in rowid order, descending" (FTS5_BI_ORDER_ROWID
# | FTS5_BI_ORDER_DESC): FTS5 itself yields the matches newest first, so the LIMIT stops it.
_FTS5_ROWID_DESC = 0x40 | 0x80


def walks_the_search_index_newest_first(plan: list[str]) -> bool:
    """The plan's outer loop is the search index, in descending rowid order, and nothing
    is sorted."""
    first = re.fullmatch(r"SCAN stories_fts VIRTUAL TABLE INDEX (\d+):.*", plan[0])
    return (
        first is not None
        and int(first[1]) & _FTS5_ROWID_DESC == _FTS5_ROWID_DESC
        and not any("TEMP B-TREE" in step for step in plan)
    )


async def test_search_keys_sort_as_publication_time_then_id_across_reloads(
    store: SqliteStore, db_path: Path
) -> None:
    await reload(store, [story_at(n, minutes=10, title=f"tied {n}") for n in (10, 12, 14)])
    await reload(store, [story_at(n, title=f"s {n}") for n in (20, 30)])
    # One published before everything, two in the occupied minute, one moved into it, one
    # leaving it, and one replaced with the same text (its index entry may be kept).
    await reload(
        store,
        [
            story_at(1, title="early"),
            story_at(11, minutes=10, title="tied 11"),
            story_at(13, minutes=10, title="tied 13"),
            story_at(20, minutes=10, title="s 20"),
            story_at(14, minutes=40, title="tied 14"),
            story_at(12, minutes=10, title="tied 12"),
        ],
        retire=[story_at(30).id],
    )
    await store.close()

    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO stories_fts (stories_fts, rank) VALUES ('integrity-check', 1)")
        by_time = [
            row[0] for row in db.execute("SELECT search_key FROM stories ORDER BY published_at, id")
        ]
        indexed = [row[0] for row in db.execute(
            "SELECT rowid FROM stories_fts WHERE stories_fts MATCH 'tied OR s OR early'"
            " ORDER BY rowid")]  # fmt: skip
    assert by_time == sorted(set(by_time))
    assert indexed == by_time


async def test_migrations_sort_and_gather_rows_in_temporary_files_not_in_memory(
    tmp_path: Path,
) -> None:
    # Rebuilding the search index of a million stories in memory took 3.3 GB, kept after.
    path = tmp_path / "news.db"
    connection = await aiosqlite.connect(path, isolation_level=None)
    try:
        await connection.execute("PRAGMA temp_store = MEMORY")
        seen = "CREATE TABLE seen AS SELECT temp_store FROM pragma_temp_store;"
        await migrate(connection, [Migration(1, "0001_seen.sql", seen)], path)
        rows = await connection.execute_fetchall("SELECT temp_store FROM seen")
        assert [row[0] for row in rows] == [1]  # FILE
        rows = await connection.execute_fetchall("PRAGMA temp_store")
        assert [row[0] for row in rows] == [2]  # MEMORY again, for everything else
    finally:
        await connection.close()


async def test_a_database_before_time_ordered_search_is_migrated_and_searches_alike(
    store: SqliteStore, db_path: Path
) -> None:
    stories = [story_at(n, title=f"rocket {n}", topics=("AI",) if n % 2 else ("Space",))
               for n in range(12)]  # fmt: skip
    tied = [story_at(n, minutes=5, title=f"rocket tied {n}") for n in (20, 21, 22)]
    await reload(store, stories + tied)
    expected = {
        "rocket": titles(await store.latest(20, query=parse_query("rocket"))),
        "AI": titles(await store.latest(20, topic="AI", query=parse_query("rock"))),
    }
    await store.close()
    with sqlite3.connect(db_path) as db:
        # The search index of migrations 0001-0009, keyed by story id.
        db.executescript(BEFORE_0010 + " PRAGMA user_version = 9;")

    reopened = SqliteStore(db_path)
    await reopened.open()
    try:
        assert titles(await reopened.latest(20, query=parse_query("rocket"))) == expected["rocket"]
        assert (
            titles(await reopened.latest(20, topic="AI", query=parse_query("rock")))
            == expected["AI"]
        )
        assert walks_the_search_index_newest_first(
            await reopened.explain_latest(query=parse_query("x"))
        )
    finally:
        await reopened.close()
    newest = sorted(stories + tied, key=lambda story: (story.published_at, story.id))
    assert expected["rocket"] == titles(reversed(newest))
    with sqlite3.connect(db_path) as db:
        db.execute("INSERT INTO stories_fts (stories_fts, rank) VALUES ('integrity-check', 1)")


def search_terms(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as db:
        return [row[0] for row in db.execute("SELECT term FROM search_terms ORDER BY term")]


def index_words(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE VIRTUAL TABLE temp.v USING fts5vocab(main, stories_fts, row)")
        return [row[0] for row in db.execute("SELECT term FROM temp.v ORDER BY term")]


async def test_reloads_record_the_words_of_the_index_as_its_tokenizer_folds_them(
    store: SqliteStore, db_path: Path
) -> None:
    await reload(
        store,
        [
            story_at(1, title="Élan at the CAFÉ", excerpt="Straße, naïve co-op 5G"),
            story_at(2, title="Robots", excerpt="Robotics’ rise"),
        ],
    )
    await reload(store, [story_at(3, title="Recognition", excerpt="facial")])
    words = search_terms(db_path)
    assert words == index_words(db_path)
    assert {"elan", "cafe", "straße", "naive", "co", "op", "5g", "robotics"} <= set(words)


async def test_words_are_recorded_with_the_search_indexs_own_tokenizer(
    store: SqliteStore, db_path: Path
) -> None:
    with sqlite3.connect(db_path) as db:
        (index_sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'stories_fts'")
    assert f'tokenize = "{sqlite_search_terms.TOKENIZER}"' in index_sql[0]


async def test_a_database_before_the_word_list_is_migrated_with_the_indexs_words(
    store: SqliteStore, db_path: Path
) -> None:
    await reload(store, [story_at(n, title=f"Rocket {n}", excerpt="Recognition") for n in range(5)])
    await store.close()
    with sqlite3.connect(db_path) as db:
        db.executescript("DROP TABLE search_terms; PRAGMA user_version = 10;")

    reopened = SqliteStore(db_path)
    await reopened.open()
    try:
        assert titles(await reopened.latest(1, query=parse_query("recog rock"))) == ["Rocket 4"]
    finally:
        await reopened.close()
    assert search_terms(db_path) == index_words(db_path)


async def test_a_prefix_finds_the_same_stories_as_words_or_left_to_fts5(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await reload(
        store,
        [
            story_at(1, title="Recognise faces"),
            story_at(2, title="Recognition at borders"),
            story_at(3, title="Recon drones"),
            story_at(4, title="Café recognizes chef", excerpt="récognition"),
        ],
    )
    queries = ["recog", '"at bor"', "rec -recon", "RECOG OR drone", "récog", "recognitions"]
    by_words = {text: titles(await store.latest(10, query=parse_query(text))) for text in queries}
    monkeypatch.setattr(sqlite_search_terms, "MAX_EXPANSION", 0)
    by_fts5 = {text: titles(await store.latest(10, query=parse_query(text))) for text in queries}
    assert by_words == by_fts5
    assert by_words["recog"] == [
        "Café recognizes chef",
        "Recognition at borders",
        "Recognise faces",
    ]
    assert by_words["recognitions"] == []


# --- search plans at a realistic size, with and without ANALYZE ----------------------------------

REALISTIC = 20_000
# A made-up language of 1,728 words, so that words are as varied as in news text.
_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "be", "do", "fu", "gi"]
VOCABULARY = [a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES]


def realistic_stories() -> list[Story]:
    """REALISTIC stories on 50 topics, one in 20 on a rare topic; "zeppelin" in every
    2,000th title, and "kalo" (common: a few hundred words start with it) everywhere."""
    rng = random.Random(7)
    stories = []
    for n in range(REALISTIC):
        words = rng.sample(VOCABULARY, 6)
        if n % 2000 == 0:
            words[2] = "zeppelin"
        topics = ("Rare",) if n % 2000 == 1 else (f"Topic {n % 50}",)
        excerpt = " ".join(rng.sample(VOCABULARY, 12))
        stories.append(story_at(n, title=" ".join(words), excerpt=excerpt, topics=topics))
    return stories


@pytest.fixture(scope="module")
def realistic_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("realistic") / "news.db"

    async def fill() -> None:
        store = SqliteStore(path)
        await store.open()
        try:
            await reload(store, realistic_stories())
        finally:
            await store.close()

    asyncio.run(fill())
    return path


@pytest.fixture(params=["without statistics", "analysed"])
async def big(
    request: pytest.FixtureRequest, realistic_db: Path, tmp_path: Path
) -> AsyncIterator[SqliteStore]:
    path = tmp_path / "news.db"
    shutil.copyfile(realistic_db, path)
    if request.param == "analysed":
        with sqlite3.connect(path) as db:
            db.execute("ANALYZE")
    store = SqliteStore(path)
    await store.open()
    yield store
    await store.close()


def walks_the_topics_stories_asking_the_index(plan: list[str]) -> bool:
    """The plan's outer loop is the topic's story_topics range, newest first, and each story
    is looked up in the search index by its key; nothing is sorted."""
    return (
        plan[0] == "SEARCH st USING PRIMARY KEY (topic_id=?)"
        and any(
            re.fullmatch(r"SCAN stories_fts VIRTUAL TABLE INDEX 0:=M\d+", step) for step in plan
        )
        and not any("TEMP B-TREE" in step for step in plan)
    )


@pytest.mark.parametrize(
    "query",
    ["kalo", "zeppelin", "absentword", "ze", "k", "kalo mine", "zeppelin kalomi"],
)
@pytest.mark.parametrize("topic", [None, "Topic 7", "Rare", "Unknown"])
async def test_word_searches_walk_the_search_index_newest_first(
    big: SqliteStore, query: str, topic: str | None
) -> None:
    plan = await big.explain_latest(topic=topic, query=parse_query(query))
    if topic == "Rare" and query == "kalo":
        # A word in one story in eight, on a topic of ten stories: walking the word's matches
        # for the topic's would read most of them.
        assert walks_the_topics_stories_asking_the_index(plan), plan
    else:
        assert walks_the_search_index_newest_first(plan), plan


@pytest.mark.parametrize("query", ["kalo", "zeppelin", "kalo mine", "ka", "kalo -mine"])
@pytest.mark.parametrize("topic", ["Topic 7", "Rare"])
async def test_both_ways_to_a_search_on_a_topic_find_the_same_stories(
    big: SqliteStore, monkeypatch: pytest.MonkeyPatch, query: str, topic: str
) -> None:
    parsed = parse_query(query)
    found = {}
    for probed in (False, True):
        monkeypatch.setattr(sqlite_search, "probe_topic", lambda *_, probed=probed: probed)
        plan = await big.explain_latest(topic=topic, query=parsed)
        assert walks_the_topics_stories_asking_the_index(plan) is probed, plan
        found[probed] = (
            titles(await big.latest(6, topic=topic, query=parsed)),
            titles(await big.latest(4, offset=3, topic=topic, query=parsed)),
            await big.count_matching(parsed, topic=topic, cap=30),
        )
    assert found[False] == found[True]


async def test_word_searches_at_a_realistic_size_find_the_newest(big: SqliteStore) -> None:
    stories = realistic_stories()

    def expected(keep: Callable[[Story], bool], limit: int = 6) -> list[str]:
        newest = sorted(stories, key=lambda story: (story.published_at, story.id), reverse=True)
        return titles([story for story in newest if keep(story)][:limit])

    assert titles(await big.latest(6, query=parse_query("zeppelin"))) == expected(
        lambda story: "zeppelin" in story.title
    )
    assert titles(await big.latest(6, query=parse_query("kalo"))) == expected(
        lambda story: any(
            word.startswith("kalo") for word in f"{story.title} {story.excerpt}".split()
        )
    )
    assert titles(await big.latest(6, topic="topic 7", query=parse_query("kalo"))) == expected(
        lambda story: (
            story.topics == ("Topic 7",)
            and any(word.startswith("kalo") for word in f"{story.title} {story.excerpt}".split())
        )
    )
    assert await big.latest(6, query=parse_query("absentword")) == []


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
            " PRAGMA user_version = 4;" + BEFORE_0010
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
            " DROP TABLE shard_leases; PRAGMA user_version = 2;" + BEFORE_0010
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


def test_more_stories_in_one_second_than_search_keys_leave_is_refused() -> None:
    crowded = [(n, "u", "t", "e", 1_700_000_000) for n in range(sqlite_seeds.SLOTS_PER_SECOND + 1)]
    texts = {n: ("t", "e") for n in range(len(crowded))}
    with pytest.raises(StoreError, match="in one second"):
        sqlite_seeds.plan_search_keys(crowded, texts, {}, [])
    keys = sqlite_seeds.plan_search_keys(crowded[1:], texts, {}, []).keys
    assert sorted(keys.values()) == [keys[n] for n in sorted(keys)]
