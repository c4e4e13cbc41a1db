"""Builders for test data: a valid story with only the fields a test cares about spelled out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.models import Image, Provider, Related, Story
from bot.urls import canonical_url, story_id

# The shipped seeds' titles, newest first (all five are on AI and on Computer Vision).
SHIPPED_TITLES_NEWEST_FIRST = [
    "Breaking news. MEPs endorse blanket ban on facial recognition in public spaces, "
    "rejecting targeted exemptions",
    "EU parliament backs AI restrictions and facial recognition ban",
    "European Parliament calls for a ban on facial recognition",
    "European Parliament entreats a ban on facial recognition.",
    "EU data regulators call for a ban on AI-based facial recognition software",
]


def make_story(
    url: str = "https://news.example.com/story-1",
    *,
    title: str = "A story",
    excerpt: str = "What happened, in one sentence.",
    published_at: datetime | None = None,
    topics: tuple[str, ...] = ("AI",),
    **fields: Any,
) -> Story:
    canonical = canonical_url(url)
    fields.setdefault("provider", Provider("Example News", "example.com"))
    fields.setdefault("images", (Image("https://news.example.com/lead.jpg", 1200, 630),))
    return Story(
        id=story_id(canonical),
        url=canonical,
        title=title,
        excerpt=excerpt,
        published_at=published_at or datetime(2024, 1, 1, 12, 0, tzinfo=UTC),
        topics=topics,
        original_url=url,
        **fields,
    )


def make_related(url: str, *, title: str = "Other coverage", **fields: Any) -> Related:
    return Related(title=title, url=url, story_id=story_id(canonical_url(url)), **fields)
