"""Daily digests, decided without side effects: when each server's digest is due, and what it says.

Nothing here reads a clock, touches the store or talks to Discord: the scheduler passes `now`,
the settings and the ledger, and acts on what comes back. That keeps the DST and catch-up rules
testable by simulating a clock minute by minute instead of waiting for one.

All instants are handled in UTC. Aware datetimes that share a `ZoneInfo` compare and subtract
by wall clock, ignoring `fold` (PEP 495), which is wrong around a fall-back hour; converting to
UTC first makes every comparison and difference absolute.
"""

from bot.digest.inputs import (
    describe_age,
    matching_zones,
    parse_local_time,
    parse_max_age,
    suggest_zones,
    too_old_note,
    zone,
)
from bot.digest.schedule import (
    DEFAULT_CATCH_UP,
    DueDigest,
    NextRun,
    digest_nonce,
    digest_reference,
    due_digests,
    explain_next_run,
    local_date_of,
    next_run,
    scheduled_instant,
)
from bot.digest.selection import (
    DigestItem,
    effective_max_age,
    score,
    select_items,
    split_by_age,
)

__all__ = [
    "DEFAULT_CATCH_UP",
    "DigestItem",
    "DueDigest",
    "NextRun",
    "describe_age",
    "digest_nonce",
    "digest_reference",
    "due_digests",
    "effective_max_age",
    "explain_next_run",
    "local_date_of",
    "matching_zones",
    "next_run",
    "parse_local_time",
    "parse_max_age",
    "scheduled_instant",
    "score",
    "select_items",
    "split_by_age",
    "suggest_zones",
    "too_old_note",
    "zone",
]
