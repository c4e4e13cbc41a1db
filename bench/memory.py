"""Target (f): resident memory of the running bot with N stories stored (default 1,000,000).

The local Discord emulator (tests/discord_emulator) runs in this process; newsbot runs alone
in a child process exactly as deployed, `python -m bot run` from the repository root, with
DISCORD_TOKEN, DISCORD_API_BASE, DISCORD_GATEWAY_URL pointing at the emulator, NEWSBOT_DB at a
private copy of the bench.million database and NEWSBOT_SEEDS at an empty folder (the synthetic
stories have no seed_files rows, so the start-up reload retires none of them; the JSON records
the story count read from the database at the end to show it). So the figures are the bot's
alone, start-up seed reload, digest scheduler and instance lock included.

Once the bot is ready it is sent, one at a time: /news topic:X (topics cycling, varying case),
/news query:words, /topics and /news topic autocomplete with assorted prefixes. Then VmRSS and
VmHWM (peak) are read from /proc/PID/status of the child, with the smaps_rollup breakdown
(anonymous vs file-backed). RSS is also read right after start-up and after each request
block. Target: VmRSS <= 150 MB (MB = 10^6 bytes; MiB are in the details). With --runs > 1 the
bot is started afresh each run and figures are medians.

    python -m bench.memory                              # 1,000,000 stories
    python -m bench.memory --n 2000 --news 50           # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import Figure, median, report
from bench.corpus import TOPICS, WORDS
from bench.million import million_store
from bench.news_latency import PREFIXES, topic_spellings
from tests.discord_emulator import DiscordEmulator

REPO = Path(__file__).resolve().parent.parent
TARGET_MB = 150.0


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status that matter here, in bytes."""
    wanted = {"VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem", "VmSize", "Threads"}
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in wanted:
            parts = rest.split()
            values[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return values


def smaps_rollup(pid: int) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    except OSError:
        return values
    for line in lines:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[-1] == "kB":
            values[key] = int(parts[0]) * 1024
    return values


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(part) for part in text.split()]


def mb(value: int) -> float:
    return value / 1e6


