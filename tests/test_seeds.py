"""Seed parsing: the shipped seeds, every repair, every rejection rule and the cost bounds."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from bot.models import SeedResult
from bot.seeds import parse_seed, rank, read_seed
from bot.urls import canonical_url, story_id
from tests.hostile_corpus import DAMAGED, HOSTILE

SEEDS = Path(__file__).resolve().parent.parent / "seeds"


def seed(**fields: object) -> bytes:
    """A seed file with a valid story, fields replaced or (with None) removed."""
    values: dict[str, object] = {
        "title": '"A story"',
        "publishedDateTime": "2024-03-01T10:00:00Z",
        "webUrl": '"https://news.example.com/a"',
    }
    values.update(fields)
    body = "\n".join(f"{key}: {value}" for key, value in values.items() if value is not None)
    return f"---\n{body}\n---\n".encode()


def parsed(data: bytes) -> SeedResult:
    result = parse_seed(data, "story.txt")
    assert result.ok, result.reason
    return result


def warnings_of(result: SeedResult) -> str:
    return " | ".join(str(warning) for warning in result.warnings)


# --- the shipped seeds -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SEEDS.iterdir()), ids=lambda path: path.name)
def test_every_shipped_seed_is_a_valid_story(path: Path) -> None:
    result = read_seed(path, path.name)

    assert result.ok, f"{path.name}: {result.reason}"
    story = result.story
    assert story is not None
    assert story.title and story.url.startswith("https://")
    assert story.published_at.tzinfo is UTC
    assert {"AI", "Computer Vision"} <= set(story.topics)


def test_shipped_seed_fields_are_read_in_full() -> None:
    story = read_seed(SEEDS / "000_3502efe314ff72e3.txt", "000").story
    assert story is not None

    assert story.title == "EU parliament backs AI restrictions and facial recognition ban"
    assert story.published_at == datetime(2023, 5, 12, 11, 20, tzinfo=UTC)
    assert story.provider is not None and story.provider.name == "research"
    assert story.lead_image is not None and story.lead_image.width == 1000
    assert [related.provider.name for related in story.related if related.provider] == [
        "The Next Web",
        "The Financial Times",
    ]
    assert story.quality == 74
    assert story.heat is None  # -1 means unknown
    assert story.published is False
    assert story.kind == "article" and story.category == "news"
    assert story.secured.startswith("J3TW9zYD3v")
    assert "J3TW9zYD3v" not in repr(story)


def test_shipped_mojibake_is_repaired() -> None:
    story = read_seed(SEEDS / "004_3a2cf1b7735a9b42.txt", "004").story
    assert story is not None

    assert story.excerpt.startswith("EU’s data protection agencies")


def test_story_link_and_related_link_of_one_article_share_an_id() -> None:
    politico = read_seed(SEEDS / "001_8439fb071992beae.txt", "001").story
    techstory = read_seed(SEEDS / "002_3fff4a9a5337c682.txt", "002").story
    assert politico is not None and techstory is not None

    assert politico.url == (
        "https://www.politico.eu/article/european-parliament-ban-facial-recognition-brussels/"
    )
    assert politico.id in {related.story_id for related in techstory.related}


# --- rejections ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_file_is_rejected_with_the_reason(name: str) -> None:
    content, phrase = HOSTILE[name]

    result = parse_seed(content, name)

    assert not result.ok
    assert phrase in result.reason
    assert "\n" not in result.reason


def test_syntax_error_names_the_line_in_the_file() -> None:
    data = b'---\ntitle: "A story"\nexcerpt: [unclosed\npublishedDateTime: 2024-03-01\n---\n'

    result = parse_seed(data, "story.txt")

    assert not result.ok
    assert result.errors[0].line is not None and 3 <= result.errors[0].line <= 5


def test_python_object_tag_never_constructs_anything(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    data = seed(title=f"!!python/object/apply:os.system ['touch {marker}']")

    result = parse_seed(data, "story.txt")

    assert not result.ok and "not allowed" in result.reason
    assert not marker.exists()


def test_file_over_the_size_cap_is_rejected_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(seed(excerpt='"' + "x" * 5000 + '"'))

    result = read_seed(path, "big.txt", max_bytes=1024)

    assert not result.ok and "1024-byte limit" in result.reason


def test_a_fifo_read_as_a_seed_is_rejected_without_blocking(tmp_path: Path) -> None:
    # A file replaced by a FIFO after the folder scan: reading it must not wait for a writer.
    fifo = tmp_path / "story.txt"
    os.mkfifo(fifo)

    result = read_seed(fifo, "story.txt")

    assert not result.ok and result.reason == "cannot read file: not a regular file"


def test_unreadable_file_is_rejected(tmp_path: Path) -> None:
    result = read_seed(tmp_path / "missing.txt", "missing.txt")

    assert not result.ok and "cannot read file" in result.reason


def test_deep_nesting_beyond_what_libyaml_survives_is_rejected_quickly() -> None:
    # 100,000 levels crash libyaml's recursive composer; the depth check must stop it first.
    data = ("---\nx: " + "[" * 100_000 + "]" * 100_000 + "\n---\n").encode()

    result = parse_seed(data, "deep.txt", max_bytes=len(data))

    assert not result.ok and "nesting deeper than" in result.reason


# Documents nested past what libyaml (0.2.6 and newer) accepts, with text before the deep part
# that is not ASCII and levels that start on later lines, so that the line named is telling.
_DEEP_DOCUMENTS = {
    "flow": "---\ntitle: Café “déjà vu”\nx: " + "[" * 5000 + "]" * 5000 + "\n---\n",
    "flow over lines": "---\nx:\n" + "  [\n" * 1500 + "  ]\n" * 1500 + "---\n",
    "mappings": "---\nx:\n  y: " + "{a: " * 3000 + "1" + "}" * 3000 + "\n---\n",
    "block": "---\n" + "".join(" " * d + f"k{d}:\n" for d in range(40)) + " " * 40 + "z: 1\n---\n",
    "just too deep": "---\nx: " + "[" * 16 + "]" * 16 + "\n---\n",
}


@pytest.mark.parametrize("name", sorted(_DEEP_DOCUMENTS))
def test_depth_rule_is_newsbots_own_whichever_parser_is_underneath(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _DEEP_DOCUMENTS[name].encode()

    with_libyaml = parse_seed(data, "deep.txt", max_bytes=len(data))
    # PyYAML's pure-Python parser has no nesting limit of its own: what newsbot says must not
    # depend on whether (or which) libyaml is installed.
    monkeypatch.setattr("bot.seeds.yaml_events._loader", lambda: yaml.SafeLoader)
    pure_python = parse_seed(data, "deep.txt", max_bytes=len(data))

    assert with_libyaml.errors == pure_python.errors
    assert [problem.message for problem in with_libyaml.errors] == ["nesting deeper than 16 levels"]


def test_nesting_up_to_the_limit_is_accepted() -> None:
    # The front matter mapping is level 1, so a value may hold 15 more levels.
    result = parsed(seed(title="x", nested="[" * 15 + "]" * 15))

    assert result.ok


def test_deep_flow_nesting_names_the_line_where_the_limit_is_passed() -> None:
    data = ("---\ntitle: x\nnested:\n" + "  [\n" * 20 + "  ]\n" * 20 + "---\n").encode()

    result = parse_seed(data, "deep.txt")

    # Line 1 is the opening '---'; nested's value opens at line 4, so level 17 opens at line 19.
    assert result.errors[0].line == 19


def test_many_brackets_in_quoted_text_are_not_mistaken_for_nesting() -> None:
    title = '"' + "[tag] " * 40 + 'title"'

    result = parsed(seed(title=title))

    assert result.story is not None and result.story.title.startswith("[tag] [tag]")


# --- repairs ---------------------------------------------------------------------------------


def test_mojibake_is_repaired_with_a_warning() -> None:
    result = parsed(seed(title='"CafÃ© owners â€œcelebrateâ€™"'))

    assert result.story is not None and result.story.title == "Café owners “celebrate’"
    assert "title: repaired: mojibake" in warnings_of(result)


def test_mojibake_with_control_characters_yaml_refuses_is_repaired_first() -> None:
    # "”" as UTF-8 read as Windows-1252 ends in U+009D, a character YAML does not accept.
    result = parsed(seed(title='"CafÃ© owners â€œcelebrateâ€\x9d"'))

    assert result.story is not None and result.story.title == "Café owners “celebrate”"
    assert "repaired: mojibake" in warnings_of(result)


def test_control_character_is_rejected_with_its_line() -> None:
    result = parse_seed(seed(title='"bell\x07"'), "story.txt")

    assert not result.ok
    assert result.reason == "invalid YAML: control characters are not allowed (line 2)"


def test_html_entities_are_decoded_but_bare_ampersands_kept() -> None:
    result = parsed(seed(title='"AT&T &amp; Barnes&noble: &#8220;news&#8221; &rsquo;"'))

    assert result.story is not None
    assert result.story.title == "AT&T & Barnes&noble: “news” ’"


def test_clean_unicode_text_is_left_alone() -> None:
    result = parsed(seed(title='"Straße in München — “quoted” 東京"'))

    assert result.story is not None and result.story.title == "Straße in München — “quoted” 東京"
    assert result.warnings == ()


def test_byte_order_mark_and_crlf_line_ends_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + seed(excerpt='"line one"').replace(b"\n", b"\r\n")

    result = parsed(data)

    assert result.story is not None and result.story.excerpt == "line one"


def test_utf16_file_with_bom_is_read() -> None:
    result = parsed(seed(title='"Ünïcode"').decode().encode("utf-16"))

    assert result.story is not None and result.story.title == "Ünïcode"


def test_windows_1252_file_is_decoded_with_a_warning() -> None:
    data = seed(title='"It’s a café"').decode().encode("cp1252")

    result = parsed(data)

    assert result.story is not None and result.story.title == "It’s a café"
    assert "Windows-1252" in warnings_of(result)


def test_date_without_timezone_is_read_as_utc() -> None:
    result = parsed(seed(publishedDateTime="2024-03-01T10:00:00"))

    assert result.story is not None
    assert result.story.published_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
    assert "no timezone" in warnings_of(result)


def test_date_with_offset_is_converted_to_utc() -> None:
    result = parsed(seed(publishedDateTime='"2024-03-01T12:00:00+02:00"'))

    assert result.story is not None
    assert result.story.published_at == datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def test_date_only_means_midnight_utc() -> None:
    result = parsed(seed(publishedDateTime="2024-03-01"))

    assert result.story is not None
    assert result.story.published_at == datetime(2024, 3, 1, tzinfo=UTC)


def test_topics_are_trimmed_and_deduplicated_ignoring_case() -> None:
    result = parsed(seed(topics='["  Computer   Vision ", "computer vision", "AI", "ai"]'))

    assert result.story is not None and result.story.topics == ("Computer Vision", "AI")


def test_a_single_topic_given_as_text_is_a_list_of_one() -> None:
    result = parsed(seed(topics="Robotics"))

    assert result.story is not None and result.story.topics == ("Robotics",)


def test_title_whitespace_is_collapsed() -> None:
    result = parsed(seed(title='"  Two\\n  lines  "'))

    assert result.story is not None and result.story.title == "Two lines"


def test_numbers_given_as_text_fields_become_text() -> None:
    result = parsed(seed(title="1984"))

    assert result.story is not None and result.story.title == "1984"


def test_tracking_parameters_are_removed_from_the_story_link() -> None:
    result = parsed(seed(webUrl='"HTTPS://News.Example.com/a?id=7&utm_source=x&ref=feed#top"'))

    story = result.story
    assert story is not None
    assert story.url == "https://news.example.com/a?id=7"
    assert story.id == story_id(canonical_url("https://news.example.com/a?id=7"))
    assert story.original_url == "HTTPS://News.Example.com/a?id=7&utm_source=x&ref=feed#top"


def test_original_url_is_used_when_web_url_is_not_http() -> None:
    result = parsed(seed(webUrl='"ftp://x"', originalUrl='"https://news.example.com/b"'))

    assert result.story is not None and result.story.url == "https://news.example.com/b"
    assert "webUrl" in warnings_of(result)


def test_unusable_related_items_and_images_are_dropped_with_warnings() -> None:
    data = seed(
        images='[{url: "javascript:x"}, {url: "https://img.example.com/a.jpg", width: 10}]',
        related=(
            '[{title: "No link"}, {webUrl: "https://b.example.com/x"},'
            ' {title: "Good", webUrl: "https://c.example.com/y", provider: {name: C}}, "text"]'
        ),
    )

    result = parsed(data)

    story = result.story
    assert story is not None
    assert [image.url for image in story.images] == ["https://img.example.com/a.jpg"]
    assert [related.title for related in story.related] == ["Good"]
    text = warnings_of(result)
    assert "images[0]: dropped" in text
    assert "related[0]: dropped: no http(s) link" in text
    assert "related[1]: dropped: no title" in text
    assert "related[3]: dropped" in text


def test_text_longer_than_discord_allows_is_stored_whole_with_a_warning() -> None:
    long_excerpt = "word " * 1000

    result = parsed(seed(excerpt=f'"{long_excerpt}"'))

    assert result.story is not None and result.story.excerpt == long_excerpt.strip()
    assert "Discord shows 4096" in warnings_of(result)


def test_optional_fields_default_sensibly() -> None:
    story = parsed(seed()).story

    assert story is not None
    assert (story.excerpt, story.topics, story.images, story.related) == ("", (), (), ())
    assert story.provider is None and story.quality is None and story.heat is None


def test_body_after_front_matter_is_kept() -> None:
    result = parsed(seed() + b"\nThe full text.\n")

    assert result.story is not None and result.story.body == "The full text."


def test_better_record_ranks_higher() -> None:
    plain = parsed(seed(quality=10)).story
    richer = parsed(seed(quality=10, images='[{url: "https://img.example.com/a.jpg"}]')).story
    better = parsed(seed(quality=50)).story
    assert plain is not None and richer is not None and better is not None

    assert rank(plain) < rank(richer) < rank(better)


def test_without_libyaml_parsing_falls_back_with_a_logged_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import yaml

    from bot.seeds import yaml_events as seeds_module

    monkeypatch.delattr(yaml, "CSafeLoader")
    seeds_module._loader.cache_clear()
    try:
        result = parsed(seed(title='"Still parsed"'))
        bomb = parse_seed(HOSTILE["alias_bomb.txt"][0], "bomb.txt")
        loader = seeds_module._loader()
    finally:
        seeds_module._loader.cache_clear()

    assert result.story is not None and result.story.title == "Still parsed"
    assert "aliases are not allowed" in bomb.reason
    assert issubclass(loader, yaml.SafeLoader)
    assert "libyaml is missing" in caplog.text


def test_libyaml_is_used_when_present() -> None:
    import yaml

    from bot.seeds import yaml_events as seeds_module

    assert issubclass(seeds_module._loader(), yaml.CSafeLoader)


@pytest.mark.parametrize(
    ("field", "reason"),
    [
        ("extra: !!binary aGVsbG8=", "tag 'tag:yaml.org,2002:binary' is not allowed"),
        ("extra: !!set {a, b}", "tag 'tag:yaml.org,2002:set' is not allowed"),
        ("extra: !!timestamp 2024-01-01", "tag 'tag:yaml.org,2002:timestamp' is not allowed"),
        ("extra: {<<: {a: 1}}", "tag 'tag:yaml.org,2002:merge' is not allowed"),
        ("extra: &loop [*loop]", "aliases are not allowed"),
        ("? [a, b]\n: value", "unhashable key"),
    ],
)
def test_only_plain_yaml_is_understood(field: str, reason: str) -> None:
    result = parse_seed(seed().replace(b"---\n", f"---\n{field}\n".encode(), 1), "story.txt")

    assert not result.ok
    assert reason in result.reason


@pytest.mark.parametrize("name", sorted(DAMAGED))
def test_unusable_optional_field_is_dropped_and_the_story_kept(name: str) -> None:
    content, phrase = DAMAGED[name]

    result = parse_seed(content, name)

    assert result.ok, result.reason
    assert phrase in warnings_of(result)


def test_every_optional_field_can_be_wrong_without_rejecting_the_story() -> None:
    result = parsed(
        seed(
            quality='"very high"',
            heat="[1, 2]",
            excerpt="{a: 1}",
            provider="[x, y]",
            topics="{a: 1}",
            images="3",
            related='"none"',
            category="[1]",
            type="{b: 2}",
            published='"maybe"',
            secured="[s]",
        )
    )

    story = result.story
    assert story is not None and story.title
    assert (story.quality, story.heat, story.excerpt, story.provider) == (None, None, "", None)
    assert (story.topics, story.images, story.related) == ((), (), ())
    assert (story.category, story.kind, story.published, story.secured) == ("", "", None, "")
    dropped = {w.field for w in result.warnings if w.message.startswith("dropped")}
    assert dropped >= {"quality", "heat", "excerpt", "provider", "topics", "images", "related"}
    assert dropped >= {"category", "type", "published", "secured"}


def test_plain_scalars_keep_their_yaml_types() -> None:
    result = parsed(seed(quality="0x1F", heat="-1", published="yes"))

    story = result.story
    assert story is not None
    assert (story.quality, story.heat, story.published) == (31, None, True)
