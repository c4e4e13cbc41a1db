"""Running a reload: scanning and parsing off the event loop (in worker processes for a large
folder), planning, and handing the store the changes (see bot.reload)."""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

from bot.metrics import Metrics
from bot.models import Problem, SeedResult, Story
from bot.reload.plan import (
    ParsedSeed,
    ReloadPlan,
    ReloadReport,
    files_to_parse,
    parse_for_reload,
    plan_reload,
)
from bot.reload.scan import FolderScan, scan_folder
from bot.seeds import DEFAULT_MAX_FILE_BYTES, parse_files
from bot.store import (
    EncodedStory,
    SeedBookkeeping,
    SeedIndex,
    StaleReload,
    StoreError,
    StoryReader,
    TaskLocks,
)

log = logging.getLogger(__name__)

# Below this many files to parse, a worker thread beats starting worker processes.
_PROCESS_POOL_THRESHOLD = 256
_CHUNK = 128
_STALE_RETRIES = 3
_TITLED_RETIREMENTS = 100
# The task lock a reload holds: one process of the database reloads at a time, whichever
# starts it (a bot at start, /seeds reload, `newsbot seeds load`).
SEEDS_RELOAD = "seeds-reload"


class ReloadTarget(SeedBookkeeping, StoryReader, TaskLocks, Protocol):
    """The roles of a store a reload uses: the seed index, retired stories' titles, and the
    task lock that keeps other processes from reloading at the same time."""


