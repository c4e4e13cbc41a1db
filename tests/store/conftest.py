"""Fixtures for the store's tests: a fresh, opened store per test, once per backend.

The contract tests (test_contract_*.py) take `store` and run against every backend in
BACKENDS; a backend plugs in with a fixture that makes its stores on a fresh database.
test_sqlite.py and test_postgres.py override `store` with their backend alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.store import Store
from bot.store.postgres import PostgresStore
from bot.store.sqlite import SqliteStore
from tests.factories import make_related
from tests.postgres import PostgresServer
from tests.store.helpers import record, reload, story_at

# Backend name -> the fixture that makes stores of that backend, all on one fresh database.
BACKENDS = {
    "sqlite": "sqlite_stores",
    "postgres": "postgres_stores",
}
# The PostgreSQL database every test's database is copied from: migrated once per run.
MIGRATED_TEMPLATE = "newsbot_store_migrated"

StoreFactory = Callable[[], Store]


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "news.db"


@pytest.fixture(params=sorted(BACKENDS))
def new_store(request: pytest.FixtureRequest) -> StoreFactory:
    """Makes stores of one backend on one database (another process's store, for races)."""
    factory: StoreFactory = request.getfixturevalue(BACKENDS[request.param])
    return factory


@pytest.fixture
def sqlite_stores(db_path: Path) -> StoreFactory:
    return lambda: SqliteStore(db_path)


async def migrated(postgres_server: PostgresServer) -> str:
    """The template database with newsbot's schema (made at the first call of a run)."""

    async def migrate(url: str) -> None:
        store = PostgresStore(url)
        await store.open()
        await store.close()

    return await postgres_server.create_template(MIGRATED_TEMPLATE, migrate)


@pytest.fixture
async def postgres_store_url(postgres_server: PostgresServer) -> AsyncIterator[str]:
    """A fresh database of its own for one test, already migrated (a copy of the template:
    much quicker than migrating each one)."""
    url = await postgres_server.create_database(template=await migrated(postgres_server))
    yield url
    await postgres_server.drop_database(url)


@pytest.fixture
def postgres_stores(postgres_store_url: str) -> StoreFactory:
    return lambda: PostgresStore(postgres_store_url)


@pytest.fixture
async def store(new_store: Callable[[], Store]) -> AsyncIterator[Store]:
    store = new_store()
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def rival(store: Store, new_store: Callable[[], Store]) -> AsyncIterator[Store]:
    """A second store on the database of `store`: another newsbot process, another owner."""
    other = new_store()
    await other.open()
    yield other
    await other.close()


@pytest.fixture
async def loaded(store: Store) -> Store:
    await reload(
        store,
        [
            story_at(1, title="first one", related=(make_related(story_at(2).url),)),
            story_at(2, title="first two", topics=("Space",)),
        ],
        put_files=[record("one.yaml", story_id=story_at(1).id)],
    )
    return store
