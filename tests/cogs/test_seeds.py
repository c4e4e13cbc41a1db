"""/seeds reload and /seeds status end to end: newsbot's operator only, safe with broken files."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from discord.utils import escape_markdown

from bot.checks import OPERATOR_REFUSAL
from tests.discord_emulator import CommandNotAvailable, DiscordEmulator, running_bot
from tests.discord_emulator.state import MANAGE_GUILD, Channel, Guild, Member
from tests.helpers import SHIPPED_SEEDS, World, build_newsbot
from tests.hostile_corpus import GOOD
from tests.odd_entries import write_odd_entries


def field(embed: dict, prefix: str) -> dict:
    return next(f for f in embed["fields"] if f["name"].startswith(prefix))


@pytest.fixture
def operator(world: World) -> Member:
    """The application's owner, managing the test server (Discord shows them /seeds there)."""
    return world.emu.add_member(
        world.guild, "operator", user=world.emu.owner_user, permissions=MANAGE_GUILD
    )


def write_story(folder: Path, name: str = "new.txt", title: str = "A new story") -> None:
    (folder / name).write_text(
        f'---\ntitle: "{title}"\npublishedDateTime: 2024-01-01T00:00:00Z\n'
        f'webUrl: "https://new.example.com/{name}"\ntopics: [Robotics]\n---\n'
    )


async def test_operator_reload_answers_with_the_report(world: World, operator: Member) -> None:
    write_story(world.seeds)

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    deferred = await handle.response()
    [report] = await handle.followups(1)

    assert deferred.type == 5  # deferred: a large reload may take longer than 3 s
    assert report.ephemeral
    [embed] = report.embeds
    assert embed["title"] == "Seed reload"
    assert "1 added" in embed["description"]
    assert "6 stories stored" in embed["description"]
    assert "new.txt: A new story" in field(embed, "Added (1)")["value"]
    assert await world.store.story_count() == 6


async def test_the_command_is_hidden_from_members_without_manage_server(world: World) -> None:
    with pytest.raises(CommandNotAvailable):
        await world.invoke("seeds", {}, subcommand="reload")


async def test_member_invoking_anyway_is_refused(world: World) -> None:
    write_story(world.seeds)

    handle = await world.invoke("seeds", {}, subcommand="reload", force=True)
    reply = await handle.response()

    assert reply.ephemeral
    assert reply.content == OPERATOR_REFUSAL
    assert await world.store.story_count() == 5


@pytest.mark.parametrize("subcommand", ["reload", "status"])
async def test_manager_of_another_server_is_refused(world: World, subcommand: str) -> None:
    elsewhere = world.emu.add_guild("Elsewhere")
    channel = world.emu.add_channel(elsewhere, "general")
    manager = world.emu.add_member(elsewhere, "manager", permissions=MANAGE_GUILD)
    write_story(world.seeds)

    handle = await world.emu.invoke(elsewhere, channel, manager, "seeds", {}, subcommand=subcommand)
    reply = await handle.response()

    assert reply.ephemeral
    assert reply.content == OPERATOR_REFUSAL
    assert reply.embeds == []  # nothing about the host, its folder or its files
    assert await world.store.story_count() == 5


async def test_manager_of_a_server_the_bot_serves_is_refused_too(world: World) -> None:
    handle = await world.invoke("seeds", {}, member=world.admin, subcommand="status")

    assert (await handle.response()).content == OPERATOR_REFUSAL


async def test_team_developers_may_use_seeds_but_read_only_members_may_not(world: World) -> None:
    emu = world.emu
    developer, viewer = emu.add_user("dev"), emu.add_user("viewer")
    emu.set_team("Newsroom", [(developer, "developer"), (viewer, "read_only")])
    as_developer = emu.add_member(world.guild, "dev", user=developer, permissions=MANAGE_GUILD)
    as_viewer = emu.add_member(world.guild, "viewer", user=viewer, permissions=MANAGE_GUILD)

    allowed = await (
        await world.invoke("seeds", {}, member=as_developer, subcommand="status")
    ).response()
    refused = await (
        await world.invoke("seeds", {}, member=as_viewer, subcommand="status")
    ).response()

    assert allowed.embeds[0]["title"] == "Seeds"
    assert refused.content == OPERATOR_REFUSAL


async def test_seed_folder_with_odd_entries_still_loads_its_good_files(
    world: World, operator: Member
) -> None:
    odd = write_odd_entries(world.seeds, GOOD)
    (world.seeds / "good.txt").write_text(GOOD)

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    await handle.response()
    [report] = await handle.followups(1)

    [embed] = report.embeds
    assert "1 added" in embed["description"]
    assert f"{len(odd)} rejected" in embed["description"]
    rejected = field(embed, f"Rejected ({len(odd)})")["value"]
    for name, reason in odd.items():
        assert f"• {escape_markdown(name)}: {reason}" in rejected
    assert "• caf\\\\xe9.txt: file name is not valid UTF-8" in rejected
    assert "• etc: symlink points outside the seed folder" in rejected
    assert await world.store.story_count() == 6


async def test_missing_seed_folder_gets_its_own_answer_and_one_warning(
    world: World, operator: Member, caplog: pytest.LogCaptureFixture
) -> None:
    shutil.rmtree(world.seeds)
    caplog.set_level(logging.WARNING, logger="bot")

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    await handle.response()
    [answer] = await handle.followups(1)

    assert answer.ephemeral
    assert answer.content.startswith(f"The seed folder is missing: `{world.seeds}`.")
    assert "Sorry" not in answer.content
    warnings = [r for r in caplog.records if r.name.startswith("bot")]
    assert [(r.levelname, r.name) for r in warnings] == [("WARNING", "bot.cogs.seeds")]
    assert str(world.seeds) in warnings[0].getMessage()
    assert await world.store.story_count() == 5


