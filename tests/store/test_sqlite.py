"""Behaviour of the SQLite store: schema lifecycle, stories, topics, search, links, reloads."""

from __future__ import annotations

import dataclasses
import inspect
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

import bot.store.sqlite.seeds as sqlite_seeds
import bot.store.sqlite.stories as sqlite_stories
from bot.models import Image, Provider, Story, TopicCount
from bot.store.base import (
    FileStatus,
    ReloadChanges,
    SeedFileRecord,
    StaleReload,
    Store,
    StoreError,
)
from bot.store.sqlite import SqliteStore, encode_story
from bot.store.sqlite.migrations import load_migrations
from tests.factories import make_related, make_story

RELOADED_AT = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def story_at(n: int, *, minutes: int | None = None, **fields: object) -> Story:
    """Story number n, published n minutes after T0 unless told otherwise."""
    published_at = T0 + timedelta(minutes=n if minutes is None else minutes)
    return make_story(f"https://news.example.com/story-{n}", published_at=published_at, **fields)


async def reload(
    store: SqliteStore,
    upsert: Iterable[Story] = (),
    *,
    retire: Sequence[int] = (),
    put_files: Sequence[SeedFileRecord] = (),
    delete_files: Sequence[str] = (),
    folder: str = "/srv/seeds",
) -> None:
    """Apply one reload planned against the current generation; each story comes from a
    seed file named after its id."""
    index = await store.seed_index()
    await store.apply_reload(
        ReloadChanges(
            expected_generation=index.generation,
            reloaded_at=RELOADED_AT,
            upsert=[(encode_story(story), f"{story.id}.yaml") for story in upsert],
            retire=retire,
            put_files=put_files,
            delete_files=delete_files,
            folder=folder,
        )
    )


def titles(stories: Iterable[Story]) -> list[str]:
    return [story.title for story in stories]


def newest_migration() -> int:
    return max(number for number, _, _ in load_migrations())


# --- opening, migrations, closing ---------------------------------------------------------


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


async def test_close_is_idempotent_and_closes_the_store(store: SqliteStore) -> None:
    await store.close()
    await store.close()
    with pytest.raises(StoreError):
        await store.story_count()


# --- stories -----------------------------------------------------------------------------


def full_story() -> Story:
    """A story with every field set to something other than its default."""
    plus_two = timezone(timedelta(hours=2))
    return make_story(
        "https://news.example.com/full?id=7&utm_source=feed",
        title="Ünïcode — “quotes” and emoji 🚀",
        excerpt="Every field of a story, stored and read back.",
        published_at=datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC),
        topics=("Computer  Vision", "AI"),
        provider=Provider("Example News", "example.com"),
        images=(
            Image("https://news.example.com/lead.jpg", 1200, 630),
            Image("https://news.example.com/second.png"),
        ),
        related=(
            make_related(
                "https://other.example.org/their-take",
                title="Their take",
                excerpt="Another angle.",
                # Any offset: read back as the same instant in UTC.
                published_at=datetime(2024, 3, 5, 9, 0, tzinfo=plus_two),
                provider=Provider("Other Outlet", "other.example.org"),
                quality=3,
                image=Image("https://other.example.org/pic.jpg", 640, 480),
            ),
            make_related("https://bare.example.net/b"),
        ),
        quality=87,
        heat=1234,
        category="technology",
        kind="article",
        published=False,
        amp_url="https://news.example.com/amp/full",
        cdn_amp_url="https://news-example-com.cdn.ampproject.org/c/full",
        body="The whole text.\nWith lines, tabs\tand ünïcode.",
        secured="opaque-token",
    )


def test_the_full_story_sets_every_field() -> None:
    # Guards the round trip below: a field added to Story must be added here too.
    story = full_story()
    for field in dataclasses.fields(Story):
        if field.default is not dataclasses.MISSING:
            assert getattr(story, field.name) != field.default, field.name


async def test_a_full_story_reads_back_equal(store: SqliteStore) -> None:
    story = full_story()
    await reload(store, [story])

    stored = await store.story(story.id)
    assert stored == story
    assert stored is not None
    assert stored.published_at.tzinfo == UTC
    assert stored.related[0].published_at == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
    assert await store.latest(1) == [story]


