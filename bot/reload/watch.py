"""Watching the seed folder (seeds.watch): stories that land in it are loaded on their own.

Changes are collected until the folder has been quiet for a moment (`Debouncer`, pure), so
that ten thousand files copied in over a few seconds make one reload, not one each; a folder
that never quiets down is still reloaded every `max_wait` seconds. One reload runs at a time:
changes that arrive meanwhile make exactly one more once it is done.

Only the files a reload reads count (bot.reload.scan decides which: editors' hidden swap and
temporary files do not). Of all the processes on a database only one watches, whichever holds
the "seed-watch" task lock; the others try again every lock period and take over when it
stops or dies. Their topic caches follow its reloads through the store's announcements.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from stat import S_ISDIR

from watchfiles import Change, awatch

from bot.reload.plan import ReloadReport
from bot.reload.scan import SeedFolderError, passed_over_path
from bot.store import LockedElsewhere, StoreError, TaskLease, TaskLocks
from bot.store.leases import TASK_LOCK_SECONDS

log = logging.getLogger(__name__)

# The task lock the watching process holds for as long as it watches.
SEED_WATCH = "seed-watch"
# How long the folder must be quiet before a reload; a copy in progress pauses far less.
SETTLE_SECONDS = 1.0
# The longest changes wait for the folder to quiet down before they are reloaded anyway.
MAX_WAIT_SECONDS = 30.0
# How soon changes are tried again after another process was reloading.
BUSY_RETRY_SECONDS = 5.0
# How often a missing seed folder is looked for, and a watched one checked to still be the
# folder that is watched (a folder moved away or replaced sends no change of its own).
FOLDER_CHECK_SECONDS = 2.0


class Debouncer:
    """When the next reload is due, from when changes arrived and reloads ran (monotonic
    seconds passed in): no I/O and no clock of its own, so it is tested with made-up times."""

    def __init__(self, settle: float = SETTLE_SECONDS, max_wait: float = MAX_WAIT_SECONDS) -> None:
        self._settle = settle
        self._max_wait = max_wait
        # The first and the latest change not reloaded yet; None when there is none.
        self._first: float | None = None
        self._latest: float | None = None
        self._changes = 0
        self._not_before = float("-inf")
        self._reloading = False

    @property
    def pending(self) -> int:
        """Changes that no reload has taken yet."""
        return self._changes

    @property
    def reloading(self) -> bool:
        return self._reloading

    def changed(self, now: float, count: int = 1) -> None:
        """`count` changes arrived at `now`."""
        if self._first is None:
            self._first = now
        self._latest = now
        self._changes += count

    def due_in(self, now: float) -> float | None:
        """Seconds until a reload is due (0: now); None while none is (no change pending, or a
        reload running: it is done first)."""
        if self._reloading or self._first is None or self._latest is None:
            return None
        settled = min(self._latest + self._settle, self._first + self._max_wait)
        return max(settled, self._not_before, now) - now

    def start_reload(self) -> int:
        """A reload starts: it takes every pending change (how many is returned)."""
        taken, self._changes = self._changes, 0
        self._first = self._latest = None
        self._reloading = True
        return taken

    def finish_reload(self, now: float, *, taken: int, retry_in: float | None = None) -> None:
        """The reload is done; with `retry_in`, it was not applied (another process was
        reloading) and the changes it took are tried again no sooner than that."""
        self._reloading = False
        if retry_in is None:
            return
        self.changed(now, taken)
        self._not_before = now + retry_in


def seed_change_filter(folder: Path) -> Callable[[Change, str], bool]:
    """Which changes under `folder` a reload would see: those to paths the scan reads, and
    the folder itself (deleted, or moved away)."""
    root = os.path.abspath(folder)

    def matters(change: Change, path: str) -> bool:
        relative = os.path.relpath(path, root)
        if relative == ".":
            return True
        return not passed_over_path(relative.replace(os.sep, "/"))

    return matters


class SeedWatcher:
    """Watches one seed folder and calls `reload` once its changes settle, while this process
    holds the seed-watch lock of `locks` (the store). `reload` raises what SeedReloader.reload
    raises; it logs and refreshes what the bot keeps itself."""

    def __init__(
        self,
        folder: Path,
        reload: Callable[[], Awaitable[ReloadReport]],
        locks: TaskLocks,
        *,
        settle: float = SETTLE_SECONDS,
        max_wait: float = MAX_WAIT_SECONDS,
        lock_period: float = TASK_LOCK_SECONDS,
        busy_retry: float = BUSY_RETRY_SECONDS,
        folder_check: float = FOLDER_CHECK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.folder = folder
        self._reload = reload
        self._locks = locks
        self._settle = settle
        self._max_wait = max_wait
        self._lock_period = lock_period
        self._busy_retry = busy_retry
        self._folder_check = folder_check
        self._clock = clock
        self._debouncer = Debouncer(settle, max_wait)
        self._wake = asyncio.Event()
        # watchfiles' own stop signal: its watching thread sees it within a step (50 ms),
        # where a bare cancellation would wait out the thread's timeout.
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Whether this process holds the seed-watch lock, and whether the folder's watch is set.
        self._leading = False
        self._folder_watched = False
        # Reloads this watcher finished (applied or not), for tests and a health check.
        self.reloads = 0

    @property
    def running(self) -> bool:
        """Whether the watcher was started (and not stopped): watching, or waiting to."""
        return self._task is not None

    @property
    def leading(self) -> bool:
        """Whether this process is the one of its database that watches the folder."""
        return self._leading

    @property
    def watching(self) -> bool:
        """Whether the folder is watched now: this process leads and the folder is there."""
        return self._leading and self._folder_watched

    def start(self, *, catch_up: bool = False) -> None:
        """Start watching (or waiting for the seed-watch lock); nothing if already started.
        `catch_up`: reload once at the start, for what changed while nobody watched (not
        needed when a reload runs anyway, as at newsbot's start)."""
        if self._task is not None:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._lead(catch_up), name="newsbot seed folder watch")

    async def stop(self) -> None:
        """Stop watching and give the lock up; nothing if not started. A reload under way is
        cancelled, as the reload at start is when newsbot stops."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stop.set()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _lead(self, catch_up: bool) -> None:
        """Watch while holding the seed-watch lock; while another process holds it, try again
        every lock period (a holder that stops releases it; one that dies, after its lease)."""
        told_elsewhere = False
        while True:
            try:
                async with self._locks.task_lock(
                    SEED_WATCH, failing="cannot watch seeds with"
                ) as lease:
                    told_elsewhere = False
                    log.info("this newsbot process watches the seed folder %s", self.folder)
                    self._leading = True
                    try:
                        await self._watch_while_held(catch_up, lease)
                    finally:
                        self._leading = False
            except LockedElsewhere as busy:
                if not told_elsewhere:
                    log.info(
                        "the seed folder is watched by another newsbot process (%s); this one "
                        "takes over if it stops",
                        busy.holder.who(),
                    )
                    told_elsewhere = True
            except StoreError as error:
                log.warning("cannot watch the seed folder: %s; trying again", error)
            except Exception:
                # The operating system's watch failing (too many watches, say) must not end
                # watching for good without a word.
                log.exception("watching the seed folder %s failed; trying again", self.folder)
            # Whoever watched meanwhile (another process, or none) may have missed changes: a
            # process that died in the middle of a copy, say.
            catch_up = True
            await asyncio.sleep(self._lock_period)

    async def _watch_while_held(self, catch_up: bool, lease: TaskLease) -> None:
        """Watch until the seed-watch lock is lost: a process that could not renew it (its
        database out of reach) and found it taken over leaves the folder to the new holder,
        rather than both reloading on every change."""
        watching = asyncio.create_task(self._watch(catch_up), name="newsbot seed folder changes")
        lost = asyncio.create_task(lease.lost.wait(), name="newsbot seed-watch lease")
        try:
            await asyncio.wait({watching, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (watching, lost):
                task.cancel()
            await asyncio.gather(watching, lost, return_exceptions=True)
        if lost.done() and not lost.cancelled():
            log.warning(
                "another newsbot process took the seed folder watch over; this one stops watching"
            )
            return
        watching.result()  # its error, if it failed

    async def _watch(self, catch_up: bool) -> None:
        self._debouncer = Debouncer(self._settle, self._max_wait)
        if catch_up:
            self._changed(1)
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._collect_changes())
            tasks.create_task(self._reload_when_due())

    async def _collect_changes(self) -> None:
        """Feed the debouncer every change that matters, for as long as the folder is there;
        when it goes, wait for it to come back (and count its return as a change)."""
        matters = seed_change_filter(self.folder)
        while not self._stop.is_set():
            identity = await self._folder_identity()
            if identity is None:
                await self._wait_for_folder()
                self._changed(1)
                continue
            # FileNotFoundError: gone between the look and the watch; waited for above.
            with contextlib.suppress(FileNotFoundError):
                await self._watch_folder(identity, matters)
            if not self._stop.is_set():
                # Moved away, deleted or replaced: the reload says so, or loads the new one.
                self._changed(1)

    async def _watch_folder(
        self, identity: tuple[int, int], matters: Callable[[Change, str], bool]
    ) -> None:
        """Until the folder is no longer the one watched (or the watcher stops)."""
        batches = awatch(
            self.folder,
            watch_filter=matters,
            # watchfiles groups changes over its own short steps; the debouncer does the rest.
            debounce=int(self._settle * 1000),
            step=50,
            stop_event=self._stop,
            rust_timeout=int(self._folder_check * 1000),
            yield_on_timeout=True,
            # An unreadable subfolder is skipped by the scan (and reported): not a reason to
            # watch nothing at all.
            ignore_permission_denied=True,
        )
        # The iterator's first step sets the operating system's watch up, then waits in a
        # thread: once that step has run, no change is missed (`watching` says so).
        next_batch = asyncio.ensure_future(anext(batches, None))
        await asyncio.sleep(0)
        self._folder_watched = True
        try:
            while (changes := await next_batch) is not None:
                if changes:
                    self._changed(len(changes))
                if await self._folder_identity() != identity:
                    return
                next_batch = asyncio.ensure_future(anext(batches, None))
        finally:
            self._folder_watched = False
            await batches.aclose()

    async def _wait_for_folder(self) -> None:
        # Nothing announces a folder's creation where its parent is not watched: look again.
        while await self._folder_identity() is None:  # noqa: ASYNC110
            await asyncio.sleep(self._folder_check)
        log.info("the seed folder %s is back; watching it again", self.folder)

    async def _folder_identity(self) -> tuple[int, int] | None:
        """The folder's device and inode, None when it is not a folder (any more)."""
        return await asyncio.to_thread(_identity, self.folder)

    def _changed(self, count: int) -> None:
        self._debouncer.changed(self._clock(), count)
        self._wake.set()

    async def _reload_when_due(self) -> None:
        """Reload whenever the debouncer says, one at a time."""
        while True:
            delay = self._debouncer.due_in(self._clock())
            if delay is None or delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            taken = self._debouncer.start_reload()
            retry_in = await self._reload_changes(taken)
            self.reloads += 1
            self._debouncer.finish_reload(self._clock(), taken=taken, retry_in=retry_in)

    async def _reload_changes(self, changes: int) -> float | None:
        """One reload of `changes` changes; how soon to try them again when it was not
        applied (another process was reloading), else None."""
        started = time.perf_counter()
        try:
            report = await self._reload()
        except LockedElsewhere as busy:
            # Its reload is announced here when it commits, and the topics refreshed; these
            # changes may have come after its scan, so they are tried again.
            log.info(
                "seed folder changed while another newsbot process reloads (%s); trying again "
                "in %g s",
                busy.holder.who(),
                self._busy_retry,
            )
            return self._busy_retry
        except SeedFolderError as error:
            log.warning("seed folder changed and cannot be reloaded: %s; watching for it", error)
            return None
        except Exception:
            log.exception("reloading the changed seed folder failed")
            return None
        elapsed = round((time.perf_counter() - started) * 1000)
        log.info(
            "seed folder changed (%d changes): reloaded in %d ms: %s",
            changes,
            elapsed,
            report.summary(),
        )
        return None


def _identity(folder: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(folder)
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if S_ISDIR(info.st_mode) else None
