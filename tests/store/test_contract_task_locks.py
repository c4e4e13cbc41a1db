"""The contract every store backend keeps for task locks: one process at a time holds a lock
by name, the others are refused naming the holder; a lock is renewed while held, taken over
once expired or at once from a dead process on this host, and free again when its block
ends. Runs against each backend (see conftest.py)."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable

import pytest

from bot.store.base import LockedElsewhere, Store
from tests.store import test_contract_shard_leases as shard_leases
from tests.store.test_contract_shard_leases import START, Opener, Seconds

# The clocked stores of the shard leases' contract: fixtures, used by name.
seconds = shard_leases.seconds
clocked_stores = shard_leases.clocked_stores
process = shard_leases.process
dead_pid = shard_leases.dead_pid

HOST = socket.gethostname()


async def refused_by(store: Store, name: str) -> LockedElsewhere:
    with pytest.raises(LockedElsewhere) as refused:
        async with store.task_lock(name):
            pass
    return refused.value


async def test_a_task_lock_held_by_another_process_is_refused_naming_its_holder(
    store: Store, rival: Store
) -> None:
    async with store.task_lock("seeds-reload"):
        refusal = await refused_by(rival, "seeds-reload")

    holder = refusal.holder
    assert (holder.name, holder.owner, holder.host, holder.pid) == (
        "seeds-reload",
        store.owner,
        HOST,
        os.getpid(),
    )
    assert str(refusal).startswith(
        f"seeds-reload is running in another newsbot process (pid {os.getpid()} on {HOST}, since "
    )


async def test_a_task_lock_is_free_again_once_its_block_ends(store: Store, rival: Store) -> None:
    async with store.task_lock("command-sync"):
        pass
    async with rival.task_lock("command-sync"):
        await refused_by(store, "command-sync")


async def test_a_task_lock_is_released_when_its_block_raises(store: Store, rival: Store) -> None:
    with pytest.raises(RuntimeError):
        async with store.task_lock("seeds-reload"):
            raise RuntimeError("the task failed")

    async with rival.task_lock("seeds-reload"):
        pass


async def test_locks_of_different_names_do_not_exclude_each_other(
    store: Store, rival: Store
) -> None:
    async with store.task_lock("seeds-reload"), rival.task_lock("command-sync"):
        await refused_by(rival, "seeds-reload")


async def test_a_store_holding_a_task_lock_cannot_take_it_a_second_time(store: Store) -> None:
    async with store.task_lock("seeds-reload"):
        refusal = await refused_by(store, "seeds-reload")

    assert refusal.holder.owner == store.owner


async def test_an_expired_task_lock_is_taken_over(process: Opener, seconds: Seconds) -> None:
    first, second, third = await process(), await process(), await process()
    async with first.task_lock("seeds-reload"):
        seconds.now = START + 30  # its 30 s lease, not renewed (a hung or cut-off holder)
        async with second.task_lock("seeds-reload"):
            refusal = await refused_by(third, "seeds-reload")

    assert refusal.holder.owner == second.owner


async def test_a_holder_whose_lock_was_taken_over_learns_it_at_its_next_renewal(
    process: Opener, seconds: Seconds
) -> None:
    holder, other = await process(), await process()
    holder.task_lock_renewal = 0.05  # type: ignore[attr-defined]  # the backends' knob
    async with holder.task_lock("seed-watch") as lease:
        assert not lease.lost.is_set()
        seconds.now = START + 30  # its lease ran out while it could not renew it
        async with other.task_lock("seed-watch"):
            await asyncio.wait_for(lease.lost.wait(), timeout=5)


async def test_a_held_lock_is_not_lost_while_its_holder_renews_it(
    process: Opener, seconds: Seconds
) -> None:
    holder = await process()
    holder.task_lock_renewal = 0.01  # type: ignore[attr-defined]  # the backends' knob
    async with holder.task_lock("seed-watch") as lease:
        seconds.now = START + 25
        await asyncio.sleep(0.1)  # several renewals

        assert not lease.lost.is_set()


async def test_a_task_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(
    process: Opener, dead_pid: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashed, restarted = await process(), await process()
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: dead_pid)
        held = crashed.task_lock("seeds-reload")
        await held.__aenter__()  # and never left: the process died holding it

    async with restarted.task_lock("seeds-reload"):
        refusal = await refused_by(crashed, "seeds-reload")

    assert refusal.holder.owner == restarted.owner
    await held.__aexit__(None, None, None)


async def test_the_holder_renews_its_task_lock_while_its_task_runs(
    process: Opener, seconds: Seconds
) -> None:
    holder, other = await process(), await process()
    holder.task_lock_renewal = 0.01  # type: ignore[attr-defined]  # the backends' knob
    async with holder.task_lock("seeds-reload"):
        seconds.now = START + 25
        # Renewed to 25 + 30 s: still held past the first lease's end.
        await until(lambda: renewed_to(other, START + 55))
        seconds.now = START + 40
        refusal = await refused_by(other, "seeds-reload")

    assert refusal.holder.owner == holder.owner


async def renewed_to(store: Store, expires_at: int) -> bool:
    return (await refused_by(store, "seeds-reload")).holder.expires_at == expires_at


async def until(condition: Callable[[], Awaitable[bool]], tries: int = 500) -> None:
    """Wait for the holder's heartbeat (a background task) to have done its work."""
    for _ in range(tries):
        if await condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")
