"""`newsbot seeds import`: RSS and Atom feeds to seed files in the seed folder.

Three steps, one module each: fetch reads a feed's bytes (a URL or a file, bounded), convert
turns the parsed feed into seed files (pure), write puts each file in the folder atomically and
leaves an unchanged one alone. A feed that fails is reported with why, and the others go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bot.feeds.convert import Conversion, NotAFeed, SkippedEntry, convert_feed, parse_feed
from bot.feeds.fetch import (
    FeedBytes,
    FeedUnavailable,
    NotAWebURL,
    check_source,
    is_url,
    new_session,
    read_feed,
)
from bot.feeds.write import Written, write_seed
from bot.seeds import DEFAULT_MAX_FILE_BYTES

__all__ = ["FeedReport", "NotAWebURL", "SkippedEntry", "check_source", "import_feeds"]

# Feeds fetched at once: enough to hide network waits, few enough to be polite to one host.
PARALLEL_FETCHES = 4


@dataclass(slots=True)
class FeedReport:
    """What importing one feed did: the files written (new or updated), how many were already
    there unchanged, the entries skipped with why; or why the whole feed failed."""

    feed: str
    error: str | None = None
    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    skipped: list[SkippedEntry] = field(default_factory=list)


async def import_feeds(
    sources: Sequence[str],
    folder: Path,
    topics: Sequence[str] = (),
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> list[FeedReport]:
    """Import every feed into `folder`, one report per feed in the order given. Feeds are
    fetched in parallel; their files are written one feed after the other, so an entry that
    two feeds share is written once and reported unchanged the second time."""
    session = new_session() if any(is_url(source) for source in sources) else None
    try:
        fetched = await _fetch_all(sources, session)
    finally:
        if session is not None:
            await session.close()
    return [
        await asyncio.to_thread(_import_one, source, got, folder, topics, max_file_bytes)
        for source, got in zip(sources, fetched, strict=True)
    ]


async def _fetch_all(
    sources: Sequence[str], session: aiohttp.ClientSession | None
) -> list[FeedBytes | FeedUnavailable]:
    slots = asyncio.Semaphore(PARALLEL_FETCHES)

    async def fetch(source: str) -> FeedBytes | FeedUnavailable:
        async with slots:
            try:
                return await read_feed(check_source(source), session)
            except (FeedUnavailable, NotAWebURL) as error:
                return FeedUnavailable(str(error))

    return await asyncio.gather(*(fetch(source) for source in sources))


def _import_one(
    source: str,
    fetched: FeedBytes | FeedUnavailable,
    folder: Path,
    topics: Sequence[str],
    max_file_bytes: int,
) -> FeedReport:
    """Parse, convert and write one feed (blocking: run in a thread)."""
    report = FeedReport(source)
    if isinstance(fetched, FeedUnavailable):
        report.error = str(fetched)
        return report
    try:
        conversion: Conversion = convert_feed(
            parse_feed(fetched.data, fetched.headers), topics, max_file_bytes
        )
    except NotAFeed as error:
        report.error = str(error)
        return report
    report.skipped.extend(conversion.skipped)
    for seed in conversion.seeds:
        outcome = write_seed(folder, seed.name, seed.data)
        {
            Written.NEW: report.new,
            Written.UPDATED: report.updated,
            Written.UNCHANGED: report.unchanged,
        }[outcome].append(seed.name)
    return report
