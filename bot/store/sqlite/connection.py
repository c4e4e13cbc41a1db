"""The base of the SQLite store: its connections, its one transaction helper and the wrapping of
SQLite errors into StoreError.

Three connections: reads go through read-only ones, so that while a reload is being applied
they keep seeing the last committed state (WAL) instead of waiting for it or, worse, seeing
half of it; the writer serialises reloads, seed index snapshots and the digest ledger's short
transactions behind a lock. Word searches get a reader of their own: at a million stories one
can take a few hundred milliseconds, and the quick reads (topic pages, autocomplete) must not
queue behind it on one connection.

The store also holds the database file itself open (dbfile.py), from before it connects until
after its connections are closed: every write checks that the file at the path is still the one
it opened, so that a change is never reported saved into a deleted or replaced database.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from bot import errors
from bot.store.base import DatabaseLost, NoDatabase, StoreError, new_owner
from bot.store.sqlite.dbfile import DatabaseFile
from bot.store.sqlite.migrations import Migration, load_migrations, migrate

log = logging.getLogger(__name__)

# Per connection, in KiB (negative cache_size means KiB): the writer and the reader at 16 MB
# and the searcher at 8 MB stay within the ~40 MB the bot can spare for SQLite out of its
# 150 MB budget at a million stories. No mmap: mapped pages count towards RSS and would eat
# that budget as the file grows.
_CACHE_KIB = 16 * 1024
# The search connection mostly streams through the full-text index: a small cache does.
_SEARCH_CACHE_KIB = 8 * 1024
# After a large reload has been checkpointed, give the disk back instead of keeping a WAL file
# as big as the largest reload ever was.
_WAL_SIZE_LIMIT = 64 * 1024 * 1024
# Switching a new database to WAL needs the file to itself, and SQLite answers "locked" at once
# rather than through busy_timeout while another process (a second newsbot starting at the same
# moment, say) is migrating it: retry for as long as busy_timeout would have waited.
_WAL_SWITCH_WAIT = 5.0
_WAL_SWITCH_RETRY = 0.05

_PRAGMAS = (
    "PRAGMA busy_timeout = 5000",
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA temp_store = MEMORY",
    f"PRAGMA cache_size = -{_CACHE_KIB}",
    f"PRAGMA journal_size_limit = {_WAL_SIZE_LIMIT}",
)


@asynccontextmanager
async def transaction(
    connection: aiosqlite.Connection, *, immediate: bool = True
) -> AsyncIterator[aiosqlite.Connection]:
    """BEGIN (IMMEDIATE: take the write lock now), COMMIT when the block ends, ROLLBACK when it
    raises. A failed rollback is logged rather than hiding the error that caused it."""
    # Another process's write transaction makes BEGIN IMMEDIATE itself fail: the caller's
    # error wrapping sees that like any other failure.
    await connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield connection
        await connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            try:
                await connection.execute("ROLLBACK")
            except sqlite3.Error:
                log.exception("rolling back a failed transaction failed")
        raise


class SqliteBase:
    """Connections, transactions and error wrapping; the areas of the store build on it."""

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self._path = Path(path)
        # False: open() fails with NoDatabase rather than creating the file or its folder.
        self._create = create
        self._owner = new_owner()
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._searcher: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        # The database file, open while the store is (see dbfile.py).
        self._file: DatabaseFile | None = None
        # Why the database is lost, once a check found it deleted or replaced: for good.
        self._lost: str | None = None

    @property
    def path(self) -> Path:
        return self._path

    @property
    def owner(self) -> str:
        return self._owner

    async def open(self) -> None:
        if self._writer is not None:
            return
        connections: list[aiosqlite.Connection] = []
        file: DatabaseFile | None = None
        try:
            migrations, opened = await asyncio.to_thread(self._prepare)
            file = opened
            writer = await self._connect(connections)
            await migrate(writer, migrations, self._path)
            reader = await self._connect(connections)
            await reader.execute("PRAGMA query_only = ON")
            searcher = await self._connect(connections)
            await searcher.execute("PRAGMA query_only = ON")
            await searcher.execute(f"PRAGMA cache_size = -{_SEARCH_CACHE_KIB}")
            await asyncio.to_thread(opened.note_wal)
        except BaseException as error:
            for connection in connections:
                await _close_quietly(connection)
            if file is not None:  # after the connections: see dbfile.py
                await asyncio.to_thread(_release_quietly, file)
            if isinstance(error, StoreError):
                raise
            if isinstance(error, sqlite3.Error | OSError):
                raise StoreError(f"cannot open database {self._path}: {one_line(error)}") from error
            raise
        self._writer, self._reader, self._searcher = writer, reader, searcher
        self._file, self._lost = file, None
        log.debug("opened %s", self._path)

    async def close(self) -> None:
        # Under the write lock, so that a reload being applied finishes rather than being cut
        # off mid-transaction.
        async with self._write_lock:
            writer, reader, searcher = self._writer, self._reader, self._searcher
            self._writer = self._reader = self._searcher = None
            for connection in (searcher, reader, writer):
                if connection is not None:
                    await _close_quietly(connection)
            # Last: closing it earlier would drop SQLite's own locks (see dbfile.py), and its
            # flock keeps another bot from starting before this one has stopped writing.
            file, self._file = self._file, None
            if file is not None:
                await asyncio.to_thread(_release_quietly, file)

    async def check_database(self) -> None:
        # In a worker thread: the watchdog has time, and a stat on a hung file system must
        # not stall the event loop.
        file = self._file
        if self._lost is None and file is not None:
            self._note_lost(await asyncio.to_thread(_why_lost, file))
        self._raise_if_lost()

    @asynccontextmanager
    async def _transaction(
        self, *, immediate: bool = True, failing: str = "database"
    ) -> AsyncIterator[aiosqlite.Connection]:
        """The writer inside one transaction, under the write lock; SQLite errors become a
        StoreError that starts with `failing` and the database path."""
        writer = self._require(self._writer)
        async with self._write_lock:
            # Once the database is known lost, nothing more is written; whether it is lost now
            # is checked after the write, which is when it matters: a write that went into a
            # deleted or replaced file is lost, and must not be reported saved.
            self._raise_if_lost()
            with self._errors(failing):
                async with transaction(writer, immediate=immediate):
                    yield writer
            self._ensure_present()

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one writing statement as its own transaction; returns the rows it changed."""
        writer = self._require(self._writer)
        async with self._write_lock:
            self._raise_if_lost()  # as in _transaction
            with self._errors():
                async with writer.execute(sql, params) as cursor:
                    changed = cursor.rowcount
            self._ensure_present()
            return changed

    def _ensure_present(self) -> None:
        """Raise DatabaseLost if the database file was deleted or replaced: whatever is
        written then would be reported saved and lost.

        Inline rather than in a thread: two stat calls on the local file, answered from the
        kernel's inode cache, cost a few microseconds, less than the hop to the connection's
        thread that every write makes anyway.
        """
        file = self._file
        if self._lost is None and file is not None:
            self._note_lost(_why_lost(file))
        self._raise_if_lost()

    def _note_lost(self, reason: str | None) -> None:
        if reason is not None and self._lost is None:
            self._lost = (
                f"database {self._path} was deleted or replaced while newsbot was running "
                f"({reason}); nothing more is saved; restart newsbot"
            )

    def _raise_if_lost(self) -> None:
        if self._lost is not None:
            raise DatabaseLost(self._lost)

    async def _read(self, sql: str, params: Sequence[Any], *, searching: bool = False) -> list[Any]:
        reader = self._require(self._searcher if searching else self._reader)
        with self._errors():
            return list(await reader.execute_fetchall(sql, params))

    @contextmanager
    def _errors(self, failing: str = "database") -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as error:
            raise StoreError(f"{failing} {self._path}: {one_line(error)}") from error

    def _require(self, connection: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if connection is None:
            raise StoreError(f"database {self._path} is not open")
        return connection

    async def _connect(self, opened: list[aiosqlite.Connection]) -> aiosqlite.Connection:
        # isolation_level=None: the store issues BEGIN/COMMIT itself, sqlite3 must not.
        if self._create:
            connection = await aiosqlite.connect(self._path, isolation_level=None)
        else:
            # mode=rw: SQLite itself refuses to create the file, even if it vanished meanwhile.
            uri = f"{self._path.absolute().as_uri()}?mode=rw"
            connection = await aiosqlite.connect(uri, uri=True, isolation_level=None)
        opened.append(connection)
        for pragma in _PRAGMAS:
            if not pragma.startswith("PRAGMA journal_mode"):
                # Fetched to the end, so that no statement is left open on the connection.
                await connection.execute_fetchall(pragma)
            elif await _switch_to_wal(connection) != "wal":
                log.warning(
                    "%s: WAL is not available here; readers may wait for reloads", self._path
                )
        return connection

    def _prepare(self) -> tuple[list[Migration], DatabaseFile]:
        """Blocking part of open(): make the folder (or check the file exists), read the
        migrations and open the database file itself, before SQLite does."""
        if self._create:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        elif not self._path.is_file():
            raise NoDatabase(f"no database at {self._path}")
        migrations = load_migrations()
        return migrations, DatabaseFile.open(self._path, create=self._create)


async def _switch_to_wal(connection: aiosqlite.Connection) -> str:
    """The journal mode the database is in after asking for WAL."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _WAL_SWITCH_WAIT
    while True:
        try:
            rows = await connection.execute_fetchall("PRAGMA journal_mode = WAL")
            return str(next(iter(rows))[0])
        except sqlite3.OperationalError as error:
            # The primary code: extended ones (SQLITE_BUSY_RECOVERY, ...) mean the same here.
            busy = (error.sqlite_errorcode & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
            if not busy or loop.time() >= deadline:
                raise
        await asyncio.sleep(_WAL_SWITCH_RETRY)


async def _close_quietly(connection: aiosqlite.Connection) -> None:
    try:
        await connection.close()
    except (sqlite3.Error, ValueError):
        log.warning("closing a database connection failed", exc_info=True)


def _release_quietly(file: DatabaseFile) -> None:
    try:
        file.close()
    except OSError:
        log.warning("closing the database file %s failed", file.path, exc_info=True)


def _why_lost(file: DatabaseFile) -> str | None:
    try:
        return file.lost()
    except OSError:
        # Not a verdict (a permission, an I/O error): SQLite's own errors will say more.
        log.debug("cannot check the database file %s", file.path, exc_info=True)
        return None


def one_line(error: BaseException) -> str:
    text = errors.one_line(error)
    if getattr(error, "sqlite_errorname", "").startswith("SQLITE_BUSY"):
        # Another connection held a write transaction for longer than busy_timeout.
        text += " (another program, such as a running newsbot, is writing to it; try again)"
    return text
