"""Feeds to seed files (bot.feeds): every file written loads through newsbot's own seed parser
as the story the entry describes, and the same entry always makes the same file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.discord_limits import DESCRIPTION_LIMIT
from bot.feeds.convert import FeedSource, convert_feed, parse_feed, seed_file
from bot.feeds.write import Written, write_seed
from bot.models import Story
from bot.seeds import parse_seed, read_seed

FEEDS = Path(__file__).resolve().parent / "feeds"
SOURCE = FeedSource(name="Test Outlet", domain="outlet.example", home="https://outlet.example/")


def entry(**fields: Any) -> dict[str, Any]:
    """An entry as feedparser gives it: a dated story with a title and a link."""
    base: dict[str, Any] = {
        "title": "A story",
        "link": "https://outlet.example/a-story",
        "published_parsed": datetime(2026, 11, 2, 10, 0, tzinfo=UTC).timetuple(),
    }
    return base | fields


def loaded(data: bytes) -> Story:
    result = parse_seed(data, "imported.txt")
    assert result.ok, result.errors
    assert result.warnings == ()
    assert result.story is not None
    return result.story


def test_rss_feed_entries_load_as_their_stories() -> None:
    conversion = convert_feed(parse_feed((FEEDS / "rss.xml").read_bytes()))

    stories = {story.title: story for story in (loaded(seed.data) for seed in conversion.seeds)}
    assert set(stories) == {
        "Lighthouse keepers vote to repaint the tower",
        "Ferry timetable – winter changes",
    }
    tower = stories["Lighthouse keepers vote to repaint the tower"]
    # Tags gone, entities decoded, whitespace collapsed, a <br> a space, the script dropped.
    assert tower.excerpt == (
        "The keepers chose red & white stripes, ending a debate that ran for three winters."
    )
    assert tower.published_at == datetime(2026, 11, 28, 8, 30, tzinfo=UTC)  # +0100 in the feed
    assert tower.url == "https://www.harbour-gazette.example/2026/11/lighthouse-paint"
    assert tower.provider is not None
    assert (tower.provider.name, tower.provider.domain) == (
        "Harbour Town Gazette",
        "harbour-gazette.example",
    )
    assert tower.topics == ("Town & Harbour", "Heritage")
    # The enclosure is the lead image; the thumbnail, a small copy, comes after it.
    assert [image.url for image in tower.images] == [
        "https://cdn.harbour-gazette.example/img/tower.jpg",
        "https://cdn.harbour-gazette.example/img/tower-small.jpg",
    ]
    ferry = stories["Ferry timetable – winter changes"]
    assert ferry.excerpt == "From December the first ferry leaves at 07:15 — a quarter hour later."
    assert ferry.topics == ("Transport",)
    # media:content with its size; the audio enclosure is no image.
    assert ferry.lead_image is not None
    assert (ferry.lead_image.url, ferry.lead_image.width, ferry.lead_image.height) == (
        "https://cdn.harbour-gazette.example/img/ferry.png",
        1200,
        675,
    )


def test_atom_feed_entries_load_as_their_stories() -> None:
    conversion = convert_feed(parse_feed((FEEDS / "atom.xml").read_bytes()))

    stories = {story.title: story for story in (loaded(seed.data) for seed in conversion.seeds)}
    grafting = stories["Grafting old apple varieties"]  # an HTML title, as plain text
    assert grafting.excerpt == (
        "Three scions took; two did not. Notes on what we’d change next spring."
    )
    # Published, not updated, when the entry has both.
    assert grafting.published_at == datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    assert grafting.url == "https://orchard-lab.example/notes/grafting"
    assert grafting.provider is not None
    assert (grafting.provider.name, grafting.provider.domain) == (
        "Orchard Lab Notes",
        "orchard-lab.example",
    )
    # Terms that differ in case and spacing are one topic; a label is the display name.
    assert grafting.topics == ("Botany", "Field Notes")
    assert [image.url for image in grafting.images] == [
        "https://orchard-lab.example/media/graft.webp"
    ]
    station = stories["Weather station back online"]
    # Only updated: that is the date.
    assert station.published_at == datetime(2026, 11, 28, 7, 45, tzinfo=UTC)
    assert station.excerpt == "The rain gauge is calibrated again after the storm."
    assert station.topics == ()
    assert station.images == ()


def test_entries_that_cannot_be_stories_are_skipped_with_why() -> None:
    conversion = convert_feed(parse_feed((FEEDS / "rss.xml").read_bytes()))

    assert [(item.entry, item.reason) for item in conversion.skipped] == [
        ("Market stalls return to the quay", "no published or updated date"),
        ("entry 4", "no title and no http(s) link"),
    ]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": ""}, "no title"),
        ({"link": "ftp://outlet.example/a"}, "no http(s) link"),
        ({"link": "/relative/story"}, "no http(s) link"),
        ({"published_parsed": None}, "no published or updated date"),
    ],
)
def test_entry_missing_a_required_field_is_skipped(fields: dict[str, Any], reason: str) -> None:
    parsed = parse_feed(b"<rss><channel><item><title>x</title></item></channel></rss>")
    parsed.entries = [entry(**fields)]

    conversion = convert_feed(parsed)

    assert conversion.seeds == ()
    assert [item.reason for item in conversion.skipped] == [reason]


def test_an_entry_the_seed_parser_would_reject_is_skipped_with_its_reason() -> None:
    parsed = parse_feed((FEEDS / "atom.xml").read_bytes())

    conversion = convert_feed(parsed, max_file_bytes=100)

    assert conversion.seeds == ()
    assert {item.reason for item in conversion.skipped} == {
        "file is larger than the 100-byte limit"
    }


def test_date_is_read_from_updated_when_the_entry_has_no_published() -> None:
    updated = datetime(2026, 10, 1, 8, 0, tzinfo=UTC).timetuple()
    story = loaded(seed_file(entry(published_parsed=None, updated_parsed=updated), SOURCE).data)

    assert story.published_at == datetime(2026, 10, 1, 8, 0, tzinfo=UTC)


def test_text_that_looks_like_an_entity_loads_back_as_written() -> None:
    title = "Why &lt;b&gt; is not &amp;, and AT&T"
    summary_text = "Type &copy; to get ©"

    story = loaded(seed_file(entry(title=title, summary=summary_text), SOURCE).data)

    assert story.title == title
    assert story.excerpt == summary_text


def test_long_summary_is_cut_to_what_discord_shows_at_a_word() -> None:
    summary = "<p>" + "word " * 2000 + "</p>"
    html = {"type": "text/html"}

    story = loaded(seed_file(entry(summary=summary, summary_detail=html), SOURCE).data)

    assert len(story.excerpt) <= DESCRIPTION_LIMIT
    assert story.excerpt.endswith("word…")


def test_plain_text_summary_keeps_its_angle_brackets() -> None:
    plain = {"type": "text/plain"}

    story = loaded(seed_file(entry(summary="x <y> z", summary_detail=plain), SOURCE).data)

    assert story.excerpt == "x <y> z"


def test_feed_without_title_or_link_names_the_outlet_by_the_story_host() -> None:
    anonymous = FeedSource(name="", domain="", home="")

    story = loaded(seed_file(entry(link="https://www.quiet.example/s"), anonymous).data)

    assert story.provider is not None
    assert (story.provider.name, story.provider.domain) == ("quiet.example", "quiet.example")


def test_file_name_comes_from_the_entry_id_alone() -> None:
    first = seed_file(entry(id="tag:outlet.example,2026:1", title="First wording"), SOURCE)
    edited = seed_file(entry(id="tag:outlet.example,2026:1", title="Second wording"), SOURCE)
    other = seed_file(entry(id="tag:outlet.example,2026:2"), SOURCE)

    assert first.name == edited.name != other.name
    assert first.name.startswith("feed_")
    assert first.name.endswith(".txt")


def test_bare_ids_of_two_feeds_make_two_files_but_uri_ids_one() -> None:
    elsewhere = FeedSource(
        name="Another", domain="another.example", home="https://another.example/"
    )

    bare = [seed_file(entry(id="42"), source).name for source in (SOURCE, elsewhere)]
    uri = [seed_file(entry(id="urn:uuid:1234"), source).name for source in (SOURCE, elsewhere)]

    assert bare[0] != bare[1]
    assert uri[0] == uri[1]


def test_without_an_id_the_link_names_the_file() -> None:
    by_link = seed_file(entry(), SOURCE).name
    retitled = seed_file(entry(title="Retitled"), SOURCE).name
    elsewhere = seed_file(entry(link="https://outlet.example/another"), SOURCE).name

    assert by_link == retitled != elsewhere


def test_an_entry_repeated_in_a_feed_is_written_once() -> None:
    parsed = parse_feed((FEEDS / "atom.xml").read_bytes())
    parsed.entries = [parsed.entries[0], parsed.entries[0]]

    conversion = convert_feed(parsed)

    assert len(conversion.seeds) == 1
    assert [item.reason for item in conversion.skipped] == [
        "the same entry appears earlier in the feed"
    ]


def test_topics_given_come_first_and_merge_with_the_categories() -> None:
    tags = [{"term": "Harbour"}, {"term": "local"}]

    story = loaded(seed_file(entry(tags=tags), SOURCE, ["Local", "Coast"]).data)

    assert story.topics == ("Local", "Coast", "Harbour")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ((FEEDS / "malformed.xml").read_bytes(), "not a readable feed: line 3: no element found"),
        (
            b'<rss version="2.0"><channel><title>Empty</title></channel></rss>',
            "the feed has no entries",
        ),
    ],
)
def test_a_feed_without_entries_is_refused_with_why(data: bytes, reason: str) -> None:
    from bot.feeds.convert import NotAFeed

    with pytest.raises(NotAFeed, match="^" + reason.replace("(", r"\(") + "$"):
        parse_feed(data)


# --- writing ----------------------------------------------------------------------------------


def test_write_seed_says_new_unchanged_and_updated(tmp_path: Path) -> None:
    assert write_seed(tmp_path, "feed_a.txt", b"one") is Written.NEW
    assert write_seed(tmp_path, "feed_a.txt", b"one") is Written.UNCHANGED
    assert write_seed(tmp_path, "feed_a.txt", b"two") is Written.UPDATED
    assert (tmp_path / "feed_a.txt").read_bytes() == b"two"
    assert [path.name for path in tmp_path.iterdir()] == ["feed_a.txt"]  # no temporary left


def test_unchanged_file_is_not_touched(tmp_path: Path) -> None:
    write_seed(tmp_path, "feed_a.txt", b"same")
    before = (tmp_path / "feed_a.txt").stat()

    write_seed(tmp_path, "feed_a.txt", b"same")

    after = (tmp_path / "feed_a.txt").stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)


def test_updated_file_is_replaced_by_a_new_one_never_written_in_place(tmp_path: Path) -> None:
    write_seed(tmp_path, "feed_a.txt", b"first")
    before = (tmp_path / "feed_a.txt").stat()

    write_seed(tmp_path, "feed_a.txt", b"second")

    # A new inode: a reader of the old file saw the whole old file, never half the new one.
    assert (tmp_path / "feed_a.txt").stat().st_ino != before.st_ino


def test_imported_file_reads_back_through_the_seed_reader(tmp_path: Path) -> None:
    seed = seed_file(entry(), SOURCE)
    write_seed(tmp_path, seed.name, seed.data)

    result = read_seed(tmp_path / seed.name, seed.name)

    assert result.ok
    assert result.story is not None
    assert result.story.title == "A story"