async def test_a_bare_story_reads_back_equal(store: SqliteStore) -> None:
    story = make_story("https://bare.example.com/x", topics=(), provider=None, images=())
    await reload(store, [story])
    assert await store.story(story.id) == story


async def test_story_of_an_unknown_id_is_none(store: SqliteStore) -> None:
    await reload(store, [story_at(1)])
    assert await store.story(story_at(2).id) is None


async def test_story_count_follows_upserts_replacements_and_retirements(
    store: SqliteStore,
) -> None:
    assert await store.story_count() == 0
    await reload(store, [story_at(n) for n in range(5)])
    assert await store.story_count() == 5
    await reload(store, [story_at(0, title="Replaced"), story_at(5)])
    assert await store.story_count() == 6
    await reload(store, retire=[story_at(1).id, story_at(2).id, story_at(99).id])
    assert await store.story_count() == 4


async def test_a_story_listed_twice_in_one_reload_is_stored_once_as_the_last(
    store: SqliteStore,
) -> None:
    await reload(store, [story_at(1, title="First"), story_at(1, title="Second")])
    assert titles(await store.latest(10)) == ["Second"]
    assert await store.story_count() == 1


# --- latest ------------------------------------------------------------------------------


async def test_latest_is_newest_first_with_ties_broken_by_id(store: SqliteStore) -> None:
    stories = [story_at(n, title=f"s{n}") for n in range(4)]
    tied = [story_at(n, minutes=10, title=f"tied{n}") for n in (10, 11, 12)]
    await reload(store, stories + tied)

    latest = await store.latest(10)
    tied_by_id = sorted(tied, key=lambda story: story.id, reverse=True)
    assert titles(latest) == [*titles(tied_by_id), "s3", "s2", "s1", "s0"]


async def test_latest_pages_with_limit_and_offset(store: SqliteStore) -> None:
    await reload(store, [story_at(n, title=f"s{n}") for n in range(6)])

    assert titles(await store.latest(2)) == ["s5", "s4"]
    assert titles(await store.latest(2, offset=2)) == ["s3", "s2"]
    assert titles(await store.latest(10, offset=5)) == ["s0"]
    assert await store.latest(2, offset=6) == []
    assert await store.latest(0) == []


async def test_latest_on_topic_ignores_case_and_spacing(store: SqliteStore) -> None:
    await reload(
        store,
        [
            story_at(1, title="vision", topics=("Computer Vision",)),
            story_at(2, title="both", topics=("AI", "computer vision")),
            story_at(3, title="ai", topics=("AI",)),
        ],
    )

    assert titles(await store.latest(10, topic="  COMPUTER   vision ")) == ["both", "vision"]
    assert titles(await store.latest(1, offset=1, topic="computer vision")) == ["vision"]
    assert titles(await store.latest(10, topic="ai")) == ["ai", "both"]
    assert await store.latest(10, topic="Robotics") == []


async def test_latest_on_topic_follows_a_changed_publication_time(store: SqliteStore) -> None:
    await reload(store, [story_at(1, title="a"), story_at(2, title="b")])
    await reload(store, [story_at(1, minutes=60, title="a")])
    assert titles(await store.latest(10, topic="AI")) == ["a", "b"]


# --- topics ------------------------------------------------------------------------------


async def test_topics_are_listed_by_count_then_by_name_ignoring_case(store: SqliteStore) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("zebra", "AI")),
            story_at(2, topics=("AI", "Biology")),
            story_at(3, topics=("apple",)),
            # Two spellings of one topic on one story count once.
            story_at(4, topics=("AI", "ai ")),
        ],
    )
    assert await store.topics() == [
        TopicCount("AI", 3),
        TopicCount("apple", 1),
        TopicCount("Biology", 1),
        TopicCount("zebra", 1),
    ]


async def test_topic_counts_follow_replacements_and_retirements(store: SqliteStore) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("AI", "Space")),
            story_at(2, topics=("AI",)),
            story_at(3, topics=("Space", "Climate")),
        ],
    )
    # Story 1 drops Space and takes Climate; story 3 is retired.
    await reload(store, [story_at(1, topics=("AI", "Climate"))], retire=[story_at(3).id])

    assert await store.topics() == [TopicCount("AI", 2), TopicCount("Climate", 1)]
    assert await store.topic("space") is None
    assert await store.latest(10, topic="Space") == []

    await reload(store, retire=[story_at(1).id, story_at(2).id])
    assert await store.topics() == []


