"""The search language: parsing, refusals, hostile input and the compiled store queries."""

from __future__ import annotations

import random
import sqlite3

import asyncpg
import pytest

from bot.errors import UserError
from bot.search_query import (
    MAX_QUERY_LENGTH,
    MAX_TERMS,
    MAX_WORD_LENGTH,
    Order,
    Query,
    QuerySyntaxError,
    Term,
    describe,
    describe_matches,
    order_for,
    parse_query,
    refold,
    to_fts5,
    to_tsquery,
    tokens_in,
)


def word(text: str) -> Term:
    return Term(tuple(text.split()))


def phrase(text: str) -> Term:
    return Term(tuple(text.split()), phrase=True)


# Syntax elements


def test_every_word_is_required() -> None:
    assert parse_query("facial recognition").clauses == ((word("facial"),), (word("recognition"),))


def test_words_are_kept_as_typed_for_each_store_to_fold_as_it_folded_the_stories() -> None:
    assert parse_query("Café ÉCOLE Straße").clauses == (
        (word("Café"),),
        (word("ÉCOLE"),),
        (word("Straße"),),
    )


def test_refold_puts_a_stores_folding_in_place_of_each_token() -> None:
    query = parse_query('Café "Ærø news" OR x -ŒUVRE')
    assert tokens_in(query) == {"Café", "Ærø", "news", "x", "ŒUVRE"}
    folded = {"Café": ("cafe",), "Ærø": ("aero",), "news": ("news",), "x": ("x",)}
    folded["ŒUVRE"] = ("oeuvre",)
    assert refold(query, folded) == Query(
        ((word("cafe"),), (phrase("aero news"), word("x"))), (word("oeuvre"),)
    )


def test_refold_drops_what_folds_to_nothing_and_a_clause_left_empty_matches_nothing() -> None:
    query = parse_query("a OR b c -d")
    assert refold(query, {"a": (), "b": ("b",), "c": ("c",), "d": ()}) == Query(
        ((word("b"),), (word("c"),))
    )
    assert refold(query, {"a": ("a",), "b": (), "c": (), "d": ("d",)}) is None


def test_quoted_phrase_is_one_term_of_adjacent_words() -> None:
    assert parse_query('"Facial  Recognition"').clauses == ((phrase("Facial Recognition"),),)


def test_or_joins_words_into_alternatives() -> None:
    assert parse_query("ai OR robotics").clauses == ((word("ai"), word("robotics")),)


def test_or_joins_a_phrase_and_a_word() -> None:
    assert parse_query('"a b" OR c').clauses == ((phrase("a b"), word("c")),)


def test_or_binds_tighter_than_the_implicit_and() -> None:
    assert parse_query("a b OR c").clauses == ((word("a"),), (word("b"), word("c")))


def test_chained_or_makes_one_clause() -> None:
    assert parse_query("a OR b OR c d").clauses == (
        (word("a"), word("b"), word("c")),
        (word("d"),),
    )


def test_lowercase_or_is_a_word() -> None:
    assert parse_query("war or peace").clauses == ((word("war"),), (word("or"),), (word("peace"),))


def test_minus_excludes_a_word() -> None:
    query = parse_query("ai -crypto")
    assert query.clauses == ((word("ai"),),)
    assert query.excluded == (word("crypto"),)


def test_minus_excludes_a_phrase() -> None:
    assert parse_query('bitcoin -"hard fork"').excluded == (phrase("hard fork"),)


def test_a_hyphen_inside_a_word_does_not_exclude() -> None:
    query = parse_query("self-driving")
    assert query.clauses == ((word("self driving"),),)
    assert query.excluded == ()


def test_topic_shortcut_is_returned_apart_from_the_terms() -> None:
    query = parse_query("topic:AI chips")
    assert query.topic == "AI"
    assert query.clauses == ((word("chips"),),)


def test_quoted_topic_keeps_its_spaces() -> None:
    assert parse_query('cameras topic:"Computer  Vision"').topic == "Computer Vision"


def test_topic_alone_is_a_query_without_terms() -> None:
    query = parse_query("Topic:AI")
    assert query == Query(topic="AI")
    assert to_fts5(query) is None
    assert to_tsquery(query) is None


def test_punctuation_splits_a_word_where_the_stores_split_it() -> None:
    assert parse_query("don't").clauses == ((word("don t"),),)


def test_word_of_symbols_only_is_dropped() -> None:
    assert parse_query("ai 🤖 OR *").clauses == ((word("ai"),),)


# Refusals: one line, with an example


