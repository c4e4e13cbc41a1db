"""The seed folder watch (bot.reload.watch): when changes settle into one reload, which paths
count, and the watcher itself on real folders with real file change notifications, its reload
counted by a stand-in for SeedReloader."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from watchfiles import Change

from bot.reload import ReloadReport, scan_folder, watch
from bot.reload.watch import Debouncer, SeedWatcher, seed_change_filter
from bot.store import LockedElsewhere, TaskHolder
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore

# Bounds for waiting on the watcher; it usually takes a second or two.
DEADLINE = 20.0


async def eventually(condition: Callable[[], bool], deadline: float = DEADLINE) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while not condition():
        assert loop.time() < give_up, "the watcher did not get there in time"
        await asyncio.sleep(0.05)


# The debouncer, with made-up times.


def test_a_burst_of_changes_over_seconds_is_one_reload_once_it_settles() -> None:
    debouncer = Debouncer(settle=1.0, max_wait=30.0)

    for tenth in range(41):  # a change every 0.1 s for 4 s
        debouncer.changed(tenth / 10)
        assert debouncer.due_in(tenth / 10) == pytest.approx(1.0)

    assert debouncer.due_in(4.5) == pytest.approx(0.5)
    assert debouncer.due_in(5.0) == 0
    assert debouncer.start_reload() == 41
    assert debouncer.due_in(5.0) is None


def test_changes_during_a_reload_make_exactly_one_follow_up() -> None:
    debouncer = Debouncer(settle=1.0, max_wait=30.0)
    debouncer.changed(0.0)
    debouncer.start_reload()

    for second in range(1, 10):
        debouncer.changed(float(second), 100)
        assert debouncer.due_in(float(second)) is None  # not while the reload runs
    debouncer.finish_reload(20.0, taken=1)

    assert debouncer.due_in(20.0) == 0
    assert debouncer.start_reload() == 900
    debouncer.finish_reload(21.0, taken=900)
    assert debouncer.due_in(100.0) is None


def test_a_folder_that_never_quiets_down_is_still_reloaded_at_the_cap() -> None:
    debouncer = Debouncer(settle=1.0, max_wait=30.0)

    for half in range(59):
        debouncer.changed(half / 2)
        assert debouncer.due_in(half / 2) == pytest.approx(min(1.0, 30.0 - half / 2))

    debouncer.changed(29.5)
    assert debouncer.due_in(30.0) == 0


def test_changes_another_process_kept_from_reloading_are_tried_again_later() -> None:
    debouncer = Debouncer(settle=1.0, max_wait=30.0)
    debouncer.changed(0.0, 3)
    taken = debouncer.start_reload()

    debouncer.finish_reload(2.0, taken=taken, retry_in=5.0)

    assert debouncer.pending == 3
    assert debouncer.due_in(3.0) == pytest.approx(4.0)
    assert debouncer.due_in(7.0) == 0


def test_only_changes_to_what_a_reload_reads_count(tmp_path: Path) -> None:
    folder = tmp_path / "seeds"
    paths = [
        "story.md",
        "topic/story.md",
        ".story.md.swp",  # vim
        ".#story.md",  # emacs
        ".hidden/story.md",
        "topic/.story.md.swx",
        "topic/.git/HEAD",
    ]
    for path in paths:
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_text("x")
    matters = seed_change_filter(folder)

    read = set(scan_folder(folder).files)

    assert read == {"story.md", "topic/story.md"}
    for path in paths:
        assert matters(Change.modified, str(folder / path)) is (path in read), path
    assert matters(Change.deleted, str(folder))  # the folder itself going away counts


# The watcher on real folders.


class CountingReloader:
    """Stands in for SeedReloader.reload: counts reloads and what each saw in the folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.seen: list[int] = []
        self.refusals: list[Exception] = []

    async def __call__(self) -> ReloadReport:
        if self.refusals:
            raise self.refusals.pop(0)
        scan = await asyncio.to_thread(scan_folder, self.folder)
        self.seen.append(len(scan.files))
        return ReloadReport(str(self.folder))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    store = SqliteStore(tmp_path / "news.db")
    await store.open()
    yield store
    await store.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "seeds"
    folder.mkdir()
    return folder


