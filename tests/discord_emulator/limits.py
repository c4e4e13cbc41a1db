"""Rate limits and injected failures, shaped the way discord.py's HTTP client reads them.

Rate limits (fixed windows, like Discord's ``Reset-After``):

- per-route buckets keyed by route + major parameter (channel, guild, webhook token); every answer
  carries ``X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket``. discord.py waits by itself
  when ``Remaining`` hits 0, so a well-behaved client rarely sees a 429 from a bucket;
- ``POST /channels/{id}/messages`` uses the per-channel message bucket (default 5 per 5 s);
- interaction followups/edits use a per-interaction-token webhook bucket (default 5 per 2 s);
- a global limit over bot-authenticated requests (default 50/s); interaction callbacks and
  token-authenticated webhook calls are exempt.

An exceeded limit answers 429 with ``{"message", "retry_after", "global"}`` and a ``Via`` header
(without ``Via`` discord.py assumes a Cloudflare ban and raises instead of retrying).
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

KNOWN_CODES: dict[int, tuple[int, str]] = {
    # code: (status, message)
    0: (500, "500: Internal Server Error"),
    10003: (404, "Unknown Channel"),
    10004: (404, "Unknown Guild"),
    10008: (404, "Unknown Message"),
    10015: (404, "Unknown Webhook"),
    10062: (404, "Unknown interaction"),
    40060: (400, "Interaction has already been acknowledged"),
    50001: (403, "Missing Access"),
    50013: (403, "Missing Permissions"),
    50035: (400, "Invalid Form Body"),
}
DEFAULT_CODE_FOR_STATUS = {403: 50013, 404: 10003, 400: 50035}
SERVER_ERROR_TEXT = {
    500: "500: Internal Server Error",
    502: "502: Bad Gateway",
    503: "503: Service Unavailable",
    504: "504: Gateway Timeout",
}
VIA = "1.1 google"


@dataclass
class Limits:
    """Every timing and quota the emulator enforces; mutable during a test (``emu.limits``)."""

    interaction_deadline: float = 3.0
    followup_lifetime: float = 15 * 60.0
    global_requests: int = 50
    global_window: float = 1.0
    channel_messages: int = 5
    channel_window: float = 5.0
    route_requests: int = 50
    route_window: float = 1.0
    webhook_requests: int = 5
    webhook_window: float = 2.0
    nonce_window: float = 300.0
    heartbeat_interval: float = 41.25
    retry_after: float = 0.05
    """``retry_after`` of injected 429s (``fail_next`` can override it per rule)."""
    session_start_total: int = 1000
    """IDENTIFYs (session starts) a token may make per ``session_start_window``; one more
    resets the token and ends every session, as Discord does."""
    session_start_window: float = 24 * 3600.0
    max_concurrency: int = 1
    """IDENTIFY buckets (``shard_id % max_concurrency``); each takes one per ``identify_window``."""
    identify_window: float = 0.0
    """Discord's is 5 s. 0 (the default) leaves IDENTIFY pacing unchecked, because tests
    restart bots within milliseconds; set 5.0 to have an early IDENTIFY refused with op 9."""
    guilds_per_shard: int = 2500
    """More guilds than this on one session's shard closes it with 4011 Sharding required."""

    def lift_rate_limits(self) -> None:
        """No request quota anywhere: for measuring newsbot's own latency, not Discord's."""
        unlimited = 1_000_000_000
        self.global_requests = self.route_requests = unlimited
        self.channel_messages = self.webhook_requests = unlimited


@dataclass
class Bucket:
    limit: int
    window: float
    remaining: int
    reset_at: float


def bucket_hash(name: str) -> str:
    return hashlib.md5(name.encode(), usedforsecurity=False).hexdigest()


