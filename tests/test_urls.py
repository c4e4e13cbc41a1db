"""Story identity: canonical URLs and the ids derived from them."""

from __future__ import annotations

import pytest

from bot.urls import InvalidURL, _canonical_url_parsed, canonical_url, is_web_url, story_id


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("HTTPS://WWW.Example.COM/Path", "https://www.example.com/Path"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a?utm_source=x&utm_medium=y", "https://example.com/a"),
        ("https://example.com/a?ref=feed&fbclid=1&gclid=2", "https://example.com/a"),
        (
            "https://example.com/a?id=5&utm_campaign=z&name=b%2Cc",
            "https://example.com/a?id=5&name=b%2Cc",
        ),
        ("  https://example.com/a  ", "https://example.com/a"),
    ],
)
def test_canonical_url_strips_what_does_not_identify_the_article(
    given: str, canonical: str
) -> None:
    assert canonical_url(given) == canonical


@pytest.mark.parametrize(
    "given",
    [
        "ftp://example.com/a",
        "javascript:alert(1)",
        "/relative/path",
        "https://",
        "mailto:a@b.c",
        "https://user:pass@example.com/",
        "https://exa mple.com/",
        "http://[::1",
    ],
)
def test_non_web_urls_are_refused(given: str) -> None:
    with pytest.raises(InvalidURL):
        canonical_url(given)
    assert not is_web_url(given)


@pytest.mark.parametrize(
    "given",
    [
        "https://www.example.com/article/1-7a1db62c228e/",
        "http://example.com/",
        "https://./",
        "https://a-b.example.co.uk/path/with/ünïcode/and%20escapes",
        "https://example.com/a;params=1/b.html",
        "https://example.com/a/../b",
        "https://example.com/x\x01y",
        "https://example.com/a\u00a0b",
        "https://Example.com/a",
        "https://example.com/a?",
        "https://example.com/a#",
    ],
)
def test_urls_already_canonical_take_the_short_way_to_the_same_answer(given: str) -> None:
    try:
        expected: str | type[InvalidURL] = _canonical_url_parsed(given)
    except InvalidURL:
        expected = InvalidURL
    try:
        got: str | type[InvalidURL] = canonical_url(given)
    except InvalidURL:
        got = InvalidURL

    assert got == expected


def test_story_id_is_stable_positive_and_fits_sqlite_integer() -> None:
    first = story_id("https://example.com/a")

    assert first == story_id("https://example.com/a")
    assert 0 < first < 2**63
    assert first != story_id("https://example.com/b")


def test_tracking_variants_of_one_article_share_an_id() -> None:
    plain = story_id(canonical_url("https://www.politico.eu/article/x/"))
    tracked = story_id(canonical_url("https://www.politico.eu/article/x/?ref=blog.example.com"))

    assert plain == tracked
