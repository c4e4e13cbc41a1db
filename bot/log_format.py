"""How log records are written: newsbot's plain lines, or one JSON object per line for log
collectors (`log_format: json`); and how much the libraries newsbot uses may say."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

# The least severe level each chatty library logs at, whatever log_level says (a library not
# listed follows log_level). Measured on a run against the emulator:
# - discord.http logs every request and its answer; its warnings (rate limits) are what matters.
# - APScheduler logs "Running job" and "executed successfully" at INFO on every digest tick,
#   each minute; newsbot logs what a tick did that matters (a digest posted) itself.
# - aiosqlite logs two DEBUG lines per statement (hundreds a minute), which drown newsbot's own
#   DEBUG lines; what goes wrong in the database reaches newsbot's log as newsbot's errors.
# - watchfiles says "N changes detected" at INFO; the seed watch logs the reload they cause.
# Kept as they are: discord.gateway and discord.client (a few INFO lines per connection, and
# at DEBUG the gateway events, which is what DEBUG is asked for), asyncpg and aiohttp (their
# clients log nothing in a normal run).
LIBRARY_FLOORS = {
    "discord.http": logging.WARNING,
    "apscheduler": logging.WARNING,
    "aiosqlite": logging.INFO,
    "watchfiles": logging.WARNING,
}

TEXT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
# What an event is about, when the code that logs it says so (`extra={"server": ...}`): kept
# as fields of their own, so that a collector can filter on them.
EVENT_FIELDS = ("server", "channel", "digest", "shard")


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601), level, logger, message,
    the event's fields that the record carries, and the traceback, if any, as `exception`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in EVENT_FIELDS:
            value = record.__dict__.get(field)
            if value is not None:
                entry[field] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


class Redacting(logging.Formatter):
    """Another formatter's lines with every secret in them replaced: whatever a library logs
    (a request, a payload, an exception's text), the token never reaches the log."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self._inner = inner
        self._secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        line = self._inner.format(record)
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        return line


REDACTED = "[secret]"


def formatter(log_format: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    """The formatter for `log_format` ("text" or "json", as the settings checked it), with
    `secrets` (the token) never written."""
    inner = JsonFormatter() if log_format == "json" else logging.Formatter(TEXT)
    return Redacting(inner, secrets)


def set_log_level(level: str) -> None:
    """newsbot's log level (a name, as the settings checked it), with each library of
    LIBRARY_FLOORS kept at its floor or above: at start, and again on a reload."""
    threshold = logging.getLevelName(level)
    logging.getLogger().setLevel(threshold)
    for name, floor in LIBRARY_FLOORS.items():
        # Never below log_level either: a library's INFO must not pass when newsbot's is WARNING.
        logging.getLogger(name).setLevel(max(floor, threshold))


def _not_about_voice(record: logging.LogRecord) -> bool:
    return "voice will NOT be supported" not in record.getMessage()


def quiet_voice_warnings() -> None:
    """newsbot never joins voice: discord.py's warnings about missing voice libraries (logged
    by the first client a process builds) are noise. Idempotent (one filter, added once)."""
    logging.getLogger("discord.client").addFilter(_not_about_voice)