async def test_topic_finds_a_topic_ignoring_case_and_spacing(store: SqliteStore) -> None:
    await reload(store, [story_at(1, topics=("Computer Vision",)), story_at(2, topics=("AI",))])
    assert await store.topic("  computer   VISION") == TopicCount("Computer Vision", 1)
    assert await store.topic("Robotics") is None


async def test_a_topic_keeps_its_first_name_unless_a_capitalised_one_follows(
    store: SqliteStore,
) -> None:
    await reload(store, [story_at(1, topics=("ai",)), story_at(2, topics=("Space",))])
    await reload(store, [story_at(3, topics=("AI",)), story_at(4, topics=("space",))])
    await reload(store, [story_at(5, topics=("Ai",)), story_at(6, topics=("SPACE",))])

    assert await store.topics() == [TopicCount("AI", 3), TopicCount("Space", 3)]


async def test_within_one_reload_the_first_capitalised_name_wins(store: SqliteStore) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("machine learning",)),
            story_at(2, topics=("Machine Learning",)),
            story_at(3, topics=("MACHINE LEARNING",)),
        ],
    )
    assert await store.topic("machine learning") == TopicCount("Machine Learning", 3)


async def test_display_names_have_their_spacing_collapsed(store: SqliteStore) -> None:
    await reload(store, [story_at(1, topics=("  Computer   Vision ",))])
    assert await store.topics() == [TopicCount("Computer Vision", 1)]
    # The story itself keeps its topics exactly as given.
    assert (await store.latest(1))[0].topics == ("  Computer   Vision ",)


# --- search ------------------------------------------------------------------------------


async def searchable(store: SqliteStore) -> None:
    await reload(
        store,
        [
            story_at(1, title="Rocket launch delayed", excerpt="Weather near the coast."),
            story_at(2, title="Markets rally", excerpt="A rocket maker's shares soar and dip."),
            story_at(3, title="Café culture", excerpt="Coffee prices climb.", topics=("Food",)),
            story_at(4, title="Launch party", excerpt="Nothing to do with space."),
        ],
    )


async def test_query_finds_words_in_title_or_excerpt_newest_first(store: SqliteStore) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query="rocket")) == [
        "Markets rally",
        "Rocket launch delayed",
    ]


async def test_query_matches_word_prefixes_ignoring_case_and_accents(store: SqliteStore) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query="ROCK")) == [
        "Markets rally",
        "Rocket launch delayed",
    ]
    assert titles(await store.latest(10, query="cafe")) == ["Café culture"]


async def test_query_requires_every_word(store: SqliteStore) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query="rocket launch")) == ["Rocket launch delayed"]
    assert titles(await store.latest(10, query="launch")) == [
        "Launch party",
        "Rocket launch delayed",
    ]
    assert await store.latest(10, query="rocket coffee") == []


async def test_query_pages_with_limit_and_offset(store: SqliteStore) -> None:
    await searchable(store)
    assert titles(await store.latest(1, offset=1, query="rocket")) == ["Rocket launch delayed"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rocket AND", ["Markets rally"]),
        ("rocket OR coffee", []),
        ("NOT rocket", []),
        ('"rocket', ["Markets rally", "Rocket launch delayed"]),
        ('rocket" OR "x', []),
        ("rock*", ["Markets rally", "Rocket launch delayed"]),
        ("NEAR(rocket launch", ["Rocket launch delayed"]),
        ("title:rocket", []),
        ("-rocket ^launch (delayed)", ["Rocket launch delayed"]),
        ("rocket's", ["Markets rally"]),
        ("maker's", ["Markets rally"]),
    ],
)
async def test_query_treats_fts_syntax_as_plain_words(
    store: SqliteStore, query: str, expected: list[str]
) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=query)) == expected


@pytest.mark.parametrize("query", ["", "   ", "!!!", '"*"', "()", "-- ;"])
async def test_query_without_words_matches_nothing(store: SqliteStore, query: str) -> None:
    await searchable(store)
    assert await store.latest(10, query=query) == []


async def test_query_and_topic_together_intersect(store: SqliteStore) -> None:
    await searchable(store)
    await reload(store, [story_at(5, title="Coffee rocket", topics=("Food",))])

    assert titles(await store.latest(10, topic="food", query="coffee")) == [
        "Coffee rocket",
        "Café culture",
    ]
    assert titles(await store.latest(10, topic="FOOD", query="rocket")) == ["Coffee rocket"]
    assert await store.latest(10, topic="Space", query="rocket") == []


