"""The base of the PostgreSQL store: its connection pool, its one transaction helper and the
wrapping of PostgreSQL errors into StoreError.

Reads and writes share one asyncpg pool: PostgreSQL's MVCC gives every statement a consistent
snapshot, so a reload being applied never shows half done and never blocks a reader, and its
row locks serialise what must be (reloads on the meta row, ledger steps on the run's row).

The database is the one the URL names; the store never creates or drops databases. Each new
connection of the pool checks that it reached the database the store opened (the cluster's
database's oid): a database dropped and created again under the same
name is noticed as DatabaseLost, and nothing is written into it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bot import errors
from bot.config import without_password
from bot.store.base import DatabaseLost, NoDatabase, StoreError, new_owner
from bot.store.postgres.migrations import load_migrations, migrate, schema_version

log = logging.getLogger(__name__)

# Connections per store: the bot's reads are short, and a reload holds one for its duration.
_POOL_SIZE = 4
# Seconds: a database that does not answer a connection attempt is reported, not waited on.
_CONNECT_TIMEOUT = 10.0

# Every statement the store runs is short:
# - JIT compilation (on by default) starts whenever the planner's cost estimate passes
#   jit_above_cost, which a word search's plan does through the branch it never runs (the word
#   index, were the search common): compiling took 30-50 ms for a statement that then ran in a
#   quarter of a millisecond;
# - parallel workers take longer to start than any of these statements takes to run.
_SERVER_SETTINGS = {"jit": "off", "max_parallel_workers_per_gather": "0"}

# What identifies one database for as long as it exists: a database created again under the
# same name gets a new oid.
_IDENTITY = "SELECT oid FROM pg_database WHERE datname = current_database()"

# Errors from talking to PostgreSQL (asyncpg's own, the network's, a timeout).
DATABASE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PostgresBase:
    """The pool, transactions and error wrapping; the areas of the store build on it."""

    def __init__(self, url: str, *, create: bool = True) -> None:
        self._url = url
        # For messages: the URL without its password.
        self._where = without_password(url)
        # False: open() fails with NoDatabase on a database newsbot never set up, rather than
        # creating the schema in it.
        self._create = create
        self._owner = new_owner()
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._identity: int | None = None
        # Why the database is lost, once a new connection found another one: for good.
        self._lost: str | None = None

    @property
    def url(self) -> str:
        return self._url

    @property
    def owner(self) -> str:
        return self._owner

    async def open(self) -> None:
        if self._pool is not None:
            return
        self._identity, self._lost = None, None
        pool: asyncpg.Pool[asyncpg.Record] | None = None
        try:
            pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=_POOL_SIZE,
                timeout=_CONNECT_TIMEOUT,
                server_settings=_SERVER_SETTINGS,
                init=self._check_identity,
            )
            async with pool.acquire() as connection:
                await self._prepare_schema(connection)
        except BaseException as error:
            if pool is not None:
                await _close_quietly(pool)
            if isinstance(error, StoreError):
                raise
            if isinstance(error, asyncpg.InvalidCatalogNameError) and not self._create:
                raise NoDatabase(f"no database at {self._where}") from error
            if isinstance(error, DATABASE_ERRORS):
                raise StoreError(
                    f"cannot open database {self._where}: {one_line(error)}"
                ) from error
            raise
        self._pool = pool
        log.debug("opened %s", self._where)

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await _close_quietly(pool)

    async def check_database(self) -> None:
        """The connection works and reaches the database the store opened (a new connection
        to another one is caught by the pool's check)."""
        self._raise_if_lost()
        pool = self._require()
        with self._errors():
            async with pool.acquire() as connection:
                identity = await connection.fetchval(_IDENTITY)
        if identity != self._identity:
            self._note_lost()
        self._raise_if_lost()

    async def _prepare_schema(self, connection: asyncpg.Connection[asyncpg.Record]) -> None:
        if self._create:
            await migrate(connection, load_migrations(), self._where)
        elif await schema_version(connection) == 0:
            raise NoDatabase(f"no newsbot database at {self._where}")

    async def _check_identity(self, connection: asyncpg.Connection[asyncpg.Record]) -> None:
        """The pool's `init`: every new connection must reach the database first opened."""
        identity = await connection.fetchval(_IDENTITY)
        if self._identity is None:
            self._identity = identity
        elif identity != self._identity:
            self._note_lost()
            self._raise_if_lost()

    @asynccontextmanager
    async def _transaction(
        self, *, failing: str = "database", isolation: str = "read_committed"
    ) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
        """A pooled connection inside one transaction (committed when the block ends, rolled
        back when it raises); errors become a StoreError that starts with `failing` and the
        database."""
        pool = self._require()
        self._raise_if_lost()
        with self._errors(failing):
            async with pool.acquire() as connection, connection.transaction(isolation=isolation):
                yield connection

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one writing statement as its own transaction; returns the rows it changed."""
        pool = self._require()
        self._raise_if_lost()
        with self._errors():
            return changed_rows(await pool.execute(sql, *params))

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[asyncpg.Record]:
        pool = self._require()
        with self._errors():
            rows: list[asyncpg.Record] = await pool.fetch(sql, *params)
            return rows

    def _note_lost(self) -> None:
        if self._lost is None:
            self._lost = (
                f"database {self._where} was dropped or replaced while newsbot was running; "
                "nothing more is saved; restart newsbot"
            )

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise DatabaseLost(self._lost)

    @contextmanager
    def _errors(self, failing: str = "database") -> Iterator[None]:
        try:
            yield
        except DATABASE_ERRORS as error:
            raise StoreError(f"{failing} {self._where}: {one_line(error)}") from error

    def _require(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise StoreError(f"database {self._where} is not open")
        return self._pool


async def _close_quietly(pool: asyncpg.Pool[asyncpg.Record]) -> None:
    try:
        await pool.close()
    except DATABASE_ERRORS:
        log.warning("closing the database connections failed", exc_info=True)


def changed_rows(status: str) -> int:
    """The row count of a command status such as "UPDATE 1" or "INSERT 0 1"."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


def one_line(error: BaseException) -> str:
    """The error in one line; constraint violations in the words SQLite uses for them, so that
    a refusal reads the same whichever backend stores the data."""
    if isinstance(error, asyncpg.CheckViolationError):
        text = f"CHECK constraint failed: {error.constraint_name}"
    elif isinstance(error, asyncpg.NotNullViolationError):
        text = f"NOT NULL constraint failed: {error.table_name}.{error.column_name}"
    elif isinstance(error, asyncpg.UniqueViolationError):
        text = f"UNIQUE constraint failed: {error.constraint_name}"
    else:
        text = errors.one_line(error)
    return re.sub(r"\s+", " ", text)
