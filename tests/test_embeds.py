"""Embeds for stories, topics and seed reports: what they show, and that Discord accepts them."""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import replace
from datetime import UTC, datetime

import discord
import pytest

from bot.discord_limits import CONTENT_LIMIT
from bot.embeds import (
    digest_messages,
    news_heading,
    pack,
    page_starts,
    reload_report_embed,
    seed_status_embed,
    shorten,
    story_embed,
    story_page,
    topics_embed,
)
from bot.models import Image, Problem, Provider, Related, Story, TopicCount
from bot.reload import Duplicate, Rejection, ReloadReport, StoryChange
from bot.search_query import MATCH_COUNT_CAP, Order, Query, Term, parse_query
from bot.store import SeedStatus
from tests.factories import make_related, make_story

ELLIPSIS = "…"


def assert_within_discord_limits(embed: discord.Embed) -> None:
    """Every per-embed limit Discord enforces, and the 6,000 characters of a whole message."""
    assert len(embed.title or "") <= 256
    assert len(embed.description or "") <= 4096
    assert len(embed.fields) <= 25
    for field in embed.fields:
        assert 0 < len(field.name or "") <= 256
        assert 0 < len(field.value or "") <= 1024
    assert len(embed.footer.text or "") <= 2048
    assert len(embed.author.name or "") <= 256
    assert len(embed) <= 6000


def field_named(embed: discord.Embed, prefix: str) -> discord.embeds.EmbedProxy:
    matches = [field for field in embed.fields if (field.name or "").startswith(prefix)]
    assert len(matches) == 1, [field.name for field in embed.fields]
    return matches[0]


# A Markdown link whose text has no bare square bracket and whose target has no bare
# parenthesis or whitespace, optionally followed by the outlet.
_LINK_LINE = re.compile(r"\[(?P<text>[^\[\]]*)\]\((?P<target>[^()\s]+)\)(?: — (?P<outlet>.+))?")


def assert_links_intact(value: str) -> list[re.Match[str]]:
    matches = []
    for line in value.split("\n"):
        match = _LINK_LINE.fullmatch(line)
        assert match is not None, line
        # An odd run of backslashes at the end of the text would escape the closing "]".
        trailing = len(match["text"]) - len(match["text"].rstrip("\\"))
        assert trailing % 2 == 0, line
        matches.append(match)
    return matches


# shorten


def test_short_text_is_unchanged() -> None:
    assert shorten("Short and sweet", 100) == "Short and sweet"


def test_text_of_exactly_the_limit_is_unchanged() -> None:
    text = "x" * 50
    assert shorten(text, 50) == text


def test_long_text_is_cut_on_a_word_boundary_with_an_ellipsis() -> None:
    text = " ".join(f"word{i}" for i in range(100))
    cut = shorten(text, 50)
    assert len(cut) <= 50
    assert cut.endswith(ELLIPSIS)
    kept = cut.removesuffix(ELLIPSIS)
    # Only whole words are kept: the text continues with a space where the cut was made.
    assert text.startswith(kept)
    assert text[len(kept)] == " "
    assert len(kept) > 25


def test_cut_does_not_leave_punctuation_before_the_ellipsis() -> None:
    assert shorten("one two three, four five", 16) == "one two three…"


def test_a_single_huge_word_is_cut_hard_at_the_limit() -> None:
    cut = shorten("x" * 300, 100)
    assert cut == "x" * 99 + ELLIPSIS
    assert len(cut) == 100


def test_a_word_boundary_in_the_first_half_only_is_ignored() -> None:
    # Cutting at the only space would throw away almost all the room.
    cut = shorten("a " + "x" * 200, 100)
    assert len(cut) == 100
    assert cut == ("a " + "x" * 97) + ELLIPSIS


