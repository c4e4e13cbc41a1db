"""seeds.watch end to end: files dropped into the seed folder are answered by /news and offered
by the topic autocomplete without anyone reloading, in one reload; the watch can be switched
on and off while the bot runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import cast

import pytest

from bot.app import NewsBot
from bot.cli import main
from bot.cli.common import EXIT_REJECTED
from bot.cogs.seeds import Seeds
from bot.store.sqlite import SqliteStore
from tests.discord_emulator import DiscordEmulator
from tests.helpers import World, serving

FEEDS = Path(__file__).resolve().parent.parent / "feeds"


async def within(seconds: float, condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    give_up = loop.time() + seconds
    while not condition():
        assert loop.time() < give_up, f"not within {seconds} s"
        await asyncio.sleep(0.05)


@pytest.fixture
async def watched(discord_emulator: DiscordEmulator, tmp_path: Path) -> AsyncIterator[World]:
    """newsbot with seeds.watch on, the shipped seeds loaded."""
    async with serving(discord_emulator, tmp_path, watch_seeds=True) as world:
        yield world


@pytest.fixture
async def unwatched(discord_emulator: DiscordEmulator, tmp_path: Path) -> AsyncIterator[World]:
    """newsbot with seeds.watch off (the default)."""
    async with serving(discord_emulator, tmp_path) as world:
        yield world


def cog_of(bot: NewsBot) -> Seeds:
    # load_extension imports the cog's module anew: its class is not this module's Seeds.
    return cast(Seeds, bot.get_cog("Seeds"))


def drop_stories(folder: Path, count: int, topic: str = "Watched") -> None:
    for number in range(count):
        (folder / f"watched-{number:03}.md").write_text(
            f'---\ntitle: "Watched story {number:03}"\n'
            f"publishedDateTime: 2024-02-01T00:{number // 60:02}:{number % 60:02}Z\n"
            f'webUrl: "https://watched.example.com/{number}"\ntopics: [{topic}]\n---\n'
        )


async def generation(store: SqliteStore) -> int:
    return (await store.seed_index()).generation


async def offered(world: World, typed: str) -> list[str]:
    choices = await world.emu.autocomplete(
        world.guild, world.channel, world.reader, "news", focused="topic", value=typed
    )
    return [choice["value"] for choice in choices]


async def test_a_hundred_dropped_files_are_answered_by_news_after_one_reload(
    watched: World, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = cog_of(watched.bot).watcher
    await within(5, lambda: watcher.watching)
    before = await generation(watched.store)
    stored: list[int] = [0]

    async def count_stored() -> None:
        while stored[0] < 105:
            stored[0] = await watched.store.story_count()
            await asyncio.sleep(0.05)

    with caplog.at_level(logging.INFO, logger="bot.reload.watch"):
        await asyncio.to_thread(drop_stories, watched.seeds, 100)
        await asyncio.wait_for(count_stored(), timeout=5)
        reply = await (await watched.invoke("news", {"topic": "watched", "count": 3})).response()
        # Long enough for a second reload to show, were there one.
        await asyncio.sleep(1.5)

    assert [embed["title"] for embed in reply.embeds] == [
        "Watched story 099",
        "Watched story 098",
        "Watched story 097",
    ]
    assert await generation(watched.store) == before + 1
    assert watcher.reloads == 1
    [line] = [r.getMessage() for r in caplog.records if "seed folder changed" in r.getMessage()]
    assert "reloaded in" in line and "100 added, 0 updated, 5 unchanged" in line
    assert await offered(watched, "watch") == ["Watched"]


async def test_a_rejected_dropped_file_is_named_in_a_warning(
    watched: World, caplog: pytest.LogCaptureFixture
) -> None:
    watcher = cog_of(watched.bot).watcher
    await within(5, lambda: watcher.watching)

    with caplog.at_level(logging.INFO, logger="bot"):
        await asyncio.to_thread((watched.seeds / "broken.md").write_text, "---\ntitle: [\n---\n")
        await within(10, lambda: "seed folder changed" in caplog.text)

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if w.startswith("seed broken.md rejected: ")]


async def test_watching_is_off_by_default_and_can_be_switched_on_and_off(
    unwatched: World,
) -> None:
    cog = cog_of(unwatched.bot)
    assert not cog.watcher.running
    await asyncio.to_thread(drop_stories, unwatched.seeds, 2)

    cog.start_watching()
    cog.start_watching()
    # Switched on, it first catches up on what changed while it was off.
    await within(10, lambda: cog.watcher.reloads == 1)
    assert await unwatched.store.story_count() == 7
    await within(5, lambda: cog.watcher.watching)
    await asyncio.to_thread(drop_stories, unwatched.seeds, 5)
    await within(10, lambda: cog.watcher.reloads == 2)
    await cog.stop_watching()
    await cog.stop_watching()

    assert not cog.watcher.running and not cog.watcher.watching
    assert await unwatched.store.story_count() == 10


async def test_feeds_imported_into_the_watched_folder_are_answered_by_news(
    watched: World,
) -> None:
    watcher = cog_of(watched.bot).watcher
    await within(5, lambda: watcher.watching)
    feeds = sorted(str(feed) for feed in FEEDS.glob("*.xml"))

    # `newsbot seeds import tests/feeds/*.xml`, the malformed feed included: it is reported,
    # the others are imported.
    code = await asyncio.to_thread(
        main, ["seeds", "import", *feeds, "--folder", str(watched.seeds), "--topic", "Imported"]
    )

    assert code == EXIT_REJECTED
    titles: list[str] = []

    async def answered() -> None:
        while len(titles) < 4:
            await asyncio.sleep(0.1)
            reply = await (await watched.invoke("news", {"topic": "imported"})).response()
            titles[:] = [embed["title"] for embed in reply.embeds]

    await asyncio.wait_for(answered(), timeout=10)
    assert sorted(titles) == [
        "Ferry timetable – winter changes",
        "Grafting old apple varieties",
        "Lighthouse keepers vote to repaint the tower",
        "Weather station back online",
    ]
