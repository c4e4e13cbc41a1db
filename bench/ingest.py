"""Ingest and reload of seed folders: targets (a) and (b).

(a) Cold ingest of N files (default 20,000) into an empty database, in files per second,
    against the parse-only floor: the same files read and their front matter parsed with
    yaml.CSafeLoader, nothing else, in one process. Measured on one core (one worker, and
    every thread of this process pinned to one CPU, so that SQLite's work cannot hide on the
    other one) and with one worker process per core. Each run reads every file once first, so
    that all three find them in the page cache, then times the floor and both ingests back to
    back, so every ratio compares figures taken a minute apart at most.
(b) Reload of the same folder unchanged, and with one file edited (the edit must be loaded).

    python -m bench.ingest [--files 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import yaml

from bench.common import CACHE, Figure, median, report
from bench.corpus import generate
from bot.reload import SeedReloader
from bot.store.sqlite import SqliteStore


def corpus(files: int) -> Path:
    folder = CACHE / f"corpus-{files}"
    if not folder.exists() or len(os.listdir(folder)) != files:
        shutil.rmtree(folder, ignore_errors=True)
        print(f"writing {files} seed files to {folder} ...")
        generate(folder, files, seed=1)
    return folder


def read_every_file(folder: Path) -> None:
    """Bring the corpus into the page cache, so that no measurement pays for the disk."""
    for path in folder.iterdir():
        path.read_bytes()


@contextmanager
def one_core() -> Iterator[None]:
    """Pin every thread of this process (and the threads they start) to one CPU."""
    if not hasattr(os, "sched_setaffinity"):
        yield  # not Linux: the one-core figure then only means "one parse worker"
        return
    before = os.sched_getaffinity(0)
    cpu = {min(before)}
    threads = [int(tid) for tid in os.listdir("/proc/self/task")]
    for tid in threads:
        os.sched_setaffinity(tid, cpu)
    try:
        yield
    finally:
        for tid in os.listdir("/proc/self/task"):
            with suppress(OSError):  # the thread has ended meanwhile
                os.sched_setaffinity(int(tid), before)


def parse_floor(folder: Path) -> float:
    """Seconds to read every file and parse its front matter with CSafeLoader."""
    paths = sorted(folder.iterdir())
    start = time.perf_counter()
    for path in paths:
        data = path.read_bytes()
        front = data[4 : data.index(b"\n---", 4)]
        yaml.load(front, Loader=yaml.CSafeLoader)
    return time.perf_counter() - start


async def cold_ingest(folder: Path, workers: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        store = SqliteStore(Path(scratch) / "news.db")
        await store.open()
        try:
            reloader = SeedReloader(store, folder, workers=workers)
            start = time.perf_counter()
            report_ = await reloader.reload()
            seconds = time.perf_counter() - start
            assert len(report_.added) == len(os.listdir(folder)), report_.summary()
        finally:
            await store.close()
    return seconds


async def reloads(folder: Path, runs: int) -> tuple[list[float], list[float]]:
    """(unchanged reload seconds, one-file-changed reload seconds)."""
    work = Path(tempfile.mkdtemp())
    try:
        copy = work / "seeds"
        shutil.copytree(folder, copy)
        store = SqliteStore(work / "news.db")
        await store.open()
        reloader = SeedReloader(store, copy, workers=0)
        await reloader.reload()
        unchanged, changed = [], []
        paths = sorted(copy.iterdir())
        for run in range(runs):
            start = time.perf_counter()
            result = await reloader.reload()
            unchanged.append(time.perf_counter() - start)
            assert result.parsed == 0
            assert not (result.added or result.updated or result.retired)
            path = paths[run * 97 % len(paths)]
            path.write_text(path.read_text().replace('title: "', f'title: "Edit {run} ', 1))
            stat = path.stat()
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
            start = time.perf_counter()
            result = await reloader.reload()
            changed.append(time.perf_counter() - start)
            assert len(result.updated) == 1, result.summary()
        await store.close()
        return unchanged, changed
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    folder = corpus(args.files)
    cores = os.cpu_count() or 1
    floor_s, one_s, all_s, one_ratio, all_ratio = [], [], [], [], []
    for run in range(args.runs):
        read_every_file(folder)
        with one_core():
            floor = parse_floor(folder)
            one = await cold_ingest(folder, workers=1)
        every = await cold_ingest(folder, workers=cores)
        floor_s.append(floor)
        one_s.append(one)
        all_s.append(every)
        one_ratio.append(floor / one)
        all_ratio.append(floor / every)
        print(
            f"run {run + 1}: floor {args.files / floor:.0f} files/s, one core "
            f"{args.files / one:.0f} ({floor / one:.2f}x), {cores} cores "
            f"{args.files / every:.0f} ({floor / every:.2f}x)"
        )
    unchanged, changed = await reloads(folder, max(3, args.runs))
    report(
        "ingest",
        [
            Figure("parse-only floor", args.files / median(floor_s), "f/s", better="higher"),
            Figure("cold ingest, 1 core", args.files / median(one_s), "f/s", better="higher"),
            Figure(
                f"cold ingest, {cores} cores", args.files / median(all_s), "f/s", better="higher"
            ),
            Figure("1 core / floor", median(one_ratio), "x", 0.85, better="higher"),
            Figure(f"{cores} cores / floor", median(all_ratio), "x", 1.4, better="higher"),
            Figure("reload unchanged", median(unchanged), "s", 0.5),
            Figure("reload, 1 file changed", median(changed), "s", 0.6),
        ],
        {
            "files": args.files,
            "runs": args.runs,
            "cores": cores,
            "floor_seconds": floor_s,
            "one_core_seconds": one_s,
            "all_cores_seconds": all_s,
            "unchanged_seconds": unchanged,
            "one_changed_seconds": changed,
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
