"""One bot per database on SQLite: the instance lease in the database, the flock on the database
file that makes it instant on one host, and the store noticing its file deleted or replaced."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.store.base import DatabaseLost, InstanceLocked, InstanceLost, StoreError
from bot.store.sqlite import SqliteStore

HOST = socket.gethostname()
START = 1_700_000_000


class Seconds:
    """A unix-seconds clock that tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def first(db_path: Path) -> AsyncIterator[SqliteStore]:
    """An open store holding the lease: the running bot."""
    store = SqliteStore(db_path)
    await store.open()
    await store.acquire_instance_lock()
    yield store
    await store.close()


async def opened(path: Path, **options: object) -> SqliteStore:
    store = SqliteStore(path, **options)  # type: ignore[arg-type]
    await store.open()
    return store


def lease_row(path: Path) -> tuple[object, ...] | None:
    with sqlite3.connect(path) as db:
        return db.execute(
            "SELECT owner, host, pid, acquired_at, renewed_at, expires_at FROM instance_lease"
        ).fetchone()


def put_lease(path: Path, *, host: str, pid: int, expires_at: int, owner: str = "x:1:ab") -> None:
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM instance_lease")
        db.execute(
            "INSERT INTO instance_lease VALUES (1, ?, ?, ?, ?, ?, ?)",
            (owner, host, pid, expires_at - 60, expires_at - 60, expires_at),
        )


async def refusal(path: Path, **options: object) -> str:
    second = await opened(path, **options)
    try:
        with pytest.raises(InstanceLocked) as refused:
            await second.acquire_instance_lock()
    finally:
        await second.close()
    return str(refused.value)


# --- one bot per database, whatever path reaches it ---------------------------------------------


async def test_a_second_store_is_refused_with_the_holders_pid_and_host_until_the_first_closes(
    db_path: Path,
) -> None:
    first = await opened(db_path)
    await first.acquire_instance_lock()
    await first.acquire_instance_lock()  # a no-op the second time

    message = await refusal(db_path)

    assert message.startswith(
        f"another newsbot is already running on {db_path} (pid {os.getpid()} on host {HOST}, "
        "lease until "
    )
    assert message.endswith(" UTC); stop it first")
    await first.close()
    again = await opened(db_path)
    await again.acquire_instance_lock()
    await again.close()


async def test_a_second_store_through_a_symlink_is_refused(
    first: SqliteStore, db_path: Path, tmp_path: Path
) -> None:
    link = tmp_path / "elsewhere" / "link.db"
    link.parent.mkdir()
    link.symlink_to(db_path)

    assert f"(pid {os.getpid()} on host {HOST}," in await refusal(link)


