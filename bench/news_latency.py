"""Target (d): how fast newsbot answers /news, /topics and topic autocomplete at N stories.

With N synthetic stories stored (bench.million, default 1,000,000; a private copy of the cached
database, since the bot writes its command-sync hash), newsbot (bot.app.NewsBot, built as
tests/helpers.py's build_newsbot does, with reload_seeds_at_start=False so that no seed folder
retires the synthetic stories, and the digest scheduler off) runs against the local Discord
emulator (tests/discord_emulator) *in this process and event loop*: the figures include the
emulator's own work (building the INTERACTION_CREATE dispatch, serving the callback POST).
Emulator rate limits are raised so that they never delay a request (interaction callbacks are
exempt from them anyway).

Measured, per run, each after a warm-up:
- /news topic:X end to end: from `emu.invoke(...)` (the gateway dispatch) until the emulator
  holds the bot's accepted reply callback (`await handle.response()`); X cycles through the
  topics, in varying letter case;
- the database part alone: `store.latest(5, topic=X)` on the bot's own store, timed directly;
- autocomplete of /news topic: `emu.autocomplete(..., focused="topic", value=prefix)` with
  prefixes of 0-4 letters, until the bot's choices are back;
- /topics end to end, like /news;
- /news query:words (informational, no target): 1-2 words of the synthetic vocabulary, half of
  them with a topic too; --queries of them a run (each walks the full-text matches, so they
  are hundreds of times slower than a topic page).
Figures are medians over runs of each run's p50 / p99 (nearest rank); pooled percentiles and
every run's figures are in the JSON details.

    python -m bench.news_latency                    # 1,000,000 stories, 3 runs x 300 requests
    python -m bench.news_latency --n 2000 --requests 100 --runs 1    # smoke run
    python -m bench.news_latency --profile /tmp/news.prof            # cProfile the /news loop
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import logging
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from bench.common import Figure, median, percentile, report
from bench.corpus import TOPICS, WORDS
from bench.million import million_store
from bot.app import NewsBot
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.helpers import build_newsbot

TARGETS_MS = {
    "news_p50": 10.0,
    "news_p99": 30.0,
    "db_p99": 1.0,
    "autocomplete_p99": 10.0,
    "topics_p99": 10.0,
}
PREFIXES = ["", "a", "c", "s", "e", "m", "co", "se", "sp", "ro", "cl", "ch", "bio", "pri", "gam",
            "tra", "euro", "comp", "secu", "mark", "x", "zz"]  # fmt: skip


def topic_spellings(rng: random.Random, count: int) -> list[str]:
    """`count` topic names, cycling through all of them, in the case a user might type."""
    names = []
    for index in range(count):
        name = TOPICS[index % len(TOPICS)]
        names.append(rng.choice([name, name.lower(), name.upper()]))
    return names


def build_bot(db: Path, seeds: Path) -> NewsBot:
    """newsbot as the tests build it, without the start-up reload (no seed files here)."""
    return build_newsbot(db.parent, seeds, database=db, reload_seeds_at_start=False)


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


async def measure(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="newsbot-bench-"))
    started = time.perf_counter()
    db = await million_store(args.n, workdir / "news.db")
    print(f"database ready in {time.perf_counter() - started:.1f} s: {db}")
    seeds = workdir / "seeds"
    seeds.mkdir()
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

    bot = build_bot(db, seeds)
    runs: list[dict[str, dict[str, float]]] = []
    profile_text = ""
    try:
        async with running_bot(bot, emu, loggers=("discord", "bot")):
            store = bot.store
            stored = await store.story_count()
            print(f"newsbot ready with {stored:,} stories")

            async def news(topic: str) -> None:
                handle = await emu.invoke(guild, channel, reader, "news", {"topic": topic})
                reply = await handle.response(timeout=10)
                if reply.type != 4 or not reply.embeds:
                    raise AssertionError(f"/news topic:{topic} answered {reply}")

            async def topics() -> None:
                handle = await emu.invoke(guild, channel, reader, "topics")
                reply = await handle.response(timeout=10)
                if reply.type != 4 or not reply.embeds:
                    raise AssertionError(f"/topics answered {reply}")

            async def autocomplete(prefix: str) -> None:
                await emu.autocomplete(
                    guild, channel, reader, "news", focused="topic", value=prefix, timeout=10
                )

            async def news_query(options: dict[str, Any]) -> None:
                handle = await emu.invoke(guild, channel, reader, "news", options)
                reply = await handle.response(timeout=10)
                if reply.type != 4:
                    raise AssertionError(f"/news {options} answered {reply}")

            def query_options() -> dict[str, Any]:
                options: dict[str, Any] = {"query": " ".join(rng.sample(WORDS, rng.randint(1, 2)))}
                if rng.random() < 0.5:
                    options["topic"] = rng.choice(TOPICS)
                return options

            async def latest(topic: str) -> None:
                stories = await store.latest(5, topic=topic)
                if len(stories) != 5:
                    raise AssertionError(f"latest(5, topic={topic!r}) gave {len(stories)}")

            # Warm-up: every kind of request, and every topic, a few times.
            for topic in topic_spellings(rng, args.warmup):
                await news(topic)
                await latest(topic)
            for prefix in PREFIXES:
                await autocomplete(prefix)
            for _ in range(max(1, args.warmup // 5)):
                await topics()

            for run in range(args.runs):
                gc.collect()
                samples: dict[str, list[float]] = {
                    "news": [], "db": [], "autocomplete": [], "topics": [], "query": []
                }  # fmt: skip
                for topic in topic_spellings(rng, args.requests):
                    await timed(samples["news"], lambda t=topic: news(t))
                for topic in topic_spellings(rng, args.requests):
                    await timed(samples["db"], lambda t=topic: latest(t))
                for index in range(args.requests):
                    prefix = PREFIXES[index % len(PREFIXES)]
                    await timed(samples["autocomplete"], lambda p=prefix: autocomplete(p))
                for _ in range(args.requests):
                    await timed(samples["topics"], topics)
                for _ in range(args.queries):
                    options = query_options()
                    await timed(samples["query"], lambda o=options: news_query(o))
                runs.append({name: summary(values) for name, values in samples.items()})
                runs[-1]["_raw"] = samples  # type: ignore[assignment]
                line = "  ".join(
                    f"{name} p50 {runs[-1][name]['p50']:.2f} p99 {runs[-1][name]['p99']:.2f}"
                    for name in samples
                    if samples[name]
                )
                print(f"run {run + 1}/{args.runs} (ms): {line}", flush=True)

            if args.profile:
                profiler = cProfile.Profile()
                profiler.enable()
                for topic in topic_spellings(rng, args.requests):
                    await news(topic)
                profiler.disable()
                profiler.dump_stats(args.profile)
                stream = __import__("io").StringIO()
                stats = pstats.Stats(profiler, stream=stream)
                stats.sort_stats("cumulative").print_stats(40)
                stats.sort_stats("tottime").print_stats(25)
                profile_text = stream.getvalue()
                print(profile_text)
    finally:
        await emu.stop()
        for path in sorted(workdir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        workdir.rmdir()

    def fig(kind: str, stat: str) -> float:
        return median([run[kind][stat] for run in runs])

    pooled = {
        kind: summary([value for run in runs for value in run["_raw"][kind]])  # type: ignore[index]
        for kind in ("news", "db", "autocomplete", "topics", "query")
        if any(run["_raw"][kind] for run in runs)  # type: ignore[index]
    }
    figures = [
        Figure("/news p50", fig("news", "p50"), "ms", TARGETS_MS["news_p50"]),
        Figure("/news p99", fig("news", "p99"), "ms", TARGETS_MS["news_p99"]),
        Figure("latest(5, topic) p50", fig("db", "p50"), "ms"),
        Figure("latest(5, topic) p99", fig("db", "p99"), "ms", TARGETS_MS["db_p99"]),
        Figure("autocomplete p50", fig("autocomplete", "p50"), "ms"),
        Figure(
            "autocomplete p99", fig("autocomplete", "p99"), "ms", TARGETS_MS["autocomplete_p99"]
        ),
        Figure("/topics p50", fig("topics", "p50"), "ms"),
        Figure("/topics p99", fig("topics", "p99"), "ms", TARGETS_MS["topics_p99"]),
    ]
    if args.queries:
        figures += [
            Figure("/news query p50 (info)", fig("query", "p50"), "ms"),
            Figure("/news query p99 (info)", fig("query", "p99"), "ms"),
        ]
    report(
        "news_latency",
        figures,
        {
            "n": args.n,
            "stories_stored": stored,
            "runs": args.runs,
            "requests_per_run": args.requests,
            "warmup": args.warmup,
            "queries_per_run": args.queries,
            "setup": (
                "bot (NewsBot, reload_seeds_at_start=False, digests off) and Discord emulator "
                "in one process and one asyncio event loop: end-to-end times include the "
                "emulator's own dispatch and callback handling; emulator rate limits raised; "
                "database is a fresh copy of the bench/.cache build (so mostly in the OS page "
                "cache); SQLite cache_size as the store sets it"
            ),
            "figures_are": "median over runs of each run's nearest-rank percentile, in ms",
            "pooled_ms": pooled,
            "per_run_ms": [
                {kind: stats for kind, stats in run.items() if kind != "_raw"} for run in runs
            ],
            "profile_top": profile_text[:6000] if profile_text else None,
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="stories stored")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=300, help="requests of each kind a run")
    parser.add_argument("--warmup", type=int, default=48)
    parser.add_argument("--queries", type=int, default=20, help="/news query:words a run (info)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", type=Path, help="cProfile one more /news loop into this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
