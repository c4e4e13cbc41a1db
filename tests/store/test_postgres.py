"""What only the PostgreSQL backend does: opening (migrations, several newsbots at once, a
database newsbot never set up), the search's tsquery built from words only, the query plans of
the hot reads at a realistic size (and of word searches on news-like text, where the planner's
guess of a word's matches is no guide), and errors in one line (the instance lease and a replaced
database are in test_postgres_lease.py)."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.config import DatabaseSettings
from bot.models import Story
from bot.search_query import RELEVANCE_WINDOW, Order, QuerySyntaxError, parse_query, to_tsquery
from bot.store import NoDatabase, Store, StoreError, create_store
from bot.store.postgres import PostgresStore
from bot.store.postgres.migrations import load_migrations
from bot.store.postgres.stories import RECENT_WINDOW
from bot.store.sqlite import SqliteStore
from tests.postgres import PostgresServer
from tests.store.helpers import reload, searchable, story_at, titles

# Stories in the database the query plans are read from, as many as a busy seed folder holds.
REALISTIC = 20_000
_SYLLABLES = ("ba", "ko", "mi", "ru", "te", "so", "na", "li", "pe", "do", "ga", "vu")
VOCABULARY = ["".join(word) for word in itertools.product(_SYLLABLES, repeat=3)]


@pytest.fixture
async def store(postgres_store_url: str) -> AsyncIterator[PostgresStore]:
    """The PostgreSQL store alone (the contract tests' `store` runs on every backend)."""
    store = PostgresStore(postgres_store_url)
    await store.open()
    yield store
    await store.close()


def newest_migration() -> int:
    return max(number for number, _, _ in load_migrations())


async def fetchval(url: str, sql: str) -> object:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


# --- opening ------------------------------------------------------------------------------------


async def test_open_migrates_an_empty_database_and_records_the_version(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    await store.open()  # opening an open store is a no-op
    await store.close()

    assert await fetchval(postgres_url, "SELECT version FROM schema_version") == newest_migration()
    assert await fetchval(postgres_url, "SELECT to_regclass('stories') IS NOT NULL") is True


async def test_four_newsbots_opening_one_empty_database_at_once_all_open_it(
    postgres_url: str,
) -> None:
    stores = [PostgresStore(postgres_url) for _ in range(4)]

    await asyncio.gather(*(store.open() for store in stores))

    try:
        await reload(stores[0], [story_at(1)])
        assert [await store.story_count() for store in stores] == [1, 1, 1, 1]
    finally:
        await asyncio.gather(*(store.close() for store in stores))
    assert await fetchval(postgres_url, "SELECT version FROM schema_version") == newest_migration()


async def test_reopening_keeps_the_data(store: PostgresStore) -> None:
    await reload(store, [story_at(1)])
    await store.close()

    await store.open()
    assert await store.story_count() == 1
    assert (await store.seed_index()).generation == 1


async def test_a_newer_schema_is_refused(store: PostgresStore) -> None:
    await store.close()
    newer = newest_migration() + 1
    await fetchval(store.url, f"UPDATE schema_version SET version = {newer}")

    with pytest.raises(StoreError) as refused:
        await PostgresStore(store.url).open()
    assert str(refused.value) == (
        f"database {store.url} has schema version {newer}; "
        f"this newsbot knows up to {newest_migration()}"
    )


async def test_a_reader_finds_no_database_where_newsbot_set_none_up(
    postgres_url: str, postgres_server: PostgresServer
) -> None:
    with pytest.raises(NoDatabase, match="no newsbot database at"):
        await PostgresStore(postgres_url, create=False).open()
    # Nothing was created in it.
    assert await fetchval(postgres_url, "SELECT to_regclass('schema_version')") is None

    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(NoDatabase, match="no database at"):
        await PostgresStore(missing, create=False).open()


async def test_a_server_that_does_not_answer_is_refused_in_one_line() -> None:
    # Port 1 on loopback: nothing listens there.
    url = "postgresql://newsbot:secret@127.0.0.1:1/newsbot"

    with pytest.raises(StoreError) as refused:
        await PostgresStore(url).open()
    message = str(refused.value)
    assert message.startswith(
        "cannot open database postgresql://newsbot:********@127.0.0.1:1/newsbot"
    )
    assert "secret" not in message and "\n" not in message


async def test_queries_before_open_raise_store_error(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    with pytest.raises(StoreError, match="not open"):
        await store.latest(5)
    with pytest.raises(StoreError, match="not open"):
        await store.seed_index()


def test_create_store_picks_postgresql_when_a_url_is_set(tmp_path: Path) -> None:
    url = "postgresql://bot@db.example/news"
    postgres = create_store(DatabaseSettings(path=tmp_path / "news.db", url=url))
    sqlite = create_store(DatabaseSettings(path=tmp_path / "news.db"))

    assert isinstance(postgres, PostgresStore) and postgres.url == url
    assert isinstance(sqlite, SqliteStore)


def test_postgres_store_has_the_signatures_of_the_store_protocol() -> None:
    roles = [role for role in Store.__mro__ if getattr(role, "_is_protocol", False)]
    members = sorted({name for role in roles for name in vars(role) if not name.startswith("_")})
    assert "apply_reload" in members
    for name in members:
        declared = getattr(Store, name)
        if isinstance(declared, property):
            assert isinstance(getattr(PostgresStore, name), property), name
            continue
        expected = inspect.signature(declared)
        assert inspect.signature(getattr(PostgresStore, name)) == expected, name


# --- the search's tsquery ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("rocket & !launch", "rocket launch"),
        ("rocket | coffee", "rocket coffee"),
        ("!rocket", "rocket"),
        ("rocket:*", "rocket"),
        ("rocket:A", '"rocket A"'),
        ("rocket <-> launch", "rocket launch"),
        ("rocket <2> launch", "rocket 2 launch"),
        ("'rocket'", "rocket"),
        ("rocket\\", "rocket"),
        ("rocket)) | ((coffee", "rocket coffee"),
    ],
)
async def test_tsquery_operators_in_a_search_are_plain_text(
    store: PostgresStore, query: str, words: str
) -> None:
    await searchable(store)
    assert await store.latest(10, query=parse_query(query)) == await store.latest(
        10, query=parse_query(words)
    )


async def test_a_search_with_tsquery_operators_finds_the_words_newest_first(
    store: PostgresStore,
) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query("!rocket & (launch | delay)"))) == [
        "Rocket launch delayed"
    ]
    # A colon inside a word joins its halves like an apostrophe: "maker" then "s...".
    assert titles(await store.latest(10, query=parse_query("maker:S"))) == ["Markets rally"]


