"""Which stories a digest carries: each story scored, coverage of one event clustered, the
best first (pure: `now` is passed in)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.digest.instants import as_utc as _as_utc
from bot.models import DigestSettings, Story

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
