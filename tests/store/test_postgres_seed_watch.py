"""What only the PostgreSQL backend does for seed announcements: the NOTIFY a reload sends on
commit (and never for one rolled back), and a watch that connects again after its listening
connection dropped."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from bot.store import StaleReload
from bot.store.postgres import PostgresStore
from bot.store.postgres.seed_watch import APPLICATION_NAME, CHANNEL
from tests.store.helpers import failing_reload, reload, story_at
from tests.store.test_contract_seed_watch import WAIT, watching

_LISTENERS = (
    "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"
)
# A watch that is listening, past its connection's start: it has read the generation since.
_LISTENING = _LISTENERS + " AND query LIKE 'SELECT seed_generation%'"


@pytest.fixture
async def stores(postgres_store_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    pair = (PostgresStore(postgres_store_url), PostgresStore(postgres_store_url))
    for store in pair:
        await store.open()
    yield pair
    for store in pair:
        await store.close()


async def test_a_reload_notifies_its_generation_once_it_commits(
    stores: tuple[PostgresStore, PostgresStore], postgres_store_url: str
) -> None:
    store, _ = stores
    listener = await asyncpg.connect(postgres_store_url)
    heard: list[str] = []
    try:
        await listener.add_listener(CHANNEL, lambda *args: heard.append(args[-1]))
        with pytest.raises(StaleReload):
            await store.apply_reload(failing_reload(store))  # rolled back: nothing sent
        await reload(store, [story_at(1)])
        await listener.execute("SELECT 1")  # a round trip: notifications before it are in
    finally:
        await listener.close()

    assert heard == ["1"]


async def test_a_watch_whose_connection_dropped_connects_again_and_hears_what_it_missed(
    stores: tuple[PostgresStore, PostgresStore], postgres_store_url: str
) -> None:
    store, rival = stores
    announcements = await watching(store)
    admin = await asyncpg.connect(postgres_store_url)
    try:
        for _ in range(int(WAIT * 100)):
            listeners = await admin.fetch(_LISTENING, APPLICATION_NAME)
            if listeners:
                break
            await asyncio.sleep(0.01)
        assert len(listeners) == 1
        dropped = listeners[0]["pid"]
        await admin.execute("SELECT pg_terminate_backend($1)", dropped)
        # Gone for good before the reload: only a new connection can hear of it.
        for _ in range(int(WAIT * 100)):
            if dropped not in [
                row["pid"] for row in await admin.fetch(_LISTENERS, APPLICATION_NAME)
            ]:
                break
            await asyncio.sleep(0.01)

        await reload(rival, [story_at(1, topics=("Volcanoes",))])
    finally:
        await admin.close()

    assert await announcements.next() == 1
