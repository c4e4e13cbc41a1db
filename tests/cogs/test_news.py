"""/news and /topics end to end: the real discord.py client against the local emulator."""

from __future__ import annotations

import pytest

from tests.conftest import World
from tests.discord_emulator.state import MANAGE_GUILD
from tests.factories import SHIPPED_TITLES_NEWEST_FIRST

NEWEST_AI = SHIPPED_TITLES_NEWEST_FIRST


def titles(embeds: list[dict]) -> list[str]:
    return [embed["title"] for embed in embeds]


async def test_commands_are_registered_with_their_options_and_admin_hint(world: World) -> None:
    commands = {command["name"]: command for command in world.emu.registered_commands()}

    assert set(commands) == {"news", "topics", "seeds", "digest"}
    assert [option["name"] for option in commands["news"]["options"]] == [
        "topic",
        "query",
        "count",
        "private",
    ]
    assert commands["news"]["options"][0]["autocomplete"] is True
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
        ({"query": "a" * 201}, "query must be between 1 and 200 characters long."),
        ({"query": 42}, "query must be between 1 and 200 characters long."),
        ({"private": "yes"}, "private must be true or false."),
        ({"private": 1}, "private must be true or false."),
    ],
)
async def test_news_refuses_values_outside_its_options_privately(
    world: World, options: dict, rule: str
) -> None:
    reply = await (await world.invoke("news", {"topic": "AI", **options}, force=True)).response()

    assert reply.ephemeral
    assert reply.content == rule
    assert reply.embeds == []


@pytest.mark.parametrize("private", ["no", 0, None])
async def test_topics_refuses_a_private_that_is_not_true_or_false(world: World, private) -> None:  # type: ignore[no-untyped-def]
    reply = await (await world.invoke("topics", {"private": private}, force=True)).response()

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
