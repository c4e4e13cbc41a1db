"""Storage: the roles callers use (bot.store.base) and the backend that implements them."""

from bot.config import DatabaseSettings
from bot.store.base import (
    DigestLedger,
    EncodedStory,
    InstanceLocked,
    LeaseLost,
    NoDatabase,
    ReloadChanges,
    SeedBookkeeping,
    SeedFileRecord,
    SeedIndex,
    SeedStatus,
    StaleReload,
    State,
    Store,
    StoreError,
    StoryReader,
)


def create_store(database: DatabaseSettings, *, create: bool = True) -> Store:
    """The configured backend, not yet opened (SQLite, the embedded default).

    With create=False, opening it raises NoDatabase rather than creating a new, empty database:
    commands that only read have nothing to show from one.
    """
    from bot.store.sqlite import SqliteStore

    return SqliteStore(database.path, create=create)


__all__ = [
    "DigestLedger",
    "EncodedStory",
    "InstanceLocked",
    "LeaseLost",
    "NoDatabase",
    "ReloadChanges",
    "SeedBookkeeping",
    "SeedFileRecord",
    "SeedIndex",
    "SeedStatus",
    "StaleReload",
    "State",
    "Store",
    "StoreError",
    "StoryReader",
    "create_store",
]
