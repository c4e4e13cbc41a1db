"""Storage: the Store protocol and the backend that implements it."""

from bot.config import DatabaseSettings
from bot.store.base import (
    EncodedStory,
    InstanceLocked,
    ReloadChanges,
    SeedFileRecord,
    SeedIndex,
    SeedStatus,
    StaleReload,
    Store,
    StoreError,
)


def create_store(database: DatabaseSettings) -> Store:
    """The configured backend, not yet opened (SQLite, the embedded default)."""
    from bot.store.sqlite import SqliteStore

    return SqliteStore(database.path)


__all__ = [
    "EncodedStory",
    "InstanceLocked",
    "ReloadChanges",
    "SeedFileRecord",
    "SeedIndex",
    "SeedStatus",
    "StaleReload",
    "Store",
    "StoreError",
    "create_store",
]
