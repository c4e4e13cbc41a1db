"""Target (d): how fast newsbot answers /news, /topics and topic autocomplete at N stories.

With N synthetic stories stored (bench.million, default 1,000,000; a private copy of the cached
database, since the bot writes its command-sync hash), newsbot (bot.app.NewsBot, built as
tests/helpers.py's build_newsbot does, with reload_seeds_at_start=False so that no seed folder
retires the synthetic stories, and the digest scheduler off) runs against the local Discord
emulator (tests/discord_emulator) *in this process and event loop*: the figures include the
emulator's own work (building the INTERACTION_CREATE dispatch, serving the callback POST).
Emulator rate limits are raised so that they never delay a request (interaction callbacks are
exempt from them anyway).

With --backend postgres (or both: SQLite, then PostgreSQL, in one run), the same stories are
copied into a throwaway PostgreSQL server (tests/postgres.py, or NEWSBOT_TEST_DATABASE_URL's)
by bench.million.load_into_postgres, and newsbot runs on it (database.url).

Before measuring, add_probe_stories adds what the synthetic build lacks: a rare topic, a rare
word and an uncommon one (0.1% of a million); an absent word is in no story. Those stories come
in one reload, so they lie together on disk; on PostgreSQL a second uncommon word is added while
the build is copied in, to the title of every 1,000th story, so that its stories lie spread over
the whole table ("uncommon word, spread"; the SQLite build has no such word).

Measured, per run, each after a warm-up:
- /news topic:X end to end: from `emu.invoke(...)` (the gateway dispatch) until the emulator
  holds the bot's accepted reply callback (`await handle.response()`); X cycles through the
  common topics, in varying letter case; then the rare topic;
- /news query:words end to end, --queries of each kind of search (SEARCH_KINDS): a common word
  (of the synthetic vocabulary, in ~78% of stories), two common words, the uncommon word, the
  rare word, the absent word, a prefix (4-5 letters of a long common word: "recog", "surv"), a
  phrase (two common words in quotes, adjacent in ~3% of stories), an OR (a common word OR the
  rare one), an exclusion (a common word -another common word), and a common word on a common
  topic (the topic option);
- the database part of each alone: `store.latest(6, topic=..., query=parse_query(...))` (a
  page of 5 and one more) on the bot's own store, timed directly; and, database only (no
  target), relevance order (`order=Order.RELEVANCE`) and the header's count
  (`count_matching(cap=MATCH_COUNT_CAP)`) for a common word;
- autocomplete of /news topic: `emu.autocomplete(..., focused="topic", value=prefix)` with
  prefixes of 0-4 letters, until the bot's choices are back;
- /topics end to end, like /news.
Figures are medians over runs of each run's p50 / p99 (nearest rank); pooled percentiles and
every run's figures are in the JSON details.

    python -m bench.news_latency                    # SQLite, 1,000,000 stories, 3 runs
    python -m bench.news_latency --backend both     # SQLite and PostgreSQL in one run
    python -m bench.news_latency --n 2000 --requests 100 --runs 1    # smoke run
    python -m bench.news_latency --profile /tmp/news.prof   # cProfile the /news loop (per backend)
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import logging
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed
import discord
import discord.gateway
import discord.http
import yarl

from bench.common import Figure, median, percentile, report
from bench.corpus import TOPICS, WORDS
from bench.million import Spread, StoryMaker, load_into_postgres, million_store
from bot.app import NewsBot
from bot.app import build_bot as app_build_bot
from bot.config import DatabaseSettings, SeedSettings, Settings
from bot.search_query import MATCH_COUNT_CAP, Order, parse_query
from bot.store import Store
from bot.store.base import ReloadChanges
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.postgres import PostgresServer

TARGETS_MS = {
    "news_p50": 10.0,
    "news_p99": 30.0,
    "db_p99": 1.0,
    "postgres_db_p99": 5.0,
    "autocomplete_p99": 10.0,
    "topics_p99": 10.0,
}
# /news shows 5 stories a page by default, and asks for one more.
PAGE = 5
# Probe stories added to the build (add_probe_stories): a topic and words it lacks.
RARE_STORIES = 40
RARE_TOPIC = "Airships"
RARE_WORD = "zeppelin"
UNCOMMON_STORIES = 1000
UNCOMMON_WORD = "dirigible"
# On PostgreSQL, in every SPREAD_EVERY-th story copied in (0.1% of them, spread over the table).
SPREAD_WORD = "aerostat"
SPREAD_EVERY = 1000
ABSENT_WORD = "quixotry"
# Each kind of word search, end to end (/news query:...) and in the database (latest).
SEARCH_KINDS = ("common word", "two common words", "uncommon word", "uncommon word, spread",
                "rare word", "absent word", "prefix", "phrase", "OR", "exclusion",
                "word on a topic")  # fmt: skip
# Kinds whose words only the PostgreSQL database holds.
POSTGRES_ONLY_KINDS = ("uncommon word, spread",)
# Measured in the database only, for a common word, without a target.
DB_ONLY_KINDS = ("relevance", "count")
COUNT_CAP = MATCH_COUNT_CAP
# Long common words, whose first 4-5 letters make a prefix search ("recog", "surv").
LONG_WORDS = [word for word in WORDS if len(word) >= 8]
PREFIXES = ["", "a", "c", "s", "e", "m", "co", "se", "sp", "ro", "cl", "ch", "bio", "pri", "gam",
            "tra", "euro", "comp", "secu", "mark", "x", "zz"]  # fmt: skip


def topic_spellings(rng: random.Random, count: int) -> list[str]:
    """`count` topic names, cycling through all of them, in the case a user might type."""
    names = []
    for index in range(count):
        name = TOPICS[index % len(TOPICS)]
        names.append(rng.choice([name, name.lower(), name.upper()]))
    return names


async def timed(samples: list[float], action: Callable[[], Awaitable[Any]]) -> Any:
    started = time.perf_counter()
    result = await action()
    samples.append((time.perf_counter() - started) * 1000.0)
    return result


def summary(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"count": 0}
    return {
        "count": len(samples),
        "p50": percentile(samples, 0.50),
        "p90": percentile(samples, 0.90),
        "p99": percentile(samples, 0.99),
        "max": max(samples),
        "mean": sum(samples) / len(samples),
    }


@dataclass(frozen=True, slots=True)
class Backend:
    """Where the bot under measurement keeps its stories."""

    name: str
    database: DatabaseSettings
    loaded_in: float | None = None  # seconds to load PostgreSQL from the SQLite build
    sizes: dict[str, int] | None = None  # PostgreSQL: bytes of the tables and indexes searched


# The relations a word search reads, and their size on disk (main fork, TOAST apart).
_SIZES = (
    "SELECT relname, pg_relation_size(oid) FROM pg_class WHERE relname = ANY(ARRAY['stories',"
    " 'stories_search', 'stories_by_published'])"
)


@asynccontextmanager
async def prepared(name: str, args: argparse.Namespace, workdir: Path) -> AsyncIterator[Backend]:
    """The million-story database for one backend, with the probe stories added and the
    statistics as a serving database would have them; removed afterwards."""
    started = time.perf_counter()
    if name == "sqlite":
        db = await million_store(args.n, workdir / "news.db")
        await add_probe_stories(SqliteStore(db))
        print(f"sqlite: database ready in {time.perf_counter() - started:.1f} s: {db}")
        yield Backend(name, DatabaseSettings(db))
        return
    # A throwaway server (tests/postgres.py), or NEWSBOT_TEST_DATABASE_URL's.
    server = PostgresServer.from_environment(os.environ)
    await asyncio.to_thread(server.start)
    try:
        url = await server.create_database()
        try:
            cached = await million_store(args.n)
            loaded_in = await load_into_postgres(
                cached, url, spread_word=Spread(SPREAD_WORD, SPREAD_EVERY)
            )
            await add_probe_stories(PostgresStore(url))
            connection = await asyncpg.connect(url)
            try:
                await connection.execute("ANALYZE")  # as autovacuum would after the reload
                sizes = {row[0]: row[1] for row in await connection.fetch(_SIZES)}
            finally:
                await connection.close()
            print(f"postgres: database ready in {time.perf_counter() - started:.1f} s; {sizes}")
            yield Backend(name, DatabaseSettings(workdir / "unused.db", url=url), loaded_in, sizes)
        finally:
            await server.drop_database(url)
    finally:
        await asyncio.to_thread(server.stop)


async def add_probe_stories(store: Store) -> None:
    """Stories that the synthetic build lacks, so that rare topics and rare or uncommon words
    can be asked for: RARE_STORIES on RARE_TOPIC with RARE_WORD in the title, and
    UNCOMMON_STORIES (0.1% of a million) with UNCOMMON_WORD. Written through the store, in one
    reload, like any seed folder's."""
    maker = StoryMaker(seed=99)
    stories = []
    for index in range(RARE_STORIES + UNCOMMON_STORIES):
        story = maker.story()
        rare = index < RARE_STORIES
        word = RARE_WORD if rare else UNCOMMON_WORD
        title = f"{story.title} {word} {story.title.split()[0].lower()}"
        topics = (RARE_TOPIC,) if rare else story.topics
        stories.append(replace(story, title=title, topics=topics))
    await store.open()
    try:
        generation = (await store.seed_index()).generation
        await store.apply_reload(
            ReloadChanges(
                expected_generation=generation,
                reloaded_at=datetime.now(UTC),
                upsert=[
                    (store.encode_story(story), f"probe/{story.id:016x}.txt") for story in stories
                ],
                folder="",
            )
        )
    finally:
        await store.close()


