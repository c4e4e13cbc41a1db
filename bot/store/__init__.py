"""Storage: the roles callers use (bot.store.base) and the backend that implements them."""

from bot.config import DatabaseSettings
from bot.store.base import (
    DatabaseLost,
    DigestLedger,
    EncodedStory,
    InstanceLocked,
    InstanceLost,
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
    StoreLost,
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
    "DatabaseLost",
    "DigestLedger",
    "EncodedStory",
    "InstanceLocked",
    "InstanceLost",
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
    "StoreLost",
    "StoryReader",
    "create_store",
]
