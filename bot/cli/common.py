"""What every command of the command line shares: exit codes, the context a command runs in,
and the store opened for it. Its errors are bot.errors' (re-exported here for the commands)."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from bot import config
from bot.errors import DiscordUnavailable, UserError
from bot.store import NoDatabase, Store, create_store

EXIT_OK = 0
EXIT_REJECTED = 1
EXIT_USAGE = 2
EXIT_DISCORD = 3
# sysexits.h EX_SOFTWARE: an internal software error (a bug), told apart from the rest.
EXIT_BUG = 70
# sysexits.h EX_TEMPFAIL, "try again": the running bot lost its database or its instance lease
# and stopped; a supervisor's restart puts it right.
EXIT_TEMPFAIL = 75
EXIT_INTERRUPTED = 130

__all__ = ["DiscordUnavailable", "UserError"]


@dataclass(frozen=True, slots=True)
class Context:
    settings: config.Settings
    out: TextIO


Command = Callable[[argparse.Namespace, Context], Coroutine[Any, Any, int]]


@asynccontextmanager
async def opened_store(settings: config.Settings, *, create: bool = True) -> AsyncIterator[Store]:
    """The configured store, open. Commands that only read pass create=False: a missing
    database is then a one-line pointer to `newsbot seeds load`, not a new empty file."""
    store = create_store(settings.database, create=create)
    try:
        await store.open()
    except NoDatabase as error:
        raise UserError(f"{error}: run `newsbot seeds load` first") from None
    try:
        yield store
    finally:
        await store.close()
