"""The contract every store backend keeps for shard leases: a process running some shards holds
all of their leases or none, a second process on one of them is refused naming the holder, a
lease is taken over once expired or at once from a dead process on this host, and the instance
lease (a process running every shard) and shard leases exclude each other. Runs against each
backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from bot.sharding import Shards
from bot.store import base
from bot.store.base import InstanceLocked, InstanceLost, Store, StoreError
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.store.conftest import BACKENDS

HOST = socket.gethostname()
START = 1_700_000_000
# 2023-11-14 22:13:20 UTC plus a 60 s lease: what a refusal at START names.
UNTIL_START = "2023-11-14 22:14:20 UTC"


class Seconds:
    """A unix-seconds clock that tests move by hand, shared by every store of a test."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


Opener = Callable[[], Awaitable[Store]]


@pytest.fixture
def seconds() -> Seconds:
    return Seconds()


@pytest.fixture(params=sorted(BACKENDS))
def clocked_stores(request: pytest.FixtureRequest, seconds: Seconds) -> Callable[[], Store]:
    """Makes stores of one backend on the test's one database, on the test's clock."""
    if request.param == "sqlite":
        path = request.getfixturevalue("db_path")
        return lambda: SqliteStore(path, clock=seconds)
    url = request.getfixturevalue("postgres_store_url")
    return lambda: PostgresStore(url, clock=seconds)


@pytest.fixture
async def process(clocked_stores: Callable[[], Store]) -> AsyncIterator[Opener]:
    """Opens another newsbot process's store; every store it made is closed at the end."""
    made: list[Store] = []

    async def opened() -> Store:
        store = clocked_stores()
        made.append(store)
        await store.open()
        return store

    yield opened
    for store in made:
        await store.close()


