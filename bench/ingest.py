"""Ingest and reload of seed folders: targets (a) and (b).

(a) Cold ingest of N files (default 20,000) into an empty database, in files per second,
    against the parse-only floor: the same files read and their front matter parsed with
    yaml.CSafeLoader, nothing else, in one process. Measured on one core (one worker, and
    every thread of this process pinned to one CPU, so that SQLite's work cannot hide on the
    other one) and with one worker process per core. Each run reads every file once first, so
    that all three find them in the page cache, then times the floor and both ingests back to
    back, so every ratio compares figures taken a minute apart at most.
(b) Reload of the same folder unchanged, and with one file edited (the edit must be loaded).

With --backend both, each run also loads the folder cold into PostgreSQL (a fresh, migrated
database on a throwaway server from tests/postgres.py, or on NEWSBOT_TEST_DATABASE_URL's),
with one worker process per core, right after the SQLite ingest with as many workers: the
files/s of each and their ratio, taken within the run.

    python -m bench.ingest [--files 20000] [--runs 3] [--backend sqlite|both]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager, suppress
from pathlib import Path

import yaml

from bench.common import CACHE, Figure, median, report
from bench.corpus import generate
from bot.reload import SeedReloader
from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.postgres import PostgresServer

FreshStore = Callable[[], AbstractAsyncContextManager[Store]]


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


@asynccontextmanager
async def fresh_sqlite() -> AsyncIterator[Store]:
    """An opened store on a new SQLite file, deleted afterwards."""
    with tempfile.TemporaryDirectory() as scratch:
        store = SqliteStore(Path(scratch) / "news.db")
        await store.open()
        try:
            yield store
        finally:
            await store.close()


def fresh_postgres(server: PostgresServer) -> FreshStore:
    """Opened (so migrated) stores, each on a new database of `server`, dropped afterwards."""

    @asynccontextmanager
    async def fresh() -> AsyncIterator[Store]:
        url = await server.create_database()
        try:
            store = PostgresStore(url)
            await store.open()
            try:
                yield store
            finally:
                await store.close()
        finally:
            await server.drop_database(url)

    return fresh


async def cold_ingest(folder: Path, workers: int, fresh: FreshStore = fresh_sqlite) -> float:
    """Seconds for SeedReloader to load `folder` into an empty, already opened store."""
    async with fresh() as store:
        reloader = SeedReloader(store, folder, workers=workers)
        start = time.perf_counter()
        report_ = await reloader.reload()
        seconds = time.perf_counter() - start
        assert len(report_.added) == len(os.listdir(folder)), report_.summary()
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
    parser.add_argument("--backend", choices=("sqlite", "both"), default="sqlite")
    args = parser.parse_args()
    folder = corpus(args.files)
    server = None
    if args.backend == "both":
        server = PostgresServer.from_environment(os.environ)
        await asyncio.to_thread(server.start)
    try:
        await measure(args, folder, server)
    finally:
        if server is not None:
            await asyncio.to_thread(server.stop)


async def measure(args: argparse.Namespace, folder: Path, server: PostgresServer | None) -> None:
    cores = os.cpu_count() or 1
    floor_s, one_s, all_s, one_ratio, all_ratio = [], [], [], [], []
    postgres_s: list[float] = []
    postgres_ratio: list[float] = []
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
        if server is not None:
            postgres = await cold_ingest(folder, workers=cores, fresh=fresh_postgres(server))
            postgres_s.append(postgres)
            postgres_ratio.append(every / postgres)
            print(
                f"  PostgreSQL, {cores} cores: {args.files / postgres:.0f} files/s "
                f"({every / postgres:.2f}x SQLite's)"
            )
    unchanged, changed = await reloads(folder, max(3, args.runs))
    postgres_figures = []
    if postgres_s:
        postgres_figures = [
            Figure(
                f"PostgreSQL cold ingest, {cores} cores",
                args.files / median(postgres_s),
                "f/s",
                better="higher",
            ),
            Figure("PostgreSQL / SQLite, files/s", median(postgres_ratio), "x", better="higher"),
        ]
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
            *postgres_figures,
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
            "postgres_all_cores_seconds": postgres_s,
            "postgres_over_sqlite": postgres_ratio,
            "postgres": (
                "throwaway server from tests/postgres.py (fsync, synchronous_commit and "
                "full_page_writes off) on 127.0.0.1, or NEWSBOT_TEST_DATABASE_URL's"
                if postgres_s
                else None
            ),
        },
    )


if __name__ == "__main__":
    asyncio.run(main())
