"""Values the bot keeps between runs (such as the hash of the last command sync)."""

from __future__ import annotations

from bot.store.postgres.connection import PostgresBase

_GET_STATE = "SELECT value FROM state WHERE key = $1"
_SET_STATE = (
    "INSERT INTO state (key, value) VALUES ($1, $2)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


class StateMixin(PostgresBase):
    """The key-value part of the State role on PostgreSQL."""

    async def get_state(self, key: str) -> str | None:
        rows = await self._read(_GET_STATE, (key,))
        return str(rows[0][0]) if rows else None

    async def set_state(self, key: str, value: str) -> None:
        await self._write(_SET_STATE, (key, value))