@pytest.mark.parametrize("limit", [1, 2, 3, 10, 99, 256, 1024])
def test_shortened_text_never_exceeds_the_limit(limit: int) -> None:
    rng = random.Random(limit)
    for _ in range(50):
        words = ["".join("ab, -"[rng.randrange(5)] for _ in range(rng.randrange(1, 12)))]
        words += ["x" * rng.randrange(1, 30) for _ in range(rng.randrange(0, 80))]
        text = " ".join(words)
        cut = shorten(text, limit)
        assert len(cut) <= limit
        assert cut == text or cut.endswith(ELLIPSIS)


# story_embed


def test_story_embed_links_the_title_to_the_story() -> None:
    story = make_story("https://news.example.com/ai-wins", title="AI wins the cup")
    embed = story_embed(story)
    assert embed.title == "AI wins the cup"
    assert embed.url == story.url == "https://news.example.com/ai-wins"


def test_story_embed_shows_the_excerpt_as_description() -> None:
    embed = story_embed(make_story(excerpt="The machines took the trophy home."))
    assert embed.description == "The machines took the trophy home."


def test_story_embed_shows_a_web_lead_image() -> None:
    story = make_story(
        images=(
            Image("https://cdn.example.com/lead.jpg", 1200, 630),
            Image("https://cdn.example.com/second.jpg"),
        )
    )
    assert story_embed(story).image.url == "https://cdn.example.com/lead.jpg"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://cdn.example.com/lead.jpg",
        "javascript:alert(1)",
        "data:image/png;base64,AAAA",
        "/relative/lead.jpg",
        "attachment://lead.jpg",
    ],
)
def test_story_embed_leaves_out_a_lead_image_that_is_not_http(url: str) -> None:
    # Parsing drops such images; a story built directly can still carry one.
    story = replace(make_story(), images=(Image(url),))
    assert story_embed(story).image.url is None


def test_story_embed_shows_the_provider_as_author_linked_to_its_domain() -> None:
    embed = story_embed(make_story(provider=Provider("The Example Times", "example.com")))
    assert embed.author.name == "The Example Times"
    assert embed.author.url == "https://example.com"


@pytest.mark.parametrize("domain", ["", "not a domain", "evil.com/@x y"])
def test_story_embed_author_has_no_link_without_a_usable_domain(domain: str) -> None:
    embed = story_embed(make_story(provider=Provider("Some Outlet", domain)))
    assert embed.author.name == "Some Outlet"
    assert embed.author.url is None


def test_story_embed_timestamp_is_the_publication_time() -> None:
    published = datetime(2024, 5, 17, 8, 30, tzinfo=UTC)
    assert story_embed(make_story(published_at=published)).timestamp == published


def test_story_embed_lists_the_topics_in_a_field() -> None:
    embed = story_embed(make_story(topics=("AI", "Sport")))
    topics = field_named(embed, "Topics")
    assert "AI" in topics.value
    assert "Sport" in topics.value


def test_story_embed_shows_at_most_three_other_outlets_as_markdown_links() -> None:
    related = tuple(
        make_related(
            f"https://outlet{i}.example.org/story",
            title=f"Coverage {i}",
            provider=Provider(f"Outlet {i}", f"outlet{i}.example.org"),
        )
        for i in range(5)
    )
    embed = story_embed(make_story(related=related))
    coverage = field_named(embed, "Also covered by")
    assert coverage.value.split("\n") == [
        f"[Coverage {i}](https://outlet{i}.example.org/story) — Outlet {i}" for i in range(3)
    ]


def test_other_coverage_without_a_provider_is_a_bare_link() -> None:
    related = (make_related("https://other.example.org/a", title="Elsewhere"),)
    embed = story_embed(make_story(related=related))
    assert field_named(embed, "Also covered by").value == "[Elsewhere](https://other.example.org/a)"