@pytest.mark.parametrize(
    ("text", "start"),
    [
        ('"facial recognition', "A quote is never closed"),
        ('ai -"hard fork', "A quote is never closed"),
        ("OR ai", "OR needs a word or phrase on each side"),
        ("ai OR", "OR needs a word or phrase on each side"),
        ("ai OR OR robotics", "OR needs a word or phrase on each side"),
        ("ai OR -crypto", "OR needs a word or phrase on each side"),
        ("ai -", "A minus sign needs a word after it"),
        ("ai - crypto", "A minus sign needs a word after it"),
        ('ai ""', "Empty quotes"),
        ('ai "  "', "Empty quotes"),
        ("-crypto", "Nothing to search for: add a word to find"),
        ('-"hard fork" -crypto', "Nothing to search for: add a word to find"),
        ("", "Nothing to search for"),
        ("🤖 ~ *", "Nothing to search for"),
        ("topic:", "topic: needs a topic name"),
        ("topic:AI topic:Space", "A search can name one topic"),
        ("x" * (MAX_QUERY_LENGTH + 1), "That search is too long"),
        ("a" * (MAX_WORD_LENGTH + 1), "A word that long cannot be searched for"),
        (" ".join(["ai"] * (MAX_TERMS + 1)), "That search has too many words"),
    ],
)
def test_refusal_says_why_in_one_line_with_an_example(text: str, start: str) -> None:
    with pytest.raises(QuerySyntaxError) as refused:
        parse_query(text)
    message = str(refused.value)
    assert message.startswith(start)
    assert ", e.g. " in message
    assert "\n" not in message


def test_refusal_is_a_user_error() -> None:
    assert issubclass(QuerySyntaxError, UserError)


def test_limits_themselves_are_accepted() -> None:
    parse_query("a" * MAX_WORD_LENGTH)
    parse_query(" ".join(["ai"] * MAX_TERMS))
    parse_query(("w" * (MAX_WORD_LENGTH - 1) + " ") * (MAX_QUERY_LENGTH // MAX_WORD_LENGTH))


# Hostile input: parsed as plain words or refused, nothing else


def test_fts5_syntax_is_plain_words() -> None:
    query = parse_query("NEAR(a b) AND title:x NOT c* ^d")
    assert query.clauses == (
        (word("NEAR a"),),
        (word("b"),),
        (word("AND"),),
        (word("title x"),),
        (word("NOT"),),
        (word("c"),),
        (word("d"),),
    )
    assert query.excluded == ()


def test_control_characters_and_nul_separate_words() -> None:
    assert parse_query("ai\x00robots\x1b\u200f").clauses == ((word("ai"),), (word("robots"),))


def test_right_to_left_text_is_words() -> None:
    assert parse_query("\u200fשלום עולם").clauses == ((word("שלום"),), (word("עולם"),))


def test_five_thousand_characters_are_refused() -> None:
    with pytest.raises(QuerySyntaxError):
        parse_query("ai " * 1700)


_JUNK_ALPHABET = [
    '"', "-", " ", "OR", "or", "topic:", ":", "*", "^", "(", ")", "'", "\\", "\x00", "\n",
    "NEAR", "AND", "NOT", "é", "ß", "🤖", "\u200f", "א", "ai", "x", "\u0301", "_", "$1", "%",
]  # fmt: skip


def test_generated_junk_yields_a_query_or_a_syntax_error() -> None:
    chance = random.Random(20261130)
    for _ in range(3000):
        text = "".join(chance.choice(_JUNK_ALPHABET) for _ in range(chance.randint(0, 40)))
        try:
            query = parse_query(text)
        except QuerySyntaxError:
            continue
        assert isinstance(query, Query)
        for compiled in (to_fts5(query), to_tsquery(query)):
            assert compiled is None or "\x00" not in compiled
        describe(query)


# Compilers


def test_fts5_quotes_every_word_as_a_prefix() -> None:
    assert to_fts5(parse_query("facial recognition")) == '"facial"* AND "recognition"*'


def test_words_of_one_or_two_letters_match_whole_words_only() -> None:
    assert to_fts5(parse_query("AI 5G rob")) == '"AI" AND "5G" AND "rob"*'
    assert to_tsquery(parse_query("AI 5G rob")) == "'AI' & '5G' & 'rob':*"
    assert to_fts5(parse_query('"vision ai"')) == '"vision ai"'


def test_fts5_or_not_and_precedence() -> None:
    compiled = to_fts5(parse_query('aaa "bbb ccc" OR ddd -eee -"fff ggg"'))
    assert compiled == '("aaa"* AND ("bbb ccc"* OR "ddd"*)) NOT "eee"* NOT "fff ggg"*'


def test_fts5_asks_for_each_word_a_prefix_stands_for_when_they_are_known() -> None:
    query = parse_query('recog "facial Recog" -surv zzz OR AI')
    expansions = {"recog": ["recognise", "recognition"], "Recog": ["recognition"], "surv": []}
    assert to_fts5(query, expansions) == (
        '(("recognise" OR "recognition") AND "facial recognition" AND ("zzz"* OR "AI")) NOT "surv"'
    )


def test_fts5_keeps_quotes_apostrophes_and_backslashes_out_of_its_syntax() -> None:
    compiled = to_fts5(parse_query("ab\"cd O'Brien C:\\temp"))
    assert compiled == '"ab cd" AND "O Brien"* AND "C temp"*'


def test_tsquery_of_words_phrases_or_and_not() -> None:
    compiled = to_tsquery(parse_query('aaa "bbb ccc" OR ddd -eee -"fff ggg"'))
    assert compiled == ("'aaa':* & ('bbb' <-> 'ccc':* | 'ddd':*) & !'eee':* & !('fff' <-> 'ggg':*)")


def test_tsquery_keeps_quotes_apostrophes_and_backslashes_out_of_its_syntax() -> None:
    compiled = to_tsquery(parse_query("ab\"cd O'Brien C:\\temp"))
    assert compiled == "('ab' <-> 'cd') & ('O' <-> 'Brien':*) & ('C' <-> 'temp':*)"


_STORIES = [
    "Facial recognition at the border",
    "Robotics startups raise money",
    "AI and crypto: a hard fork",
    "Café owners try AI",
    "Computer vision for robots",
    "Airport delays",
]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("facial recog", [0]),
        ('"recognition facial"', []),
        ('"facial recog"', [0]),
        ("ai OR robotics", [1, 2, 3]),
        ("ai -crypto", [3]),
        ('ai -"hard fork"', [3]),
        ("cafe", [3]),
        ("robot vision OR crypto", [4]),
        ("NEAR(computer vision) AND", []),
        ("ai", [2, 3]),
        ("air", [5]),
    ],
)
def test_fts5_expression_finds_what_the_query_asks_for(text: str, found: list[int]) -> None:
    database = sqlite3.connect(":memory:")
    database.execute(
        "CREATE VIRTUAL TABLE t USING fts5(body, tokenize = 'unicode61 remove_diacritics 2')"
    )
    database.executemany("INSERT INTO t (rowid, body) VALUES (?, ?)", enumerate(_STORIES))
    rows = database.execute(
        "SELECT rowid FROM t WHERE t MATCH ? ORDER BY rowid", (to_fts5(parse_query(text)),)
    )
    assert [row[0] for row in rows] == found


