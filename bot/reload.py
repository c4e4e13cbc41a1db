"""Loading a seed folder into the store: incremental, atomic, and off the event loop.

A reload scans the folder (names, sizes, mtimes), parses only files that are new or changed,
decides per story which file's record is kept, and hands the store one set of changes that it
applies in a single transaction. `plan_reload` holds every decision and is a pure function;
`SeedReloader` does the I/O around it.

Rules: a file that fails keeps its last good story (and says so); a file that disappears
retires its story; two files with one canonical URL are one story, the better record wins.
"""

from __future__ import annotations

import asyncio
import errno
import gc
import logging
import multiprocessing
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from stat import S_ISBLK, S_ISCHR, S_ISDIR, S_ISFIFO, S_ISREG, S_ISSOCK
from typing import NamedTuple, TypeVar

from bot.models import Problem, SeedResult, Story
from bot.seeds import DEFAULT_MAX_FILE_BYTES, parse_files, rank
from bot.store import (
    EncodedStory,
    ReloadChanges,
    SeedFileRecord,
    SeedIndex,
    StaleReload,
    Store,
)

log = logging.getLogger(__name__)

# Below this many files to parse, a worker thread beats starting worker processes.
_PROCESS_POOL_THRESHOLD = 256
_CHUNK = 128
_STALE_RETRIES = 3
_TITLED_RETIREMENTS = 100


class SeedFolderError(Exception):
    """The seed folder cannot be used (missing, not a folder, unreadable)."""

    def __init__(self, folder: Path, problem: str) -> None:
        super().__init__(f"seed folder {folder} {problem}")
        self.folder = folder
        self.problem = problem


class SeedFolderMissing(SeedFolderError):
    """The seed folder does not exist (a wrong path in the settings, or an unmounted volume)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, "does not exist")


@dataclass(frozen=True, slots=True)
class FileStat:
    size: int
    mtime_ns: int


@dataclass(frozen=True, slots=True)
class StoryChange:
    """A story that a reload adds, updates or retires, with the file it comes (came) from."""

    story_id: int
    source: str
    title: str = ""


@dataclass(frozen=True, slots=True)
class Rejection:
    source: str
    reason: str
    # True when the file used to load: its last good story stays stored.
    kept_last_good: bool = False


@dataclass(frozen=True, slots=True)
class Duplicate:
    source: str
    kept: str


@dataclass(frozen=True, slots=True)
class ReloadReport:
    folder: str
    dry_run: bool = False
    added: tuple[StoryChange, ...] = ()
    updated: tuple[StoryChange, ...] = ()
    unchanged: int = 0
    retired: tuple[StoryChange, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    duplicates: tuple[Duplicate, ...] = ()
    warnings: tuple[tuple[str, Problem], ...] = ()
    parsed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.retired)

    def summary(self) -> str:
        prefix = "dry run, would be: " if self.dry_run else ""
        return (
            f"{prefix}{len(self.added)} added, {len(self.updated)} updated, "
            f"{self.unchanged} unchanged, {len(self.retired)} retired, "
            f"{len(self.rejected)} rejected"
        )


class ParsedSeed(NamedTuple):
    """What a reload needs of one parsed seed file: the verdict, with the story already in
    the store's form. Plain values, so that worker processes send it back cheaply."""

    source: str
    content_hash: str
    story: EncodedStory | None
    rank: tuple[int, ...] = ()
    reason: str = ""
    warnings: tuple[Problem, ...] = ()

    @classmethod
    def of(cls, result: SeedResult, encode: Callable[[Story], EncodedStory]) -> ParsedSeed:
        story, file_hash = result.story, result.content_hash
        if story is None:
            return cls(result.source, file_hash, None, (), result.reason, result.warnings)
        return cls(result.source, file_hash, encode(story), rank(story), "", result.warnings)


def parse_for_reload(
    folder: str, sources: list[str], max_bytes: int, encode: Callable[[Story], EncodedStory]
) -> list[ParsedSeed]:
    """Parse and encode a batch of files: the unit of work of a reload's worker processes."""
    return [ParsedSeed.of(result, encode) for result in parse_files(folder, sources, max_bytes)]


