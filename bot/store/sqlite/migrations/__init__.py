"""The numbered SQL migrations of the SQLite store (the .sql files here) and what applies them.

Each migration runs in its own transaction with the version it brings (PRAGMA user_version),
so a database is always at one known version.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import aiosqlite

from bot.store.base import StoreError

log = logging.getLogger(__name__)

_MIGRATION_FILE = re.compile(r"(\d{4})_\w+\.sql")


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
    if numbers != list(range(1, len(found) + 1)):
        # A packaging mistake, not a user problem; refusing beats a half-built schema.
        raise StoreError(f"migrations of newsbot are not numbered 0001 onwards: {numbers}")
    return found


async def migrate(
    connection: aiosqlite.Connection, migrations: list[Migration], path: Path
) -> None:
    """Apply the migrations newer than the database's version, each in its own transaction."""
    newest = migrations[-1].number if migrations else 0
    version = await _user_version(connection)
    if version > newest:
        raise StoreError(
            f"database {path} has schema version {version}; this newsbot knows up to {newest}"
        )
    pending = [migration for migration in migrations if migration.number > version]
    if not pending:
        return
    # A migration that rebuilds a table sorts and gathers every row: in temporary files, not
    # in memory, where a million stories took 3.3 GB that the process kept after.
    temp_store = await _pragma(connection, "temp_store")
    await connection.execute("PRAGMA temp_store = FILE")
    try:
        await _apply(connection, pending, path)
    finally:
        await connection.execute(f"PRAGMA temp_store = {temp_store:d}")


async def _apply(connection: aiosqlite.Connection, pending: list[Migration], path: Path) -> None:
    # Imported here: the connection module imports this one for open().
    from bot.store.sqlite.connection import transaction

    for number, name, sql in pending:
        async with transaction(connection):
            # Another process may have migrated since the version was read.
            if await _user_version(connection) >= number:
                continue
            for statement in _statements(sql):
                await connection.execute(statement)
            # PRAGMA takes no parameters; `number` is an int parsed from our own file name.
            await connection.execute(f"PRAGMA user_version = {number:d}")
        log.info("%s: applied migration %s", path, name)


def _statements(script: str) -> list[str]:
    """Split a migration into statements (trigger bodies included) so that each runs inside
    the migration's own transaction; executescript would commit that transaction first."""
    statements: list[str] = []
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    if pending.strip():
        # Only comments can trail the last statement; executing them is harmless.
        statements.append(pending)
    return statements


async def _user_version(connection: aiosqlite.Connection) -> int:
    return await _pragma(connection, "user_version")


async def _pragma(connection: aiosqlite.Connection, name: str) -> int:
    # PRAGMA takes no parameters; `name` is one of this module's own.
    rows = await connection.execute_fetchall(f"PRAGMA {name}")
    return int(next(iter(rows))[0])
