"""The contract every store backend keeps for seed announcements: a store that watches hears
of a reload committed through another store on its database (another process), and not of
its own. Runs against each backend (see conftest.py)."""

from __future__ import annotations

import asyncio

from bot.store.base import Store
from tests.store.helpers import reload, story_at

# Generous: a wait for an event, never an assertion about how long it took.
WAIT = 10.0


class Announcements:
    """A watch callback that keeps what it heard and wakes whoever waits for it."""

    def __init__(self) -> None:
        self.heard: asyncio.Queue[int] = asyncio.Queue()

    def __call__(self, generation: int) -> None:
        self.heard.put_nowait(generation)

    async def next(self) -> int:
        return await asyncio.wait_for(self.heard.get(), WAIT)


async def watching(store: Store) -> Announcements:
    # SQLite has nothing that announces a reload: it looks at the generation, here often.
    store.seed_watch_interval = 0.01  # type: ignore[attr-defined]  # the backends' knob
    announcements = Announcements()
    await store.watch_seed_reloads(announcements)
    return announcements


async def test_a_reload_through_another_store_is_announced_with_its_generation(
    store: Store, rival: Store
) -> None:
    announcements = await watching(store)

    await reload(rival, [story_at(1, topics=("Volcanoes",))])

    assert await announcements.next() == 1


async def test_a_stores_own_reload_is_not_announced_to_it(store: Store, rival: Store) -> None:
    announcements = await watching(store)

    await reload(store, [story_at(1)])
    await reload(rival, [story_at(2)])

    # The first thing heard is the other store's reload, generation 2.
    assert await announcements.next() == 2
    assert announcements.heard.empty()
