"""Task locks on SQLite (migration 0009): the statements behind bot.store.leases.TaskLocking.
A `newsbot seeds load` from another process and the running bot meet here."""

from __future__ import annotations

import logging
from collections.abc import Callable

from bot.store.base import TaskHolder
from bot.store.leases import TaskLocking
from bot.store.sqlite.connection import SqliteBase

log = logging.getLogger(__name__)

_HOLDER = "SELECT name, owner, host, pid, started_at, expires_at FROM task_locks WHERE name = ?"
_TAKE = (
    "INSERT INTO task_locks (name, owner, host, pid, started_at, expires_at)"
    " VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, host = excluded.host,"
    " pid = excluded.pid, started_at = excluded.started_at, expires_at = excluded.expires_at"
)
_RENEW = "UPDATE task_locks SET expires_at = ? WHERE name = ? AND owner = ?"
_RELEASE = "DELETE FROM task_locks WHERE name = ? AND owner = ?"


class TaskLocksMixin(TaskLocking, SqliteBase):
    """The TaskLocks role on SQLite."""

    async def _take_task_row(
        self, wanted: TaskHolder, decide: Callable[[TaskHolder | None], str | None], failing: str
    ) -> None:
        async with self._transaction(failing=failing) as writer:
            rows = list(await writer.execute_fetchall(_HOLDER, (wanted.name,)))
            taking = decide(TaskHolder(*rows[0]) if rows else None)
            if taking:
                log.warning("%s: %s", self._path, taking)
            await writer.execute(_TAKE, wanted)

    async def _renew_task_row(self, name: str, until: int) -> bool:
        return await self._write(_RENEW, (until, name, self.owner)) > 0

    async def _release_task_row(self, name: str) -> None:
        await self._write(_RELEASE, (name, self.owner))
