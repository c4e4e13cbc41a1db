"""Storage: the roles callers use (bot.store.base) and the backend that implements them."""

from bot.config import DatabaseSettings
from bot.store.base import (
    DatabaseLost,
    DigestLedger,
    EncodedStory,
    InstanceLocked,
    InstanceLost,
    LeaseLost,
    LockedElsewhere,
    NoDatabase,
    ReloadChanges,
    SeedAnnouncements,
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
    TaskHolder,
    TaskLease,
    TaskLocks,
)


def create_store(database: DatabaseSettings, *, create: bool = True) -> Store:
    """The configured backend, not yet opened: PostgreSQL when `database.url` is set, else
    SQLite (the embedded default). Imported here, so that each backend's driver is only loaded
    when it is used.

    With create=False, opening it raises NoDatabase rather than creating a new, empty database
    (on PostgreSQL: rather than setting up newsbot's tables in one that has none): commands
    that only read have nothing to show from one.
    """
    if database.url is not None:
        from bot.store.postgres import PostgresStore

        return PostgresStore(database.url, create=create)
    from bot.store.sqlite import SqliteStore

    return SqliteStore(database.path, create=create)


__all__ = [
    "DatabaseLost",
    "DigestLedger",
    "EncodedStory",
    "InstanceLocked",
    "InstanceLost",
    "LeaseLost",
    "LockedElsewhere",
    "NoDatabase",
    "ReloadChanges",
    "SeedAnnouncements",
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
    "TaskHolder",
    "TaskLease",
    "TaskLocks",
    "create_store",
]
