"""Target (c): event-loop stalls in the running bot during a cold reload of a large seed folder.

How: a synthetic corpus of `--files` seed files (default 20,000; bench/corpus.py, cached in
bench/.cache/) is reloaded into an empty database by newsbot running in-process against the
local Discord emulator. NewsBot is built by the tests' `build_newsbot`, with
`reload_seeds_at_start=False` and the production default of parse workers (`--workers`,
0 = one process per core). While `await bot.reloader.reload()` runs, a probe task on the
bot's event loop sleeps 5 ms in a loop and records how late each wake-up is (lateness =
actual wake-up − requested wake-up, by the loop's clock); that lateness is the stall any
other coroutine (gateway heartbeat, interaction answers) would have suffered at that moment.
Meanwhile a reader invokes /news every 250 ms through the emulator and the time to the first
interaction callback is recorded (evidence only; Discord's deadline is 3 s).

Garbage collections during the reload are timed too (gc.callbacks, every thread), and each
of the worst stalls says how much of it was spent inside a collection.

Figures (medians over `--runs`, each on a fresh database; the corpus is reused):
stall p99 (target ≤ 50 ms), stall max (target ≤ 250 ms), reload seconds, probe samples,
/news latency p99 and max. The worst stalls of each run are listed in the JSON with the
reload phase they fell in.

    python -m bench.stalls [--files 20000] [--runs 3] [--workers 0]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from bench.common import CACHE, Figure, median, percentile, report
from bench.corpus import generate
from tests.discord_emulator import DiscordEmulator, InteractionNotAnswered, running_bot
from tests.helpers import build_newsbot

PROBE_INTERVAL = 0.005
NEWS_INTERVAL = 0.25


def corpus(files: int, seed: int = 1) -> Path:
    folder = CACHE / f"corpus-{files}-{seed}"
    marker = folder / ".complete"
    if not marker.exists():
        print(f"generating {files} seed files in {folder} ...", flush=True)
        generate(folder, files, seed)
        marker.write_text("ok\n")  # hidden: the reloader skips it
    return folder


class Phases:
    """Which part of the reload is running, from the reloader's own calls (wrapped)."""

    def __init__(self) -> None:
        self.current = "idle"
        self.marks: list[tuple[float, str]] = []

    def enter(self, name: str) -> None:
        self.current = name
        self.marks.append((time.perf_counter(), name))

    def wrap(self, obj: Any, attr: str, name: str) -> None:
        original = getattr(obj, attr)

        async def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.enter(name)
            try:
                return await original(*args, **kwargs)
            finally:
                self.enter("between")

        setattr(obj, attr, wrapped)


