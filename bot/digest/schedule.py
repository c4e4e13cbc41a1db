"""When each server's digest is due, and what its messages' nonces are (pure: `now`, the
settings and the ledger are passed in)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import GlobalDigestSettings
from bot.digest.inputs import zone
from bot.digest.instants import as_utc as _as_utc
from bot.discord_limits import NONCE_LIMIT
from bot.models import DigestRun, DigestSettings

# A digest missed by a short outage is still worth posting; one missed by most of a day is
# stale news and would land at an odd hour, so it is recorded as skipped instead.
DEFAULT_CATCH_UP = timedelta(hours=GlobalDigestSettings().catch_up_hours)

# --- schedule ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueDigest:
    """A server's digest for one local date whose time has come and that has no ledger row."""

    settings: DigestSettings
    local_date: date
    scheduled_for: datetime  # aware UTC
    action: Literal["post", "skip"]  # skip: missed by more than the catch-up window


def scheduled_instant(local_date: date, local_time: time, zone: ZoneInfo) -> datetime:
    """The aware UTC instant of `local_time` on `local_date` in `zone`.

    A wall time that does not exist (spring-forward gap: 02:30 on 2024-03-10 in New York) fires
    as far past the gap's start as it names (03:30 EDT = 07:30 UTC); an ambiguous one (fall-back:
    01:30 on 2024-11-03 in New York) fires at its first occurrence (01:30 EDT = 05:30 UTC).
    """
    # fold=0 gives exactly these rules (PEP 495): in a gap it applies the offset from before
    # the transition, which lands the same distance past the transition; in a repeated hour it
    # picks the first occurrence. Any tzinfo or fold on `local_time` is not ours to honour.
    wall = datetime.combine(local_date, local_time.replace(tzinfo=None, fold=0))
    return wall.replace(tzinfo=zone).astimezone(UTC)


def local_date_of(now: datetime, zone_name: str) -> date:
    """The date on the wall clocks of `zone_name` at the instant `now`."""
    return _as_utc(now).astimezone(zone(zone_name)).date()


def due_digests(
    settings: Iterable[DigestSettings],
    runs: Mapping[tuple[int, date], DigestRun],
    now: datetime,
    catch_up: timedelta = DEFAULT_CATCH_UP,
) -> list[DueDigest]:
    """The digests to act on at `now`: "post" them, or record them as "skip"ped.

    For each enabled setting, its local yesterday's and today's digests (dates in the server's
    zone at `now`) whose instant is <= now and >= effective_from and that have no ledger row in
    `runs` (keyed (guild_id, local_date)). At most `catch_up` after the instant -> "post";
    later -> "skip". The ledger is what makes a digest happen once per local date, whatever
    the clocks do. Settings whose zone is unknown are left out (nothing can be computed for
    them; zones are validated when set). Sorted by scheduled_for, then guild_id.
    """
    now = _as_utc(now)
    due: list[DueDigest] = []
    for setting in settings:
        if not setting.enabled:
            continue
        try:
            tz = zone(setting.timezone)
        except ValueError:
            continue
        today = now.astimezone(tz).date()
        # Yesterday too: after downtime across local midnight its digest must still be posted
        # (within the window) or recorded as skipped, not silently forgotten.
        for local_date in (today - timedelta(days=1), today):
            if (setting.guild_id, local_date) in runs:
                continue
            instant = scheduled_instant(local_date, setting.local_time, tz)
            if instant > now or instant < _as_utc(setting.effective_from):
                continue
            action: Literal["post", "skip"] = "post" if now - instant <= catch_up else "skip"
            due.append(DueDigest(setting, local_date, instant, action))
    due.sort(key=lambda digest: (digest.scheduled_for, digest.settings.guild_id))
    return due