async def test_tsquery_finds_what_the_query_asks_for_on_postgres(postgres_url: str) -> None:
    cases = {
        "facial recog": [0],
        '"recognition facial"': [],
        "ai OR robotics": [1, 2, 3],
        'ai -"hard fork"': [3],
        "robot vision OR crypto": [4],
        "it's O'Brien's \\ x\"": [],
        "ai": [2, 3],
        "air": [5],
    }
    connection = await asyncpg.connect(postgres_url)
    try:
        for text, found in cases.items():
            rows = await connection.fetch(
                "SELECT n - 1 FROM unnest($1::text[]) WITH ORDINALITY AS s(body, n)"
                " WHERE to_tsvector('simple', body) @@ to_tsquery('simple', $2) ORDER BY n",
                _STORIES,
                to_tsquery(parse_query(text)),
            )
            assert [row[0] for row in rows] == found, text
    finally:
        await connection.close()


# describe


def test_describe_words() -> None:
    assert (
        describe(parse_query("facial recognition"))
        == "stories with *facial* and *recognition*, newest first"
    )


def test_describe_or_and_exclusion() -> None:
    assert (
        describe(parse_query("ai OR robotics -crypto"))
        == "stories with *ai* or *robotics*, without *crypto*, newest first"
    )


def test_describe_shows_or_grouped_among_other_words() -> None:
    assert (
        describe(parse_query('drones "computer vision" OR ai'))
        == "stories with *drones* and (*“computer vision”* or *ai*), newest first"
    )


def test_describe_matches_counts_exactly_up_to_the_cap_then_says_more_than() -> None:
    assert describe_matches(1, cap=1000) == "1 match"
    assert describe_matches(37, cap=1000) == "37 matches"
    assert describe_matches(1000, cap=1000) == "1,000 matches"
    assert describe_matches(1001, cap=1000) == "more than 1,000 matches"


def test_relevance_is_the_order_only_of_a_search_with_words() -> None:
    assert order_for(parse_query("ai"), Order.RELEVANCE) is Order.RELEVANCE
    assert order_for(parse_query("topic:AI"), Order.RELEVANCE) is Order.NEWEST
    assert order_for(None, Order.RELEVANCE) is Order.NEWEST
    assert order_for(parse_query("ai"), Order.NEWEST) is Order.NEWEST


def test_describe_for_a_terminal_emphasises_nothing() -> None:
    query = parse_query('"facial recognition" OR ai -crypto')
    assert describe(query, markdown=False) == (
        "stories with “facial recognition” or ai, without crypto, newest first"
    )
