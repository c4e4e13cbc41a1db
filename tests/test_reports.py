"""A seed report in words, written once for the terminal and for Discord."""

from __future__ import annotations

import discord

from bot.cli.render import reload_text
from bot.embeds import reload_report_embed
from bot.models import Problem
from bot.reload import Duplicate, Rejection, ReloadReport, StoryChange
from bot.reports import describe_reload

EVERY_SECTION = ReloadReport(
    folder="/seeds",
    added=(StoryChange(1, "seeds/new.md", "A new story"),),
    updated=(StoryChange(2, "seeds/edited.md", "An edited story"),),
    unchanged=3,
    retired=(StoryChange(4, "seeds/gone.md"),),
    rejected=(
        Rejection("seeds/broken.md", "webUrl: not a web address", kept_last_good=True),
        Rejection("seeds/empty.md", "title: missing"),
    ),
    duplicates=(Duplicate("seeds/copy.md", "seeds/new.md"),),
    warnings=(("seeds/new.md", Problem("topics", "dropped an empty topic")),),
)


def test_a_reload_is_described_in_sections_in_a_fixed_order_and_empty_ones_left_out() -> None:
    described = describe_reload(ReloadReport(folder="/seeds", added=EVERY_SECTION.added), stored=1)

    assert described.counts == "1 added, 0 updated, 0 unchanged, 0 retired, 0 rejected"
    assert described.stored == "1 story stored"
    assert [(s.heading, s.label, s.lines) for s in described.sections] == [
        ("Added", "added", ("seeds/new.md: A new story",))
    ]


def test_a_dry_run_is_flagged_not_written_into_the_counts() -> None:
    described = describe_reload(ReloadReport(folder="/seeds", dry_run=True), stored=0)

    assert described.dry_run
    assert described.counts.startswith("0 added")


def test_the_terminal_and_discord_word_every_change_of_a_reload_the_same() -> None:
    text = reload_text(EVERY_SECTION, 5)
    embed = reload_report_embed(EVERY_SECTION, stored=5)

    # Each embed field lists "• <line>"; the terminal prints "  <label> <line>" for each.
    in_discord = {
        discord.utils.remove_markdown(line.removeprefix("• "))
        for field in embed.fields
        for line in str(field.value).split("\n")
    }
    in_terminal = {line.split(None, 1)[1] for line in text[1:]}
    assert in_terminal == in_discord
    assert "seeds/broken.md: webUrl: not a web address (last good version kept)" in in_terminal
    assert "seeds/copy.md: same story as seeds/new.md, which is kept" in in_terminal
    assert "seeds/gone.md" in in_terminal
    assert text[0].endswith("; 5 stories stored.")
    assert embed.description is not None and embed.description.endswith(". 5 stories stored.")


def test_the_terminal_report_counts_one_story_in_the_singular() -> None:
    [summary] = reload_text(ReloadReport(folder="/seeds", unchanged=1), 1)

    assert summary == (
        "Loaded /seeds: 0 added, 0 updated, 1 unchanged, 0 retired, 0 rejected; 1 story stored."
    )
