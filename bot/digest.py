"""Daily digests, decided without side effects: when each server's digest is due, and what it says.

Nothing here reads a clock, touches the store or talks to Discord: the scheduler passes `now`,
the settings and the ledger, and acts on what comes back. That keeps the DST and catch-up rules
testable by simulating a clock minute by minute instead of waiting for one.

All instants are handled in UTC. Aware datetimes that share a `ZoneInfo` compare and subtract
by wall clock, ignoring `fold` (PEP 495), which is wrong around a fall-back hour; converting to
UTC first makes every comparison and difference absolute.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import math
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bot.config import GlobalDigestSettings
from bot.discord_limits import AUTOCOMPLETE_CHOICES, NONCE_LIMIT
from bot.models import DigestRun, DigestSettings, Story

__all__ = [
    "DEFAULT_CATCH_UP",
    "DigestItem",
    "DueDigest",
    "NextRun",
    "describe_age",
    "digest_nonce",
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

# A digest missed by a short outage is still worth posting; one missed by most of a day is
# stale news and would land at an odd hour, so it is recorded as skipped instead.
DEFAULT_CATCH_UP = timedelta(hours=GlobalDigestSettings().catch_up_hours)

# --- scoring ----------------------------------------------------------------------------------

# The weights sum to 1, so a score is in 0..1. A digest is a daily briefing: what happened since
# yesterday matters most, so recency carries half the weight. Quality is the feed's editorial
# signal and is present on nearly every story, so it outweighs heat, which feeds often leave
# unknown (-1) and which mostly repeats what recency already says (new stories are hot).
RECENCY_WEIGHT = 0.5
QUALITY_WEIGHT = 0.3
HEAT_WEIGHT = 0.2

RECENCY_HALF_LIFE = timedelta(hours=24)

# Quality and heat are open-ended integers (shipped seeds have quality from 20 to 172), so they
# are squashed with x / (x + scale): 0 -> 0, scale -> 0.5, and large values approach 1 without
# one outlier flattening everyone else, as a max-based normalisation would.
QUALITY_SCALE = 50.0
HEAT_SCALE = 50.0

# Unknown quality or heat counts a little below the middle (a known value of ~33): a story
# should not lose to everything for lacking a signal, nor beat a story with a decent known one.
UNKNOWN_SIGNAL = 0.4


def score(story: Story, now: datetime) -> float:
    """Higher is better, in 0..1: the weighted sum of recency, quality and heat, each in 0..1.

    recency = 0.5 ** (age / 24 h) (a story from the future counts as brand new),
    quality = q / (q + 50), heat = h / (h + 50) (negative values count as 0, unknown as 0.4),
    score = 0.5 * recency + 0.3 * quality + 0.2 * heat.
    """
    age = max(_as_utc(now) - _as_utc(story.published_at), timedelta(0))
    recency = math.pow(0.5, age / RECENCY_HALF_LIFE)
    quality = _squash(story.quality, QUALITY_SCALE)
    heat = _squash(story.heat, HEAT_SCALE)
    return RECENCY_WEIGHT * recency + QUALITY_WEIGHT * quality + HEAT_WEIGHT * heat


def _squash(value: int | None, scale: float) -> float:
    if value is None:
        return UNKNOWN_SIGNAL
    value = max(value, 0)
    return value / (value + scale)


# --- selection --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestItem:
    """One entry of a digest: a story and the other outlets' coverage of the same event."""

    story: Story  # the cluster's best-scoring story
    also: tuple[Story, ...] = ()  # other candidates covering the same event, best first

    @property
    def story_ids(self) -> tuple[int, ...]:
        """Every story this item delivers, so all of them count as sent to the channel."""
        return (self.story.id, *(other.id for other in self.also))


