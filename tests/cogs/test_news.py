"""/news and /topics end to end: the real discord.py client against the local emulator."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import NewsBot
from bot.discord_limits import CUSTOM_ID_LIMIT
from bot.page_turns import LongSearches, PageTurn, encode_search
from bot.search_query import MAX_QUERY_LENGTH, Order
from tests.discord_emulator import DiscordEmulator, running_bot
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member
from tests.factories import SHIPPED_TITLES_NEWEST_FIRST
from tests.helpers import SHIPPED_SEEDS, FakeClock, World, build_newsbot

NEWEST_AI = SHIPPED_TITLES_NEWEST_FIRST


def titles(embeds: list[dict]) -> list[str]:
    return [embed["title"] for embed in embeds]


async def test_commands_are_registered_with_their_options_and_admin_hint(world: World) -> None:
    commands = {command["name"]: command for command in world.emu.registered_commands()}

    assert set(commands) == {"news", "topics", "seeds", "digest"}
    options = {option["name"]: option for option in commands["news"]["options"]}
    assert list(options) == ["topic", "query", "sort", "count", "private"]
    assert options["topic"]["autocomplete"] is True
    assert options["query"]["max_length"] == MAX_QUERY_LENGTH
    assert [choice["value"] for choice in options["sort"]["choices"]] == ["newest", "relevance"]
    assert commands["seeds"]["default_member_permissions"] == str(MANAGE_GUILD)
    assert {option["name"] for option in commands["seeds"]["options"]} == {"reload", "status"}
    assert all(command["description"] for command in commands.values())


async def test_news_on_a_topic_answers_with_one_embed_per_story_newest_first(
    world: World,
) -> None:
    handle = await world.invoke("news", {"topic": "AI"})

    reply = await handle.response()

    assert reply.type == 4
    assert not reply.ephemeral
    assert titles(reply.embeds) == NEWEST_AI
    first = reply.embeds[0]
    assert first["url"].startswith("https://www.euronews.com/my-europe/2023/06/14/")
    assert first["description"].startswith("The debate has been inevitably shaped")
    assert first["image"]["url"].startswith("https://static.euronews.com/")
    assert first["author"]["name"] == "Euronews"
    assert first["timestamp"].startswith("2023-06-14T11:29:00")
    assert {"Topics", "Also covered by"} <= {field["name"] for field in first["fields"]}


async def test_story_without_a_lead_image_has_no_image(world: World) -> None:
    handle = await world.invoke("news", {"query": "regulators"})

    [embed] = (await handle.response()).embeds

    assert embed["title"] == NEWEST_AI[-1]
    assert "image" not in embed


async def test_topic_is_matched_in_any_case(world: World) -> None:
    handle = await world.invoke("news", {"topic": "computer VISION", "count": 2})

    reply = await handle.response()

    assert titles(reply.embeds) == NEWEST_AI[:2]
    assert "Computer Vision" in reply.content


async def test_news_without_options_lists_the_latest(world: World) -> None:
    reply = await (await world.invoke("news")).response()

    assert titles(reply.embeds) == NEWEST_AI


async def test_query_finds_words_in_title_or_excerpt(world: World) -> None:
    reply = await (await world.invoke("news", {"query": "biometric surveillance"})).response()

    assert titles(reply.embeds) == [
        "EU parliament backs AI restrictions and facial recognition ban"
    ]


async def test_no_match_is_a_short_private_answer(world: World) -> None:
    reply = await (await world.invoke("news", {"query": "zeppelin"})).response()

    assert reply.ephemeral
    assert reply.embeds == []
    assert "No stories match" in reply.content


async def test_unknown_topic_suggests_close_matches_and_points_to_topics(world: World) -> None:
    reply = await (await world.invoke("news", {"topic": "Computer Visoin"})).response()

    assert reply.ephemeral
    assert "no topic" in reply.content.lower()
    assert "**Computer Vision**" in reply.content
    assert "/topics" in reply.content


async def test_private_answers_only_the_asker(world: World) -> None:
    reply = await (await world.invoke("news", {"topic": "AI", "private": True})).response()

    assert reply.ephemeral
    assert len(reply.embeds) == 5


async def test_topic_autocomplete_offers_matching_topics_with_counts(world: World) -> None:
    everything = await world.emu.autocomplete(
        world.guild, world.channel, world.reader, "news", focused="topic", value=""
    )
    vision = await world.emu.autocomplete(
        world.guild, world.channel, world.reader, "news", focused="topic", value="vis"
    )

    assert [choice["name"] for choice in everything] == ["AI (5)", "Computer Vision (5)"]
    assert [choice["value"] for choice in vision] == ["Computer Vision"]


async def test_topics_lists_every_topic_with_its_count(world: World) -> None:
    reply = await (await world.invoke("topics")).response()

    [embed] = reply.embeds
    assert embed["description"].splitlines() == [
        "**AI** — 5 stories",
        "**Computer Vision** — 5 stories",
    ]


async def test_pages_turn_for_the_asker_only(world: World) -> None:
    handle = await world.invoke("news", {"topic": "AI", "count": 2})
    first = await handle.response()
    message = await handle.original_message()
    assert titles(first.embeds) == NEWEST_AI[:2]

    second = await (
        await world.emu.click(message, _button(message, "Next"), world.reader)
    ).response()
    message = await handle.original_message()
    third = await (
        await world.emu.click(message, _button(message, "Next"), world.reader)
    ).response()
    message = await handle.original_message()
    back = await (
        await world.emu.click(message, _button(message, "Previous"), world.reader)
    ).response()

    assert titles(second.embeds) == NEWEST_AI[2:4]
    assert titles(third.embeds) == NEWEST_AI[4:]
    assert titles(back.embeds) == NEWEST_AI[2:4]
    assert "page 2" in back.content


async def test_someone_else_pressing_the_buttons_is_refused_and_nothing_turns(world: World) -> None:
    handle = await world.invoke("news", {"topic": "AI", "count": 2})
    await handle.response()
    message = await handle.original_message()

    refusal = await (
        await world.emu.click(message, _button(message, "Next"), world.admin)
    ).response()

    assert refusal.ephemeral
    assert "Run /news yourself" in refusal.content
    assert titles((await handle.original_message()).embeds) == NEWEST_AI[:2]


@pytest.mark.parametrize("page_timeout", [0.3])
async def test_buttons_are_disabled_after_the_timeout(world: World) -> None:
    handle = await world.invoke("news", {"topic": "AI", "count": 2})
    await handle.response()

    await world.emu.wait_until(
        lambda: handle.original is not None and _all_disabled(handle.original.components),
        timeout=3,
        what="the buttons to be disabled",
    )


async def test_a_press_after_the_timeout_says_the_buttons_expired_and_disables_them(
    world: World, clock: FakeClock
) -> None:
    handle = await world.invoke("news", {"topic": "AI", "count": 2})
    await handle.response()
    message = await handle.original_message()
    clock.advance(seconds=61)  # page_timeout is 60 s

    press = await world.emu.click(message, _button(message, "Next"), world.reader)
    update = await press.response()
    [notice] = await press.followups(1)

    assert notice.ephemeral
    assert notice.content == "These buttons have expired; run /news again."
    assert update.type == 7  # the page itself stays as it was, its buttons disabled
    assert _all_disabled(world.emu.message(message.id).components)
    assert titles(world.emu.message(message.id).embeds) == NEWEST_AI[:2]


async def test_each_press_gives_the_buttons_the_whole_timeout_again(
    world: World, clock: FakeClock
) -> None:
    handle = await world.invoke("news", {"topic": "AI", "count": 2})
    await handle.response()
    message = await handle.original_message()

    clock.advance(seconds=40)
    await (await world.emu.click(message, _button(message, "Next"), world.reader)).response()
    clock.advance(seconds=40)  # 80 s after /news, 40 s after the last press
    message = world.emu.message(message.id)
    third = await (
        await world.emu.click(message, _button(message, "Next"), world.reader)
    ).response()

    assert titles(third.embeds) == NEWEST_AI[4:]


@contextlib.asynccontextmanager
async def newsbot(emu: DiscordEmulator, tmp_path: Path, clock: FakeClock) -> AsyncIterator[NewsBot]:
    """newsbot on the emulator and on the database in `tmp_path`, once its seeds are loaded."""
    seeds = tmp_path / "seeds"
    if not seeds.exists():
        shutil.copytree(SHIPPED_SEEDS, seeds)
    bot = build_newsbot(tmp_path, seeds, clock=clock, page_timeout=60.0)
    async with running_bot(bot, emu, loggers=("discord", "bot")):
        startup = bot.get_cog("Seeds").startup_reload  # type: ignore[union-attr]
        if startup is not None:
            await startup
        yield bot


@pytest.fixture
def server(discord_emulator: DiscordEmulator) -> tuple[Guild, Channel, Member]:
    guild = discord_emulator.add_guild("Readers")
    return (
        guild,
        discord_emulator.add_channel(guild, "news"),
        discord_emulator.add_member(guild, "reader"),
    )


async def test_pages_keep_turning_after_a_restart(
    discord_emulator: DiscordEmulator,
    tmp_path: Path,
    clock: FakeClock,
    server: tuple[Guild, Channel, Member],
) -> None:
    emu, (guild, channel, reader) = discord_emulator, server
    async with newsbot(emu, tmp_path, clock):
        handle = await emu.invoke(guild, channel, reader, "news", {"topic": "AI", "count": 2})
        await handle.response()
        message = await handle.original_message()
    clock.advance(seconds=30)  # the restart took 30 s; the buttons work for 60

    async with newsbot(emu, tmp_path, clock):
        second = await (await emu.click(message, _button(message, "Next"), reader)).response()
        message = emu.message(message.id)  # type: ignore[assignment]
        third = await (await emu.click(message, _button(message, "Next"), reader)).response()
        message = emu.message(message.id)  # type: ignore[assignment]
        back = await (await emu.click(message, _button(message, "Previous"), reader)).response()

    assert emu.gateway.identifies == 2
    assert titles(second.embeds) == NEWEST_AI[2:4]
    assert "page 2" in second.content
    assert titles(third.embeds) == NEWEST_AI[4:]
    assert titles(back.embeds) == NEWEST_AI[2:4]
    assert "page 2" in back.content


async def test_a_press_on_a_page_from_before_a_restart_that_expired_gets_an_answer(
    discord_emulator: DiscordEmulator,
    tmp_path: Path,
    clock: FakeClock,
    server: tuple[Guild, Channel, Member],
) -> None:
    emu, (guild, channel, reader) = discord_emulator, server
    async with newsbot(emu, tmp_path, clock):
        handle = await emu.invoke(guild, channel, reader, "news", {"query": "facial", "count": 1})
        await handle.response()
        message = await handle.original_message()
    clock.advance(minutes=10)

    async with newsbot(emu, tmp_path, clock):
        press = await emu.click(message, _button(message, "Next"), reader)
        [notice] = await press.followups(1)

    assert notice.content == "These buttons have expired; run /news again."
    assert _all_disabled(emu.message(message.id).components)


LONG_TOPIC = "The long-running European debate about remote biometric identification in public"


def _write_long_topic_seeds(seeds: Path) -> None:
    for day in (1, 2, 3):
        (seeds / f"long-{day}.txt").write_text(
            f'---\ntitle: "Biometrics, day {day}"\n'
            f"publishedDateTime: 2030-01-0{day}T00:00:00Z\n"
            f'webUrl: "https://long.example.com/{day}"\ntopics: ["{LONG_TOPIC}"]\n---\n'
        )


async def test_a_search_too_long_for_the_buttons_pages_until_a_restart(
    discord_emulator: DiscordEmulator,
    tmp_path: Path,
    clock: FakeClock,
    server: tuple[Guild, Channel, Member],
) -> None:
    emu, (guild, channel, reader) = discord_emulator, server
    seeds = tmp_path / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    _write_long_topic_seeds(seeds)
    options = {"topic": LONG_TOPIC, "query": "biometrics", "count": 1}
    async with newsbot(emu, tmp_path, clock):
        handle = await emu.invoke(guild, channel, reader, "news", options)
        await handle.response()
        message = await handle.original_message()
        second = await (await emu.click(message, _button(message, "Next"), reader)).response()
    message = emu.message(message.id)  # type: ignore[assignment]

    async with newsbot(emu, tmp_path, clock):
        press = await emu.click(message, _button(message, "Next"), reader)
        [notice] = await press.followups(1)

    assert titles(second.embeds) == ["Biometrics, day 2"]
    assert all(len(custom_id) <= CUSTOM_ID_LIMIT for custom_id in message.custom_ids())
    assert notice.content == "These buttons have expired; run /news again."


@pytest.mark.parametrize("order", list(Order))
def test_a_page_turn_survives_its_custom_id(order: Order) -> None:
    turn = PageTurn(
        backwards=False,
        owner_id=2**63 - 1,
        expires=2_000_000_000,
        per_page=10,
        offset=12_345,
        page=1_235,
        search=encode_search("Computer Vision", "facial: recognition"),
        order=order,
    )

    assert len(turn.custom_id) <= CUSTOM_ID_LIMIT
    assert PageTurn.from_custom_id(turn.custom_id) == turn


def test_a_button_from_before_the_sort_choice_reads_as_newest_first() -> None:
    turn = PageTurn.from_custom_id("news:n:1:2:5:5:2:2:AIfacial")

    assert turn == PageTurn(False, 1, 2, 5, 5, 2, "2:AIfacial", Order.NEWEST)
    assert turn.custom_id == "news:n:1:2:5:5:2:2:AIfacial"


def test_long_searches_are_forgotten_once_their_buttons_expired() -> None:
    searches = LongSearches()
    old = searches.keep("AI", "x" * 200, until=100.0, now=0.0)
    new = searches.keep("AI", "y" * 200, until=300.0, now=200.0)

    assert searches.recall(old) is None
    assert searches.recall(new) == ("AI", "y" * 200)


async def test_private_pages_turn_privately(world: World) -> None:
    handle = await world.invoke("news", {"topic": "AI", "count": 2, "private": True})
    await handle.response()
    message = await handle.original_message()

    second = await (
        await world.emu.click(message, _button(message, "Next"), world.reader)
    ).response()

    assert message.ephemeral
    assert titles(second.embeds) == NEWEST_AI[2:4]
    assert world.emu.message(message.id).ephemeral


async def test_a_mention_in_a_story_title_never_pings(world: World) -> None:
    (world.seeds / "ping.txt").write_text(
        '---\ntitle: "@everyone <@&123> <@456> big news"\n'
        "publishedDateTime: 2030-01-01T00:00:00Z\n"
        'webUrl: "https://ping.example.com/a"\ntopics: [AI]\n---\n'
    )
    await world.bot.reloader.reload()

    handle = await world.invoke("news", {"topic": "AI", "count": 1})
    reply = await handle.response()
    message = await handle.original_message()

    assert reply.embeds[0]["title"].startswith("@everyone")
    assert message.allowed_mentions == {"parse": []}
    assert not world.emu.would_ping(message)


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"count": 0}, "count must be a whole number between 1 and 10."),
        ({"count": -1}, "count must be a whole number between 1 and 10."),
        ({"count": 11}, "count must be a whole number between 1 and 10."),
        ({"count": 2**70}, "count must be a whole number between 1 and 10."),
        ({"count": "5"}, "count must be a whole number between 1 and 10."),
        ({"count": 2.5}, "count must be a whole number between 1 and 10."),
        ({"topic": "A" * 101}, "topic must be between 1 and 100 characters long."),
        ({"topic": ""}, "topic must be between 1 and 100 characters long."),
        ({"query": "a" * 513}, "query must be between 1 and 512 characters long."),
        ({"query": 42}, "query must be between 1 and 512 characters long."),
        ({"sort": "oldest"}, "sort must be one of Newest first, Most relevant."),
        ({"private": "yes"}, "private must be true or false."),
        ({"private": 1}, "private must be true or false."),
    ],
)
async def test_news_refuses_values_outside_its_options_privately(
    world: World, options: dict, rule: str
) -> None:
    chosen = {} if "topic" in options else {"topic": "AI"}
    reply = await (await world.invoke("news", chosen, raw_options=options)).response()

    assert reply.ephemeral
    assert reply.content == rule
    assert reply.embeds == []


@pytest.mark.parametrize("private", ["no", 0, None])
async def test_topics_refuses_a_private_that_is_not_true_or_false(world: World, private) -> None:  # type: ignore[no-untyped-def]
    reply = await (await world.invoke("topics", raw_options={"private": private})).response()

    assert reply.ephemeral
    assert reply.content == "private must be true or false."


def _button(message, label: str) -> str:  # type: ignore[no-untyped-def]
    for row in message.components:
        for component in row["components"]:
            if component.get("label") == label:
                return component["custom_id"]
    raise AssertionError(f"no {label} button on the message")


def _all_disabled(components: list[dict]) -> bool:
    buttons = [item for row in components for item in row["components"]]
    return bool(buttons) and all(item.get("disabled") for item in buttons)


# --- searching --------------------------------------------------------------------------------


async def test_a_search_header_says_how_the_query_was_read_and_how_many_matched(
    world: World,
) -> None:
    handle = await world.invoke("news", {"query": "facial recognition ban", "count": 2})

    reply = await handle.response()

    assert reply.content == (
        "Stories with *facial* and *recognition* and *ban*, newest first · 5 matches · page 1"
    )


async def test_a_page_without_words_keeps_the_latest_stories_header(world: World) -> None:
    reply = await (await world.invoke("news", {"topic": "AI", "count": 2})).response()

    assert reply.content == "Latest stories on **AI** · page 1"


async def test_the_count_stays_on_the_header_as_pages_turn(world: World) -> None:
    handle = await world.invoke("news", {"query": "facial -entreats", "count": 2})
    await handle.response()
    message = await handle.original_message()

    second = await (
        await world.emu.click(message, _button(message, "Next"), world.reader)
    ).response()

    assert second.content == (
        "Stories with *facial*, without *entreats*, newest first · 4 matches · page 2"
    )


def _write_drone_stories(seeds: Path) -> None:
    """Three stories newest first by date, and by relevance to "drones" the other way round."""
    stories = [
        ("1", "Drones, drones and more drones over the harbour", "Drone pilots flew drones."),
        ("2", "Weather for the weekend", "Sunny and mild; a few drones were seen at the coast."),
        (
            "3",
            "Council meeting notes",
            "A long agenda: budgets, roads, parks, schools, and one "
            "item on drones near the airport among many other items about the city's services.",
        ),
    ]
    for day, title, excerpt in stories:
        (seeds / f"drones-{day}.txt").write_text(
            f'---\ntitle: "{title}"\nexcerpt: "{excerpt}"\n'
            f"publishedDateTime: 2030-01-0{day}T00:00:00Z\n"
            f'webUrl: "https://drones.example.com/{day}"\ntopics: [Drones]\n---\n'
        )


async def test_sort_relevance_ranks_the_best_match_first_and_pages_keep_that_order(
    world: World,
) -> None:
    _write_drone_stories(world.seeds)
    await world.bot.reloader.reload()

    newest = await (await world.invoke("news", {"query": "drones", "count": 1})).response()
    handle = await world.invoke("news", {"query": "drones", "sort": "relevance", "count": 1})
    first = await handle.response()
    message = await handle.original_message()
    second = await (
        await world.emu.click(message, _button(message, "Next"), world.reader)
    ).response()
    message = world.emu.message(message.id)  # type: ignore[assignment]
    back = await (
        await world.emu.click(message, _button(message, "Previous"), world.reader)
    ).response()

    assert titles(newest.embeds) == ["Council meeting notes"]
    assert titles(first.embeds) == ["Drones, drones and more drones over the harbour"]
    assert first.content == "Stories with *drones*, most relevant first · 3 matches · page 1"
    assert titles(second.embeds) != titles(first.embeds)
    assert "most relevant first" in second.content
    assert "page 2" in second.content
    assert titles(back.embeds) == titles(first.embeds)


async def test_sort_relevance_without_words_lists_the_newest_and_says_why(world: World) -> None:
    reply = await (
        await world.invoke("news", {"topic": "AI", "sort": "relevance", "count": 2})
    ).response()

    assert titles(reply.embeds) == NEWEST_AI[:2]
    assert reply.content == (
        "Latest stories on **AI**, newest first: only a search with words can be sorted by "
        "relevance · page 1"
    )


async def test_topic_in_the_query_narrows_like_the_topic_option(world: World) -> None:
    (world.seeds / "other.txt").write_text(
        '---\ntitle: "Facial expressions of cats"\npublishedDateTime: 2030-01-01T00:00:00Z\n'
        'webUrl: "https://cats.example.com/a"\ntopics: [Pets]\n---\n'
    )
    await world.bot.reloader.reload()

    everywhere = await (await world.invoke("news", {"query": "facial"})).response()
    on_topic = await (
        await world.invoke("news", {"query": 'topic:"computer VISION" facial'})
    ).response()

    assert "Facial expressions of cats" in titles(everywhere.embeds)
    assert titles(on_topic.embeds) == NEWEST_AI
    assert on_topic.content.startswith("Stories on **Computer Vision** with *facial*, newest")


async def test_a_query_of_a_topic_alone_lists_that_topics_newest(world: World) -> None:
    alone = await (await world.invoke("news", {"query": "topic:ai"})).response()
    option = await (await world.invoke("news", {"topic": "AI"})).response()

    assert titles(alone.embeds) == titles(option.embeds) != []


async def test_unknown_topic_in_the_query_suggests_close_matches(world: World) -> None:
    reply = await (await world.invoke("news", {"query": "topic:Computer-Visoin ban"})).response()

    assert reply.ephemeral
    assert reply.content == (
        "There is no topic “Computer-Visoin”. Did you mean **Computer Vision**? "
        "/topics lists them all."
    )


async def test_two_different_topics_are_refused_and_the_same_one_twice_is_not(
    world: World,
) -> None:
    both = await (
        await world.invoke("news", {"topic": "AI", "query": 'topic:"Computer Vision" ban'})
    ).response()
    same = await (await world.invoke("news", {"topic": "AI", "query": "topic:ai ban"})).response()

    assert both.ephemeral
    assert both.content == (
        "The topic option says **AI** but the query says topic:**Computer Vision**: give one topic."
    )
    assert titles(same.embeds) == NEWEST_AI


async def test_invalid_syntax_gets_a_one_line_private_explanation_with_an_example(
    world: World,
) -> None:
    reply = await (await world.invoke("news", {"query": '"facial recognition'})).response()

    assert reply.ephemeral
    assert reply.embeds == []
    assert reply.content == 'A quote is never closed, e.g. "facial recognition"'


@pytest.mark.parametrize(
    "text",
    [
        "facial\x00recognition",
        "\x00",
        '"facial',
        'ban "',
        "OR",
        "facial OR",
        "-",
        "ban -",
        "facial NEAR recognition",
        "NEAR(facial recognition)",
        "title:facial",
        "facial AND NOT ban",
        "*",
        "ban*",
        "^ban",
        "'; DROP TABLE stories; --",
        "\u202efacial\u200b",
        "topic:",
        "-facial",
    ],
)
async def test_hostile_queries_get_results_or_a_one_line_explanation(
    world: World, text: str
) -> None:
    reply = await (await world.invoke("news", {"query": text})).response()

    # The world fixture fails the test on any ERROR log: an internal error is logged.
    if reply.embeds:
        assert not reply.ephemeral
        assert reply.content.startswith(("Stories with", "Latest stories"))
    else:
        assert reply.ephemeral
        assert "\n" not in reply.content
        assert reply.content.startswith(("No stories match", "There is no topic")) or (
            ", e.g. " in reply.content
        )


async def test_the_longest_query_discord_lets_through_gets_an_answer(world: World) -> None:
    longest = ("ban " * MAX_QUERY_LENGTH)[:MAX_QUERY_LENGTH]

    reply = await (await world.invoke("news", {"query": longest})).response()
    with pytest.raises(ValueError, match="query"):
        await world.invoke("news", {"query": longest + "x"})

    assert reply.ephemeral
    assert reply.content.startswith("That search has too many words: at most 32")