@pytest.mark.parametrize("query", ["&", "!", ":*", "<->", "|", "'", "\\"])
def test_a_search_of_tsquery_operators_only_is_refused_before_any_store(query: str) -> None:
    with pytest.raises(QuerySyntaxError, match="Nothing to search for"):
        parse_query(query)


# --- query plans at a realistic size -----------------------------------------------------------


def headline(rng: random.Random, n: int) -> str:
    """Six words of a made-up language of 1,728 words (as varied as news text is, so that the
    planner's statistics are as they would be), with "zeppelin" in every 2,000th."""
    words = rng.sample(VOCABULARY, 6)
    if n % 2000 == 0:
        words[2] = "zeppelin"
    return " ".join(words).capitalize()


async def analysed_copy(
    postgres_server: PostgresServer, name: str, stories: Callable[[], list[Story]]
) -> str:
    """The URL of a fresh copy of a database holding `stories`, reloaded and analysed once per
    run into the template `name`."""

    async def fill(url: str) -> None:
        store = PostgresStore(url)
        await store.open()
        try:
            await reload(store, stories())
        finally:
            await store.close()
        await fetchval(url, "ANALYZE")

    template = await postgres_server.create_template(name, fill)
    return await postgres_server.create_database(template=template)


@asynccontextmanager
async def opened(postgres_server: PostgresServer, url: str) -> AsyncIterator[PostgresStore]:
    """A store on `url`, a copy that is dropped afterwards."""
    store = PostgresStore(url)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        await postgres_server.drop_database(url)


async def realistic(postgres_server: PostgresServer) -> str:
    """The URL of a fresh copy of a database of REALISTIC stories on 50 topics, analysed."""

    def stories() -> list[Story]:
        rng = random.Random(7)
        return [
            story_at(n, title=headline(rng, n), excerpt=" ".join(rng.sample(VOCABULARY, 12)),
                     topics=(f"Topic {n % 50}",))
            for n in range(REALISTIC)
        ]  # fmt: skip

    return await analysed_copy(postgres_server, "newsbot_store_realistic", stories)


@pytest.fixture
async def big(postgres_server: PostgresServer) -> AsyncIterator[PostgresStore]:
    async with opened(postgres_server, await realistic(postgres_server)) as store:
        yield store