async def test_search_follows_replaced_and_retired_stories(store: SqliteStore) -> None:
    await searchable(store)
    await reload(
        store,
        [story_at(1, title="Probe lands", excerpt="On the moon.")],
        retire=[story_at(2).id],
    )

    assert await store.latest(10, query="rocket") == []
    assert titles(await store.latest(10, query="probe moon")) == ["Probe lands"]


# --- links -------------------------------------------------------------------------------


async def test_linked_stories_are_found_in_both_directions(store: SqliteStore) -> None:
    hub = story_at(1, related=(make_related(story_at(2).url), make_related(story_at(3).url)))
    spoke = story_at(4, related=(make_related(story_at(1).url),))
    await reload(store, [hub, story_at(2), story_at(3), spoke, story_at(5)])

    linked = await store.linked_stories([hub.id, story_at(2).id, spoke.id, story_at(5).id])
    assert linked == {
        hub.id: {story_at(2).id, story_at(3).id, spoke.id},
        story_at(2).id: {hub.id},
        spoke.id: {hub.id},
    }


async def test_linked_stories_ignore_links_to_stories_not_stored(store: SqliteStore) -> None:
    lonely = story_at(1, related=(make_related("https://elsewhere.example.org/never-loaded"),))
    await reload(store, [lonely, story_at(2, related=(make_related(story_at(3).url),))])
    assert await store.linked_stories([lonely.id, story_at(2).id]) == {}

    # Once the linked story is loaded, the link counts; once retired, it no longer does.
    await reload(store, [story_at(3)])
    assert await store.linked_stories([story_at(3).id]) == {story_at(3).id: {story_at(2).id}}
    await reload(store, retire=[story_at(2).id])
    assert await store.linked_stories([story_at(3).id]) == {}
    assert await store.linked_stories([]) == {}


# --- reloads and seed bookkeeping --------------------------------------------------------


def record(
    path: str,
    *,
    status: FileStatus = "loaded",
    story_id: int | None = None,
    rank: tuple[int, ...] = (),
    error: str | None = None,
    size: int = 120,
) -> SeedFileRecord:
    return SeedFileRecord(
        path=path,
        size=size,
        mtime_ns=1_700_000_000_123_456_789,
        content_hash=f"hash-of-{path}",
        status=status,
        story_id=story_id,
        rank=rank,
        error=error,
    )


async def test_a_fresh_seed_index_is_empty(store: SqliteStore) -> None:
    index = await store.seed_index()
    assert (index.generation, dict(index.files), index.reloaded_at, index.folder) == (
        0,
        {},
        None,
        "",
    )


async def test_seed_index_reads_back_what_reloads_recorded(store: SqliteStore) -> None:
    loaded = record("a/one.yaml", story_id=story_at(1).id, rank=(2, -1, 1_700_000_000))
    rejected = record("b/two.yaml", status="rejected", error="title: missing")
    gone = record("c/three.yaml", status="duplicate", story_id=story_at(1).id, rank=(1,))
    await reload(store, [story_at(1)], put_files=[loaded, rejected, gone], folder="/srv/a")
    updated = record("b/two.yaml", size=99, status="loaded", story_id=story_at(2).id)
    await reload(store, [story_at(2)], put_files=[updated], delete_files=["c/three.yaml"])

    index = await store.seed_index()
    assert index.generation == 2
    assert index.files == {"a/one.yaml": loaded, "b/two.yaml": updated}
    assert index.reloaded_at == RELOADED_AT
    assert index.folder == "/srv/seeds"


async def test_a_reload_planned_on_an_old_generation_is_refused(store: SqliteStore) -> None:
    await reload(store, [story_at(1)])
    stale = ReloadChanges(
        expected_generation=0,
        reloaded_at=RELOADED_AT,
        upsert=[(encode_story(story_at(2)), "two.yaml")],
        retire=[story_at(1).id],
    )
    with pytest.raises(StaleReload):
        await store.apply_reload(stale)

    assert (await store.seed_index()).generation == 1
    assert titles(await store.latest(10)) == [story_at(1).title]