@dataclass(slots=True)
class _Claim:
    """A file's bid to be the source of a story."""

    path: str
    rank: tuple[int, ...]
    # The freshly parsed story, or None when the stored record (or nothing) stands for it.
    story: EncodedStory | None
    rejected: bool = False


@dataclass(frozen=True, slots=True)
class ReloadPlan:
    changes: ReloadChanges
    report: ReloadReport
    # Unchanged files that now win a story whose stored record came from elsewhere: they must
    # be parsed before the plan can be applied.
    needs_parse: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class FolderScan:
    """What a seed folder holds: its seed files, and the entries that cannot be one.

    Both are keyed by '/'-separated path below the folder; `skipped` gives each entry's reason.
    """

    files: dict[str, FileStat]
    skipped: dict[str, str] = field(default_factory=dict)


# A skipped entry is never read, so it has no size or time a real file could match.
_SKIPPED_STAT = FileStat(-1, -1)


def scan_folder(folder: Path) -> FolderScan:
    """Every seed file below `folder` (hidden names skipped), and every entry skipped, with why.

    One odd entry never stops a scan: a name that is not UTF-8, a FIFO or device (never opened:
    reading a FIFO would block), a symlink loop, a symlink leading out of the folder (not
    followed) or an unreadable subfolder is reported and the rest is read. Only a seed folder
    that cannot be used at all raises SeedFolderError.
    """
    root = _folder_identity(folder)
    real_root = os.path.realpath(folder)
    files: dict[str, FileStat] = {}
    skipped: dict[str, str] = {}
    visited = {root}
    # Real subfolders are read before any reached through a symlink, so that a symlink to a
    # folder that is read anyway is recognised as such whatever the order of the entries.
    pending: list[tuple[str, str]] = [(str(folder), "")]
    linked: list[tuple[str, str, os.stat_result]] = []
    while pending or linked:
        if pending:
            directory, prefix = pending.pop()
        else:
            directory, path, target = linked.pop()
            if (target.st_dev, target.st_ino) in visited:
                skipped[path] = _revisit_reason(directory)
                continue
            visited.add((target.st_dev, target.st_ino))
            prefix = f"{path}/"
        try:
            entries = _entries(directory)
        except OSError as error:
            if not prefix:
                raise SeedFolderError(folder, f"cannot be read: {error.strerror}") from None
            skipped[prefix.rstrip("/")] = f"cannot read folder: {error.strerror}"
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if not _is_utf8(entry.name):
                skipped[prefix + _display_name(entry.name)] = "file name is not valid UTF-8"
                continue
            path = prefix + entry.name
            found = _examine(entry, real_root)
            if found is None:
                continue
            if isinstance(found, str):
                skipped[path] = found
            elif S_ISDIR(found.st_mode):
                if entry.is_symlink():
                    linked.append((entry.path, path, found))
                else:
                    visited.add((found.st_dev, found.st_ino))
                    pending.append((entry.path, f"{path}/"))
            elif S_ISREG(found.st_mode):
                files[path] = FileStat(found.st_size, found.st_mtime_ns)
            else:
                skipped[path] = f"not a regular file ({_file_kind(found.st_mode)})"
    return FolderScan(dict(sorted(files.items())), dict(sorted(skipped.items())))


def _revisit_reason(link: str) -> str:
    target = os.path.realpath(link)
    parent = os.path.realpath(os.path.dirname(link))
    if os.path.commonpath([target, parent]) == target:
        return "symlink loop"
    return "symlink to a folder that is read anyway"


def _folder_identity(folder: Path) -> tuple[int, int]:
    try:
        info = folder.stat()
    except FileNotFoundError:
        raise SeedFolderMissing(folder) from None
    except OSError as error:
        raise SeedFolderError(folder, f"cannot be read: {error.strerror}") from None
    if not S_ISDIR(info.st_mode):
        raise SeedFolderError(folder, "is not a folder")
    return info.st_dev, info.st_ino