class GcWatch:
    """Every garbage collection while installed: (start, seconds, generation, thread name)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[float, float, int, str]] = []
        self._started: dict[int, float] = {}

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        ident = threading.get_ident()
        if phase == "start":
            self._started[ident] = time.perf_counter()
        elif ident in self._started:
            start = self._started.pop(ident)
            name = threading.current_thread().name
            self.pauses.append((start, time.perf_counter() - start, info["generation"], name))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)


async def probe(stop: asyncio.Event, samples: list[tuple[float, float, str]], phases: Phases):
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        wanted = loop.time() + PROBE_INTERVAL
        await asyncio.sleep(PROBE_INTERVAL)
        late = loop.time() - wanted
        samples.append((time.perf_counter(), late, phases.current))


async def news_reader(emu: DiscordEmulator, guild, channel, member, stop: asyncio.Event, out):
    while not stop.is_set():
        sent = time.perf_counter()
        handle = await emu.invoke(guild, channel, member, "news", {})
        try:
            record = await handle.response(timeout=5)
            out.append((time.perf_counter() - sent, record.after, record.type))
        except InteractionNotAnswered:
            out.append((time.perf_counter() - sent, None, None))
        await asyncio.sleep(NEWS_INTERVAL)


async def one_run(folder: Path, workers: int, news: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-stalls-") as tmp:
        root = Path(tmp)
        async with DiscordEmulator() as emu:
            discord.http.Route.BASE = emu.api_base
            discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(emu.gateway_url)
            guild = emu.add_guild("Readers")
            channel = emu.add_channel(guild, "news")
            reader = emu.add_member(guild, "reader")
            bot = build_newsbot(root, folder, reload_seeds_at_start=False, workers=workers)
            store, reloader = bot.store, bot.reloader
            phases = Phases()
            phases.wrap(store, "seed_index", "index")
            phases.wrap(reloader, "_parse", "parse")
            phases.wrap(reloader, "_plan", "plan")
            phases.wrap(store, "apply_reload", "apply")
            async with running_bot(bot, emu, loggers=("discord", "bot")) as run:
                run.allow_error("")
                # Warm-up: one /news on the empty store, so first-use costs are not counted.
                await (await emu.invoke(guild, channel, reader, "news", {})).response(timeout=5)
                samples: list[tuple[float, float, str]] = []
                answers: list[tuple[float, float | None, int | None]] = []
                stop = asyncio.Event()
                probe_task = asyncio.create_task(probe(stop, samples, phases))
                reader_task = (
                    asyncio.create_task(news_reader(emu, guild, channel, reader, stop, answers))
                    if news
                    else None
                )
                await asyncio.sleep(0.1)  # baseline before the reload
                t0 = time.perf_counter()
                with GcWatch() as collections:
                    reload_report = await bot.reloader.reload()
                seconds = time.perf_counter() - t0
                stop.set()
                await probe_task
                if reader_task is not None:
                    await reader_task
                stored = await store.story_count()
        during = [s for s in samples if s[0] >= t0 and s[0] <= t0 + seconds + 0.3]
        lateness = [late * 1000 for _, late, _ in during]
        worst = sorted(during, key=lambda s: s[1], reverse=True)[:10]
        by_phase: dict[str, float] = {}
        for _, late, phase in during:
            by_phase[phase] = max(by_phase.get(phase, 0.0), late * 1000)
        pauses = collections.pauses
        full = [p for p in pauses if p[2] == 2]

        def gc_overlap(at: float, late: float) -> float:
            # Milliseconds of garbage collection inside the window the probe was late by.
            begin = at - late
            return 1000 * sum(
                max(0.0, min(at, start + length) - max(begin, start))
                for start, length, _, _ in pauses
            )

        latencies = [a[1] * 1000 for a in answers if a[1] is not None]
        return {
            "files": len(list(folder.glob("*.txt"))),
            "workers": workers,
            "reload_seconds": seconds,
            "summary": reload_report.summary(),
            "stored": stored,
            "samples": len(lateness),
            "stall_p50_ms": percentile(lateness, 0.5),
            "stall_p99_ms": percentile(lateness, 0.99),
            "stall_max_ms": max(lateness) if lateness else float("nan"),
            "stalls_over_50ms": sum(1 for v in lateness if v > 50),
            "worst_ms": [
                {
                    "at_s": round(at - t0, 3),
                    "late_ms": round(late * 1000, 1),
                    "phase": phase,
                    "gc_ms_inside": round(gc_overlap(at, late), 1),
                }
                for at, late, phase in worst
            ],
            "max_stall_by_phase_ms": {k: round(v, 1) for k, v in by_phase.items()},
            "phases": [(round(at - t0, 3), name) for at, name in phases.marks],
            "gc_collections": len(pauses),
            "gc_total_ms": round(1000 * sum(p[1] for p in pauses), 1),
            "gc_full_collections": [
                {"at_s": round(start - t0, 3), "ms": round(1000 * length, 1), "thread": name}
                for start, length, _, name in full
            ],
            "gc_max_ms": round(1000 * max((p[1] for p in pauses), default=0.0), 1),
            "worst_stall_gc_share": (
                sum(gc_overlap(at, late) for at, late, _ in worst)
                / max(1e-9, sum(late * 1000 for _, late, _ in worst))
            ),
            "news_answers": len(answers),
            "news_unanswered": sum(1 for a in answers if a[1] is None),
            "news_p99_ms": percentile(latencies, 0.99) if latencies else float("nan"),
            "news_max_ms": max(latencies) if latencies else float("nan"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=0, help="parse workers (0: one per core)")
    parser.add_argument("--no-news", action="store_true", help="do not invoke /news meanwhile")
    parser.add_argument("--name", default="stalls", help="results file name")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    folder = corpus(args.files)
    results = []
    for index in range(args.runs):
        result = asyncio.run(one_run(folder, args.workers, not args.no_news))
        results.append(result)
        print(
            f"run {index + 1}: reload {result['reload_seconds']:.2f} s ({result['summary']}), "
            f"stall p99 {result['stall_p99_ms']:.1f} ms max {result['stall_max_ms']:.1f} ms "
            f"over {result['samples']} samples; by phase {result['max_stall_by_phase_ms']}; "
            f"/news p99 {result['news_p99_ms']:.0f} ms ({result['news_answers']} asked, "
            f"{result['news_unanswered']} unanswered); gc max {result['gc_max_ms']} ms, "
            f"{100 * result['worst_stall_gc_share']:.0f}% of the 10 worst stalls inside GC",
            flush=True,
        )

    def med(key: str) -> float:
        return median([r[key] for r in results])

    figures = [
        Figure("files", args.files, ""),
        Figure("reload seconds", med("reload_seconds"), "s"),
        Figure("probe samples", med("samples"), ""),
        Figure("stall p99", med("stall_p99_ms"), "ms", 50),
        Figure("stall max", med("stall_max_ms"), "ms", 250),
        Figure("/news latency p99", med("news_p99_ms"), "ms"),
        Figure("longest GC pause", med("gc_max_ms"), "ms"),
        Figure("worst stalls inside GC", 100 * med("worst_stall_gc_share"), "%"),
    ]
    report(args.name, figures, {"args": vars(args), "runs": results})


if __name__ == "__main__":
    main()
