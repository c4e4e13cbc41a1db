"""How newsbot's dataclasses become rows and back: stories, seed file records, digest settings
and ledger rows, as SQLite stores them; PostgreSQL's codec (bot.store.postgres.codec) differs
only in its dates. Pure functions, no SQL."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args

from bot.models import (
    DigestRun,
    DigestSettings,
    Image,
    PlannedMessage,
    Provider,
    Related,
    Story,
    topic_key,
)
from bot.store.base import EncodedStory, FileStatus, SeedFileRecord

# Compact JSON for `extra` and ranks; one encoder, since json.dumps with options builds a new
# one per call, which shows at 20,000 stories.
to_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# The columns story_from_row decodes, in its order.
STORY_COLUMNS = (
    "s.id, s.url, s.title, s.excerpt, s.published_at, s.provider_name, s.provider_domain, "
    "s.quality, s.heat, s.extra"
)

# Story fields stored as plain strings in `extra`, left out when empty to keep rows small.
_EXTRA_TEXT_FIELDS = (
    "category",
    "kind",
    "original_url",
    "amp_url",
    "cdn_amp_url",
    "body",
    "secured",
)

_FILE_STATUSES: dict[str, FileStatus] = {status: status for status in get_args(FileStatus)}


def unix(moment: datetime) -> int:
    """Whole unix seconds (floored, like the second precision of the stored value), reading a
    naive datetime as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp())


