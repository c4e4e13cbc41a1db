"""How newsbot's dataclasses become PostgreSQL rows and back.

The rows are SQLite's (bot.store.codec) with one difference: local dates are DATE
values rather than ISO text. Instants are unix seconds and JSON columns are written as JSON
text on both backends (asyncpg passes JSONB as text), so one codec decides how a story, a seed
file record or a ledger row is laid out, and both backends read back exactly what they wrote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from bot.models import DigestRun, PlannedMessage
from bot.store import codec as shared
from bot.store.codec import (
    DIGEST_MESSAGE_COLUMNS,
    DIGEST_RUN_COLUMNS,
    DIGEST_SETTINGS_COLUMNS,
    SEED_FILE_COLUMNS,
    STORY_COLUMNS,
    add_seed_files,
    digest_settings_from_row,
    digest_settings_row,
    encode_story,
    seed_file_row,
    story_from_row,
    to_json,
    unix,
)

# Where the local date sits in the ledger's rows (guild_id, local_date, ...).
_DATE = 1


def digest_run_row(run: DigestRun) -> tuple[Any, ...]:
    return _with_date(shared.digest_run_row(run), run.local_date)


def digest_run_from_row(row: Sequence[Any]) -> DigestRun:
    return shared.digest_run_from_row(_with_iso_date(row))


def digest_message_row(run: DigestRun, message: PlannedMessage) -> tuple[Any, ...]:
    return _with_date(shared.digest_message_row(run, message), run.local_date)


def digest_message_from_row(row: Sequence[Any]) -> PlannedMessage:
    return shared.digest_message_from_row(_with_iso_date(row))


def _with_date(row: tuple[Any, ...], local_date: date) -> tuple[Any, ...]:
    return (*row[:_DATE], local_date, *row[_DATE + 1 :])


def _with_iso_date(row: Sequence[Any]) -> tuple[Any, ...]:
    values = tuple(row)
    return (*values[:_DATE], values[_DATE].isoformat(), *values[_DATE + 1 :])


__all__ = [
    "DIGEST_MESSAGE_COLUMNS",
    "DIGEST_RUN_COLUMNS",
    "DIGEST_SETTINGS_COLUMNS",
    "SEED_FILE_COLUMNS",
    "STORY_COLUMNS",
    "add_seed_files",
    "digest_message_from_row",
    "digest_message_row",
    "digest_run_from_row",
    "digest_run_row",
    "digest_settings_from_row",
    "digest_settings_row",
    "encode_story",
    "seed_file_row",
    "story_from_row",
    "to_json",
    "unix",
]
