"""What every process on the database shares with Discord's per-token limits (migration 0008):
the send budget, one token bucket row taken from in one short write transaction (SendBudget),
and the turns at IDENTIFY (IdentifyTurns)."""

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

_TURN = (
    "INSERT INTO identify_turns (bucket, turn_at) VALUES (:bucket, :now)"
    " ON CONFLICT (bucket) DO UPDATE SET turn_at = MAX(:now, turn_at + :window)"
    " RETURNING turn_at"
)


class SendBudgetMixin(SqliteBase):
    """The SendBudget and IdentifyTurns roles on SQLite."""

    async def take_send_slots(self, want: int, rate: float, burst: int, now: float) -> SendGrant:
        params = {"want": want, "rate": rate, "burst": burst, "now": now}
        async with self._transaction(failing="cannot take a send slot from") as writer:
            rows = list(await writer.execute_fetchall(_TAKE, params))
        if not rows:
            raise StoreError(f"database {self._path} has no send budget row")
        granted, tokens = int(rows[0][0]), float(rows[0][1])
        return SendGrant(granted, 0.0 if granted else max(1.0 - tokens, 0.0) / rate)

    async def take_identify_turn(self, bucket: int, window: float, now: float) -> float:
        params = {"bucket": bucket, "window": window, "now": now}
        async with self._transaction(failing="cannot take an IDENTIFY turn from") as writer:
            rows = list(await writer.execute_fetchall(_TURN, params))
        return float(rows[0][0])
