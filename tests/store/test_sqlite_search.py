"""Which way a SQLite search on a topic takes, and the word list's prefix ranges: pure parts."""

from __future__ import annotations

from bot.store.sqlite.search import SAMPLE, TopicSearchFigures, probe_topic
from bot.store.sqlite.search_terms import prefix_range

MILLION = 1_000_000


def test_a_common_word_on_a_rare_topic_asks_the_index_about_the_topics_stories() -> None:
    assert probe_topic(TopicSearchFigures(SAMPLE, topic_stories=40, stories=MILLION), 6)


def test_a_common_word_on_a_common_topic_walks_the_words_matches() -> None:
    assert not probe_topic(TopicSearchFigures(SAMPLE, topic_stories=80_000, stories=MILLION), 6)


def test_a_word_with_fewer_matches_than_the_sample_is_walked_whatever_the_topic() -> None:
    assert not probe_topic(TopicSearchFigures(SAMPLE - 1, topic_stories=1, stories=MILLION), 6)


def test_a_topic_without_stories_is_walked() -> None:
    assert not probe_topic(TopicSearchFigures(SAMPLE, topic_stories=0, stories=MILLION), 6)


def test_deeper_pages_tip_a_middling_topic_towards_its_stories() -> None:
    figures = TopicSearchFigures(SAMPLE, topic_stories=3_000, stories=MILLION)
    assert not probe_topic(figures, 6)
    assert probe_topic(figures, 600)


def test_a_prefix_range_holds_exactly_the_words_starting_with_it() -> None:
    low, high = prefix_range("recog")
    inside = ["recog", "recognise", "recognition", "recogz"]
    outside = ["recof", "recoh", "reco", "recoG"]
    assert all(low <= word < high for word in inside)
    assert not any(low <= word < high for word in outside)
