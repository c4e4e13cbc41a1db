"""What admins type for a digest, read and explained: local times, maximum ages, time zones."""

from __future__ import annotations

import difflib
import functools
import re
import zoneinfo
from datetime import time, timedelta
from zoneinfo import ZoneInfo

from bot.discord_limits import AUTOCOMPLETE_CHOICES

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
