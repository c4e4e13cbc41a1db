"""The words of the search index (migrations/0011_search_terms.sql): reloads add the words of
what they index, and a search reads them to ask FTS5 for the words a prefix stands for
(`recog` as `recognise` OR `recognition`) rather than for the prefix, which FTS5 can only
answer by gathering every match of every such word before the first one is returned."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiosqlite

from bot.search_query import Query, is_prefix

# A prefix standing for more indexed words than this is left to FTS5 ("con" in a real news
# corpus stands for hundreds): asking for each would cost more than FTS5's own gathering.
MAX_EXPANSION = 32

# The index's own tokenizer (migrations/0010), so that the words recorded are the words FTS5
# indexed: split and folded (case, accents) exactly as it does.
TOKENIZER = "unicode61 remove_diacritics 2"
# Texts are tokenized a batch at a time, as one document each: one pass of the tokenizer, with
# none of the per-story work of an index entry.
_TEXTS_PER_DOCUMENT = 2000

_CREATE_SCRATCH = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.newsbot_new_text USING fts5"
    f" (text, content = '', detail = none, tokenize = \"{TOKENIZER}\")",
    "CREATE VIRTUAL TABLE IF NOT EXISTS temp.newsbot_new_words"
    " USING fts5vocab (temp, newsbot_new_text, row)",
)
_ADD_TEXT = "INSERT INTO temp.newsbot_new_text (rowid, text) VALUES (?, ?)"
_RECORD_WORDS = "INSERT OR IGNORE INTO search_terms (term) SELECT term FROM temp.newsbot_new_words"
_CLEAR_SCRATCH = "INSERT INTO temp.newsbot_new_text (newsbot_new_text) VALUES ('delete-all')"

_WORDS_STARTING = "SELECT term FROM search_terms WHERE term >= ? AND term < ? ORDER BY term LIMIT ?"


async def record_words(writer: aiosqlite.Connection, texts: Iterable[tuple[str, str]]) -> None:
    """Add the words of these (title, excerpt) texts to search_terms, in the caller's
    transaction."""
    lines = [f"{title}\n{excerpt}" for title, excerpt in texts]
    documents = [
        (number, "\n".join(lines[start : start + _TEXTS_PER_DOCUMENT]))
        for number, start in enumerate(range(0, len(lines), _TEXTS_PER_DOCUMENT), start=1)
    ]
    if not documents:
        return
    for statement in _CREATE_SCRATCH:
        await writer.execute(statement)
    await writer.executemany(_ADD_TEXT, documents)
    await writer.execute(_RECORD_WORDS)
    await writer.execute(_CLEAR_SCRATCH)


Read = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]


async def expansions(read: Read, query: Query) -> dict[str, tuple[str, ...]]:
    """For each prefix of `query` (a term's last word, as typed), the indexed words it stands
    for, when they are few enough to ask for one by one.

    Only prefixes in ASCII are looked up: folding them is lowercasing, exactly as the
    tokenizer does. Others (and prefixes standing for too many words) are left out, for FTS5
    to match as prefixes itself: slower, never different.
    """
    found: dict[str, tuple[str, ...]] = {}
    for prefix in sorted(_prefixes(query)):
        low, high = prefix_range(prefix.lower())
        rows = await read(_WORDS_STARTING, (low, high, MAX_EXPANSION + 1))
        if len(rows) <= MAX_EXPANSION:
            found[prefix] = tuple(str(row[0]) for row in rows)
    return found


def _prefixes(query: Query) -> set[str]:
    return {
        term.tokens[-1]
        for term in query.terms
        if is_prefix(term.tokens[-1]) and term.tokens[-1].isascii()
    }


def prefix_range(prefix: str) -> tuple[str, str]:
    """The [low, high) range of the strings starting with `prefix` (not empty), in SQLite's
    binary order, which is code point order."""
    return prefix, prefix[:-1] + chr(ord(prefix[-1]) + 1)