async def one_run(args: argparse.Namespace, run: int, cached_db: Path) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="newsbot-memory-"))
    db = workdir / "news.db"
    await million_store(args.n, db, quiet=True)
    seeds = workdir / "seeds"
    seeds.mkdir()
    log_path = workdir / "bot.log"
    rng = random.Random(args.seed + run)

    emu = DiscordEmulator()
    await emu.start()
    emu.limits.lift_rate_limits()
    guild = emu.add_guild("Readers")
    channel = emu.add_channel(guild, "news")
    reader = emu.add_member(guild, "reader")

    env = {
        **os.environ,
        "DISCORD_TOKEN": emu.token,
        "DISCORD_API_BASE": emu.api_base,
        "DISCORD_GATEWAY_URL": emu.gateway_url,
        "NEWSBOT_DB": str(db),
        "NEWSBOT_SEEDS": str(seeds),
    }
    env.pop("NEWSBOT_CONFIG", None)
    log_file = log_path.open("wb")
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=REPO, env=env, stdout=log_file, stderr=log_file
    )
    timeline: list[dict[str, Any]] = []
    result: dict[str, Any] = {}

    def sample(label: str) -> dict[str, int]:
        status = proc_status(process.pid)
        timeline.append({"at": label, "VmRSS_MB": mb(status["VmRSS"]),
                         "VmHWM_MB": mb(status["VmHWM"])})  # fmt: skip
        return status

    try:
        await emu.wait_for_ready(timeout=120)
        ready_s = time.perf_counter() - started
        # Let the start-up seed reload (empty folder) finish and the process settle.
        await asyncio.sleep(args.settle)
        sample("ready")

        async def news(options: dict[str, Any]) -> None:
            handle = await emu.invoke(guild, channel, reader, "news", options)
            reply = await handle.response(timeout=30)
            if reply.type != 4:
                raise AssertionError(f"/news {options} answered {reply}")

        for topic in topic_spellings(rng, args.news):
            await news({"topic": topic})
        sample(f"after {args.news} /news topic")
        for _ in range(args.queries):
            words = " ".join(rng.sample(WORDS, rng.randint(1, 2)))
            options: dict[str, Any] = {"query": words}
            if rng.random() < 0.5:
                options["topic"] = rng.choice(TOPICS)
            await news(options)
        sample(f"after {args.queries} /news query")
        for _ in range(args.topics):
            handle = await emu.invoke(guild, channel, reader, "topics")
            await handle.response(timeout=30)
        sample(f"after {args.topics} /topics")
        for index in range(args.autocomplete):
            prefix = PREFIXES[index % len(PREFIXES)]
            await emu.autocomplete(
                guild, channel, reader, "news", focused="topic", value=prefix, timeout=30
            )
        await asyncio.sleep(args.settle)
        final = sample(f"after {args.autocomplete} autocomplete")
        rollup = smaps_rollup(process.pid)
        child_rss = {pid: mb(proc_status(pid)["VmRSS"]) for pid in children(process.pid)}
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
            stored = connection.execute(
                "SELECT value FROM meta WHERE key = 'story_count'"
            ).fetchone()[0]
        result = {
            "VmRSS": final["VmRSS"],
            "VmHWM": final["VmHWM"],
            "RssAnon": final.get("RssAnon", 0),
            "RssFile": final.get("RssFile", 0),
            "Threads": final.get("Threads", 0),
            "smaps_rollup": rollup,
            "child_processes_rss_MB": child_rss,
            "ready_seconds": ready_s,
            "stories_stored_at_end": stored,
            "timeline": timeline,
            "errors_in_log": [],
        }
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()
        log_file.close()
        await emu.stop()
        log_text = log_path.read_text(errors="replace")
        if result:
            result["errors_in_log"] = [
                line for line in log_text.splitlines() if "ERROR" in line or "Traceback" in line
            ][:20]
        elif log_text:
            print("bot log:\n" + log_text[-4000:], file=sys.stderr)
        for path in sorted(workdir.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        workdir.rmdir()
    return result


async def measure(args: argparse.Namespace) -> None:
    cached = await million_store(args.n)
    results = []
    for run in range(args.runs):
        result = await one_run(args, run, cached)
        results.append(result)
        print(
            f"run {run + 1}/{args.runs}: VmRSS {mb(result['VmRSS']):.1f} MB, "
            f"VmHWM {mb(result['VmHWM']):.1f} MB (anon {mb(result['RssAnon']):.1f}, "
            f"file {mb(result['RssFile']):.1f}), {result['stories_stored_at_end']:,} stories, "
            f"ready in {result['ready_seconds']:.1f} s",
            flush=True,
        )
        for point in result["timeline"]:
            print(f"    {point['at']:<28} VmRSS {point['VmRSS_MB']:7.1f} MB"
                  f"  VmHWM {point['VmHWM_MB']:7.1f} MB")  # fmt: skip
        if result["errors_in_log"]:
            print("    errors in the bot's log:", *result["errors_in_log"], sep="\n      ")

    def fig(key: str) -> float:
        return median([mb(result[key]) for result in results])

    figures = [
        Figure("VmRSS after requests", fig("VmRSS"), "MB", TARGET_MB),
        Figure("VmHWM (peak RSS)", fig("VmHWM"), "MB", TARGET_MB),
        Figure("RssAnon", fig("RssAnon"), "MB"),
        Figure("RssFile", fig("RssFile"), "MB"),
    ]
    report(
        "memory",
        figures,
        {
            "n": args.n,
            "runs": args.runs,
            "requests": {
                "news_topic": args.news,
                "news_query": args.queries,
                "topics": args.topics,
                "autocomplete": args.autocomplete,
            },
            "setup": (
                "bot as `python -m bot run` in a child process (start-up reload of an empty seed "
                "folder, digest scheduler on); Discord emulator in the benchmark process; "
                "figures read from the child's /proc/PID/status; MB = 10^6 bytes"
            ),
            "figures_are": "median over runs, MB",
            "per_run": [
                {
                    **{key: value for key, value in result.items() if key != "smaps_rollup"},
                    "VmRSS_MiB": result["VmRSS"] / 2**20,
                    "VmHWM_MiB": result["VmHWM"] / 2**20,
                    "smaps_rollup_MB": {k: mb(v) for k, v in result["smaps_rollup"].items()},
                }
                for result in results
            ],
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="stories stored")
    parser.add_argument("--runs", type=int, default=1, help="fresh bot processes")
    parser.add_argument("--news", type=int, default=300, help="/news topic:X requests")
    parser.add_argument("--queries", type=int, default=30, help="/news query:words requests")
    parser.add_argument("--topics", type=int, default=100, help="/topics requests")
    parser.add_argument("--autocomplete", type=int, default=200, help="autocomplete requests")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds to wait before reading")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(measure(args))


if __name__ == "__main__":
    main()