def test_brackets_in_titles_and_parentheses_or_spaces_in_urls_keep_links_intact() -> None:
    related = (
        Related(
            title="[LIVE] Markets ]rally[ on [news]",
            url="https://example.org/wiki/Rally_(finance)",
            story_id=1,
            provider=Provider("Wiki"),
        ),
        Related(
            title="Path with spaces",
            url="https://example.org/a file (final).html",
            story_id=2,
        ),
        Related(title="Windows path C:\\", url="https://example.org/c", story_id=3),
    )
    embed = story_embed(make_story(related=related))
    matches = assert_links_intact(field_named(embed, "Also covered by").value)
    assert len(matches) == 3
    assert matches[0]["target"] == "https://example.org/wiki/Rally_%28finance%29"
    assert matches[0]["outlet"] == "Wiki"
    assert matches[1]["target"] == "https://example.org/a%20file%20%28final%29.html"
    assert "LIVE" in matches[0]["text"] and "news" in matches[0]["text"]


def test_a_url_ending_in_a_backslash_inside_a_related_title_keeps_the_link_intact() -> None:
    related = (
        Related(title="Mirror at https://mirror.example.net/a\\", url="https://x.org/", story_id=1),
    )
    embed = story_embed(make_story(related=related))
    assert_links_intact(field_named(embed, "Also covered by").value)


def test_a_huge_story_stays_within_every_discord_limit() -> None:
    related = tuple(
        Related(
            title=f"{i} " + "Very long related headline " * 20,
            url=f"https://outlet{i}.example.org/" + "path/" * 40,
            story_id=i,
            provider=Provider("Outlet " * 30),
        )
        for i in range(40)
    )
    story = make_story(
        title="Headline " * 34,  # 306 characters
        excerpt=("An excerpt that goes on and on. " * 125)[:4000],
        provider=Provider("P" * 300, "example.com"),
        topics=tuple(f"Topic {i} with a long name" for i in range(200)),
        related=related,
    )
    embed = story_embed(story)
    assert_within_discord_limits(embed)
    assert len(embed) <= 6000
    assert embed.title.endswith(ELLIPSIS)
    assert embed.description.endswith(ELLIPSIS)
    assert_links_intact(field_named(embed, "Also covered by").value)


def test_a_bare_story_renders_without_author_image_topics_or_coverage() -> None:
    story = make_story(provider=None, images=(), topics=(), related=())
    embed = story_embed(story)
    assert embed.title == story.title
    assert embed.description == story.excerpt
    assert embed.author.name is None
    assert embed.image.url is None
    assert embed.fields == []
    assert_within_discord_limits(embed)


def test_an_empty_excerpt_gives_no_description() -> None:
    assert story_embed(make_story(excerpt="")).description is None


def test_mentions_in_a_title_stay_plain_text() -> None:
    title = "@everyone look: <@&123> and <@456> won"
    related = (make_related("https://other.example.org/a", title="@here <@&123>"),)
    embed = story_embed(make_story(title=title, related=related))
    assert embed.title == title
    assert "@here <@&123>" in field_named(embed, "Also covered by").value


# pack


def _embed_of_length(length: int) -> discord.Embed:
    title = "t" * min(length, 256)
    return discord.Embed(title=title, description="d" * (length - len(title)) or None)


def test_pack_keeps_every_embed_in_order_within_the_message_limits() -> None:
    rng = random.Random(20240601)
    for _ in range(300):
        sizes = [
            rng.choice([rng.randrange(1, 200), rng.randrange(1, 6001), 6000])
            for _ in range(rng.randrange(0, 45))
        ]
        embeds = [_embed_of_length(size) for size in sizes]
        messages = pack(embeds)

        flattened = [embed for message in messages for embed in message]
        assert len(flattened) == len(embeds)
        assert all(a is b for a, b in zip(flattened, embeds, strict=True))
        for message in messages:
            assert 1 <= len(message) <= 10
            assert sum(len(embed) for embed in message) <= 6000
        # A message is only closed when the next embed does not fit it.
        for message, following in itertools.pairwise(messages):
            size = sum(len(embed) for embed in message)
            assert len(message) == 10 or size + len(following[0]) > 6000