def watcher_of(
    folder: Path, store: object, reload: Callable[[], Awaitable[ReloadReport]], **timing: float
) -> SeedWatcher:
    timing = {"settle": 0.3, "folder_check": 0.2, **timing}
    return SeedWatcher(folder, reload, store, **timing)  # type: ignore[arg-type]


def write_seeds(folder: Path, count: int, prefix: str = "story") -> None:
    for number in range(count):
        (folder / f"{prefix}-{number}.md").write_text("---\ntitle: x\n---\n")


async def test_ten_thousand_files_written_over_seconds_are_one_reload(
    folder: Path, store: SqliteStore
) -> None:
    reload = CountingReloader(folder)
    # Twice the default settle time: on a machine busy with other tests a thread writing a
    # thousand files can stall for over a second, a pause the watcher would rightly take for
    # the end of the copy.
    watcher = watcher_of(folder, store, reload, settle=2.0)
    watcher.start()
    await eventually(lambda: watcher.watching)

    # Ten batches of a thousand with short pauses: a copy that takes a few seconds.
    for batch in range(10):
        await asyncio.to_thread(write_seeds, folder, 1000, f"batch{batch}")
        await asyncio.sleep(0.1)
    await eventually(lambda: bool(reload.seen))
    # Whatever was still on its way would have made a second reload by now.
    await asyncio.sleep(2.5)
    await watcher.stop()

    assert reload.seen == [10_000]


async def test_hidden_and_editor_files_make_no_reload(folder: Path, store: SqliteStore) -> None:
    reload = CountingReloader(folder)
    watcher = watcher_of(folder, store, reload)
    watcher.start()
    await eventually(lambda: watcher.watching)

    (folder / ".story.md.swp").write_text("swap")
    (folder / ".drafts").mkdir()
    (folder / ".drafts" / "story.md").write_text("draft")
    write_seeds(folder, 1)  # and one that counts, to know the others were seen by now
    await eventually(lambda: bool(reload.seen))
    await asyncio.sleep(0.5)
    await watcher.stop()

    assert reload.seen == [1]