class SeedReloader:
    """Reloads one seed folder into a store; reloads are serialised, parsing runs off the loop."""

    def __init__(
        self,
        store: ReloadTarget,
        folder: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        workers: int = 0,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._folder = folder
        self._max_file_bytes = max_file_bytes
        self._workers = _worker_count(workers)
        self._lock = asyncio.Lock()
        self._metrics = metrics

    @property
    def folder(self) -> Path:
        return self._folder

    async def reload(self, *, dry_run: bool = False) -> ReloadReport:
        """Reload the folder, in one transaction. Raises LockedElsewhere (naming the holder)
        while another process of the database reloads; a dry run changes nothing and runs
        anyway."""
        async with self._lock, _no_cycle_collection():
            if dry_run:
                return await self._reload_until_current(dry_run)
            async with self._store.task_lock(SEEDS_RELOAD, failing="reload not applied to"):
                started = time.monotonic()
                report = await self._reload_until_current(dry_run)
                seconds = time.monotonic() - started
        # Counting the stories (a scan of an index at a million) needs no lock: other
        # processes may reload meanwhile.
        await self._measured(report, seconds)
        return report

    async def _measured(self, report: ReloadReport, seconds: float) -> None:
        """An applied reload in the metrics: how long it took, its files by verdict, and the
        stories stored now."""
        if self._metrics is None:
            return
        self._metrics.reloaded(seconds, verdicts(report))
        try:
            self._metrics.stories_counted(await self._store.story_count())
        except StoreError as error:
            # The reload is applied all the same: the next scrape counts the stories.
            log.debug("could not count the stories after a reload: %s", error)

    async def _reload_until_current(self, dry_run: bool) -> ReloadReport:
        """The reload, planned again if the seed index changed before it was applied (a
        process that reloads without the lock: an older newsbot)."""
        for _ in range(_STALE_RETRIES):
            try:
                return await self._reload_once(dry_run)
            except StaleReload:
                log.info("seed index changed during the reload (another process?); planning again")
        return await self._reload_once(dry_run)

    async def _reload_once(self, dry_run: bool) -> ReloadReport:
        folder = str(self._folder.resolve())
        scan = await asyncio.to_thread(scan_folder, self._folder)
        index = await self._store.seed_index()
        parsed = await self._parse(files_to_parse(index, scan.files, folder))
        plan = await self._plan(index, scan, parsed, folder, dry_run)
        if plan.needs_parse:
            parsed = {**parsed, **await self._parse(sorted(plan.needs_parse))}
            plan = await self._plan(index, scan, parsed, folder, dry_run)
        report = await self._with_retired_titles(plan.report)
        if not dry_run:
            await self._store.apply_reload(plan.changes)
        log.info("seed reload of %s: %s", folder, report.summary())
        return report

    async def _plan(
        self,
        index: SeedIndex,
        scan: FolderScan,
        parsed: Mapping[str, ParsedSeed],
        folder: str,
        dry_run: bool,
    ) -> ReloadPlan:
        # Tens of milliseconds for a large folder: too long to hold the event loop.
        plan = partial(
            plan_reload, folder=folder, now=datetime.now(UTC), dry_run=dry_run, skipped=scan.skipped
        )
        return await asyncio.to_thread(plan, index, scan.files, parsed)

    async def _parse(self, paths: list[str]) -> dict[str, ParsedSeed]:
        parsed = await _run_in_workers(
            parse_for_reload,
            str(self._folder),
            paths,
            self._max_file_bytes,
            self._store.encode_story,
            workers=self._workers,
        )
        return {result.source: result for result in parsed}

    async def _with_retired_titles(self, report: ReloadReport) -> ReloadReport:
        if not report.retired:
            return report
        # Titles make the report readable; past a hundred nobody reads them one by one, and
        # each is a query.
        retired = list(report.retired)
        for position, change in enumerate(retired[:_TITLED_RETIREMENTS]):
            story = await self._store.story(change.story_id)
            retired[position] = replace(change, title=story.title if story else "")
        return replace(report, retired=tuple(retired))


def verdicts(report: ReloadReport) -> dict[str, int]:
    """A reload's files by verdict, in the words an operator uses (bot.metrics)."""
    return {
        "added": len(report.added),
        "changed": len(report.updated),
        "unchanged": report.unchanged,
        "rejected": len(report.rejected),
        "removed": len(report.retired),
    }


@asynccontextmanager
async def _no_cycle_collection() -> AsyncIterator[None]:
    """Pause Python's cycle collector for one reload.

    A cold reload fills the heap with parsed stories; full collections then walked all of them
    for 70-320 ms at a time while holding the GIL, stalling the event loop (bench/stalls.py).
    Parsed stories hold no reference cycles and are freed by reference counting anyway.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


async def check_folder(
    folder: Path, *, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES, workers: int = 0
) -> tuple[dict[str, SeedResult], ReloadReport]:
    """Validate every file of a folder without touching any store: (verdicts, what would load)."""
    scan = await asyncio.to_thread(scan_folder, folder)
    results = await _run_in_workers(
        parse_files, str(folder), list(scan.files), max_file_bytes, workers=_worker_count(workers)
    )
    parsed = {result.source: ParsedSeed.of(result, _unencoded) for result in results}
    empty = SeedIndex(generation=0, files={})
    plan = plan_reload(
        empty,
        scan.files,
        parsed,
        folder=str(folder),
        now=datetime.now(UTC),
        dry_run=True,
        skipped=scan.skipped,
    )
    # The same verdicts, and the same reasons, as a reload reports.
    skipped = [
        SeedResult(path, None, (Problem(None, reason),)) for path, reason in scan.skipped.items()
    ]
    verdicts = {result.source: result for result in sorted([*results, *skipped], key=_source)}
    return verdicts, plan.report


def _source(result: SeedResult) -> str:
    return result.source


def _unencoded(story: Story) -> EncodedStory:
    """For a plan that is only reported, never applied: the story as it is."""
    return EncodedStory(story.id, story.title, story)


def _worker_count(workers: int) -> int:
    return workers or (os.cpu_count() or 1)


_Result = TypeVar("_Result")


async def _run_in_workers(
    work: Callable[..., list[_Result]],
    folder: str,
    paths: list[str],
    *args: object,
    workers: int,
) -> list[_Result]:
    """`work(folder, batch, *args)` over batches of `paths`, off the event loop: in a thread
    for a few files, in worker processes (one per worker) for many."""
    if not paths:
        return []
    if workers <= 1 or len(paths) < _PROCESS_POOL_THRESHOLD:
        return await asyncio.to_thread(work, folder, paths, *args)
    # forkserver: forking a process that runs an event loop and database threads is unsafe.
    context = multiprocessing.get_context("forkserver")
    loop = asyncio.get_running_loop()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        batches = await asyncio.gather(
            *(
                loop.run_in_executor(pool, work, folder, batch, *args)
                for batch in _chunks(paths, _CHUNK)
            )
        )
    finally:
        # shutdown() joins the workers: do that in a thread, not on the event loop.
        await asyncio.to_thread(pool.shutdown)
    return [result for batch in batches for result in batch]


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