def sorts_stories(plan: list[str]) -> bool:
    return any("Seq Scan on stories" in step for step in plan) and any(
        "Sort" in step for step in plan
    )


async def test_news_newest_first_walks_the_publication_index(big: PostgresStore) -> None:
    plan = await big.explain_latest()
    assert any("Index Scan Backward using stories_by_published" in step for step in plan), plan
    assert not any("Sort" in step or "Seq Scan" in step for step in plan), plan


async def test_news_on_a_topic_walks_the_topics_key_without_sorting(big: PostgresStore) -> None:
    plan = await big.explain_latest(topic="Topic 7")
    assert any("Scan Backward using story_topics_pkey" in step for step in plan), plan
    assert not sorts_stories(plan) and not any("Sort" in step for step in plan), plan


async def test_a_word_search_uses_the_gin_index(big: PostgresStore) -> None:
    plan = await big.explain_latest(query=parse_query("zeppelin"))
    assert any("stories_search" in step for step in plan), plan
    assert not sorts_stories(plan), plan
    assert len(await big.latest(20, query=parse_query("zepp"))) == REALISTIC // 2000


# --- word searches on news-like text -----------------------------------------------------------

# News text: every story is written from the same few hundred words, so ANALYZE keeps fewer than
# 100 of them and the planner guesses 2% for any word prefix it does not know (rare or absent
# alike): with one statement it walked the publication index through every story for an absent
# word. NEWSY_WORDS stands for that vocabulary; the probe words below are outside it.
NEWSY_WORDS = VOCABULARY[:60]
RARE = "zeppelin"  # in every 2,000th story: 10
UNCOMMON = "dirigible"  # in 1% of the stories: too few for the newest 500 to fill a page
ABSENT = "quixotry"
NEWSY_TOPICS = 20


def newsy_story(rng: random.Random, n: int, minutes: int) -> Story:
    words = rng.choices(NEWSY_WORDS, k=10)
    if n % 2000 == 0:
        words[3] = RARE
    if rng.random() < 0.01:
        words[5] = UNCOMMON
    return story_at(
        n,
        minutes=minutes,
        title=" ".join(words).capitalize(),
        excerpt=" ".join(rng.choices(NEWSY_WORDS, k=30)),
        topics=(f"Topic {n % NEWSY_TOPICS}",),
    )


async def newsy(postgres_server: PostgresServer) -> str:
    """The URL of a fresh copy of a database of REALISTIC news-like stories, published in an
    order unrelated to their numbers, analysed."""

    def stories() -> list[Story]:
        rng = random.Random(11)
        minutes = rng.sample(range(REALISTIC * 3), REALISTIC)
        return [newsy_story(rng, n, minutes[n]) for n in range(REALISTIC)]

    return await analysed_copy(postgres_server, "newsbot_store_newsy", stories)


@pytest.fixture
async def news_text(postgres_server: PostgresServer) -> AsyncIterator[PostgresStore]:
    async with opened(postgres_server, await newsy(postgres_server)) as store:
        yield store


def rows_read(plan: list[str]) -> int:
    """Rows the plan's steps read and threw away (EXPLAIN ANALYZE's "Rows Removed by ...")."""
    return sum(int(line.rsplit(":", 1)[1]) for line in plan if "Rows Removed by" in line)


def never_ran(plan: list[str], step: str) -> bool:
    return all("never executed" in line for line in plan if step in line)


@pytest.mark.parametrize("topic", [None, "Topic 3"])
async def test_a_rare_or_absent_word_is_found_through_the_word_index_not_by_reading_every_story(
    news_text: PostgresStore, topic: str | None
) -> None:
    for word in (RARE, ABSENT):
        plan = await news_text.explain_latest(topic=topic, query=parse_query(word), analyze=True)

        assert any("Bitmap Index Scan on stories_search" in line for line in plan), plan
        # At most the recent window is read and filtered, never the 20,000 stories.
        assert rows_read(plan) <= RECENT_WINDOW + NEWSY_TOPICS, plan
        assert not any("Seq Scan on stories" in line for line in plan), plan


async def test_a_rare_word_on_a_common_topic_looks_up_each_match_not_the_whole_topic(
    news_text: PostgresStore,
) -> None:
    plan = await news_text.explain_latest(
        topic="Topic 1", query=parse_query(UNCOMMON), analyze=True
    )

    assert not never_ran(plan, "Bitmap Index Scan on stories_search"), plan
    assert not any("Hash" in line for line in plan), plan
    # Each match's topic row is found through an index (of the key or by story).
    assert any("Index" in line and "on story_topics st" in line for line in plan), plan