def _entries(directory: str) -> list[os.DirEntry[str]]:
    with os.scandir(directory) as entries:
        return list(entries)


def _examine(entry: os.DirEntry[str], real_root: str) -> os.stat_result | str | None:
    """The entry's status (a symlink's target's, when it stays inside the folder), why the
    entry is skipped, or None when it was removed while the folder was read."""
    try:
        if not entry.is_symlink():
            return entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as error:
        return f"cannot read: {error.strerror}"
    try:
        target = os.stat(entry.path)
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "symlink loop"
        if error.errno == errno.ENOENT:
            return "symlink target does not exist"
        return f"cannot read: {error.strerror}"
    if os.path.commonpath([real_root, os.path.realpath(entry.path)]) != real_root:
        return "symlink points outside the seed folder"
    return target


def _is_utf8(name: str) -> bool:
    # os.scandir hands undecodable bytes over as lone surrogates, which no UTF-8 text (a
    # report, a JSON document, an SQLite value) can hold.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _display_name(name: str) -> str:
    """A file name as text that can always be printed and stored: bytes that are not UTF-8
    appear as backslash escapes (b'caf\\xe9.txt' is shown as 'caf\\xe9.txt')."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


_FILE_KINDS = (
    (S_ISFIFO, "FIFO"),
    (S_ISCHR, "character device"),
    (S_ISBLK, "block device"),
    (S_ISSOCK, "socket"),
)


def _file_kind(mode: int) -> str:
    return next((kind for test, kind in _FILE_KINDS if test(mode)), "special file")


def files_to_parse(index: SeedIndex, scan: Mapping[str, FileStat], folder: str) -> list[str]:
    """New files and files whose size or mtime changed (all of them for another folder)."""
    if index.folder != folder:
        return list(scan)
    files = index.files
    return [
        path
        for path, stat in scan.items()
        if (record := files.get(path)) is None
        or record.size != stat.size
        or record.mtime_ns != stat.mtime_ns
    ]


def plan_reload(
    index: SeedIndex,
    scan: Mapping[str, FileStat],
    parsed: Mapping[str, ParsedSeed],
    *,
    folder: str,
    now: datetime,
    dry_run: bool = False,
    skipped: Mapping[str, str] | None = None,
) -> ReloadPlan:
    """Decide everything a reload changes, from the stored index, the scan and the parses.

    `skipped` entries (path -> reason, see `scan_folder`) are rejected like unparsable files,
    so every report and `/seeds status` list them.
    """
    files_parsed = len(parsed)
    if skipped:
        scan = dict(sorted({**scan, **dict.fromkeys(skipped, _SKIPPED_STAT)}.items()))
        parsed = {**parsed, **{path: _skipped_verdict(path, why) for path, why in skipped.items()}}
    files = index.files
    stored_source = {
        record.story_id: path
        for path, record in files.items()
        if record.story_id is not None and record.status != "duplicate"
    }
    claims: dict[int, list[_Claim]] = {}
    records: dict[str, SeedFileRecord] = {}
    rejected: list[Rejection] = []
    warnings: list[tuple[str, Problem]] = []

    for path, stat in scan.items():
        record = files.get(path)
        result = parsed.get(path)
        if (
            result is not None
            and record is not None
            and record.content_hash == result.content_hash
            and record.status != "duplicate"
        ):
            result = None  # touched, not edited: the stored verdict stands
        if result is None:
            if record is None:
                continue
            records[path] = replace(record, size=stat.size, mtime_ns=stat.mtime_ns)
            if record.status == "rejected":
                rejected.append(Rejection(path, record.error or "", record.story_id is not None))
            if record.story_id is not None:
                claims.setdefault(record.story_id, []).append(
                    _Claim(path, record.rank, None, record.status == "rejected")
                )
            continue
        warnings.extend((path, warning) for warning in result.warnings)
        if result.story is not None:
            story = result.story
            claims.setdefault(story.id, []).append(_Claim(path, result.rank, story))
            records[path] = SeedFileRecord(
                path, stat.size, stat.mtime_ns, result.content_hash, "loaded", story.id, result.rank
            )
            continue
        # A file that used to be the source of a story keeps it while it is broken.
        previous = record.story_id if record is not None else None
        kept = previous is not None and stored_source.get(previous) == path
        rejected.append(Rejection(path, result.reason, kept))
        records[path] = SeedFileRecord(
            path,
            stat.size,
            stat.mtime_ns,
            result.content_hash,
            "rejected",
            previous if kept else None,
            record.rank if kept and record is not None else (),
            result.reason,
        )
        if kept and previous is not None:
            claims.setdefault(previous, []).append(_Claim(path, records[path].rank, None, True))

    upsert: list[tuple[EncodedStory, str]] = []
    added: list[StoryChange] = []
    updated: list[StoryChange] = []
    duplicates: list[Duplicate] = []
    needs_parse: set[str] = set()
    for story_id, bids in claims.items():
        # Fresh, good records beat kept ones; then rank; ties go to the first path by name.
        winner = max(sorted(bids, key=lambda c: c.path), key=lambda c: (not c.rejected, c.rank))
        current = stored_source.get(story_id)
        if winner.story is not None:
            upsert.append((winner.story, winner.path))
            change = StoryChange(story_id, winner.path, winner.story.title)
            (updated if current is not None else added).append(change)
        elif winner.path != current:
            needs_parse.add(winner.path)
        for bid in bids:
            if bid is winner:
                continue
            duplicates.append(Duplicate(bid.path, winner.path))
            loser = records[bid.path]
            # A broken file that loses simply holds nothing; a good one is a duplicate.
            records[bid.path] = (
                replace(loser, story_id=None, rank=())
                if loser.status == "rejected"
                else replace(loser, status="duplicate")
            )
        if records[winner.path].status == "duplicate":
            records[winner.path] = replace(records[winner.path], status="loaded")

    retired = [
        StoryChange(story_id, path)
        for story_id, path in stored_source.items()
        if story_id not in claims
    ]
    put_files = [record for path, record in records.items() if files.get(path) != record]
    changes = ReloadChanges(
        expected_generation=index.generation,
        reloaded_at=now,
        upsert=upsert,
        retire=[change.story_id for change in retired],
        put_files=put_files,
        delete_files=[path for path in files if path not in scan],
        folder=folder,
    )
    touched = {change.story_id for change in (*added, *updated)}
    report = ReloadReport(
        folder=folder,
        dry_run=dry_run,
        added=tuple(added),
        updated=tuple(updated),
        unchanged=sum(
            1 for story_id in stored_source if story_id in claims and story_id not in touched
        ),
        retired=tuple(retired),
        rejected=tuple(rejected),
        duplicates=tuple(duplicates),
        warnings=tuple(warnings),
        parsed=files_parsed,
    )
    return ReloadPlan(changes, report, frozenset(needs_parse))


def _skipped_verdict(path: str, reason: str) -> ParsedSeed:
    # The content hash stands for what is known of the entry: a new reason is a new verdict.
    return ParsedSeed(path, f"skipped: {reason}", None, (), reason)


class SeedReloader:
    """Reloads one seed folder into a store; reloads are serialised, parsing runs off the loop."""

    def __init__(
        self,
        store: Store,
        folder: Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        workers: int = 0,
    ) -> None:
        self._store = store
        self._folder = folder
        self._max_file_bytes = max_file_bytes
        self._workers = _worker_count(workers)
        self._lock = asyncio.Lock()

    @property
    def folder(self) -> Path:
        return self._folder

    async def reload(self, *, dry_run: bool = False) -> ReloadReport:
        async with self._lock, _no_cycle_collection():
            for _ in range(_STALE_RETRIES):
                try:
                    return await self._reload_once(dry_run)
                except StaleReload:
                    log.info(
                        "seed index changed during the reload (another process?); planning again"
                    )
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