def select_items(
    candidates: Sequence[Story], links: Mapping[int, set[int]], count: int, now: datetime
) -> list[DigestItem]:
    """The digest's items: linked candidates clustered, each cluster's best story first.

    `links` maps a story id to the stored stories it is related coverage with, in either
    direction (as Store.linked_stories returns). Only links among the candidates count, and
    clustering is transitive (A-B and B-C make one item). Items are ranked by their story's
    score (ties: newer first, then higher id); at most `count` are returned. The result depends
    only on the arguments, not on their iteration order.
    """
    if count <= 0:
        return []
    # A story listed twice is one story: keep its best-ranked record.
    by_id: dict[int, Story] = {}
    keys: dict[int, tuple[float, float, int]] = {}
    for story in candidates:
        key = _rank_key(story, now)
        if story.id not in keys or key < keys[story.id]:
            by_id[story.id] = story
            keys[story.id] = key

    parent = {story_id: story_id for story_id in by_id}

    def find(story_id: int) -> int:
        root = story_id
        while parent[root] != root:
            root = parent[root]
        while parent[story_id] != root:  # path compression
            parent[story_id], story_id = root, parent[story_id]
        return root

    for story_id, others in links.items():
        if story_id not in parent:
            continue
        for other in others:
            if other in parent:
                a, b = find(story_id), find(other)
                if a != b:
                    # The smaller id becomes the root, so the forest never depends on order.
                    parent[max(a, b)] = min(a, b)

    clusters: dict[int, list[int]] = {}
    for story_id in by_id:
        clusters.setdefault(find(story_id), []).append(story_id)

    items: list[tuple[tuple[float, float, int], DigestItem]] = []
    for members in clusters.values():
        members.sort(key=keys.__getitem__)
        best, *rest = members
        item = DigestItem(by_id[best], tuple(by_id[other] for other in rest))
        items.append((keys[best], item))
    items.sort(key=lambda pair: pair[0])
    return [item for _, item in items[:count]]


def effective_max_age(settings: DigestSettings, default: timedelta | None) -> timedelta | None:
    """The age limit a digest applies: the server's own, else the configured default; None
    when there is no limit (either one being zero means none)."""
    age = settings.max_age if settings.max_age is not None else default
    return age or None


def split_by_age(
    candidates: Sequence[Story], now: datetime, max_age: timedelta | None
) -> tuple[list[Story], list[Story]]:
    """(fresh, too old): stories published at most `max_age` before `now`, and the others.
    No limit (None or zero) keeps every story fresh; a story from the future is fresh."""
    if not max_age:
        return list(candidates), []
    oldest = _as_utc(now) - max_age
    fresh = [story for story in candidates if _as_utc(story.published_at) >= oldest]
    fresh_ids = {id(story) for story in fresh}
    return fresh, [story for story in candidates if id(story) not in fresh_ids]


def _rank_key(story: Story, now: datetime) -> tuple[float, float, int]:
    """Ascending sort key: best score first, then newer, then higher id (a total order)."""
    return (-score(story, now), -_as_utc(story.published_at).timestamp(), -story.id)


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


# --- user input -------------------------------------------------------------------------------

_LOCAL_TIME = re.compile(r"([0-9]{1,2}):([0-9]{2})")
# 12-hour times as people type them: "8pm", "8:30pm", "8:30 PM", "8.30 p.m.".
# ASCII digits and spaces only: "\s" would let a line break through, "\d" other scripts' digits.
_TWELVE_HOUR = re.compile(r"([0-9]{1,2})(?:[:.]([0-9]{2}))? ?([ap])\.? ?m\.?", re.IGNORECASE)


def parse_local_time(text: str) -> time:
    """A 24-hour "HH:MM" or "H:MM", or a 12-hour "8pm", "8:30pm", "8:30 PM" (12am is 00:00,
    12pm is noon) -> time; ValueError with a one-line message otherwise."""
    cleaned = text.strip() if isinstance(text, str) else ""
    match = _LOCAL_TIME.fullmatch(cleaned)
    if match:
        hour, minute = int(match[1]), int(match[2])
        if hour < 24 and minute < 60:
            return time(hour, minute)
    match = _TWELVE_HOUR.fullmatch(cleaned)
    if match:
        hour, minute = int(match[1]), int(match[2] or 0)
        if 1 <= hour <= 12 and minute < 60:
            afternoon = match[3].casefold() == "p"
            return time(hour % 12 + (12 if afternoon else 0), minute)
    raise ValueError(
        f"invalid time {_quote(text)}: use 24-hour HH:MM, e.g. 09:00 or 20:30 (or 8:30pm)"
    )


_AGE = re.compile(r"([0-9]{1,6}) ?([mhdw])", re.IGNORECASE)
_AGE_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
              "w": timedelta(weeks=1)}  # fmt: skip
_NO_LIMIT = frozenset({"off", "none", "0"})


def parse_max_age(text: str) -> timedelta:
    """A maximum story age as admins type it: "90m", "24h", "7d", "2w" -> timedelta; "off",
    "none" or "0" -> timedelta(0) (no limit). ValueError with a one-line message otherwise."""
    cleaned = text.strip().casefold() if isinstance(text, str) else ""
    if cleaned in _NO_LIMIT:
        return timedelta(0)
    match = _AGE.fullmatch(cleaned)
    if match and int(match[1]) > 0:
        age = int(match[1]) * _AGE_UNITS[match[2].casefold()]
        if age <= timedelta(days=3650):
            return age
    raise ValueError(
        f"invalid maximum age {_quote(text)}: use a number and a unit, e.g. 24h, 7d or 2w "
        "(m minutes, h hours, d days, w weeks), or off for no limit"
    )