@pytest.mark.parametrize("topic", [None, "Topic 3"])
async def test_a_common_word_fills_the_page_from_the_newest_stories_without_the_word_index(
    news_text: PostgresStore, topic: str | None
) -> None:
    plan = await news_text.explain_latest(
        topic=topic, query=parse_query(NEWSY_WORDS[7]), analyze=True
    )

    assert never_ran(plan, "Bitmap Index Scan on stories_search"), plan
    assert rows_read(plan) <= RECENT_WINDOW + NEWSY_TOPICS, plan


# The one statement newsbot used before the recent window: what every search must still return.
_PLAIN_MATCHING = (
    "SELECT s.id FROM stories AS s WHERE s.search @@ to_tsquery('simple', $1)"
    " AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM story_topics AS st"
    " JOIN topics AS t ON t.id = st.topic_id WHERE st.story_id = s.id AND t.key = $2))"
    " ORDER BY s.published_at DESC, s.id DESC LIMIT $3 OFFSET $4"
)


@pytest.mark.parametrize(
    ("limit", "offset"), [(6, 0), (11, 5), (6, 490), (20, 495), (6, 600), (3, 2000)]
)
async def test_every_page_of_a_search_is_the_matches_newest_first_wherever_they_are_found(
    news_text: PostgresStore, limit: int, offset: int
) -> None:
    connection = await asyncpg.connect(news_text.url)
    try:
        for word in (
            NEWSY_WORDS[7],
            f"{NEWSY_WORDS[7]} {NEWSY_WORDS[9]}",
            f'"{NEWSY_WORDS[7]} {NEWSY_WORDS[9]}"',
            UNCOMMON,
            RARE,
            ABSENT,
        ):
            for topic in (None, "Topic 1"):
                expected = await connection.fetch(
                    _PLAIN_MATCHING,
                    to_tsquery(parse_query(word)),
                    None if topic is None else topic.lower(),
                    limit,
                    offset,
                )
                stories = await news_text.latest(
                    limit, offset=offset, topic=topic, query=parse_query(word)
                )

                assert [story.id for story in stories] == [row[0] for row in expected], (
                    word,
                    topic,
                )
    finally:
        await connection.close()


# --- how a word search finds its matches at any size -------------------------------------------

# Two words of the vocabulary, next to each other in about 1% of the stories (the words
# themselves in half of them): the index would fetch and test every story holding both.
COMMON_PHRASE = f'"{NEWSY_WORDS[7]} {NEWSY_WORDS[9]}"'


def ran(plan: list[str], step: str) -> bool:
    return any(step in line and "never executed" not in line for line in plan)


def without_estimates(plan: list[str]) -> list[str]:
    return [re.sub(r"\(cost=[^)]*\)", "", line) for line in plan]


@pytest.mark.parametrize("topic", [None, "Topic 3"])
async def test_a_search_is_planned_the_same_whatever_its_words(
    news_text: PostgresStore, topic: str | None
) -> None:
    plans = [
        without_estimates(await news_text.explain_latest(topic=topic, query=parse_query(words)))
        for words in (NEWSY_WORDS[7], UNCOMMON, RARE, ABSENT)
    ]

    assert all(plan == plans[0] for plan in plans), plans


async def test_a_phrase_of_common_words_walks_on_newest_first_not_through_every_story_with_both(
    news_text: PostgresStore,
) -> None:
    plan = await news_text.explain_latest(query=parse_query(COMMON_PHRASE), analyze=True)

    assert not ran(plan, "Bitmap Index Scan on stories_search"), plan
    assert rows_read(plan) < REALISTIC // 10, plan
    assert len(await news_text.latest(6, query=parse_query(COMMON_PHRASE))) == 6


async def test_an_uncommon_word_is_found_through_the_word_index_after_the_newest_stories(
    news_text: PostgresStore,
) -> None:
    plan = await news_text.explain_latest(query=parse_query(UNCOMMON), analyze=True)

    assert ran(plan, "Bitmap Index Scan on stories_search"), plan
    assert rows_read(plan) <= RECENT_WINDOW, plan


