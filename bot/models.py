"""Plain data shared by every layer: stories as parsed from seeds and as read from the store.

Everything here is a frozen dataclass with no behaviour beyond derived properties, so that
parsing, storage, rendering and selection can exchange values without knowing each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Provider:
    """The outlet that published a story."""

    name: str
    domain: str = ""


@dataclass(frozen=True, slots=True)
class Image:
    """An image of a story; only http(s) URLs survive parsing."""

    url: str
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True, slots=True)
class Related:
    """Another outlet's coverage of the same event, as listed in a seed."""

    title: str
    url: str
    # The id this link has when it is itself a stored story (see bot.urls.story_id), so that
    # coverage of one event can be clustered without comparing URLs at query time.
    story_id: int
    excerpt: str = ""
    published_at: datetime | None = None
    provider: Provider | None = None
    quality: int | None = None
    image: Image | None = None


@dataclass(frozen=True, slots=True)
class Story:
    """One news story. `id` is derived from `url`, the canonical link, and never changes."""

    id: int
    url: str
    title: str
    excerpt: str
    published_at: datetime
    provider: Provider | None = None
    topics: tuple[str, ...] = ()
    images: tuple[Image, ...] = ()
    related: tuple[Related, ...] = ()
    quality: int | None = None
    # None when the feed says -1 ("unknown").
    heat: int | None = None
    category: str = ""
    kind: str = ""
    published: bool | None = None
    # The link exactly as the seed gave it, and its AMP alternates.
    original_url: str = ""
    amp_url: str = ""
    cdn_amp_url: str = ""
    body: str = ""
    # Opaque token from the feed: stored, never displayed, kept out of reprs and logs.
    secured: str = field(default="", repr=False)

    @property
    def lead_image(self) -> Image | None:
        return self.images[0] if self.images else None


@dataclass(frozen=True, slots=True)
class TopicCount:
    """A topic with the number of stored stories that carry it."""

    name: str
    count: int


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a seed file was rejected, or what was repaired or dropped while loading it."""

    field: str | None
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        at = f" (line {self.line})" if self.line is not None else ""
        return f"{where}{self.message}{at}"


@dataclass(frozen=True, slots=True)
class SeedResult:
    """The verdict on one seed file: a story (possibly with warnings) or a rejection."""

    source: str
    story: Story | None
    errors: tuple[Problem, ...] = ()
    warnings: tuple[Problem, ...] = ()
    # blake2b of the file's bytes: lets a reload tell a touched file from an edited one.
    content_hash: str = ""

    @property
    def ok(self) -> bool:
        return self.story is not None

    @property
    def reason(self) -> str:
        """All errors as one line, for reports and logs."""
        return "; ".join(str(problem) for problem in self.errors)


def topic_key(name: str) -> str:
    """A topic's identity, ignoring case and spacing: " computer  VISION" is "Computer Vision"."""
    return " ".join(name.split()).casefold()


@dataclass(frozen=True, slots=True)
class DigestSettings:
    """A server's daily digest: where, when (local time in an IANA zone), on what, how many."""

    guild_id: int
    channel_id: int
    local_time: time
    timezone: str
    topics: tuple[str, ...] = ()
    count: int = 5
    enabled: bool = True
    # Why the digest was switched off by newsbot itself (missing access, unknown channel...).
    disabled_reason: str | None = None
    # Schedule times before this instant were not this schedule's: they are never caught up.
    effective_from: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    # Stories older than this are left out: None follows the configured default
    # (digest.max_age_days), timedelta(0) means no limit for this server.
    max_age: timedelta | None = None


DigestStatus = Literal["claimed", "sent", "empty", "skipped", "failed"]


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    """One message of a claimed digest, fixed at claim time: what is sent, under which nonce,
    and what it delivers. A resumed digest sends these, never a new rendering of the stories.
    """

    index: int  # 0-based, in the order sent
    nonce: str
    # The embeds as rendered (discord.Embed.to_dict), sent as they are.
    embeds: tuple[dict[str, Any], ...]
    # Every story the message delivers (an item's story and its clustered coverage).
    story_ids: tuple[int, ...]
    # When this message was first tried under its nonce (None: not yet): a send whose outcome
    # is unknown is resolved from it (Discord de-duplicates a nonce for a few minutes only).
    attempted_at: datetime | None = None
    # Discord's id of the posted message, once recorded.
    message_id: int | None = None
    sent_at: datetime | None = None

    @property
    def marker(self) -> str:
        """What identifies the posted message in the channel's history: its last embed's
        footer, unique to this digest and part (bot.embeds.digest_messages puts it there)."""
        footer = self.embeds[-1].get("footer", {}) if self.embeds else {}
        return str(footer.get("text", ""))


@dataclass(frozen=True, slots=True)
class DigestRun:
    """One row of the digest ledger: a server's digest for one local date.

    The row is claimed (inserted) before anything is sent, with the exact plan: the story ids
    of each item (the item's story first, then the coverage clustered with it). Sending records
    progress message by message, so a crash is resumed with the same plan and the same nonces
    instead of posting a second digest.
    """

    guild_id: int
    local_date: date
    channel_id: int
    status: DigestStatus
    scheduled_for: datetime
    claimed_at: datetime
    # Story ids per item, in order.
    plan: tuple[tuple[int, ...], ...] = ()
    sent_messages: int = 0
    finished_at: datetime | None = None
    detail: str = ""
    # 0 for the first try at this date; /digest now may claim a failed, skipped or empty date
    # again, each time with the next number (message nonces include it).
    attempt: int = 0
    # The messages of this attempt, fixed at claim time. Only a single run read for sending
    # carries them (DigestLedger.take_digest_run); lists of runs leave them out.
    messages: tuple[PlannedMessage, ...] = ()
    # The process sending this run (Store.owner), and until when its claim holds: another
    # process may take over a claimed run only once the lease has expired.
    owner: str = ""
    lease_until: datetime | None = None