async def test_seed_folder_that_is_a_file_is_explained_to_the_operator(
    world: World, operator: Member
) -> None:
    shutil.rmtree(world.seeds)
    world.seeds.write_text("not a folder")

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    await handle.response()
    [answer] = await handle.followups(1)

    assert answer.content.startswith(f"The seed folder `{world.seeds}` is not a folder.")


# --- a configured operator server -------------------------------------------------------------


@dataclass
class OperatorServer:
    emu: DiscordEmulator
    home: Guild
    home_channel: Channel
    home_manager: Member
    home_member: Member
    other: Guild
    other_channel: Channel
    other_manager: Member


@pytest.fixture
async def operator_server(
    discord_emulator: DiscordEmulator, tmp_path: Path
) -> AsyncIterator[OperatorServer]:
    """newsbot configured with `discord.operator_guild` set to the "Home" server."""
    emu = discord_emulator
    home, other = emu.add_guild("Home"), emu.add_guild("Other")
    world = OperatorServer(
        emu,
        home,
        emu.add_channel(home, "ops"),
        emu.add_member(home, "ops-manager", permissions=MANAGE_GUILD),
        emu.add_member(home, "ops-member"),
        other,
        emu.add_channel(other, "general"),
        emu.add_member(other, "other-manager", permissions=MANAGE_GUILD),
    )
    seeds = tmp_path / "seeds"
    shutil.copytree(SHIPPED_SEEDS, seeds)
    bot = build_newsbot(tmp_path, seeds, reload_seeds_at_start=False, operator_guild=home.id)
    async with running_bot(bot, emu, loggers=("discord", "bot")):
        yield world


async def test_managers_of_the_operator_server_may_use_seeds(
    operator_server: OperatorServer,
) -> None:
    world = operator_server

    handle = await world.emu.invoke(
        world.home, world.home_channel, world.home_manager, "seeds", {}, subcommand="reload"
    )
    await handle.response()
    [report] = await handle.followups(1)

    assert "5 added" in report.embeds[0]["description"]


async def test_only_managers_of_the_operator_server_may_use_seeds(
    operator_server: OperatorServer,
) -> None:
    world = operator_server

    member = await world.emu.invoke(
        world.home,
        world.home_channel,
        world.home_member,
        "seeds",
        {},
        subcommand="status",
        force=True,
    )
    manager = await world.emu.invoke(
        world.other, world.other_channel, world.other_manager, "seeds", {}, subcommand="status"
    )

    assert (await member.response()).content == OPERATOR_REFUSAL
    assert (await manager.response()).content == OPERATOR_REFUSAL


async def test_dry_run_says_what_would_change_and_changes_nothing(
    world: World, operator: Member
) -> None:
    (world.seeds / "001_8439fb071992beae.txt").unlink()

    handle = await world.invoke("seeds", {"dry_run": True}, member=operator, subcommand="reload")
    await handle.response()
    [report] = await handle.followups(1)

    [embed] = report.embeds
    assert "dry run" in embed["title"]
    assert "1 retired" in embed["description"]
    assert await world.store.story_count() == 5


async def test_broken_seed_during_reload_is_reported_and_its_story_kept(
    world: World, operator: Member
) -> None:
    path = world.seeds / "001_8439fb071992beae.txt"
    path.write_text("---\ntitle: [unclosed\n---\n")

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    await handle.response()
    [report] = await handle.followups(1)

    [embed] = report.embeds
    rejected = field(embed, "Rejected (1)")["value"]
    assert "001\\_8439fb071992beae.txt" in rejected or "001_8439fb071992beae.txt" in rejected
    assert "invalid YAML" in rejected
    assert "last good version kept" in rejected
    news = await (await world.invoke("news", {"query": "calls for a ban"})).response()
    assert [e["title"] for e in news.embeds] == [
        "European Parliament calls for a ban on facial recognition"
    ]


async def test_status_shows_count_folder_last_reload_and_rejections(
    world: World, operator: Member
) -> None:
    (world.seeds / "bad.txt").write_text("no front matter here\n")
    await world.bot.reloader.reload()

    handle = await world.invoke("seeds", {}, member=operator, subcommand="status")
    reply = await handle.response()

    assert reply.ephemeral
    [embed] = reply.embeds
    assert field(embed, "Stories")["value"] == "5"
    assert str(world.seeds.resolve()) in field(embed, "Seed folder")["value"]
    assert "<t:" in field(embed, "Last reload")["value"]
    assert "no front matter" in field(embed, "Rejected files (1)")["value"]


async def test_slow_reload_is_deferred_within_discords_deadline(
    world: World, operator: Member
) -> None:
    world.emu.limits.interaction_deadline = 0.5
    real_reload = world.bot.reloader.reload

    async def slow_reload(*, dry_run: bool = False):  # type: ignore[no-untyped-def]
        await asyncio.sleep(1.0)
        return await real_reload(dry_run=dry_run)

    world.bot.reloader.reload = slow_reload  # type: ignore[method-assign]

    handle = await world.invoke("seeds", {}, member=operator, subcommand="reload")
    deferred = await handle.response()
    [report] = await handle.followups(1, timeout=5)

    assert deferred.type == 5
    assert deferred.after < 0.5
    assert handle.rejected == []
    assert report.embeds[0]["title"] == "Seed reload"
