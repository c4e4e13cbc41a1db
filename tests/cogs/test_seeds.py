"""/seeds reload and /seeds status end to end: admins only, safe with broken files."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import World
from tests.discord_emulator import CommandNotAvailable


def field(embed: dict, prefix: str) -> dict:
    return next(f for f in embed["fields"] if f["name"].startswith(prefix))


async def test_admin_reload_answers_with_the_report(world: World) -> None:
    (world.seeds / "new.txt").write_text(
        '---\ntitle: "A new story"\npublishedDateTime: 2024-01-01T00:00:00Z\n'
        'webUrl: "https://new.example.com/a"\ntopics: [Robotics]\n---\n'
    )

    handle = await world.invoke("seeds", {}, member=world.admin, subcommand="reload")
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


async def test_member_without_permission_invoking_anyway_is_refused(world: World) -> None:
    (world.seeds / "new.txt").write_text(
        '---\ntitle: "Sneaky"\npublishedDateTime: 2024-01-01T00:00:00Z\n'
        'webUrl: "https://new.example.com/s"\n---\n'
    )

    handle = await world.invoke("seeds", {}, subcommand="reload", force=True)
    reply = await handle.response()

    assert reply.ephemeral
    assert reply.content == "You need the Manage Server permission to use this command."
    assert await world.store.story_count() == 5


async def test_dry_run_says_what_would_change_and_changes_nothing(world: World) -> None:
    (world.seeds / "001_8439fb071992beae.txt").unlink()

    handle = await world.invoke("seeds", {"dry_run": True}, member=world.admin, subcommand="reload")
    await handle.response()
    [report] = await handle.followups(1)

    [embed] = report.embeds
    assert "dry run" in embed["title"]
    assert "1 retired" in embed["description"]
    assert await world.store.story_count() == 5


async def test_broken_seed_during_reload_is_reported_and_its_story_kept(world: World) -> None:
    path = world.seeds / "001_8439fb071992beae.txt"
    path.write_text("---\ntitle: [unclosed\n---\n")

    handle = await world.invoke("seeds", {}, member=world.admin, subcommand="reload")
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


async def test_status_shows_count_folder_last_reload_and_rejections(world: World) -> None:
    (world.seeds / "bad.txt").write_text("no front matter here\n")
    await world.bot.reloader.reload()

    handle = await world.invoke("seeds", {}, member=world.admin, subcommand="status")
    reply = await handle.response()

    assert reply.ephemeral
    [embed] = reply.embeds
    assert field(embed, "Stories")["value"] == "5"
    assert str(world.seeds.resolve()) in field(embed, "Seed folder")["value"]
    assert "<t:" in field(embed, "Last reload")["value"]
    assert "no front matter" in field(embed, "Rejected files (1)")["value"]


async def test_slow_reload_is_deferred_within_discords_deadline(world: World) -> None:
    world.emu.limits.interaction_deadline = 0.5
    real_reload = world.bot.reloader.reload

    async def slow_reload(*, dry_run: bool = False):  # type: ignore[no-untyped-def]
        await asyncio.sleep(1.0)
        return await real_reload(dry_run=dry_run)

    world.bot.reloader.reload = slow_reload  # type: ignore[method-assign]

    handle = await world.invoke("seeds", {}, member=world.admin, subcommand="reload")
    deferred = await handle.response()
    [report] = await handle.followups(1, timeout=5)

    assert deferred.type == 5
    assert deferred.after < 0.5
    assert handle.rejected == []
    assert report.embeds[0]["title"] == "Seed reload"
