"""One bot per database on PostgreSQL: the instance lease row (taken over once expired, or at once
from a dead process on this host), and the store noticing its database dropped and created
again under the running bot."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.store.base import DatabaseLost, InstanceLocked, InstanceLost, StoreError
from bot.store.postgres import PostgresStore
from tests.store.helpers import reload, story_at

HOST = socket.gethostname()
START = 1_700_000_000


class Seconds:
    """A unix-seconds clock that tests move by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def opened(url: str, **options: object) -> PostgresStore:
    store = PostgresStore(url, **options)  # type: ignore[arg-type]
    await store.open()
    return store


@pytest.fixture
async def first(postgres_store_url: str) -> AsyncIterator[PostgresStore]:
    """An open store holding the lease: the running bot."""
    store = await opened(postgres_store_url)
    await store.acquire_instance_lock()
    yield store
    await store.close()


async def sql(url: str, statement: str, *params: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        rows: list[asyncpg.Record] = await connection.fetch(statement, *params)
        return rows
    finally:
        await connection.close()


async def lease_row(url: str) -> tuple[object, ...] | None:
    rows = await sql(
        url, "SELECT owner, host, pid, acquired_at, renewed_at, expires_at FROM instance_lease"
    )
    return tuple(rows[0]) if rows else None


async def put_lease(url: str, *, host: str, pid: int, expires_at: int) -> None:
    await sql(url, "DELETE FROM instance_lease")
    await sql(
        url,
        "INSERT INTO instance_lease VALUES (1, 'x:1:ab', $1, $2, $3, $3, $4)",
        host,
        pid,
        expires_at - 60,
        expires_at,
    )


async def refusal(url: str) -> str:
    second = await opened(url)
    try:
        with pytest.raises(InstanceLocked) as refused:
            await second.acquire_instance_lock()
    finally:
        await second.close()
    return str(refused.value)


async def test_a_second_store_is_refused_with_the_holders_pid_and_host_until_the_first_closes(
    postgres_store_url: str,
) -> None:
    first = await opened(postgres_store_url)
    await first.acquire_instance_lock()
    await first.acquire_instance_lock()  # a no-op the second time

    message = await refusal(postgres_store_url)

    assert message.startswith(
        f"another newsbot is already running on {postgres_store_url} (pid {os.getpid()} on host"
        f" {HOST}, lease until "
    )
    assert message.endswith(" UTC); stop it first")
    await first.close()
    again = await opened(postgres_store_url)
    await again.acquire_instance_lock()
    await again.close()


async def test_of_newsbots_starting_at_once_exactly_one_takes_the_lease(
    postgres_store_url: str,
) -> None:
    stores = [await opened(postgres_store_url) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(store.acquire_instance_lock() for store in stores), return_exceptions=True
        )
        assert sum(result is None for result in results) == 1, results
        assert all(isinstance(result, InstanceLocked | type(None)) for result in results)
        assert [store.holds_instance_lock for store in stores].count(True) == 1
    finally:
        for store in stores:
            await store.close()


async def test_the_lease_needs_an_open_store(postgres_store_url: str) -> None:
    with pytest.raises(StoreError, match="is not open"):
        await PostgresStore(postgres_store_url).acquire_instance_lock()


_HOLD_LEASE = """
import asyncio, sys, time
from bot.store.postgres import PostgresStore

async def main():
    store = PostgresStore(sys.argv[1])
    await store.open()
    await store.acquire_instance_lock()
    print("holding", flush=True)
    time.sleep(60)  # killed long before

asyncio.run(main())
"""


async def test_a_holder_that_crashed_on_this_host_is_taken_over_at_once(
    postgres_store_url: str,
) -> None:
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD_LEASE, postgres_store_url, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert holder.stdout is not None
        assert await asyncio.wait_for(holder.stdout.readline(), 30) == b"holding\n"
        assert f"(pid {holder.pid} on host {HOST}," in await refusal(postgres_store_url)
    finally:
        holder.kill()  # a crash: no close(), the lease row stays
        await holder.wait()
    assert (await lease_row(postgres_store_url))[2] == holder.pid  # type: ignore[index]

    # The lease has not expired, but its holder is dead.
    store = await opened(postgres_store_url)
    await store.acquire_instance_lock()

    assert (await lease_row(postgres_store_url))[:3] == (store.owner, HOST, os.getpid())  # type: ignore[index]
    await store.close()


async def test_a_live_lease_on_another_host_refuses_until_it_expires(
    postgres_store_url: str,
) -> None:
    clock = Seconds()
    store = await opened(postgres_store_url, clock=clock)
    await put_lease(postgres_store_url, host="otherhost", pid=4242, expires_at=START + 60)

    with pytest.raises(InstanceLocked) as refused:
        await store.acquire_instance_lock()
    clock.now = START + 59
    with pytest.raises(InstanceLocked):
        await store.acquire_instance_lock()
    clock.now = START + 60
    await store.acquire_instance_lock()

    assert str(refused.value) == (
        f"another newsbot is already running on {postgres_store_url} (pid 4242 on host "
        "otherhost, lease until 2023-11-14 22:14:20 UTC); stop it first"
    )
    assert (await lease_row(postgres_store_url))[:3] == (store.owner, HOST, os.getpid())  # type: ignore[index]
    await store.close()


async def test_the_lease_is_renewed_while_running_and_released_on_close(
    postgres_store_url: str,
) -> None:
    clock = Seconds()
    store = await opened(postgres_store_url, clock=clock, lease_seconds=30)
    await store.acquire_instance_lock()
    assert (await lease_row(postgres_store_url))[3:] == (START, START, START + 30)  # type: ignore[index]

    clock.now = START + 20
    await store.renew_instance_lock()
    assert (await lease_row(postgres_store_url))[3:] == (START, START + 20, START + 50)  # type: ignore[index]

    await store.close()
    assert await lease_row(postgres_store_url) is None


async def test_a_renewal_that_finds_the_lease_taken_raises_instance_lost(
    first: PostgresStore, postgres_store_url: str
) -> None:
    await put_lease(postgres_store_url, host="otherhost", pid=4242, expires_at=2_000_000_000)

    with pytest.raises(InstanceLost, match=r"another newsbot took over .*pid 4242 on host other"):
        await first.renew_instance_lock()

    # Not ours to release: the other holder's row stays.
    await first.close()
    assert (await lease_row(postgres_store_url))[1] == "otherhost"  # type: ignore[index]


# --- the database dropped and created again under a running store ------------------------------


async def test_a_database_created_again_under_its_name_is_lost_and_nothing_is_written(
    postgres_store_url: str,
) -> None:
    store = await opened(postgres_store_url)
    await reload(store, [story_at(1)])
    await store.check_database()  # the same database: nothing to say
    name = urlsplit(postgres_store_url).path.lstrip("/")
    maintenance = postgres_store_url.rsplit("/", 1)[0] + "/postgres"
    await sql(maintenance, f'DROP DATABASE "{name}" WITH (FORCE)')
    await sql(maintenance, f'CREATE DATABASE "{name}"')
    try:
        with pytest.raises(DatabaseLost, match="was dropped or replaced"):
            await store.check_database()
        with pytest.raises(DatabaseLost):
            await store.set_state("command_sync", "x")
    finally:
        await store.close()
    assert await sql(postgres_store_url, "SELECT to_regclass('state')") == [(None,)]