def build_bot(database: DatabaseSettings, seeds: Path) -> NewsBot:
    """newsbot as the tests build it (tests/helpers.py's build_newsbot), on `database`, without
    the start-up reload (no seed files here) and without the digest scheduler."""
    settings = Settings(seeds=SeedSettings(folder=seeds, workers=1), database=database)
    return app_build_bot(
        settings, reload_seeds_at_start=False, schedule_digests=False, guild_ready_timeout=0.1
    )


async def measure_backend(
    backend: Backend, args: argparse.Namespace, workdir: Path
) -> tuple[list[dict[str, Any]], int, str]:
    """(each run's figures by kind, stories stored, profile text) for one backend."""
    seeds = workdir / "seeds"
    seeds.mkdir(exist_ok=True)
    rng = random.Random(args.seed)

    emu = DiscordEmulator()
    await emu.start()
    # What tests/discord_emulator.point_client_at does with pytest's monkeypatch.
    discord.http.Route.BASE = emu.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
    emu.limits.lift_rate_limits()
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    reader = emu.add_member(guild, "reader")

    bot = build_bot(backend.database, seeds)
    search_kinds = searches_of(backend.name)
    runs: list[dict[str, Any]] = []
    profile_text = ""
    try:
        async with running_bot(bot, emu, loggers=("discord", "bot")):
            store = bot.store
            stored = await store.story_count()
            print(f"{backend.name}: newsbot ready with {stored:,} stories")

            async def news(options: dict[str, Any]) -> None:
                handle = await emu.invoke(guild, channel, reader, "news", options)
                reply = await handle.response(timeout=30)
                # A search that finds nothing is answered too, with a short ephemeral message
                # (an absent word; the rare word on a topic other than its own).
                if reply.type != 4 or ("query" not in options and not reply.embeds):
                    raise AssertionError(f"/news {options} answered {reply}")

            async def topics() -> None:
                handle = await emu.invoke(guild, channel, reader, "topics")
                reply = await handle.response(timeout=10)
                if reply.type != 4 or not reply.embeds:
                    raise AssertionError(f"/topics answered {reply}")

            async def autocomplete(prefix: str) -> None:
                await emu.autocomplete(
                    guild, channel, reader, "news", focused="topic", value=prefix, timeout=10
                )

            async def latest(options: dict[str, Any]) -> None:
                # What /news asks the store for a page of 5 (one more tells if a next exists).
                query = parse_query(options["query"]) if "query" in options else None
                await store.latest(PAGE + 1, topic=options.get("topic"), query=query)

            async def database_only(kind: str, options: dict[str, Any]) -> None:
                query = parse_query(options["query"])
                if kind == "relevance":
                    await store.latest(PAGE + 1, query=query, order=Order.RELEVANCE)
                else:
                    await store.count_matching(query, cap=COUNT_CAP)

            # Warm-up: every kind of request, and every topic, a few times.
            for options in probes(rng, "topic", args.warmup):
                await news(options)
                await latest(options)
            for kind in search_kinds:
                for options in probes(rng, kind, max(2, args.warmup // 10)):
                    await news(options)
                    await latest(options)
            for kind in DB_ONLY_KINDS:
                for options in probes(rng, "common word", max(2, args.warmup // 10)):
                    await database_only(kind, options)
            for prefix in PREFIXES:
                await autocomplete(prefix)
            for _ in range(max(1, args.warmup // 5)):
                await topics()

            for run in range(args.runs):
                gc.collect()
                samples: dict[str, list[float]] = {}
                for kind in ("topic", "rare topic", *search_kinds):
                    count = args.requests if kind == "topic" else args.queries
                    for options in probes(rng, kind, count):
                        await timed(samples.setdefault(kind, []), lambda o=options: news(o))
                    for options in probes(rng, kind, count):
                        await timed(
                            samples.setdefault(f"db {kind}", []), lambda o=options: latest(o)
                        )
                for kind in DB_ONLY_KINDS:
                    for options in probes(rng, "common word", args.queries):
                        await timed(
                            samples.setdefault(f"db {kind}", []),
                            lambda k=kind, o=options: database_only(k, o),
                        )
                samples["autocomplete"] = []
                for index in range(args.requests):
                    prefix = PREFIXES[index % len(PREFIXES)]
                    await timed(samples["autocomplete"], lambda p=prefix: autocomplete(p))
                samples["topics"] = []
                for _ in range(args.requests):
                    await timed(samples["topics"], topics)
                runs.append({name: summary(values) for name, values in samples.items()})
                runs[-1]["_raw"] = samples
                line = "  ".join(
                    f"{name} {runs[-1][name]['p50']:.2f}/{runs[-1][name]['p99']:.2f}"
                    for name in samples
                )
                print(f"{backend.name} run {run + 1}/{args.runs}, p50/p99 ms: {line}", flush=True)

            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for options in probes(rng, "topic", args.requests):
                    await news(options)
                profiler.disable()
                profiler.dump_stats(args.profile.with_suffix(f".{backend.name}.prof"))
                stream = io.StringIO()
                stats = pstats.Stats(profiler, stream=stream)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(25)
                profile_text = stream.getvalue()
                print(profile_text)
    finally:
        await emu.stop()
    return runs, stored, profile_text


def searches_of(backend: str) -> tuple[str, ...]:
    """The kinds of word search measured on `backend`."""
    if backend == "postgres":
        return SEARCH_KINDS
    return tuple(kind for kind in SEARCH_KINDS if kind not in POSTGRES_ONLY_KINDS)


def probes(rng: random.Random, kind: str, count: int) -> list[dict[str, Any]]:
    """`count` /news options of one kind: "topic" (the common topics, cycling, in the letter
    case a user might type), "rare topic", or a kind of word search (SEARCH_KINDS)."""
    if kind == "topic":
        return [{"topic": topic} for topic in topic_spellings(rng, count)]
    if kind == "rare topic":
        return [{"topic": rng.choice([RARE_TOPIC, RARE_TOPIC.lower()])} for _ in range(count)]
    options = []
    for _ in range(count):
        option: dict[str, Any] = {"query": search_words(rng, kind)}
        if kind == "word on a topic":
            option["topic"] = rng.choice(TOPICS)
        options.append(option)
    return options


def search_words(rng: random.Random, kind: str) -> str:
    """What a reader types in /news query: for one kind of search (SEARCH_KINDS)."""
    common, other = rng.sample(WORDS, 2)
    match kind:
        case "common word" | "word on a topic":
            return common
        case "two common words":
            return f"{common} {other}"
        case "uncommon word":
            return UNCOMMON_WORD
        case "uncommon word, spread":
            return SPREAD_WORD
        case "rare word":
            return RARE_WORD
        case "absent word":
            return ABSENT_WORD
        case "prefix":
            return rng.choice(LONG_WORDS)[: rng.choice((4, 5))]
        case "phrase":
            return f'"{common} {other}"'
        case "OR":
            return f"{common} OR {RARE_WORD}"
        case "exclusion":
            return f"{common} -{other}"
    raise ValueError(f"no such kind of search: {kind}")


def figures_of(backend: str, runs: list[dict[str, Any]]) -> list[Figure]:
    def fig(kind: str, stat: str) -> float:
        return median([run[kind][stat] for run in runs])

    def target(kind: str, stat: str) -> float | None:
        if stat == "p50":
            return TARGETS_MS["news_p50"] if kind == "topic" else None
        if kind in (f"db {name}" for name in DB_ONLY_KINDS):
            return None
        if kind.startswith("db "):
            # SQLite's FTS5 builds a word's whole match list: no target (see BENCHMARKS.md).
            if backend == "sqlite":
                return TARGETS_MS["db_p99"] if kind in ("db topic", "db rare topic") else None
            return TARGETS_MS["postgres_db_p99"]
        if kind in ("autocomplete", "topics"):
            return TARGETS_MS[f"{kind}_p99"]
        return (
            TARGETS_MS["news_p99"]
            if backend == "postgres" or kind in ("topic", "rare topic")
            else None
        )

    names = {"topic": "/news topic", "rare topic": "/news rare topic",
             "autocomplete": "autocomplete", "topics": "/topics"}  # fmt: skip
    db_names = {"relevance": "latest(6, common word, relevance)",
                "count": f"count_matching(common word, cap={COUNT_CAP})"}  # fmt: skip
    figures = []
    for kind in runs[0]:
        if kind == "_raw":
            continue
        name = names.get(kind) or (
            db_names.get(kind[3:], f"latest(6, {kind[3:]})")
            if kind.startswith("db ")
            else f"/news {kind}"
        )
        for stat in ("p50", "p99"):
            figures.append(
                Figure(f"{backend} {name} {stat}", fig(kind, stat), "ms", target(kind, stat))
            )
    return figures


async def measure(args: argparse.Namespace) -> None:
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    figures: list[Figure] = []
    details: dict[str, Any] = {
        "n": args.n,
        "backends": backends,
        "runs": args.runs,
        "requests_per_run": args.requests,
        "queries_per_run_and_kind": args.queries,
        "warmup": args.warmup,
        "probe_stories": {
            "rare": [RARE_STORIES, RARE_TOPIC, RARE_WORD],
            "uncommon": [UNCOMMON_STORIES, UNCOMMON_WORD],
            "uncommon, spread (postgres)": [f"every {SPREAD_EVERY}th story", SPREAD_WORD],
            "absent": ABSENT_WORD,
        },
        "search_kinds": {kind: search_words(random.Random(1), kind) for kind in SEARCH_KINDS},
        "setup": (
            "bot (NewsBot, reload_seeds_at_start=False, digests off) and Discord emulator "
            "in one process and one asyncio event loop: end-to-end times include the "
            "emulator's own dispatch and callback handling; emulator rate limits raised; "
            "SQLite: a fresh copy of the bench/.cache build (so mostly in the OS page "
            "cache); PostgreSQL: a throwaway server (tests/postgres.py: fsync off, default "
            "shared_buffers) on 127.0.0.1 loaded from the same build by COPY, then ANALYZE"
        ),
        "figures_are": "median over runs of each run's nearest-rank percentile, in ms",
    }
    for name in backends:
        workdir = Path(tempfile.mkdtemp(prefix="newsbot-bench-"))
        try:
            async with prepared(name, args, workdir) as backend:
                runs, stored, profile_text = await measure_backend(backend, args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        figures += figures_of(name, runs)
        if backend.loaded_in is not None:
            figures.append(Figure("postgres load from the SQLite build", backend.loaded_in, "s"))
        pooled = {
            kind: summary([value for run in runs for value in run["_raw"][kind]])
            for kind in runs[0]["_raw"]
        }
        details[name] = {
            "stories_stored": stored,
            "load_seconds": backend.loaded_in,
            "relation_bytes": backend.sizes,
            "pooled_ms": pooled,
            "per_run_ms": [
                {kind: stats for kind, stats in run.items() if kind != "_raw"} for run in runs
            ],
            "profile_top": profile_text[:6000] if profile_text else None,
        }
    report("news_latency", figures, details)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="stories stored")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind a run")
    parser.add_argument("--warmup", type=int, default=48)
    parser.add_argument(
        "--queries", type=int, default=60, help="/news query:words a run, of each kind of word"
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="sqlite")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="cProfile one more /news loop into this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
