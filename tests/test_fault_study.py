"""The fault study's counting: what counts as a digest message, a story and a duplicate."""

from __future__ import annotations

from tests.process_study import Posted, missing_stories, tally

HEADER = {"title": "Daily news — Monday 30 November 2026", "description": "3 stories"}


def story(url: str, title: str = "A story") -> dict[str, object]:
    return {"title": title, "url": url, "description": "..."}


def test_a_story_posted_twice_is_one_duplicate_even_under_a_new_title() -> None:
    messages = [
        Posted("dg-0", (HEADER, story("https://a.example/1"), story("https://a.example/2"))),
        Posted("dg-1", (story("https://a.example/2", title="A story, retitled"),)),
    ]
    counted = tally(messages)
    assert counted.digest_messages == 2
    assert counted.story_embeds == 3
    assert counted.repeated == {"https://a.example/2": 2}
    assert counted.duplicates == 1


def test_a_second_header_is_a_duplicate_and_other_messages_are_not_digest_messages() -> None:
    messages = [
        Posted("dg-0", (HEADER,)),
        Posted(None, ({"title": "Nothing new to post right now."},)),
        Posted("dg-0", (HEADER,)),
    ]
    counted = tally(messages)
    assert counted.digest_messages == 2 and counted.headers == 2
    assert counted.nonces == {"dg-0": 2}
    assert counted.duplicates == 1


def test_a_story_listed_as_coverage_under_another_is_not_missing() -> None:
    coverage = {**story("https://a.example/1"), "fields": [{"name": "Also covered by",
                "value": "[Other](https://b.example/9)"}]}  # fmt: skip
    messages = [Posted("dg-0", (HEADER, coverage))]
    planned = ["https://a.example/1", "https://b.example/9", "https://a.example/3"]
    assert missing_stories(planned, messages) == ["https://a.example/3"]
