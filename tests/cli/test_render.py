"""The command line's renderers: pure, one text and one JSON form per report."""

from __future__ import annotations

from bot.cli.render import news_json, news_text, topics_json, topics_text
from bot.models import TopicCount
from tests.factories import make_story


def test_news_text_gives_each_story_title_outlet_time_and_link_then_a_blank_line() -> None:
    story = make_story("https://news.example.com/a", title="Rain tomorrow")

    assert news_text([story]) == [
        "Rain tomorrow",
        "  Example News · 2024-01-01 12:00 UTC",
        f"  {story.url}",
        "",
    ]


def test_news_text_of_no_stories_says_none_match() -> None:
    assert news_text([]) == ["No stories match."]


def test_news_json_carries_ids_as_text() -> None:
    story = make_story()

    [shown] = news_json([story])["stories"]

    assert shown["id"] == str(story.id)
    assert shown["provider"] == {"name": "Example News", "domain": "example.com"}


def test_topics_text_aligns_the_counts_and_json_names_them() -> None:
    topics = [TopicCount("AI", 12), TopicCount("Space", 3)]

    assert topics_text(topics) == ["    12  AI", "     3  Space"]
    assert topics_json(topics) == [{"name": "AI", "stories": 12}, {"name": "Space", "stories": 3}]
    assert topics_text([]) == ["No topics yet: load seeds with `newsbot seeds load`."]