def next_run(
    settings: DigestSettings, runs: Mapping[tuple[int, date], DigestRun], now: datetime
) -> datetime | None:
    """The next instant (aware UTC) this digest will fire: today's if still ahead and not
    already run, else a later day's. None when disabled or its zone is unknown."""
    if not settings.enabled:
        return None
    try:
        tz = zone(settings.timezone)
    except ValueError:
        return None
    now = _as_utc(now)
    effective_from = _as_utc(settings.effective_from)
    # A schedule that starts in the future cannot fire before its first local date.
    first = max(now, effective_from).astimezone(tz).date()
    # Each day is either the answer or blocked by a ledger row, and only the first day can be
    # in the past or before effective_from, so this many days always reach an answer.
    ledger_days = sum(1 for guild_id, _ in runs if guild_id == settings.guild_id)
    for offset in range(ledger_days + 2):
        local_date = first + timedelta(days=offset)
        if (settings.guild_id, local_date) in runs:
            continue
        instant = scheduled_instant(local_date, settings.local_time, tz)
        if instant > now and instant >= effective_from:
            return instant
    return None  # pragma: no cover - unreachable, see the bound above


@dataclass(frozen=True, slots=True)
class NextRun:
    """When a digest fires next, and why not at the time its settings suggest, if so."""

    at: datetime | None  # aware UTC; None when disabled or its zone is unknown
    # Why the next run is not today's ("" when it is today's): see explain_next_run.
    reason: str = ""
    tomorrow: bool = False  # `at` is on the local day after today


# What a ledger row of today means for an admin who expects today's digest still to come.
_TODAY_TAKEN = {
    "sent": "Today's digest was already posted",
    "claimed": "Today's digest is being posted right now",
    "empty": "Today's digest already ran and found nothing new",
    "skipped": "Today's digest was skipped (newsbot was down at its time; /digest now posts it)",
    "failed": "Today's digest failed (/digest now tries again)",
}


def explain_next_run(
    settings: DigestSettings, runs: Mapping[tuple[int, date], DigestRun], now: datetime
) -> NextRun:
    """next_run with its reason when the next run is not today: today's digest already has a
    ledger row (posted, failed, ...) or today's time has already passed."""
    at = next_run(settings, runs, now)
    if at is None:
        return NextRun(None)
    tz = zone(settings.timezone)
    today = _as_utc(now).astimezone(tz).date()
    day = at.astimezone(tz).date()
    if day == today:
        return NextRun(at)
    run = runs.get((settings.guild_id, today))
    if run is not None:
        reason = _TODAY_TAKEN[run.status]
    elif scheduled_instant(today, settings.local_time, tz) <= _as_utc(now):
        reason = f"{settings.local_time:%H:%M} has already passed today"
    else:
        reason = ""
    return NextRun(at, reason, tomorrow=day == today + timedelta(days=1))


def digest_nonce(guild_id: int, local_date: date, index: int, attempt: int = 0) -> str:
    """A deterministic nonce (<= 25 characters) for message `index` of try `attempt` at a
    server's digest of `local_date`: resending after a crash reuses it, so Discord drops the
    repeat; a later try at the same date (/digest now after a failure) gets new ones, so
    Discord does not drop its messages as repeats of the failed try's."""
    # Snowflakes alone take up to 20 digits, so the parts are hashed rather than concatenated;
    # 88 bits of blake2b make a collision between two digests of one channel negligible. The
    # first try's key has no attempt, so that it is what it was before tries were counted.
    tail = f":{attempt}" if attempt else ""
    key = f"{guild_id}:{local_date.isoformat()}:{index}{tail}".encode()
    nonce = "dg" + hashlib.blake2b(key, digest_size=11).hexdigest()
    assert len(nonce) <= NONCE_LIMIT
    return nonce


def digest_reference(guild_id: int, local_date: date, attempt: int = 0) -> str:
    """A short name for one try at a server's digest of `local_date`, shown in its messages'
    footers (bot.embeds.digest_footer): it tells this digest's messages from any other in the
    channel's history, the earlier tries at the same date included."""
    key = f"ref:{guild_id}:{local_date.isoformat()}:{attempt}".encode()
    return hashlib.blake2b(key, digest_size=4).hexdigest()
