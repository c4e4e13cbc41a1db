"""Storage: the Store protocol and the backend that implements it."""

from bot.config import DatabaseSettings
from bot.store.base import (
    EncodedStory,
    InstanceLocked,
    NoDatabase,
    ReloadChanges,
    SeedFileRecord,
    SeedIndex,
    SeedStatus,
    StaleReload,
    Store,
    StoreError,
)


def create_store(database: DatabaseSettings, *, create: bool = True) -> Store:
    """The configured backend, not yet opened (SQLite, the embedded default).

    With create=False, opening it raises NoDatabase rather than creating a new, empty database:
    commands that only read have nothing to show from one.
    """
    from bot.store.sqlite import SqliteStore

    return SqliteStore(database.path, create=create)


__all__ = [
    "EncodedStory",
    "InstanceLocked",
    "NoDatabase",
    "ReloadChanges",
    "SeedFileRecord",
    "SeedIndex",
    "SeedStatus",
    "StaleReload",
    "Store",
    "StoreError",
    "create_store",
]
