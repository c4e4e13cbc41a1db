"""How log records are written: newsbot's plain lines, or one JSON object per line for log
collectors (`log_format: json`)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

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