def test_pack_of_nothing_is_no_messages() -> None:
    assert pack([]) == []


def test_pack_accepts_any_iterable() -> None:
    messages = pack(_embed_of_length(10) for _ in range(25))
    assert [len(message) for message in messages] == [10, 10, 5]


# story_page


def test_story_page_returns_as_many_stories_as_fit_one_message() -> None:
    stories = [make_story(f"https://news.example.com/{i}", title=f"Story {i}") for i in range(3)]
    embeds, count = story_page(stories)
    assert count == 3
    assert [embed.title for embed in embeds] == ["Story 0", "Story 1", "Story 2"]


def test_story_page_stops_at_ten_embeds() -> None:
    stories = [make_story(f"https://news.example.com/{i}", title=f"Story {i}") for i in range(14)]
    embeds, count = story_page(stories)
    assert count == len(embeds) == 10
    assert [embed.title for embed in embeds] == [f"Story {i}" for i in range(10)]


def test_story_page_of_no_stories_is_empty() -> None:
    assert story_page([]) == ([], 0)


def test_story_page_of_huge_stories_fits_fewer_but_at_least_one() -> None:
    stories = [
        make_story(
            f"https://news.example.com/{i}",
            title=f"Story {i} " + "long " * 60,
            excerpt="Lots to say about it. " * 200,
        )
        for i in range(10)
    ]
    embeds, count = story_page(stories)
    assert 1 <= count < 10
    assert count == len(embeds)
    assert sum(len(embed) for embed in embeds) <= 6000
    assert embeds[0].title.startswith("Story 0 ")


def test_page_starts_follow_pages_of_per_page_stories() -> None:
    stories = [make_story(f"https://news.example.com/{i}", title=f"Story {i}") for i in range(7)]
    assert page_starts(stories, 3) == [0, 3, 6]
    assert page_starts(stories[:6], 3) == [0, 3]
    assert page_starts([], 3) == [0]


def test_page_starts_follow_pages_shortened_to_fit_a_message() -> None:
    def story(i: int, excerpt_words: int) -> Story:
        return make_story(
            f"https://news.example.com/{i}", title=f"Story {i}", excerpt="word " * excerpt_words
        )

    # Two stories of ~4,000 characters cannot share a message; short ones fill a page.
    stories = [story(0, 800), story(1, 800), story(2, 10), story(3, 10), story(4, 10)]

    assert page_starts(stories, 3) == [0, 1, 4]


# topics_embed


def test_topics_embed_lists_names_with_story_counts() -> None:
    embed = topics_embed([TopicCount("AI", 1), TopicCount("Climate", 12), TopicCount("Empty", 0)])
    assert embed.description.split("\n") == [
        "**AI** — 1 story",
        "**Climate** — 12 stories",
        "**Empty** — 0 stories",
    ]
    assert_within_discord_limits(embed)


def test_topics_embed_escapes_markdown_in_topic_names() -> None:
    embed = topics_embed([TopicCount("C*_plus_*", 2), TopicCount("`code`", 1)])
    lines = embed.description.split("\n")
    assert lines[0] == "**C\\*\\_plus\\_\\*** — 2 stories"
    assert lines[1] == "**\\`code\\`** — 1 story"


def test_thousands_of_topics_are_cut_with_how_many_more_there_are() -> None:
    topics = [TopicCount(f"Topic number {i:04d}", i + 1) for i in range(2000)]
    embed = topics_embed(topics)
    assert_within_discord_limits(embed)
    lines = embed.description.split("\n")
    shown = lines[:-1]
    assert shown == [
        f"**{topic.name}** — {topic.count} stor{'y' if topic.count == 1 else 'ies'}"
        for topic in topics[: len(shown)]
    ]
    assert lines[-1] == f"… and {2000 - len(shown)} more"
    assert len(shown) > 50


