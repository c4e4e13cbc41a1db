"""The shared send budget (migration 0008): one token bucket row for every process on the
database, taken from in one short write transaction (SendBudget)."""

from __future__ import annotations

from bot.store.base import SendGrant, StoreError
from bot.store.sqlite.connection import SqliteBase

# Every SET expression reads the row as it was: `available` is the bucket refilled since its
# last take (never beyond burst; a clock behind updated_at adds nothing), and the grant is its
# whole slots, at most `want`. Parameters: want, rate, burst, now.
_AVAILABLE = "MIN(:burst, tokens + MAX(:now - updated_at, 0) * :rate)"
_GRANT = f"MIN(:want, CAST({_AVAILABLE} AS INTEGER))"
_TAKE = (
    f"UPDATE send_budget SET tokens = {_AVAILABLE} - {_GRANT}, last_grant = {_GRANT},"
    " updated_at = MAX(updated_at, :now), rate = :rate, burst = :burst"
    " WHERE id = 1 RETURNING last_grant, tokens"
)


class SendBudgetMixin(SqliteBase):
    """The SendBudget role on SQLite."""

    async def take_send_slots(self, want: int, rate: float, burst: int, now: float) -> SendGrant:
        params = {"want": want, "rate": rate, "burst": burst, "now": now}
        async with self._transaction(failing="cannot take a send slot from") as writer:
            rows = list(await writer.execute_fetchall(_TAKE, params))
        if not rows:
            raise StoreError(f"database {self._path} has no send budget row")
        granted, tokens = int(rows[0][0]), float(rows[0][1])
        return SendGrant(granted, 0.0 if granted else max(1.0 - tokens, 0.0) / rate)
