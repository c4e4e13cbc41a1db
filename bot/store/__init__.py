"""Storage: the Store protocol and the backend that implements it."""

from bot.store.base import (
    ReloadChanges,
    SeedFileRecord,
    SeedIndex,
    StaleReload,
    Store,
    StoreError,
)

__all__ = [
    "ReloadChanges",
    "SeedFileRecord",
    "SeedIndex",
    "StaleReload",
    "Store",
    "StoreError",
]
