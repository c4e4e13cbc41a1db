"""Stories, seed records and ledger rows the store tests build, and what they read back."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta

from bot.models import DigestRun, DigestSettings, PlannedMessage, Story
from bot.search_query import parse_query
from bot.store.base import (
    FileStatus,
    ReloadChanges,
    SeedFileRecord,
    Store,
)
from tests.factories import make_story

RELOADED_AT = datetime(2024, 6, 1, 8, 30, tzinfo=UTC)


T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def story_at(n: int, *, minutes: int | None = None, **fields: object) -> Story:
    """Story number n, published n minutes after T0 unless told otherwise."""
    published_at = T0 + timedelta(minutes=n if minutes is None else minutes)
    return make_story(f"https://news.example.com/story-{n}", published_at=published_at, **fields)


async def reload(
    store: Store,
    upsert: Iterable[Story] = (),
    *,
    retire: Sequence[int] = (),
    put_files: Sequence[SeedFileRecord] = (),
    delete_files: Sequence[str] = (),
    folder: str = "/srv/seeds",
) -> None:
    """Apply one reload planned against the current generation; each story comes from a
    seed file named after its id."""
    index = await store.seed_index()
    await store.apply_reload(
        ReloadChanges(
            expected_generation=index.generation,
            reloaded_at=RELOADED_AT,
            upsert=[(store.encode_story(story), f"{story.id}.yaml") for story in upsert],
            retire=retire,
            put_files=put_files,
            delete_files=delete_files,
            folder=folder,
        )
    )


def titles(stories: Iterable[Story]) -> list[str]:
    return [story.title for story in stories]


async def searchable(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, title="Rocket launch delayed", excerpt="Weather near the coast."),
            story_at(2, title="Markets rally", excerpt="A rocket maker's shares soar and dip."),
            story_at(3, title="Café culture", excerpt="Coffee prices climb.", topics=("Food",)),
            story_at(4, title="Launch party", excerpt="Nothing to do with space."),
        ],
    )


def record(
    path: str,
    *,
    status: FileStatus = "loaded",
    story_id: int | None = None,
    rank: tuple[int, ...] = (),
    error: str | None = None,
    size: int = 120,
) -> SeedFileRecord:
    return SeedFileRecord(
        path=path,
        size=size,
        mtime_ns=1_700_000_000_123_456_789,
        content_hash=f"hash-of-{path}",
        status=status,
        story_id=story_id,
        rank=rank,
        error=error,
    )


async def state(store: Store) -> tuple[object, ...]:
    """Everything a reader can see."""
    return (
        await store.latest(100),
        await store.topics(),
        await store.story_count(),
        await store.latest(100, query=parse_query("first")),
        await store.linked_stories([story_at(n).id for n in range(5)]),
        await store.seed_index(),
    )


def failing_reload(store: Store) -> ReloadChanges:
    return ReloadChanges(
        expected_generation=1,
        reloaded_at=RELOADED_AT + timedelta(days=1),
        upsert=[
            (store.encode_story(story_at(1, title="changed", topics=("Biology",))), "one.yaml"),
            (store.encode_story(story_at(3, title="new")), "three.yaml"),
        ],
        retire=[story_at(2).id],
        put_files=[record("three.yaml", story_id=story_at(3).id)],
        delete_files=["one.yaml"],
        folder="/elsewhere",
    )


GUILD = 1_100_000_000_000_000_001
CHANNEL = 1_200_000_000_000_000_001
DAY = date(2024, 6, 3)
SCHEDULED = datetime(2024, 6, 3, 7, 0, tzinfo=UTC)


def minutes(stories: Iterable[Story]) -> list[int]:
    """Which story_at(n) each story is (n minutes after T0), in order."""
    return [int((story.published_at - T0).total_seconds() // 60) for story in stories]


def nth(n: int) -> int:
    return story_at(n).id


def run_on(local_date: date = DAY, *, guild_id: int = GUILD, **fields: object) -> DigestRun:
    defaults: dict[str, object] = {
        "channel_id": CHANNEL,
        "status": "claimed",
        "scheduled_for": SCHEDULED,
        "claimed_at": SCHEDULED + timedelta(seconds=2),
        "plan": ((nth(1), nth(2)), (nth(3),)),
    }
    return DigestRun(guild_id, local_date, **{**defaults, **fields})  # type: ignore[arg-type]


def planned(index: int, story_ids: Sequence[int | None], **fields: object) -> PlannedMessage:
    """Message `index` of a digest, delivering `story_ids`, with an embed carrying a marker."""
    embeds = ({"title": f"part {index}", "footer": {"text": f"Part {index + 1} · digest t"}},)
    defaults: dict[str, object] = {"nonce": f"dg-test-{index}", "embeds": embeds}
    return PlannedMessage(index, story_ids=tuple(story_ids), **{**defaults, **fields})  # type: ignore[arg-type]


def claim_by(store: Store, local_date: date = DAY, **fields: object) -> DigestRun:
    """A claim of `store`'s own, with the two messages of run_on's plan, leased for a while."""
    defaults: dict[str, object] = {
        "owner": store.owner,
        "lease_until": SCHEDULED + timedelta(minutes=3),
        "messages": (planned(0, (nth(1), nth(2))), planned(1, (nth(3),))),
    }
    return run_on(local_date, **{**defaults, **fields})


def settings(guild_id: int = GUILD, **fields: object) -> DigestSettings:
    defaults: dict[str, object] = {
        "channel_id": CHANNEL,
        "local_time": time(7, 30),
        "timezone": "Europe/Paris",
    }
    return DigestSettings(guild_id, **{**defaults, **fields})  # type: ignore[arg-type]


async def deliver(store: Store, channel_id: int, ns: Iterable[int]) -> None:
    """Record stories story_at(n) as delivered to a channel, through a run of its own."""
    run = claim_by(
        store, guild_id=channel_id, channel_id=channel_id, messages=(planned(0, map(nth, ns)),)
    )
    await store.add_digest_run(run)
    await store.record_digest_message(run, 0, 1, SCHEDULED, SCHEDULED + timedelta(minutes=3))
