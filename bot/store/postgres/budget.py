"""What every process on the database shares with Discord's per-token limits (migration 0003):
the send budget, one token bucket row taken from with one UPDATE ... RETURNING (SendBudget),
and the turns at IDENTIFY (IdentifyTurns)."""

from __future__ import annotations

import asyncpg  # type: ignore[import-untyped]  # no inline types, no py.typed

from bot.store.base import SendGrant, StoreError
from bot.store.postgres.connection import PostgresBase

# Every SET expression reads the row as it was (and a concurrent UPDATE waits for the row lock,
# then reads the row as the other left it): `available` is the bucket refilled since its last
# take (never beyond burst; a clock behind updated_at adds nothing), and the grant is its whole
# slots, at most `want`. Parameters: $1 want, $2 rate, $3 burst, $4 now.
_AVAILABLE = "LEAST($3::float8, tokens + GREATEST($4::float8 - updated_at, 0) * $2::float8)"
_GRANT = f"LEAST($1::int, FLOOR({_AVAILABLE})::int)"
_TAKE = (
    f"UPDATE send_budget SET tokens = {_AVAILABLE} - {_GRANT}, last_grant = {_GRANT},"
    " updated_at = GREATEST(updated_at, $4::float8), rate = $2::float8, burst = $3::int"
    " RETURNING last_grant, tokens"
)

_TURN = (
    "INSERT INTO identify_turns (bucket, turn_at) VALUES ($1, $3::float8)"
    " ON CONFLICT (bucket) DO UPDATE"
    " SET turn_at = GREATEST($3::float8, identify_turns.turn_at + $2::float8)"
    " RETURNING turn_at"
)


class SendBudgetMixin(PostgresBase):
    """The SendBudget and IdentifyTurns roles on PostgreSQL."""

    async def take_send_slots(self, want: int, rate: float, burst: int, now: float) -> SendGrant:
        rows = await self._take(want, rate, burst, now)
        if not rows:
            raise StoreError(f"database {self._where} has no send budget row")
        granted, tokens = int(rows[0][0]), float(rows[0][1])
        return SendGrant(granted, 0.0 if granted else max(1.0 - tokens, 0.0) / rate)

    async def _take(self, want: int, rate: float, burst: int, now: float) -> list[asyncpg.Record]:
        pool = self._require()
        self._raise_if_lost()
        with self._errors("cannot take a send slot from"):
            return list(await pool.fetch(_TAKE, want, rate, burst, now))

    async def take_identify_turn(self, bucket: int, window: float, now: float) -> float:
        pool = self._require()
        self._raise_if_lost()
        with self._errors("cannot take an IDENTIFY turn from"):
            return float(await pool.fetchval(_TURN, bucket, window, now))