async def state(store: SqliteStore) -> tuple[object, ...]:
    """Everything a reader can see."""
    return (
        await store.latest(100),
        await store.topics(),
        await store.story_count(),
        await store.latest(100, query="first"),
        await store.linked_stories([story_at(n).id for n in range(5)]),
        await store.seed_index(),
    )


@pytest.fixture
async def loaded(store: SqliteStore) -> SqliteStore:
    await reload(
        store,
        [
            story_at(1, title="first one", related=(make_related(story_at(2).url),)),
            story_at(2, title="first two", topics=("Space",)),
        ],
        put_files=[record("one.yaml", story_id=story_at(1).id)],
    )
    return store


def failing_reload() -> ReloadChanges:
    return ReloadChanges(
        expected_generation=1,
        reloaded_at=RELOADED_AT + timedelta(days=1),
        upsert=[
            (encode_story(story_at(1, title="changed", topics=("Biology",))), "one.yaml"),
            (encode_story(story_at(3, title="new")), "three.yaml"),
        ],
        retire=[story_at(2).id],
        put_files=[record("three.yaml", story_id=story_at(3).id)],
        delete_files=["one.yaml"],
        folder="/elsewhere",
    )


async def test_a_reload_that_violates_a_constraint_changes_nothing(loaded: SqliteStore) -> None:
    before = await state(loaded)
    changes = dataclasses.replace(
        failing_reload(),
        # Written after every story change: all of them must be rolled back.
        put_files=[record("bad.yaml", status="exploded")],  # type: ignore[arg-type]
    )
    with pytest.raises(StoreError, match="reload not applied") as failed:
        await loaded.apply_reload(changes)
    assert "\n" not in str(failed.value)

    assert await state(loaded) == before


async def test_a_reload_interrupted_midway_changes_nothing(
    loaded: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = await state(loaded)

    async def crash(*args: object) -> None:
        raise RuntimeError("disk on fire")

    # Stories are deleted by then, new ones not yet inserted.
    monkeypatch.setattr(sqlite_seeds, "_insert_stories", crash)
    with pytest.raises(RuntimeError, match="disk on fire"):
        await loaded.apply_reload(failing_reload())
    monkeypatch.undo()

    assert await state(loaded) == before
    # The store is still usable: the same reload now goes through.
    await loaded.apply_reload(failing_reload())
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


# --- query plans -------------------------------------------------------------------------


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
        expected = inspect.signature(getattr(Store, name))
        assert inspect.signature(getattr(SqliteStore, name)) == expected, name


# --- autocomplete, seed status, bot state ------------------------------------------------------


async def test_topics_matching_prefers_names_that_start_with_the_text(store: SqliteStore) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("Computer Vision", "AI")),
            story_at(2, topics=("Vision Pro",)),
            story_at(3, topics=("Vision Pro", "Climate")),
        ],
    )

    matched = await store.topics(matching="  VIS")

    assert [topic.name for topic in matched] == ["Vision Pro", "Computer Vision"]


async def test_topics_matching_treats_like_wildcards_as_text(store: SqliteStore) -> None:
    await reload(store, [story_at(1, topics=("100% Renewable", "AI_ethics", "AIX"))])

    assert [t.name for t in await store.topics(matching="%")] == ["100% Renewable"]
    assert [t.name for t in await store.topics(matching="i_")] == ["AI_ethics"]


async def test_topics_limit(store: SqliteStore) -> None:
    await reload(store, [story_at(n, topics=(f"Topic {n}",)) for n in range(30)])

    assert len(await store.topics(limit=25)) == 25
    assert len(await store.topics(matching="topic", limit=25)) == 25


async def test_seed_status_lists_rejected_files_and_the_last_reload(store: SqliteStore) -> None:
    kept = story_at(1)
    rejected = [
        SeedFileRecord("a.txt", 1, 1, "d1", "rejected", kept.id, (1,), "title: missing"),
        SeedFileRecord("b.txt", 1, 1, "d2", "rejected", None, (), "invalid YAML"),
        SeedFileRecord("c.txt", 1, 1, "d3", "loaded", story_at(2).id, (1,)),
    ]
    await reload(store, [kept, story_at(2)], put_files=rejected)

    status = await store.seed_status()

    assert status.rejected == (("a.txt", "title: missing", True), ("b.txt", "invalid YAML", False))
    assert status.reloaded_at == RELOADED_AT
    assert status.folder == "/srv/seeds"


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