@pytest.mark.parametrize("topic", [None, "Topic 3"])
async def test_a_count_of_a_common_word_walks_newest_first_until_past_the_cap(
    news_text: PostgresStore, topic: str | None
) -> None:
    query = parse_query(NEWSY_WORDS[7])
    plan = await news_text.explain_count(query, topic=topic, cap=300, analyze=True)

    assert not ran(plan, "Bitmap Index Scan on stories_search"), plan
    # The word is in about half the stories: some 600 are read, not the 20,000.
    assert rows_read(plan) < 2 * 301, plan
    assert await news_text.count_matching(query, topic=topic, cap=300) == 301


@pytest.mark.parametrize("words", [UNCOMMON, RARE, ABSENT])
async def test_a_count_of_a_rarer_word_counts_its_matches_in_the_word_index(
    news_text: PostgresStore, words: str
) -> None:
    plan = await news_text.explain_count(parse_query(words), cap=1000, analyze=True)

    assert ran(plan, "Bitmap Index Scan on stories_search"), plan
    assert rows_read(plan) <= RECENT_WINDOW, plan


async def test_relevance_ranks_the_newest_matches_of_a_common_word_read_newest_first(
    news_text: PostgresStore,
) -> None:
    plan = await news_text.explain_latest(
        query=parse_query(NEWSY_WORDS[7]), order=Order.RELEVANCE, analyze=True
    )

    assert not ran(plan, "Bitmap Index Scan on stories_search"), plan
    assert rows_read(plan) < 2 * RELEVANCE_WINDOW + RECENT_WINDOW, plan
    assert any("ts_rank" in line for line in plan), plan


async def test_store_statements_are_never_held_up_by_jit_compilation_or_parallel_workers(
    store: PostgresStore,
) -> None:
    # A word search's plan costs more than jit_above_cost through the branch it does not run:
    # compiling it took 30-50 ms, running it a quarter of a millisecond.
    assert (await store._read("SHOW jit"))[0][0] == "off"
    assert (await store._read("SHOW max_parallel_workers_per_gather"))[0][0] == "0"


async def test_a_reload_leaves_no_words_waiting_in_the_word_index_pending_list(
    store: PostgresStore,
) -> None:
    await reload(store, [story_at(n, title=f"Story {n} about zeppelins") for n in range(50)])

    # What every word search would otherwise read through: the pages it still had to flush.
    assert await fetchval(store.url, "SELECT gin_clean_pending_list('stories_search')") == 0


@pytest.mark.parametrize("cap", [0, 5, 150, 1000, 30_000])
async def test_a_count_is_the_matches_up_to_the_cap_and_one_more_wherever_they_are_found(
    news_text: PostgresStore, cap: int
) -> None:
    connection = await asyncpg.connect(news_text.url)
    try:
        for words in (NEWSY_WORDS[7], COMMON_PHRASE, UNCOMMON, RARE, ABSENT):
            for topic in (None, "Topic 1"):
                matches = await connection.fetch(
                    _PLAIN_MATCHING,
                    to_tsquery(parse_query(words)),
                    None if topic is None else topic.lower(),
                    None,
                    0,
                )
                counted = await news_text.count_matching(parse_query(words), topic=topic, cap=cap)

                assert counted == min(len(matches), cap + 1), (words, topic)
    finally:
        await connection.close()


_PLAIN_RANKED = (
    "WITH newest AS (SELECT id, published_at, search FROM stories"
    " WHERE search @@ to_tsquery('simple', $1) ORDER BY published_at DESC, id DESC LIMIT $2)"
    " SELECT id FROM newest ORDER BY ts_rank(search, to_tsquery('simple', $1)) DESC,"
    " published_at DESC, id DESC LIMIT $3 OFFSET $4"
)


@pytest.mark.parametrize(("limit", "offset"), [(6, 0), (5, 10), (6, 995)])
async def test_relevance_ranks_the_newest_matches_wherever_they_are_found(
    news_text: PostgresStore, limit: int, offset: int
) -> None:
    connection = await asyncpg.connect(news_text.url)
    try:
        for words in (NEWSY_WORDS[7], COMMON_PHRASE, UNCOMMON, RARE):
            expected = await connection.fetch(
                _PLAIN_RANKED, to_tsquery(parse_query(words)), RELEVANCE_WINDOW, limit, offset
            )
            stories = await news_text.latest(
                limit, offset=offset, query=parse_query(words), order=Order.RELEVANCE
            )

            assert [story.id for story in stories] == [row[0] for row in expected], words
    finally:
        await connection.close()