def test_no_topics_says_there_are_no_stories_yet() -> None:
    embed = topics_embed([])
    assert embed.description == "No stories yet: newsbot's operator loads them with /seeds reload."
    assert embed.fields == []


# reload_report_embed


def _change(i: int, title: str = "") -> StoryChange:
    return StoryChange(i, f"seeds/story-{i}.md", title or f"Story {i}")


def test_a_dry_run_report_says_nothing_changed() -> None:
    report = ReloadReport(folder="/seeds", dry_run=True, added=(_change(1),))
    embed = reload_report_embed(report, stored=0)
    assert "nothing changed" in embed.title
    assert "dry run" not in embed.description
    assert embed.description.startswith("1 added, 0 updated, 0 unchanged, 0 retired, 0 rejected")
    assert embed.description.endswith("0 stories stored.")


def test_a_real_reload_report_does_not_claim_to_be_a_dry_run() -> None:
    report = ReloadReport(folder="/seeds", added=(_change(1),), unchanged=4)
    embed = reload_report_embed(report, stored=1)
    assert embed.title == "Seed reload"
    assert (
        embed.description
        == "1 added, 0 updated, 4 unchanged, 0 retired, 0 rejected. 1 story stored."
    )


def test_an_empty_report_has_no_sections() -> None:
    embed = reload_report_embed(ReloadReport(folder="/seeds", unchanged=3), stored=3)
    assert embed.fields == []
    assert "3 stories stored" in embed.description


def test_report_sections_appear_only_when_not_empty_with_their_counts() -> None:
    report = ReloadReport(
        folder="/seeds",
        added=(_change(1), _change(2)),
        retired=(StoryChange(3, "seeds/old.md"),),
        rejected=(Rejection("seeds/bad.md", "title: missing"),),
        warnings=(("seeds/story-1.md", Problem("topics", "dropped an empty topic")),),
    )
    embed = reload_report_embed(report, stored=2)
    assert [field.name for field in embed.fields] == [
        "Added (2)",
        "Retired (1)",
        "Rejected (1)",
        "Warnings (1)",
    ]
    assert field_named(embed, "Added").value == (
        "• seeds/story-1.md: Story 1\n• seeds/story-2.md: Story 2"
    )
    assert field_named(embed, "Retired").value == "• seeds/old.md"
    assert field_named(embed, "Warnings").value == (
        "• seeds/story-1.md: topics: dropped an empty topic"
    )


def test_report_lists_updates_and_duplicates() -> None:
    report = ReloadReport(
        folder="/seeds",
        updated=(_change(1, "New title"),),
        duplicates=(Duplicate("seeds/copy.md", "seeds/story-1.md"),),
    )
    embed = reload_report_embed(report, stored=1)
    assert [field.name for field in embed.fields] == ["Updated (1)", "Duplicates (1)"]
    assert "New title" in field_named(embed, "Updated").value
    assert "same story as seeds/story-1.md" in field_named(embed, "Duplicates").value


def test_a_rejected_file_whose_last_good_version_is_kept_says_so() -> None:
    report = ReloadReport(
        folder="/seeds",
        rejected=(
            Rejection("seeds/broken.md", "webUrl: not a web address", kept_last_good=True),
            Rejection("seeds/new.md", "title: missing"),
        ),
    )
    lines = field_named(reload_report_embed(report, stored=1), "Rejected (2)").value.split("\n")
    assert lines[0].startswith("• seeds/broken.md: webUrl: not a web address")
    assert lines[0].endswith("(last good version kept)")
    assert "last good version kept" not in lines[1]


def test_thousands_of_rejected_files_are_cut_to_fit_with_how_many_more() -> None:
    rejected = tuple(
        Rejection(f"seeds/folder/story-{i:05d}.md", "title: missing; webUrl: missing", i % 2 == 0)
        for i in range(5000)
    )
    embed = reload_report_embed(ReloadReport(folder="/seeds", rejected=rejected), stored=0)
    assert_within_discord_limits(embed)
    listing = field_named(embed, "Rejected (5000)").value.split("\n")
    shown = listing[:-1]
    assert all(line.startswith("• seeds/folder/story-") for line in shown)
    assert listing[-1] == f"… and {5000 - len(shown)} more"
    assert "5000 rejected" in embed.description