async def test_a_second_store_through_a_relative_path_is_refused(
    first: SqliteStore, db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(db_path.parent.parent)

    assert f"(pid {os.getpid()} on host {HOST}," in await refusal(Path("data/news.db"))


_TRY_LEASE = """
import asyncio, sys
from bot.store.base import InstanceLocked
from bot.store.sqlite import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    try:
        await store.acquire_instance_lock()
        print("acquired")
    except InstanceLocked as refused:
        print(refused)
    await store.close()

asyncio.run(main())
"""


async def test_a_second_newsbot_is_refused_after_every_file_next_to_the_database_is_deleted(
    first: SqliteStore, db_path: Path
) -> None:
    (db_path.parent / "news.db.lock").write_text("")  # what an older newsbot left
    for helper in db_path.parent.iterdir():
        if helper != db_path:
            helper.unlink()

    # Another process, as a second `newsbot run` would be: in this one, a second connection
    # would share the first one's (now unlinked) shared-memory file.
    second = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _TRY_LEASE, str(db_path), stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(second.communicate(), 30)

    assert f"(pid {os.getpid()} on host {HOST}," in out.decode()


async def test_a_lock_file_left_by_an_older_newsbot_is_ignored(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    (db_path.parent / "news.db.lock").write_text("4242\n")
    store = await opened(db_path)

    await store.acquire_instance_lock()

    assert lease_row(db_path)[:3] == (store.owner, HOST, os.getpid())  # type: ignore[index]
    await store.close()


async def test_the_lease_needs_an_open_store(db_path: Path) -> None:
    with pytest.raises(StoreError, match="is not open"):
        await SqliteStore(db_path).acquire_instance_lock()


# --- holders that crashed, and holders elsewhere -----------------------------------------------

_HOLD_LEASE = """
import asyncio, sys, time
from bot.store.sqlite import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    await store.acquire_instance_lock()
    print("holding", flush=True)
    time.sleep(60)  # killed long before

asyncio.run(main())
"""


async def test_a_holder_that_crashed_on_this_host_is_taken_over_at_once(db_path: Path) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LEASE, str(db_path), stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"holding\n"
        assert f"(pid {holder.pid} on host {HOST}," in await refusal(db_path)
    finally:
        holder.kill()  # a crash: no close(), the lease row stays
        await holder.wait()
    assert lease_row(db_path)[2] == holder.pid  # type: ignore[index]

    # The clock has not moved: the lease is still unexpired, but its holder is dead.
    store = await opened(db_path)
    await store.acquire_instance_lock()

    assert lease_row(db_path)[:3] == (store.owner, HOST, os.getpid())  # type: ignore[index]
    await store.close()


async def test_a_lease_row_of_a_dead_process_on_this_host_is_taken_over_at_once(
    db_path: Path,
) -> None:
    clock = Seconds()
    store = await opened(db_path, clock=clock)
    put_lease(db_path, host=HOST, pid=999_999_999, expires_at=START + 60)

    await store.acquire_instance_lock()

    assert lease_row(db_path) == (store.owner, HOST, os.getpid(), START, START, START + 60)
    await store.close()


async def test_a_live_lease_on_another_host_refuses_until_it_expires(db_path: Path) -> None:
    clock = Seconds()
    store = await opened(db_path, clock=clock)
    put_lease(db_path, host="otherhost", pid=4242, expires_at=START + 60)

    with pytest.raises(InstanceLocked) as refused:
        await store.acquire_instance_lock()
    clock.now = START + 59
    with pytest.raises(InstanceLocked):
        await store.acquire_instance_lock()
    clock.now = START + 60
    await store.acquire_instance_lock()

    assert str(refused.value) == (
        f"another newsbot is already running on {db_path} (pid 4242 on host otherhost, lease "
        "until 2023-11-14 22:14:20 UTC); stop it first"
    )
    assert lease_row(db_path)[:3] == (store.owner, HOST, os.getpid())  # type: ignore[index]
    await store.close()


# --- renewed while running, released on close -------------------------------------------------


async def test_the_lease_is_renewed_while_running_and_released_on_close(db_path: Path) -> None:
    clock = Seconds()
    store = await opened(db_path, clock=clock, lease_seconds=30)
    await store.acquire_instance_lock()
    assert lease_row(db_path)[3:] == (START, START, START + 30)  # type: ignore[index]

    clock.now = START + 20
    await store.renew_instance_lock()
    assert lease_row(db_path)[3:] == (START, START + 20, START + 50)  # type: ignore[index]

    await store.close()
    assert lease_row(db_path) is None


async def test_a_renewal_that_finds_the_lease_taken_raises_instance_lost(
    first: SqliteStore, db_path: Path
) -> None:
    put_lease(db_path, host="otherhost", pid=4242, expires_at=2_000_000_000)

    with pytest.raises(InstanceLost, match=r"another newsbot took over .*pid 4242 on host other"):
        await first.renew_instance_lock()

    # Not ours to release: the other holder's row stays.
    await first.close()
    assert lease_row(db_path)[1] == "otherhost"  # type: ignore[index]


# --- the database file deleted or replaced under a running store ------------------------------


async def test_deleting_the_database_makes_the_next_write_raise_and_nothing_is_saved(
    db_path: Path,
) -> None:
    store = await opened(db_path)
    await store.set_state("kept", "yes")
    os.unlink(db_path)

    with pytest.raises(DatabaseLost) as lost:
        await store.set_state("command_sync", "abc")
    with pytest.raises(DatabaseLost):  # and every write after it
        await store.set_state("command_sync", "abc")
    await store.close()

    assert str(lost.value) == (
        f"database {db_path} was deleted or replaced while newsbot was running (the file is "
        "gone); nothing more is saved; restart newsbot"
    )
    again = await opened(db_path)
    assert await again.get_state("command_sync") is None
    await again.close()


async def test_replacing_the_database_makes_the_next_write_raise(
    db_path: Path, tmp_path: Path
) -> None:
    store = await opened(db_path)
    other = await opened(tmp_path / "other.db")
    await other.close()
    os.replace(tmp_path / "other.db", db_path)

    with pytest.raises(DatabaseLost, match=r"\(another file is at its path\)"):
        await store.set_state("command_sync", "abc")
    await store.close()


async def test_deleting_the_wal_file_makes_the_next_write_raise(db_path: Path) -> None:
    store = await opened(db_path)
    os.unlink(db_path.with_name("news.db-wal"))

    with pytest.raises(DatabaseLost, match=r"\(its -wal file is gone\)"):
        await store.set_state("command_sync", "abc")
    await store.close()


async def test_a_database_replaced_during_a_transaction_is_not_reported_saved(
    db_path: Path, tmp_path: Path
) -> None:
    store = await opened(db_path)
    (tmp_path / "other.db").write_bytes(b"")

    async def write_while_the_file_is_replaced() -> None:
        # A write transaction as every change runs in; the file changes before it commits.
        async with store._transaction() as writer:
            await writer.execute("INSERT INTO state (key, value) VALUES ('k', 'v')")
            os.replace(tmp_path / "other.db", db_path)

    with pytest.raises(DatabaseLost):
        await write_while_the_file_is_replaced()
    await store.close()


async def test_the_watch_notices_a_deleted_database_without_any_write(db_path: Path) -> None:
    store = await opened(db_path)
    await store.check_database()  # all well
    os.unlink(db_path)

    with pytest.raises(DatabaseLost, match="the file is gone"):
        await store.check_database()
    await store.close()


async def test_a_store_through_a_relative_path_keeps_its_file_after_a_chdir(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(db_path.parent.parent)
    store = await opened(Path("data/news.db"))
    monkeypatch.chdir(db_path.parent)

    await store.check_database()
    await store.set_state("command_sync", "abc")
    await store.close()


_OPEN_READ_CLOSE = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM state").fetchone()
db.close()  # the last connection to the file checkpoints and deletes the -wal file
"""


async def test_a_second_store_closing_keeps_sqlites_locks_of_the_first_one(db_path: Path) -> None:
    # Closing any descriptor of the database file drops this process's POSIX locks on it, the
    # shared lock SQLite keeps in WAL mode included: another process closing its connection
    # would then think itself the last and delete the -wal file under the first store.
    first = await opened(db_path)
    second = await opened(db_path)
    await second.close()

    other = await asyncio.create_subprocess_exec(sys.executable, "-c", _OPEN_READ_CLOSE, db_path)
    await asyncio.wait_for(other.wait(), 30)

    await first.set_state("command_sync", "abc")  # the -wal file is still the one it opened
    await first.close()