def describe_age(age: timedelta) -> str:
    """An age in words, in the unit an admin would have typed: "24 hours", "7 days", "2 weeks",
    "90 minutes"."""
    minutes = max(1, int(age.total_seconds() // 60))
    for unit, size in (("week", 7 * 24 * 60), ("day", 24 * 60), ("hour", 60)):
        # One day reads better as 24 hours, one week as 7 days.
        if minutes % size == 0 and minutes >= 2 * size:
            return f"{minutes // size} {unit}s"
    if minutes % 60 == 0:
        return f"{minutes // 60} hour{'' if minutes == 60 else 's'}"
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def too_old_note(max_age: timedelta | None, too_old: int, exact: bool = True) -> str:
    """What an age limit left out, for previews and /digest show ("" without a limit)."""
    if not max_age:
        return ""
    if too_old == 0:
        count = "none"
    else:
        count = f"{too_old}{'' if exact else ' or more'} stor{'y' if too_old == 1 else 'ies'}"
    return f"Left out as older than {describe_age(max_age)}: {count}."


# Present in available_timezones() on some machines but not zones a server can live in:
# "localtime" is a symlink to the host's /etc/localtime (its meaning depends on the machine),
# and "Factory" is tzdata's placeholder for "zone not configured" (abbreviation "-00").
_NOT_PLACES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _zone_names() -> dict[str, str]:
    """casefolded name -> IANA name, for every zone this machine knows (read once: the scan
    opens hundreds of files)."""
    names = sorted(zoneinfo.available_timezones() - _NOT_PLACES)
    return {name.casefold(): name for name in names}


def zone(name: str) -> ZoneInfo:
    """ZoneInfo for an IANA zone name (any case; use `.key` for its canonical spelling).

    Raises ValueError("unknown time zone 'Mars/Base'") for anything that is not a known zone
    name, including paths such as '../etc' that ZoneInfo itself might try to open.
    """
    canonical = _zone_names().get(name.strip().casefold()) if isinstance(name, str) else None
    if canonical is None:
        raise ValueError(f"unknown time zone {_quote(name)}")
    return ZoneInfo(canonical)


def suggest_zones(text: str, limit: int = 3) -> list[str]:
    """Zone names close to a mistyped one, for "Did you mean ...?": what autocomplete would
    offer for it ("paris" -> Europe/Paris), else near spellings ("Europe/Pariss")."""
    found = matching_zones(text, limit) if isinstance(text, str) and text.strip() else []
    if found:
        return found
    folded = "_".join(str(text).casefold().split())
    names = _zone_names()
    # Compare with whole names and with their city parts: "Pariss" is far from "Europe/Paris".
    cities = {folded_name.rsplit("/", 1)[-1]: name for folded_name, name in names.items()}
    close = difflib.get_close_matches(folded, list(names), n=limit, cutoff=0.85)
    close += difflib.get_close_matches(folded, list(cities), n=limit, cutoff=0.8)
    suggested = [names.get(c) or cities[c] for c in close]
    return list(dict.fromkeys(suggested))[:limit]


def matching_zones(text: str, limit: int = AUTOCOMPLETE_CHOICES) -> list[str]:
    """IANA zone names containing `text`, in any case, spaces matching underscores ("new york"
    finds "America/New_York"), at most `limit` (for autocomplete). Names starting with `text`
    come first, then names with a part starting with it ("new" -> "America/New_York"), then
    the rest; alphabetical within each group."""
    if limit <= 0:
        return []
    needle = "_".join(text.casefold().split())
    ranked: list[tuple[int, str]] = []
    for folded, name in _zone_names().items():
        if needle not in folded:
            continue
        if folded.startswith(needle):
            group = 0
        elif any(part.startswith(needle) for part in folded.split("/")):
            group = 1
        else:
            group = 2
        ranked.append((group, name))
    ranked.sort()
    return [name for _, name in ranked[:limit]]


def _quote(text: object, limit: int = 40) -> str:
    """`text` for an error message: repr keeps it on one line, the cut keeps it short."""
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _as_utc(moment: datetime) -> datetime:
    """`moment` in UTC; naive datetimes are refused, since their instant is anyone's guess."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment.isoformat()}: pass an aware one")
    return moment.astimezone(UTC)