def on_shard(shard: int, count: int) -> int:
    """A server id on `shard` of `count` (Discord's rule: the id's timestamp bits)."""
    return (count * 1000 + shard) << 22


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited."""
    code = "import os; print(os.getpid())"
    child = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return int(child.stdout)


async def refusal(store: Store, shards: Shards | None = None) -> str:
    """Why `store` may not run `shards` (every shard when None)."""
    take = store.acquire_instance_lock() if shards is None else store.acquire_shard_leases(shards)
    with pytest.raises(InstanceLocked) as refused:
        await take
    return str(refused.value)


async def test_a_second_process_on_a_running_shard_is_refused(
    process: Opener,
) -> None:
    first = await process()
    await first.acquire_shard_leases(Shards(8, (0, 1)))
    await first.acquire_shard_leases(Shards(8, (0, 1)))  # a no-op the second time

    message = await refusal(await process(), Shards(8, (2, 1)))

    assert message == (
        f"shard 1 of 8 is run by pid {os.getpid()} on host {HOST} until {UNTIL_START}; "
        "stop it first"
    )


async def test_a_refused_process_takes_none_of_its_shards(process: Opener) -> None:
    first = await process()
    await first.acquire_shard_leases(Shards(8, (1,)))
    await refusal(await process(), Shards(8, (0, 1, 2)))

    # Shards 0 and 2 were free and stay free: all or none.
    third = await process()
    await third.acquire_shard_leases(Shards(8, (0, 2)))

    assert third.holds_lease_of(on_shard(0, 8)) and third.holds_lease_of(on_shard(2, 8))


async def test_processes_on_different_shards_run_side_by_side(process: Opener) -> None:
    stores = [await process() for _ in range(4)]
    for shard, store in enumerate(stores):
        await store.acquire_shard_leases(Shards(4, (shard,)))
    for store in stores:
        await store.renew_shard_leases()

    assert [[store.holds_lease_of(on_shard(n, 4)) for n in range(4)] for store in stores] == [
        [n == shard for n in range(4)] for shard in range(4)
    ]
    assert not any(store.holds_instance_lock for store in stores)


async def test_of_processes_starting_at_once_one_takes_the_shard(
    process: Opener,
) -> None:
    stores = [await process() for _ in range(4)]

    results = await asyncio.gather(
        *(store.acquire_shard_leases(Shards(2, (0, 1))) for store in stores),
        return_exceptions=True,
    )

    assert sum(result is None for result in results) == 1, results
    assert all(isinstance(result, InstanceLocked | type(None)) for result in results)
    assert [store.holds_lease_of(on_shard(1, 2)) for store in stores].count(True) == 1


async def test_a_lease_is_taken_over_once_expired_and_its_old_holder_learns_it_at_renewal(
    process: Opener, seconds: Seconds
) -> None:
    first = await process()
    await first.acquire_shard_leases(Shards(8, (3,)))
    seconds.now += 59
    await refusal(await process(), Shards(8, (3,)))

    seconds.now += 1
    second = await process()
    await second.acquire_shard_leases(Shards(8, (3,)))
    with pytest.raises(InstanceLost) as lost:
        await first.renew_shard_leases()

    assert str(lost.value).startswith("another newsbot took over shard 3 of 8 on ")
    assert str(lost.value).endswith(
        f" (pid {os.getpid()} on host {HOST}); this one stops so that no digest is posted twice"
    )
    assert not first.holds_lease_of(on_shard(3, 8))
    await second.renew_shard_leases()  # its lease is left alone


async def test_renewal_keeps_the_shards_from_anyone_else(process: Opener, seconds: Seconds) -> None:
    first = await process()
    await first.acquire_shard_leases(Shards(8, (3,)))
    seconds.now += 50
    await first.renew_shard_leases()
    seconds.now += 50  # 100 s after it was taken, 50 s after it was renewed

    message = await refusal(await process(), Shards(8, (3,)))

    assert "until 2023-11-14 22:15:10 UTC" in message


async def test_a_lease_of_a_dead_process_on_this_host_is_taken_over_at_once(
    process: Opener, dead_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed = await process()
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: dead_pid)
        await crashed.acquire_shard_leases(Shards(8, (0, 1)))

    restarted = await process()
    await restarted.acquire_shard_leases(Shards(8, (0, 1)))

    assert restarted.holds_lease_of(on_shard(1, 8))


async def test_a_lease_of_an_earlier_process_with_this_pid_is_taken_over_at_once(
    process: Opener, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A container restarts newsbot as pid 1 under the same host name: the lease of "pid 1 on
    # this host" is then an earlier process's, although pid 1 is alive.
    with monkeypatch.context() as patch:
        patch.setattr(base, "_PROCESS_TOKEN", "0e1f1e00")
        earlier = await process()
        await earlier.acquire_shard_leases(Shards(8, (0, 1)))

    restarted = await process()
    await restarted.acquire_shard_leases(Shards(8, (0, 1)))

    assert restarted.holds_lease_of(on_shard(1, 8))


async def test_closing_releases_the_shards_at_once(process: Opener) -> None:
    first = await process()
    await first.acquire_shard_leases(Shards(8, (5,)))
    await first.close()

    second = await process()
    await second.acquire_shard_leases(Shards(8, (5,)))

    assert second.holds_lease_of(on_shard(5, 8))


async def test_every_shard_and_some_shards_exclude_each_other(
    process: Opener,
) -> None:
    whole = await process()
    await whole.acquire_instance_lock()

    sharded = await refusal(await process(), Shards(8, (0,)))
    assert sharded.startswith("another newsbot runs every shard on ")
    assert sharded.endswith(
        f"(pid {os.getpid()} on host {HOST}, lease until {UNTIL_START}); stop it first"
    )

    await whole.close()
    part = await process()
    await part.acquire_shard_leases(Shards(8, (6,)))
    message = await refusal(await process())
    assert message == (
        f"shard 6 of 8 is run by pid {os.getpid()} on host {HOST} until {UNTIL_START}; "
        "stop it first"
    )


async def test_a_live_lease_of_another_shard_count_refuses_any_shard(process: Opener) -> None:
    # Shard 0 of 4 shares servers with shard 4 of 8: every process must agree on the count.
    first = await process()
    await first.acquire_shard_leases(Shards(4, (0,)))

    message = await refusal(await process(), Shards(8, (7,)))

    assert message.startswith("shard 0 of 4 is run by ")


async def test_the_instance_lease_covers_every_server_and_a_shard_lease_its_shards_servers(
    process: Opener,
) -> None:
    whole = await process()
    assert not whole.holds_lease_of(on_shard(0, 2))
    await whole.acquire_instance_lock()
    assert whole.holds_lease_of(on_shard(0, 2)) and whole.holds_lease_of(on_shard(1, 2))
    await whole.close()

    part = await process()
    await part.acquire_shard_leases(Shards(2, (1,)))

    assert part.holds_lease_of(on_shard(1, 2)) and not part.holds_lease_of(on_shard(0, 2))


async def test_shard_leases_are_for_a_process_with_shard_ids(process: Opener) -> None:
    store = await process()
    with pytest.raises(StoreError, match=r"discord\.shard_ids"):
        await store.acquire_shard_leases(Shards(8))
    with pytest.raises(StoreError, match="holds no shard lease"):
        await store.renew_shard_leases()
