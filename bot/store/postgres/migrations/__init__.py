"""The numbered SQL migrations of the PostgreSQL store (the .sql files here) and what applies them.

Each migration runs in its own transaction, which also records the version it brings in the
schema_version table, so a database is always at one known version. A transaction-level
advisory lock makes the migrations of several newsbots starting at once on one database take
turns: the first applies them, the others find them applied.
"""

from __future__ import annotations

import logging
import re
from importlib import resources
from typing import NamedTuple

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bot.store.base import StoreError

log = logging.getLogger(__name__)

_MIGRATION_FILE = re.compile(r"(\d{4})_\w+\.sql")
# The advisory lock key migrations take: any constant shared by every newsbot (the digits
# spell "newsbot" on a phone keypad). Advisory locks are per database.
MIGRATION_LOCK = 6_397_268

_HAS_VERSION_TABLE = "SELECT to_regclass('schema_version') IS NOT NULL"
_VERSION = "SELECT version FROM schema_version"
_CREATE_VERSION_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " id BOOLEAN PRIMARY KEY DEFAULT true CHECK (id), version INTEGER NOT NULL)"
)
_SET_VERSION = (
    "INSERT INTO schema_version (version) VALUES ($1)"
    " ON CONFLICT (id) DO UPDATE SET version = excluded.version"
)


class Migration(NamedTuple):
    number: int
    name: str
    sql: str


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, in order."""
    found: list[Migration] = []
    for entry in resources.files(__name__).iterdir():
        matched = _MIGRATION_FILE.fullmatch(entry.name)
        if matched:
            found.append(Migration(int(matched[1]), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [migration.number for migration in found]
    # None at all: the .sql files were left out of the package (its package data).
    if not numbers or numbers != list(range(1, len(found) + 1)):
        # A packaging mistake, not a user problem; refusing beats a half-built schema.
        raise StoreError(f"migrations of newsbot are not numbered 0001 onwards: {numbers}")
    return found


async def schema_version(connection: asyncpg.Connection[asyncpg.Record]) -> int:
    """The version a database's schema is at (0: newsbot never set it up)."""
    if not await connection.fetchval(_HAS_VERSION_TABLE):
        return 0
    version = await connection.fetchval(_VERSION)
    return 0 if version is None else int(version)


async def migrate(
    connection: asyncpg.Connection[asyncpg.Record], migrations: list[Migration], where: str
) -> None:
    """Apply the migrations newer than the database's version, each in its own transaction."""
    newest = migrations[-1].number if migrations else 0
    version = await schema_version(connection)
    _refuse_newer(version, newest, where)
    for number, name, sql in migrations:
        if number <= version:
            continue
        async with connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            # Another newsbot may have migrated while this one waited for the lock.
            await connection.execute(_CREATE_VERSION_TABLE)
            version = await schema_version(connection)
            _refuse_newer(version, newest, where)
            if version >= number:
                continue
            # Without parameters asyncpg sends the script as one simple query: all of its
            # statements, inside this transaction.
            await connection.execute(sql)
            await connection.execute(_SET_VERSION, number)
        version = number
        log.info("%s: applied migration %s", where, name)


def _refuse_newer(version: int, newest: int, where: str) -> None:
    if version > newest:
        raise StoreError(
            f"database {where} has schema version {version}; this newsbot knows up to {newest}"
        )
