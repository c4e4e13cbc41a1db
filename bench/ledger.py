"""What exactly-once sending costs the database, per digest message and per write.

How: a fresh SQLite store in a temporary folder. Two measurements per run, each over `--writes`
operations, alternating so that the machine's drift hits both alike:
- write check: `set_state` writes with the check that the database file is still the one
  opened (two stat calls before and after each write), and with that check switched off;
  their ratio is taken within the run;
- ledger per message: claiming runs of 3 messages, then the intent and the record of each
  message (two write transactions), as the digest sender does, in milliseconds per message.

Figures are medians over `--runs`. The write check's target: at most 1.15x a write without it.

    python -m bench.ledger [--writes 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import Figure, median, report
from bot.models import DigestRun, PlannedMessage
from bot.store.sqlite import SqliteStore

START = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
MESSAGES = 3


async def state_writes(store: SqliteStore, writes: int, *, checked: bool) -> float:
    """Seconds for `writes` set_state calls, with or without the database file check."""
    if not checked:
        store._ensure_present = lambda: None  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        for n in range(writes):
            await store.set_state("bench", str(n))
        return time.perf_counter() - started
    finally:
        if not checked:
            del store._ensure_present


def claim(store: SqliteStore, guild_id: int) -> DigestRun:
    embeds = ({"title": "Daily news", "description": "x" * 300},)
    messages = tuple(
        PlannedMessage(i, f"dg{guild_id}-{i}", embeds, (guild_id * 10 + i,))
        for i in range(MESSAGES)
    )
    return DigestRun(
        guild_id=guild_id,
        local_date=date(2024, 3, 1),
        channel_id=guild_id,
        status="claimed",
        scheduled_for=START,
        claimed_at=START,
        plan=tuple((m.story_ids[0],) for m in messages),
        messages=messages,
        owner=store.owner,
        lease_until=START + timedelta(seconds=30),
    )


async def ledger_messages(store: SqliteStore, runs: int, first_guild: int) -> float:
    """Seconds per message to claim `runs` runs and record the intent and outcome of each."""
    started = time.perf_counter()
    for guild_id in range(first_guild, first_guild + runs):
        run = claim(store, guild_id)
        await store.add_digest_run(run)
        for index in range(MESSAGES):
            lease = START + timedelta(seconds=30)
            await store.begin_digest_message(run, index, START, lease, restart=False)
            await store.record_digest_message(run, index, guild_id * 10 + index, START, lease)
    return (time.perf_counter() - started) / (runs * MESSAGES)


async def one_run(writes: int, run_number: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        store = SqliteStore(Path(tmp) / "news.db")
        await store.open()
        try:
            await state_writes(store, 200, checked=True)  # warm up
            checked, unchecked = [], []
            for _ in range(2):
                checked.append(await state_writes(store, writes // 2, checked=True))
                unchecked.append(await state_writes(store, writes // 2, checked=False))
            per_message = await ledger_messages(store, max(1, writes // 30), 1)
        finally:
            await store.close()
    result = {
        "checked_us": sum(checked) / writes * 1e6,
        "unchecked_us": sum(unchecked) / writes * 1e6,
        "per_message_ms": per_message * 1000,
    }
    result["ratio"] = result["checked_us"] / result["unchecked_us"]
    print(
        f"run {run_number}: write {result['checked_us']:.0f} µs with the file check,"
        f" {result['unchecked_us']:.0f} µs without ({result['ratio']:.3f}x);"
        f" claim + intent + record {result['per_message_ms']:.2f} ms per message"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    results: list[dict[str, Any]] = [
        asyncio.run(one_run(args.writes, n)) for n in range(1, args.runs + 1)
    ]
    report(
        "ledger",
        [
            Figure("write with file check", median([r["checked_us"] for r in results]), "µs"),
            Figure("write without it", median([r["unchecked_us"] for r in results]), "µs"),
            Figure("checked/unchecked", median([r["ratio"] for r in results]), "x", 1.15),
            Figure("ledger per message", median([r["per_message_ms"] for r in results]), "ms"),
        ],
        {"writes": args.writes, "runs": results},
    )


if __name__ == "__main__":
    main()