def test_a_report_with_every_section_full_still_fits_one_message() -> None:
    n = 5000
    report = ReloadReport(
        folder="/seeds",
        added=tuple(_change(i) for i in range(n)),
        updated=tuple(_change(i) for i in range(n)),
        retired=tuple(StoryChange(i, f"old/story-{i}.md") for i in range(n)),
        rejected=tuple(Rejection(f"seeds/bad-{i}.md", "title: missing") for i in range(n)),
        duplicates=tuple(Duplicate(f"seeds/copy-{i}.md", f"seeds/story-{i}.md") for i in range(n)),
        warnings=tuple((f"seeds/story-{i}.md", Problem("topics", "empty")) for i in range(n)),
    )
    embed = reload_report_embed(report, stored=n)
    assert_within_discord_limits(embed)
    # The summary is what matters most: it must not be the part that gets cut away.
    assert embed.description.startswith(f"{n} added, {n} updated")


# seed_status_embed


def test_seed_status_shows_stories_folder_and_that_no_reload_happened() -> None:
    status = SeedStatus(reloaded_at=None, folder="/srv/seeds")
    embed = seed_status_embed(status, stored=42, folder="/srv/seeds")
    assert field_named(embed, "Stories").value == "42"
    assert field_named(embed, "Seed folder").value == "`/srv/seeds`"
    assert field_named(embed, "Last reload").value == "never"
    assert field_named(embed, "Rejected files (0)").value == "None"
    assert_within_discord_limits(embed)


def test_seed_status_shows_when_the_last_reload_was() -> None:
    moment = datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
    status = SeedStatus(reloaded_at=moment, folder="/srv/seeds")
    value = field_named(
        seed_status_embed(status, stored=1, folder="/srv/seeds"), "Last reload"
    ).value
    stamp = int(moment.timestamp())
    assert f"<t:{stamp}:F>" in value
    assert f"<t:{stamp}:R>" in value


def test_seed_status_lists_rejected_files() -> None:
    status = SeedStatus(
        reloaded_at=None,
        folder="/srv/seeds",
        rejected=(("a.md", "title: missing", True), ("b.md", "not YAML", False)),
    )
    embed = seed_status_embed(status, stored=1, folder="/srv/seeds")
    assert field_named(embed, "Rejected files (2)").value == (
        "• a.md: title: missing (last good version kept)\n• b.md: not YAML"
    )


def test_seed_status_with_thousands_of_rejected_files_stays_within_limits() -> None:
    rejected = tuple((f"seeds/story-{i:05d}.md", "title: missing", False) for i in range(5000))
    status = SeedStatus(reloaded_at=None, folder="/srv/seeds", rejected=rejected)
    embed = seed_status_embed(status, stored=0, folder="/srv/" + "deep/" * 400)
    assert_within_discord_limits(embed)
    assert field_named(embed, "Rejected files (5000)").value.split("\n")[-1].startswith("… and ")


def test_a_related_link_too_long_for_the_field_is_skipped_not_the_ones_after_it() -> None:
    story = make_story(
        related=(
            make_related("https://long.example.com/" + "a" * 1100, title="Too long"),
            make_related("https://short.example.com/b", title="Short one"),
        )
    )

    embed = story_embed(story)

    [coverage] = [f for f in embed.fields if f.name == "Also covered by"]
    assert coverage.value is not None
    assert "Short one" in coverage.value
    assert "Too long" not in coverage.value


# --- digests ---------------------------------------------------------------------------------