async def test_a_change_while_another_process_reloads_is_tried_again(
    folder: Path, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    reload = CountingReloader(folder)
    holder = TaskHolder("seeds-reload", "other", socket.gethostname(), 1, 0, 2**40)
    reload.refusals.append(LockedElsewhere(holder))
    watcher = watcher_of(folder, store, reload, busy_retry=0.2)
    watcher.start()
    await eventually(lambda: watcher.watching)

    with caplog.at_level(logging.INFO, logger="bot.reload.watch"):
        write_seeds(folder, 3)
        await eventually(lambda: bool(reload.seen))
    await watcher.stop()

    assert reload.seen == [3]
    assert watcher.reloads == 2
    assert "another newsbot process reloads (pid 1 on" in caplog.text


async def test_a_deleted_folder_is_one_warning_and_watched_again_once_back(
    folder: Path, store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    reload = CountingReloader(folder)
    watcher = watcher_of(folder, store, reload)
    watcher.start()
    await eventually(lambda: watcher.watching)

    with caplog.at_level(logging.INFO, logger="bot.reload.watch"):
        write_seeds(folder, 2)
        await eventually(lambda: reload.seen == [2])
        shutil.rmtree(folder)
        await eventually(lambda: "cannot be reloaded" in caplog.text)
        await asyncio.sleep(0.5)  # long enough for any more warnings
        await asyncio.to_thread(folder.mkdir)
        write_seeds(folder, 5)
        await eventually(lambda: reload.seen[-1:] == [5])
        write_seeds(folder, 7, "more")
        await eventually(lambda: reload.seen[-1:] == [12])
    await watcher.stop()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"seed folder {folder} does not exist" in warnings[0]
    assert "seed folder" in caplog.text and "is back" in caplog.text


async def test_starting_and_stopping_twice_is_the_same_as_once(
    folder: Path, store: SqliteStore
) -> None:
    reload = CountingReloader(folder)
    watcher = watcher_of(folder, store, reload)

    watcher.start()
    watcher.start()
    await eventually(lambda: watcher.watching)
    write_seeds(folder, 1)
    await eventually(lambda: reload.seen == [1])
    await watcher.stop()
    await watcher.stop()

    assert not (watcher.running or watcher.leading or watcher.watching)
    # Stopped: the lock is free again, for this store too.
    async with store.task_lock("seed-watch"):
        pass


async def test_one_process_of_a_database_watches_and_another_takes_over_when_it_stops(
    postgres_url: str, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores = [PostgresStore(postgres_url), PostgresStore(postgres_url)]
    for store in stores:
        await store.open()
    reloads = [CountingReloader(folder), CountingReloader(folder)]
    first, second = (
        watcher_of(folder, store, reload, lock_period=0.2)
        for store, reload in zip(stores, reloads, strict=True)
    )
    try:
        with caplog.at_level(logging.INFO, logger="bot.reload.watch"):
            first.start()
            await eventually(lambda: first.watching)
            second.start()
            await eventually(lambda: "watched by another newsbot process" in caplog.text)
            write_seeds(folder, 2)
            await eventually(lambda: reloads[0].seen == [2])

            assert not second.leading
            await first.stop()
            await eventually(lambda: second.watching)
            # Taking over, it reloads once for whatever changed while nobody watched.
            await eventually(lambda: reloads[1].seen == [2])
            write_seeds(folder, 3, "more")
            await eventually(lambda: reloads[1].seen == [2, 5])
    finally:
        await first.stop()
        await second.stop()
        for store in stores:
            await store.close()

    assert reloads[0].seen == [2]
    watchers = [r for r in caplog.records if "this newsbot process watches" in r.getMessage()]
    assert len(watchers) == 2
    assert f"pid {os.getpid()} on" in caplog.text


async def test_a_watcher_whose_lock_was_taken_over_stops_watching(
    store: SqliteStore, folder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store.task_lock_renewal = 0.05
    reload = CountingReloader(folder)
    watcher = watcher_of(folder, store, reload, lock_period=0.2)
    with caplog.at_level(logging.INFO, logger="bot.reload.watch"):
        watcher.start()
        await eventually(lambda: watcher.watching)
        # What another process does once this one's lease ran out unrenewed (its database out
        # of reach for a while): the lock's row becomes that process's, for another lease.
        await asyncio.to_thread(take_lock_over, tmp_path / "news.db", "seed-watch")
        await eventually(lambda: not watcher.leading)
        await eventually(lambda: "watched by another newsbot process" in caplog.text)
        write_seeds(folder, 2)
        await asyncio.sleep(1)  # long enough for a reload to show, were there one
        await watcher.stop()

    assert reload.seen == []
    assert "took the seed folder watch over; this one stops watching" in caplog.text


def take_lock_over(database: Path, name: str) -> None:
    with sqlite3.connect(database) as connection:
        connection.execute(
            "UPDATE task_locks SET owner = 'another', host = 'elsewhere', pid = 1,"
            " expires_at = expires_at + 600 WHERE name = ?",
            (name,),
        )
    connection.close()


async def test_a_failing_watch_is_logged_and_watching_starts_again(
    folder: Path,
    store: SqliteStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_awatch = watch.awatch
    calls: list[Path] = []

    def failing_once(path: Path, **options: object) -> object:
        calls.append(path)
        if len(calls) == 1:
            raise OSError(28, "inotify watch limit reached")
        return real_awatch(path, **options)  # type: ignore[arg-type]

    monkeypatch.setattr(watch, "awatch", failing_once)
    reload = CountingReloader(folder)
    watcher = watcher_of(folder, store, reload, lock_period=0.1)

    with caplog.at_level(logging.INFO, logger="bot.reload.watch"):
        watcher.start()
        await eventually(lambda: watcher.watching)
        assert len(calls) == 2
        await eventually(lambda: reload.seen == [0])  # catching up on what it missed
        write_seeds(folder, 1)
        await eventually(lambda: reload.seen == [0, 1])
    await watcher.stop()

    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert failure.getMessage() == f"watching the seed folder {folder} failed; trying again"


async def test_started_to_catch_up_it_reloads_once_for_what_changed_before(
    folder: Path, store: SqliteStore
) -> None:
    write_seeds(folder, 4)
    reload = CountingReloader(folder)
    watcher = watcher_of(folder, store, reload)

    watcher.start(catch_up=True)
    await eventually(lambda: reload.seen == [4])
    await watcher.stop()