def from_unix(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# --- stories -------------------------------------------------------------------------------------


def encode_story(story: Story) -> EncodedStory:
    """A story as apply_reload writes it: its stories row (without the source path, which the
    plan decides), its topics as (key, spaced name), and the ids of its related coverage."""
    published_at = unix(story.published_at)
    provider = story.provider
    row = (
        story.id,
        story.url,
        story.title,
        story.excerpt,
        published_at,
        provider.name if provider else None,
        provider.domain if provider else None,
        story.quality,
        story.heat,
        _encode_extra(story),
    )
    topics = tuple(
        (key, " ".join(name.split())) for name in story.topics if (key := topic_key(name))
    )
    linked = {related.story_id for related in story.related}
    linked.discard(story.id)
    return EncodedStory(story.id, story.title, (row, topics, tuple(linked)))


def _encode_image(image: Image) -> list[Any]:
    return [image.url, image.width, image.height]


def _encode_related(related: Related) -> list[Any]:
    # Positional, in Related's field order: shorter to write and to read back than a dict, and
    # `extra` is never queried, so names in the JSON would serve no one.
    provider = related.provider
    image = related.image
    published_at = related.published_at
    return [
        related.title,
        related.url,
        related.story_id,
        related.excerpt,
        None if published_at is None else unix(published_at),
        None if provider is None else [provider.name, provider.domain],
        related.quality,
        None if image is None else [image.url, image.width, image.height],
    ]


def _encode_extra(story: Story) -> str:
    extra: dict[str, Any] = {}
    if story.topics:
        extra["topics"] = list(story.topics)
    if story.images:
        extra["images"] = [_encode_image(image) for image in story.images]
    if story.related:
        extra["related"] = [_encode_related(related) for related in story.related]
    if story.published is not None:
        extra["published"] = story.published
    for name in _EXTRA_TEXT_FIELDS:
        value = getattr(story, name)
        if value:
            extra[name] = value
    return to_json(extra)


def _decode_related(encoded: list[Any]) -> Related:
    title, url, story_id, excerpt, published_at, provider, quality, image = encoded
    return Related(
        title=title,
        url=url,
        story_id=story_id,
        excerpt=excerpt,
        published_at=None if published_at is None else from_unix(published_at),
        provider=None if provider is None else Provider(*provider),
        quality=quality,
        image=None if image is None else Image(*image),
    )


def story_from_row(row: Sequence[Any]) -> Story:
    """A Story from the STORY_COLUMNS of one row."""
    (
        story_id,
        url,
        title,
        excerpt,
        published_at,
        provider_name,
        provider_domain,
        quality,
        heat,
        extra_text,
    ) = row
    extra = json.loads(extra_text)
    get = extra.get
    related = get("related")
    return Story(
        id=story_id,
        url=url,
        title=title,
        excerpt=excerpt,
        published_at=from_unix(published_at),
        provider=None if provider_name is None else Provider(provider_name, provider_domain),
        topics=tuple(get("topics", ())),
        images=tuple(Image(*image) for image in get("images", ())),
        related=tuple(_decode_related(item) for item in related) if related else (),
        quality=quality,
        heat=heat,
        category=get("category", ""),
        kind=get("kind", ""),
        published=get("published"),
        original_url=get("original_url", ""),
        amp_url=get("amp_url", ""),
        cdn_amp_url=get("cdn_amp_url", ""),
        body=get("body", ""),
        secured=get("secured", ""),
    )


# --- seed file records ---------------------------------------------------------------------------

# The column that holds a file's content hash is called `digest` (named before the daily digest
# existed); renaming it would rebuild the table for no reader's benefit, so the codec maps it.
SEED_FILE_COLUMNS = "path, size, mtime_ns, digest, status, story_id, rank, error"


def seed_file_row(record: SeedFileRecord) -> tuple[Any, ...]:
    """The values of SEED_FILE_COLUMNS for one record."""
    return (
        record.path,
        record.size,
        record.mtime_ns,
        record.content_hash,
        record.status,
        record.story_id,
        to_json(list(record.rank)),
        record.error,
    )


def add_seed_files(files: dict[str, SeedFileRecord], rows: Iterable[Sequence[Any]]) -> None:
    """Decode rows of SEED_FILE_COLUMNS into `files`, keyed by path."""
    for path, size, mtime_ns, content_hash, status, story_id, rank, error in rows:
        files[path] = SeedFileRecord(
            path=path,
            size=size,
            mtime_ns=mtime_ns,
            content_hash=content_hash,
            # One shared string per status rather than one per record.
            status=_FILE_STATUSES[status],
            story_id=story_id,
            rank=_parse_rank(rank),
            error=error,
        )


def _parse_rank(text: str) -> tuple[int, ...]:
    """The rank tuple from its JSON text, which the store writes itself as a flat array of
    integers: splitting takes half the time of json.loads, which shows at a million files."""
    inner = text[1:-1]
    return tuple(map(int, inner.split(","))) if inner.strip() else ()


# --- digests -------------------------------------------------------------------------------------

DIGEST_SETTINGS_COLUMNS = (
    "guild_id, channel_id, local_time, timezone, topics, count, enabled, disabled_reason,"
    " effective_from, max_age"
)


def digest_settings_row(settings: DigestSettings) -> tuple[Any, ...]:
    """The values of DIGEST_SETTINGS_COLUMNS for one server's settings."""
    return (
        settings.guild_id,
        settings.channel_id,
        f"{settings.local_time.hour:02d}:{settings.local_time.minute:02d}",
        settings.timezone,
        to_json(list(settings.topics)),
        settings.count,
        settings.enabled,
        settings.disabled_reason,
        unix(settings.effective_from),
        None if settings.max_age is None else int(settings.max_age.total_seconds()),
    )


def digest_settings_from_row(row: Sequence[Any]) -> DigestSettings:
    (
        guild_id,
        channel_id,
        local_time,
        timezone,
        topics,
        count,
        enabled,
        disabled_reason,
        effective_from,
        max_age,
    ) = row
    return DigestSettings(
        guild_id=guild_id,
        channel_id=channel_id,
        local_time=time.fromisoformat(local_time),
        timezone=timezone,
        topics=tuple(json.loads(topics)),
        count=count,
        enabled=bool(enabled),
        disabled_reason=disabled_reason,
        effective_from=from_unix(effective_from),
        max_age=None if max_age is None else timedelta(seconds=max_age),
    )


DIGEST_RUN_COLUMNS = (
    "guild_id, local_date, channel_id, status, scheduled_for, claimed_at, plan, sent_messages,"
    " finished_at, detail, attempt, owner, lease_until"
)


def digest_run_row(run: DigestRun) -> tuple[Any, ...]:
    """The values of DIGEST_RUN_COLUMNS for one ledger row."""
    return (
        run.guild_id,
        run.local_date.isoformat(),
        run.channel_id,
        run.status,
        unix(run.scheduled_for),
        unix(run.claimed_at),
        to_json([list(message) for message in run.plan]),
        run.sent_messages,
        None if run.finished_at is None else unix(run.finished_at),
        run.detail,
        run.attempt,
        run.owner,
        0 if run.lease_until is None else unix(run.lease_until),
    )


def digest_run_from_row(row: Sequence[Any]) -> DigestRun:
    (
        guild_id,
        local_date,
        channel_id,
        status,
        scheduled_for,
        claimed_at,
        plan,
        sent_messages,
        finished_at,
        detail,
        attempt,
        owner,
        lease_until,
    ) = row
    return DigestRun(
        guild_id=guild_id,
        local_date=date.fromisoformat(local_date),
        channel_id=channel_id,
        status=status,
        scheduled_for=from_unix(scheduled_for),
        claimed_at=from_unix(claimed_at),
        plan=tuple(tuple(message) for message in json.loads(plan)),
        sent_messages=sent_messages,
        finished_at=None if finished_at is None else from_unix(finished_at),
        detail=detail,
        attempt=attempt,
        owner=owner,
        lease_until=from_unix(lease_until) if lease_until else None,
    )


DIGEST_MESSAGE_COLUMNS = (
    "guild_id, local_date, attempt, idx, nonce, embeds, story_ids, attempted_at, message_id,"
    " sent_at"
)


def digest_message_row(run: DigestRun, message: PlannedMessage) -> tuple[Any, ...]:
    """The values of DIGEST_MESSAGE_COLUMNS for one message of `run`."""
    return (
        run.guild_id,
        run.local_date.isoformat(),
        run.attempt,
        message.index,
        message.nonce,
        to_json(list(message.embeds)),
        to_json(list(message.story_ids)),
        _maybe_unix(message.attempted_at),
        message.message_id,
        _maybe_unix(message.sent_at),
    )


def digest_message_from_row(row: Sequence[Any]) -> PlannedMessage:
    _, _, _, index, nonce, embeds, story_ids, attempted_at, message_id, sent_at = row
    return PlannedMessage(
        index=index,
        nonce=nonce,
        embeds=tuple(json.loads(embeds)),
        story_ids=tuple(json.loads(story_ids)),
        attempted_at=None if attempted_at is None else from_unix(attempted_at),
        message_id=message_id,
        sent_at=None if sent_at is None else from_unix(sent_at),
    )


def _maybe_unix(instant: datetime | None) -> int | None:
    return None if instant is None else unix(instant)