def test_digest_header_counts_the_story_embeds_not_the_coverage_under_them() -> None:
    lead, other, alone = (make_story(f"https://news.example.com/{n}") for n in "abc")

    [(embeds, delivered)] = digest_messages(
        datetime(2024, 3, 1, tzinfo=UTC).date(), ["AI"], [(lead, [other]), (alone, [])]
    )

    header, *stories = embeds
    assert len(stories) == 2
    assert header.description == "2 stories on AI."
    # The clustered story is delivered with its item all the same.
    assert set(delivered) == {lead.id, other.id, alone.id}


def test_a_posted_digest_marks_each_message_and_still_fits_discords_limits() -> None:
    stories = [
        (make_story(f"https://news.example.com/{n}", excerpt="word " * 800), []) for n in range(12)
    ]

    messages = digest_messages(datetime(2024, 3, 1, tzinfo=UTC).date(), [], stories, "0a1b2c3d")

    assert len(messages) > 2
    total = len(messages)
    assert [embeds[-1].footer.text for embeds, _ in messages] == [
        f"Part {n} of {total} · digest 0a1b2c3d" for n in range(1, total + 1)
    ]
    for embeds, _ in messages:
        assert sum(len(embed) for embed in embeds) <= 6000 and len(embeds) <= 10
        # Only the last embed carries the marker: the others are the stories as they are.
        assert all(embed.footer.text is None for embed in embeds[:-1])


def test_a_one_message_digest_is_marked_without_a_part_number() -> None:
    [(embeds, _)] = digest_messages(
        datetime(2024, 3, 1, tzinfo=UTC).date(), [], [(make_story("https://a.example/1"), [])], "ff"
    )

    assert embeds[-1].footer.text == "digest ff"


def test_a_rendered_digest_survives_the_trip_through_the_ledger_unchanged() -> None:
    # The ledger keeps each message's embeds as dicts and sends them back as Embeds.
    story = make_story("https://news.example.com/a", excerpt="Ünïcode “quotes” & <tags>")
    [(embeds, _)] = digest_messages(
        datetime(2024, 3, 1, tzinfo=UTC).date(), ["AI"], [(story, [])], "ab"
    )

    for embed in embeds:
        assert discord.Embed.from_dict(embed.to_dict()).to_dict() == embed.to_dict()


# --- the /news header -------------------------------------------------------------------------


def test_news_heading_of_a_search_says_how_it_was_read_on_which_topic_and_how_many() -> None:
    heading = news_heading(
        topic="Computer_Vision",
        query=parse_query("facial recognition"),
        asked=Order.RELEVANCE,
        matched=MATCH_COUNT_CAP + 1,
        page=3,
    )

    assert heading == (
        r"Stories on **Computer\_Vision** with *facial* and *recognition*, most relevant first"
        " · more than 100 matches · page 3"
    )


def test_news_heading_without_words_is_the_latest_stories() -> None:
    assert news_heading(topic="AI", query=None, page=2) == "Latest stories on **AI** · page 2"
    assert news_heading(topic=None, query=parse_query("topic:AI"), page=1) == (
        "Latest stories · page 1"
    )


def test_news_heading_says_relevance_needs_words() -> None:
    heading = news_heading(topic=None, query=None, asked=Order.RELEVANCE, page=1)

    assert heading == (
        "Latest stories, newest first: only a search with words can be sorted by relevance · page 1"
    )


def test_a_long_news_heading_fits_a_message_and_keeps_its_count_and_page() -> None:
    words = tuple((Term((f"{'w' * 60}{n:03}",)),) for n in range(40))

    heading = news_heading(topic="T" * 100, query=Query(words), matched=12, page=7)

    assert len(heading) <= CONTENT_LIMIT
    assert heading.endswith("… · 12 matches · page 7")


def test_news_heading_for_a_terminal_keeps_the_topic_as_named() -> None:
    heading = news_heading(
        topic="Computer_Vision", query=parse_query("drones"), matched=3, markdown=False
    )
    assert heading == "Stories on Computer_Vision with drones, newest first · 3 matches"
