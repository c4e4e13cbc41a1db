"""Fixtures for the store's tests: a fresh, opened store per test, once per backend.

The contract tests (test_contract_*.py) take `store` and run against every backend in
BACKENDS; a second backend plugs in by adding its factory here. test_sqlite.py overrides
`store` with the SQLite store alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.store import Store
from bot.store.sqlite import SqliteStore
from tests.factories import make_related
from tests.store.helpers import record, reload, story_at

# Backend name -> a new store on a database under the given path, not yet opened.
BACKENDS: dict[str, Callable[[Path], Store]] = {
    "sqlite": SqliteStore,
}


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "news.db"


@pytest.fixture(params=sorted(BACKENDS))
def new_store(request: pytest.FixtureRequest, db_path: Path) -> Callable[[], Store]:
    """Makes stores of one backend on one database (another process's store, for races)."""
    return lambda: BACKENDS[request.param](db_path)


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