class RateLimiter:
    """Fixed-window buckets: ``take`` consumes one request or says how long to wait."""

    def __init__(self) -> None:
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str, limit: int, window: float) -> tuple[Bucket, float]:
        """Consume one slot; return the bucket and 0, or the bucket and the seconds to wait."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at or bucket.limit != limit:
            bucket = Bucket(limit=limit, window=window, remaining=limit, reset_at=now + window)
            self._buckets[key] = bucket
        if bucket.remaining <= 0:
            return bucket, max(bucket.reset_at - now, 0.001)
        bucket.remaining -= 1
        return bucket, 0.0

    @staticmethod
    def headers(bucket: Bucket, hash_: str) -> dict[str, str]:
        # rounded up: a client that waits exactly this long must find the window reset
        reset_after = math.ceil(max(bucket.reset_at - time.monotonic(), 0.0) * 1000) / 1000
        return {
            "X-RateLimit-Limit": str(bucket.limit),
            "X-RateLimit-Remaining": str(bucket.remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": hash_,
        }


def too_many_requests(
    retry_after: float, *, is_global: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """Body and headers of a 429 as Discord sends it."""
    body = {
        "message": "You are being rate limited.",
        "retry_after": math.ceil(retry_after * 1000) / 1000,
        "global": is_global,
    }
    headers = {
        "Via": VIA,
        "Retry-After": str(math.ceil(retry_after)),
        "X-RateLimit-Scope": "global" if is_global else "user",
    }
    if is_global:
        headers["X-RateLimit-Global"] = "true"
    return body, headers


@dataclass
class FailureRule:
    """One ``fail_next`` instruction: answer ``status`` to matching requests ``times`` times."""

    method: str
    pattern: str
    status: int
    body: dict[str, Any] | None = None
    times: int = 1
    retry_after: float | None = None
    hits: list[str] = field(default_factory=list)

    @property
    def remaining(self) -> int:
        return self.times - len(self.hits)

    def matches(self, method: str, path: str) -> bool:
        return (
            self.remaining > 0
            and self.method in ("*", method)
            and fnmatch.fnmatchcase(path, self.pattern)
        )

    def response(self, default_retry_after: float) -> tuple[dict[str, Any], dict[str, str]]:
        if self.status == 429:
            retry = self.retry_after if self.retry_after is not None else default_retry_after
            body, headers = too_many_requests(retry, is_global=False)
            return (self.body or body), headers
        if self.body is not None:
            return self.body, {}
        if self.status in SERVER_ERROR_TEXT:
            return {"message": SERVER_ERROR_TEXT[self.status], "code": 0}, {}
        code = DEFAULT_CODE_FOR_STATUS.get(self.status, 0)
        return {"message": KNOWN_CODES.get(code, (0, f"{self.status}"))[1], "code": code}, {}


CREATE_FAULT_KINDS = ("delay", "error500", "malformed", "cut")
MALFORMED_JSON = b'{"id": "1", "channel_id": '
"""What a ``"malformed"`` answer carries: JSON cut off mid-object."""


@dataclass
class CreateFault:
    """One ``after_create`` instruction: the message IS created (stored, in history,
    MESSAGE_CREATE sent, nonce remembered); only the answer to the next ``times`` creations
    (in ``channel_id``, or anywhere when None) goes wrong, as ``kind`` says:

    - ``"delay"``: the normal answer, ``delay`` seconds late;
    - ``"error500"``: 500 with Discord's body;
    - ``"malformed"``: 200, ``Content-Type: application/json``, a body that is not JSON;
    - ``"cut"``: the connection is closed without an answer.

    ``hits`` are the paths it answered, ``message_ids`` the messages created meanwhile.
    """

    kind: str
    times: int = 1
    delay: float = 0.0
    channel_id: int | None = None
    hits: list[str] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in CREATE_FAULT_KINDS:
            raise ValueError(f"unknown after_create kind {self.kind!r}: {CREATE_FAULT_KINDS}")

    @property
    def remaining(self) -> int:
        return self.times - len(self.hits)

    def matches(self, channel_id: int) -> bool:
        return self.remaining > 0 and self.channel_id in (None, channel_id)


def error_body(code: int, message: str | None = None) -> dict[str, Any]:
    return {"message": message or KNOWN_CODES.get(code, (0, "Error"))[1], "code": code}
