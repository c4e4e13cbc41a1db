"""Task locks on PostgreSQL (migration 0004): the statements behind
bot.store.leases.TaskLocking. A transaction-level advisory lock makes processes that start a
task at once take turns at its row."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.store.base import TaskHolder
from bot.store.leases import TaskLocking
from bot.store.postgres.connection import PostgresBase

log = logging.getLogger(__name__)

# The advisory lock key of the task locks (next to LEASE_LOCK and MIGRATION_LOCK).
TASK_LOCK = 6_397_270

_HOLDER = "SELECT name, owner, host, pid, started_at, expires_at FROM task_locks WHERE name = $1"
_TAKE = (
    "INSERT INTO task_locks (name, owner, host, pid, started_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
    " pid = excluded.pid, started_at = excluded.started_at, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE task_locks SET expires_at = $1 WHERE name = $2 AND owner = $3"
_RELEASE = "DELETE FROM task_locks WHERE name = $1 AND owner = $2"


class TaskLocksMixin(TaskLocking, PostgresBase):
    """The TaskLocks role on PostgreSQL."""

    async def _take_task_row(
        self, wanted: TaskHolder, decide: Callable[[TaskHolder | None], str | None], failing: str
    ) -> None:
        async with self._transaction(failing=failing) as connection:
            await connection.execute("SELECT pg_advisory_xact_lock($1)", TASK_LOCK)
            row = await connection.fetchrow(_HOLDER, wanted.name)
            taking = decide(TaskHolder(*row) if row is not None else None)
            if taking:
                log.warning("%s: %s", self._where, taking)
            await connection.execute(_TAKE, *wanted)

    async def _renew_task_row(self, name: str, until: int) -> bool:
        return await self._write(_RENEW, (until, name, self.owner)) > 0

    async def _release_task_row(self, name: str) -> None:
        await self._write(_RELEASE, (name, self.owner))
