"""The contract every store backend keeps for stories: reading, topics, search, links, the seed
index and reloads, and state. Runs against each backend (see conftest.py)."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.models import Image, Provider, Story, TopicCount
from bot.search_query import Order, QuerySyntaxError, parse_query
from bot.store.base import (
    ReloadChanges,
    SeedFileRecord,
    StaleReload,
    Store,
    StoreError,
)
from tests.factories import make_related, make_story
from tests.store.helpers import (
    RELOADED_AT,
    failing_reload,
    record,
    reload,
    searchable,
    state,
    story_at,
    titles,
)


async def test_close_is_idempotent_and_closes_the_store(store: Store) -> None:
    await store.close()
    await store.close()
    with pytest.raises(StoreError):
        await store.story_count()


def full_story() -> Story:
    """A story with every field set to something other than its default."""
    plus_two = timezone(timedelta(hours=2))
    return make_story(
        "https://news.example.com/full?id=7&utm_source=feed",
        title="Ünïcode — “quotes” and emoji 🚀",
        excerpt="Every field of a story, stored and read back.",
        published_at=datetime(2024, 3, 5, 6, 7, 8, tzinfo=UTC),
        topics=("Computer  Vision", "AI"),
        provider=Provider("Example News", "example.com"),
        images=(
            Image("https://news.example.com/lead.jpg", 1200, 630),
            Image("https://news.example.com/second.png"),
        ),
        related=(
            make_related(
                "https://other.example.org/their-take",
                title="Their take",
                excerpt="Another angle.",
                # Any offset: read back as the same instant in UTC.
                published_at=datetime(2024, 3, 5, 9, 0, tzinfo=plus_two),
                provider=Provider("Other Outlet", "other.example.org"),
                quality=3,
                image=Image("https://other.example.org/pic.jpg", 640, 480),
            ),
            make_related("https://bare.example.net/b"),
        ),
        quality=87,
        heat=1234,
        category="technology",
        kind="article",
        published=False,
        amp_url="https://news.example.com/amp/full",
        cdn_amp_url="https://news-example-com.cdn.ampproject.org/c/full",
        body="The whole text.\nWith lines, tabs\tand ünïcode.",
        secured="opaque-token",
    )


def test_the_full_story_sets_every_field() -> None:
    # Guards the round trip below: a field added to Story must be added here too.
    story = full_story()
    for field in dataclasses.fields(Story):
        if field.default is not dataclasses.MISSING:
            assert getattr(story, field.name) != field.default, field.name


async def test_a_full_story_reads_back_equal(store: Store) -> None:
    story = full_story()
    await reload(store, [story])

    stored = await store.story(story.id)
    assert stored == story
    assert stored is not None
    assert stored.published_at.tzinfo == UTC
    assert stored.related[0].published_at == datetime(2024, 3, 5, 7, 0, tzinfo=UTC)
    assert await store.latest(1) == [story]


async def test_a_bare_story_reads_back_equal(store: Store) -> None:
    story = make_story("https://bare.example.com/x", topics=(), provider=None, images=())
    await reload(store, [story])
    assert await store.story(story.id) == story


async def test_story_of_an_unknown_id_is_none(store: Store) -> None:
    await reload(store, [story_at(1)])
    assert await store.story(story_at(2).id) is None


async def test_story_count_follows_upserts_replacements_and_retirements(
    store: Store,
) -> None:
    assert await store.story_count() == 0
    await reload(store, [story_at(n) for n in range(5)])
    assert await store.story_count() == 5
    await reload(store, [story_at(0, title="Replaced"), story_at(5)])
    assert await store.story_count() == 6
    await reload(store, retire=[story_at(1).id, story_at(2).id, story_at(99).id])
    assert await store.story_count() == 4


async def test_a_story_listed_twice_in_one_reload_is_stored_once_as_the_last(
    store: Store,
) -> None:
    await reload(store, [story_at(1, title="First"), story_at(1, title="Second")])
    assert titles(await store.latest(10)) == ["Second"]
    assert await store.story_count() == 1


async def test_latest_is_newest_first_with_ties_broken_by_id(store: Store) -> None:
    stories = [story_at(n, title=f"s{n}") for n in range(4)]
    tied = [story_at(n, minutes=10, title=f"tied{n}") for n in (10, 11, 12)]
    await reload(store, stories + tied)

    latest = await store.latest(10)
    tied_by_id = sorted(tied, key=lambda story: story.id, reverse=True)
    assert titles(latest) == [*titles(tied_by_id), "s3", "s2", "s1", "s0"]


async def test_latest_pages_with_limit_and_offset(store: Store) -> None:
    await reload(store, [story_at(n, title=f"s{n}") for n in range(6)])

    assert titles(await store.latest(2)) == ["s5", "s4"]
    assert titles(await store.latest(2, offset=2)) == ["s3", "s2"]
    assert titles(await store.latest(10, offset=5)) == ["s0"]
    assert await store.latest(2, offset=6) == []
    assert await store.latest(0) == []


async def test_latest_on_topic_ignores_case_and_spacing(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, title="vision", topics=("Computer Vision",)),
            story_at(2, title="both", topics=("AI", "computer vision")),
            story_at(3, title="ai", topics=("AI",)),
        ],
    )

    assert titles(await store.latest(10, topic="  COMPUTER   vision ")) == ["both", "vision"]
    assert titles(await store.latest(1, offset=1, topic="computer vision")) == ["vision"]
    assert titles(await store.latest(10, topic="ai")) == ["ai", "both"]
    assert await store.latest(10, topic="Robotics") == []


async def test_a_search_of_a_topic_alone_lists_the_topics_newest(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, title="older ai", topics=("AI",)),
            story_at(2, title="space", topics=("Space",)),
            story_at(3, title="newer ai", topics=("AI",)),
        ],
    )
    alone = parse_query("topic:AI")

    assert titles(await store.latest(10, topic="AI", query=alone)) == ["newer ai", "older ai"]
    assert titles(await store.latest(1, offset=1, topic="AI", query=alone)) == ["older ai"]


async def test_latest_on_topic_follows_a_changed_publication_time(store: Store) -> None:
    await reload(store, [story_at(1, title="a"), story_at(2, title="b")])
    await reload(store, [story_at(1, minutes=60, title="a")])
    assert titles(await store.latest(10, topic="AI")) == ["a", "b"]


async def test_topics_are_listed_by_count_then_by_name_ignoring_case(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("zebra", "AI")),
            story_at(2, topics=("AI", "Biology")),
            story_at(3, topics=("apple",)),
            # Two spellings of one topic on one story count once.
            story_at(4, topics=("AI", "ai ")),
        ],
    )
    assert await store.topics() == [
        TopicCount("AI", 3),
        TopicCount("apple", 1),
        TopicCount("Biology", 1),
        TopicCount("zebra", 1),
    ]


async def test_topic_counts_follow_replacements_and_retirements(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("AI", "Space")),
            story_at(2, topics=("AI",)),
            story_at(3, topics=("Space", "Climate")),
        ],
    )
    # Story 1 drops Space and takes Climate; story 3 is retired.
    await reload(store, [story_at(1, topics=("AI", "Climate"))], retire=[story_at(3).id])

    assert await store.topics() == [TopicCount("AI", 2), TopicCount("Climate", 1)]
    assert await store.topic("space") is None
    assert await store.latest(10, topic="Space") == []

    await reload(store, retire=[story_at(1).id, story_at(2).id])
    assert await store.topics() == []


async def test_topic_finds_a_topic_ignoring_case_and_spacing(store: Store) -> None:
    await reload(store, [story_at(1, topics=("Computer Vision",)), story_at(2, topics=("AI",))])
    assert await store.topic("  computer   VISION") == TopicCount("Computer Vision", 1)
    assert await store.topic("Robotics") is None


async def test_a_topic_keeps_its_first_name_unless_a_capitalised_one_follows(
    store: Store,
) -> None:
    await reload(store, [story_at(1, topics=("ai",)), story_at(2, topics=("Space",))])
    await reload(store, [story_at(3, topics=("AI",)), story_at(4, topics=("space",))])
    await reload(store, [story_at(5, topics=("Ai",)), story_at(6, topics=("SPACE",))])

    assert await store.topics() == [TopicCount("AI", 3), TopicCount("Space", 3)]


async def test_within_one_reload_the_first_capitalised_name_wins(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("machine learning",)),
            story_at(2, topics=("Machine Learning",)),
            story_at(3, topics=("MACHINE LEARNING",)),
        ],
    )
    assert await store.topic("machine learning") == TopicCount("Machine Learning", 3)


async def test_display_names_have_their_spacing_collapsed(store: Store) -> None:
    await reload(store, [story_at(1, topics=("  Computer   Vision ",))])
    assert await store.topics() == [TopicCount("Computer Vision", 1)]
    # The story itself keeps its topics exactly as given.
    assert (await store.latest(1))[0].topics == ("  Computer   Vision ",)


async def test_query_finds_words_in_title_or_excerpt_newest_first(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query("rocket"))) == [
        "Markets rally",
        "Rocket launch delayed",
    ]


async def test_query_matches_word_prefixes_ignoring_case_and_accents(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query("ROCK"))) == [
        "Markets rally",
        "Rocket launch delayed",
    ]
    assert titles(await store.latest(10, query=parse_query("cafe"))) == ["Café culture"]


async def test_query_requires_every_word(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query("rocket launch"))) == [
        "Rocket launch delayed"
    ]
    assert titles(await store.latest(10, query=parse_query("launch"))) == [
        "Launch party",
        "Rocket launch delayed",
    ]
    assert await store.latest(10, query=parse_query("rocket coffee")) == []


async def test_query_pages_with_limit_and_offset(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(1, offset=1, query=parse_query("rocket"))) == [
        "Rocket launch delayed"
    ]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rocket AND", ["Markets rally"]),  # "and" is in its excerpt
        ("NOT rocket", []),
        ("rock*", ["Markets rally", "Rocket launch delayed"]),
        # Punctuation inside a word splits it where stored text is split, into adjacent words.
        ("NEAR(rocket launch", []),
        ("near(the", ["Rocket launch delayed"]),
        ("title:rocket", []),
        ("^launch (delayed)", ["Rocket launch delayed"]),
        ("maker's", ["Markets rally"]),
        ("rocket's", []),
        ("launch:A", []),
        ("rocket:*", ["Markets rally", "Rocket launch delayed"]),
    ],
)
async def test_query_treats_the_engines_syntax_as_plain_words(
    store: Store, query: str, expected: list[str]
) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query(query))) == expected


async def test_a_quoted_phrase_needs_its_words_next_to_each_other_in_order(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query('"launch delayed"'))) == [
        "Rocket launch delayed"
    ]
    assert await store.latest(10, query=parse_query('"delayed launch"')) == []
    # The last word of a phrase is a prefix too, as any word is.
    assert titles(await store.latest(10, query=parse_query('"ROCKET lau"'))) == [
        "Rocket launch delayed"
    ]
    assert titles(await store.latest(10, query=parse_query('"the coast"'))) == [
        "Rocket launch delayed"
    ]


async def test_or_finds_stories_with_either_newest_first(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query("rocket OR coffee"))) == [
        "Café culture",
        "Markets rally",
        "Rocket launch delayed",
    ]
    # OR binds tighter than the words around it: launch AND (rocket OR party).
    assert titles(await store.latest(10, query=parse_query("launch rocket OR party"))) == [
        "Launch party",
        "Rocket launch delayed",
    ]
    assert titles(await store.latest(10, query=parse_query('"launch party" OR cafe'))) == [
        "Launch party",
        "Café culture",
    ]


async def test_a_minus_leaves_out_stories_with_the_word_or_phrase(store: Store) -> None:
    await searchable(store)
    assert titles(await store.latest(10, query=parse_query("launch -rocket"))) == ["Launch party"]
    assert titles(await store.latest(10, query=parse_query('rocket -"maker s"'))) == [
        "Rocket launch delayed"
    ]
    assert titles(await store.latest(10, query=parse_query("rocket OR launch -WEATH"))) == [
        "Launch party",
        "Markets rally",
    ]
    assert await store.latest(10, query=parse_query("launch -launch")) == []


async def test_words_match_in_any_case_and_with_or_without_accents(store: Store) -> None:
    await searchable(store)
    for typed in ("CAFÉ", "cafe", "Cafe", "café cul"):
        assert titles(await store.latest(10, query=parse_query(typed))) == ["Café culture"]


async def test_relevance_puts_the_best_match_first_and_the_newest_first_among_equals(
    store: Store,
) -> None:
    await reload(
        store,
        [
            story_at(1, title="Rocket rocket rocket", excerpt="All about a rocket."),
            story_at(2, title="Weekly roundup", excerpt="Markets, weather, a rocket, elections."),
            story_at(3, title="Rocket news", excerpt="A rocket flew."),
            story_at(4, title="Rocket news", excerpt="A rocket flew."),
            story_at(5, title="Gardening", excerpt="Roses."),
        ],
    )
    query = parse_query("rocket")
    assert titles(await store.latest(10, query=query)) == [
        "Rocket news",
        "Rocket news",
        "Weekly roundup",
        "Rocket rocket rocket",
    ]
    by_relevance = await store.latest(10, query=query, order=Order.RELEVANCE)
    assert [story.id for story in by_relevance] == [
        story_at(1).id,
        story_at(4).id,
        story_at(3).id,
        story_at(2).id,
    ]
    # Pages of a relevance order follow on from each other.
    second = await store.latest(2, offset=2, query=query, order=Order.RELEVANCE)
    assert [story.id for story in second] == [story_at(3).id, story_at(2).id]
    # Without words there is nothing to rank: newest first.
    assert titles(await store.latest(1, order=Order.RELEVANCE)) == ["Gardening"]


async def test_relevance_on_a_topic_ranks_only_the_topics_matches(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, title="Rocket rocket rocket", excerpt="A rocket."),
            story_at(2, title="Rocket cafe", excerpt="Coffee.", topics=("Food",)),
            story_at(3, title="Cafe", excerpt="A rocket of a coffee.", topics=("Food",)),
        ],
    )
    found = await store.latest(10, topic="food", query=parse_query("rocket"), order=Order.RELEVANCE)
    assert {story.id for story in found} == {story_at(2).id, story_at(3).id}


async def test_count_matching_counts_up_to_the_cap_then_says_more(store: Store) -> None:
    await searchable(store)
    assert await store.count_matching(parse_query("rocket"), cap=10) == 2
    assert await store.count_matching(parse_query("rocket OR launch"), cap=10) == 3
    assert await store.count_matching(parse_query("rocket OR launch"), cap=2) == 3
    assert await store.count_matching(parse_query("rocket OR launch"), cap=1) == 2
    assert await store.count_matching(parse_query("coffee"), topic="FOOD", cap=10) == 1
    assert await store.count_matching(parse_query("rocket"), topic="Food", cap=10) == 0
    assert await store.count_matching(parse_query("zeppelin"), cap=10) == 0


async def test_query_and_topic_together_intersect(store: Store) -> None:
    await searchable(store)
    await reload(store, [story_at(5, title="Coffee rocket", topics=("Food",))])

    assert titles(await store.latest(10, topic="food", query=parse_query("coffee"))) == [
        "Coffee rocket",
        "Café culture",
    ]
    assert titles(await store.latest(10, topic="FOOD", query=parse_query("rocket"))) == [
        "Coffee rocket"
    ]
    assert await store.latest(10, topic="Space", query=parse_query("rocket")) == []


async def test_search_follows_replaced_and_retired_stories(store: Store) -> None:
    await searchable(store)
    await reload(
        store,
        [story_at(1, title="Probe lands", excerpt="On the moon.")],
        retire=[story_at(2).id],
    )

    assert await store.latest(10, query=parse_query("rocket")) == []
    assert titles(await store.latest(10, query=parse_query("probe moon"))) == ["Probe lands"]


async def test_search_is_newest_first_with_ties_broken_by_id_across_reloads(
    store: Store,
) -> None:
    # Stories arriving in later reloads land between and among those already stored: one
    # published before all of them, and more in an already occupied minute.
    await reload(store, [story_at(n, minutes=10, title=f"news tied {n}") for n in (10, 12)])
    await reload(store, [story_at(n, title=f"news plain {n}") for n in (20, 30)])
    await reload(
        store,
        [
            story_at(1, title="news early"),
            *(story_at(n, minutes=10, title=f"news tied {n}") for n in (11, 13)),
        ],
    )

    newest_first = titles(await store.latest(20))
    assert len(newest_first) == 7
    assert titles(await store.latest(20, query=parse_query("news"))) == newest_first
    assert titles(await store.latest(20, query=parse_query("tied"))) == [
        title for title in newest_first if "tied" in title
    ]
    assert (
        titles(await store.latest(2, offset=1, query=parse_query("tied")))
        == [title for title in newest_first if "tied" in title][1:3]
    )
    assert titles(await store.latest(20, topic="AI", query=parse_query("tied"))) == titles(
        await store.latest(20, query=parse_query("tied"))
    )


async def test_search_follows_a_changed_publication_time(store: Store) -> None:
    await reload(store, [story_at(n, title=f"rocket {n}") for n in range(1, 4)])
    await reload(
        store, [story_at(1, minutes=60, title="rocket 1"), story_at(3, minutes=0, title="rocket 3")]
    )
    assert titles(await store.latest(10, query=parse_query("rocket"))) == [
        "rocket 1",
        "rocket 2",
        "rocket 3",
    ]
    assert titles(await store.latest(10, topic="ai", query=parse_query("rocket"))) == [
        "rocket 1",
        "rocket 2",
        "rocket 3",
    ]


async def test_linked_stories_are_found_in_both_directions(store: Store) -> None:
    hub = story_at(1, related=(make_related(story_at(2).url), make_related(story_at(3).url)))
    spoke = story_at(4, related=(make_related(story_at(1).url),))
    await reload(store, [hub, story_at(2), story_at(3), spoke, story_at(5)])

    linked = await store.linked_stories([hub.id, story_at(2).id, spoke.id, story_at(5).id])
    assert linked == {
        hub.id: {story_at(2).id, story_at(3).id, spoke.id},
        story_at(2).id: {hub.id},
        spoke.id: {hub.id},
    }


async def test_linked_stories_ignore_links_to_stories_not_stored(store: Store) -> None:
    lonely = story_at(1, related=(make_related("https://elsewhere.example.org/never-loaded"),))
    await reload(store, [lonely, story_at(2, related=(make_related(story_at(3).url),))])
    assert await store.linked_stories([lonely.id, story_at(2).id]) == {}

    # Once the linked story is loaded, the link counts; once retired, it no longer does.
    await reload(store, [story_at(3)])
    assert await store.linked_stories([story_at(3).id]) == {story_at(3).id: {story_at(2).id}}
    await reload(store, retire=[story_at(2).id])
    assert await store.linked_stories([story_at(3).id]) == {}
    assert await store.linked_stories([]) == {}


async def test_a_fresh_seed_index_is_empty(store: Store) -> None:
    index = await store.seed_index()
    assert (index.generation, dict(index.files), index.reloaded_at, index.folder) == (
        0,
        {},
        None,
        "",
    )


async def test_seed_index_reads_back_what_reloads_recorded(store: Store) -> None:
    loaded = record("a/one.yaml", story_id=story_at(1).id, rank=(2, -1, 1_700_000_000))
    rejected = record("b/two.yaml", status="rejected", error="title: missing")
    gone = record("c/three.yaml", status="duplicate", story_id=story_at(1).id, rank=(1,))
    await reload(store, [story_at(1)], put_files=[loaded, rejected, gone], folder="/srv/a")
    updated = record("b/two.yaml", size=99, status="loaded", story_id=story_at(2).id)
    await reload(store, [story_at(2)], put_files=[updated], delete_files=["c/three.yaml"])

    index = await store.seed_index()
    assert index.generation == 2
    assert index.files == {"a/one.yaml": loaded, "b/two.yaml": updated}
    assert index.reloaded_at == RELOADED_AT
    assert index.folder == "/srv/seeds"


async def test_a_reload_planned_on_an_old_generation_is_refused(store: Store) -> None:
    await reload(store, [story_at(1)])
    stale = ReloadChanges(
        expected_generation=0,
        reloaded_at=RELOADED_AT,
        upsert=[(store.encode_story(story_at(2)), "two.yaml")],
        retire=[story_at(1).id],
    )
    with pytest.raises(StaleReload):
        await store.apply_reload(stale)

    assert (await store.seed_index()).generation == 1
    assert titles(await store.latest(10)) == [story_at(1).title]


async def test_a_reload_that_violates_a_constraint_changes_nothing(loaded: Store) -> None:
    before = await state(loaded)
    changes = dataclasses.replace(
        failing_reload(loaded),
        # Written after every story change: all of them must be rolled back.
        put_files=[record("bad.yaml", status="exploded")],  # type: ignore[arg-type]
    )
    with pytest.raises(StoreError, match="reload not applied") as failed:
        await loaded.apply_reload(changes)
    assert "\n" not in str(failed.value)

    assert await state(loaded) == before


async def test_topics_matching_prefers_names_that_start_with_the_text(store: Store) -> None:
    await reload(
        store,
        [
            story_at(1, topics=("Computer Vision", "AI")),
            story_at(2, topics=("Vision Pro",)),
            story_at(3, topics=("Vision Pro", "Climate")),
        ],
    )

    matched = await store.topics(matching="  VIS")

    assert [topic.name for topic in matched] == ["Vision Pro", "Computer Vision"]


async def test_topics_matching_treats_like_wildcards_as_text(store: Store) -> None:
    await reload(store, [story_at(1, topics=("100% Renewable", "AI_ethics", "AIX"))])

    assert [t.name for t in await store.topics(matching="%")] == ["100% Renewable"]
    assert [t.name for t in await store.topics(matching="i_")] == ["AI_ethics"]


async def test_topics_limit(store: Store) -> None:
    await reload(store, [story_at(n, topics=(f"Topic {n}",)) for n in range(30)])

    assert len(await store.topics(limit=25)) == 25
    assert len(await store.topics(matching="topic", limit=25)) == 25


async def test_seed_status_lists_rejected_files_and_the_last_reload(store: Store) -> None:
    kept = story_at(1)
    rejected = [
        SeedFileRecord("a.txt", 1, 1, "d1", "rejected", kept.id, (1,), "title: missing"),
        SeedFileRecord("b.txt", 1, 1, "d2", "rejected", None, (), "invalid YAML"),
        SeedFileRecord("c.txt", 1, 1, "d3", "loaded", story_at(2).id, (1,)),
    ]
    await reload(store, [kept, story_at(2)], put_files=rejected)

    status = await store.seed_status()

    assert status.rejected == (("a.txt", "title: missing", True), ("b.txt", "invalid YAML", False))
    assert status.reloaded_at == RELOADED_AT
    assert status.folder == "/srv/seeds"


_JUNK = [
    '"', "-", " ", "OR", "topic:", ":", "*", "^", "(", ")", "'", "\\", "\x00", "NEAR", "AND",
    "NOT", "title:", "é", "ß", "🤖", "א", "rocket", "ro", "launch", "café", "\u0301", "{", "}",
]  # fmt: skip


async def test_any_search_that_parses_runs_on_the_store_newest_first_or_by_relevance(
    store: Store,
) -> None:
    await searchable(store)
    chance = random.Random(3)
    searched = 0
    while searched < 60:
        text = "".join(chance.choice(_JUNK) for _ in range(chance.randint(1, 14)))
        try:
            query = parse_query(text)
        except QuerySyntaxError:
            continue
        searched += 1
        for order in Order:
            found = await store.latest(10, query=query, order=order)
            assert len(found) <= 4, text
        assert await store.count_matching(query, topic="food", cap=3) <= 4, text


async def test_stories_published_before_1970_are_found_by_words_on_their_topic(
    store: Store,
) -> None:
    sixties = -60 * 24 * 365 * 60  # minutes from 2024: 1964
    await reload(
        store,
        [
            # Two in one second: the second one's search key is not a whole multiple.
            story_at(1, minutes=sixties, title="Moon landing", topics=("Space",)),
            story_at(2, minutes=sixties, title="Moon walk", topics=("Space",)),
            story_at(3, minutes=sixties + 1, title="Moon poem", topics=("Arts",)),
            story_at(4, title="Moon base", topics=("Space",)),
        ],
    )
    found = await store.latest(10, topic="space", query=parse_query("moon"))
    assert sorted(titles(found)) == ["Moon base", "Moon landing", "Moon walk"]
    assert titles(found)[0] == "Moon base"
    assert await store.count_matching(parse_query("moon"), topic="space", cap=10) == 3
