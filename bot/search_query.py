"""The search language of /news query and `newsbot news --query`: what search boxes accept
elsewhere, read into a Query and compiled for each store.

    facial recognition      both words (each a word prefix: "recog" finds "recognition")
    "facial recognition"    the words next to each other, in this order
    ai OR robotics          either; OR binds tighter than the implicit AND, as in Google:
                            `drones ai OR robotics` is drones AND (ai OR robotics)
    -crypto  -"hard fork"   without the word or the phrase
    topic:AI  topic:"Computer Vision"
                            a topic, handed back on its own rather than searched for

Everything here is pure. Words are split into tokens where the stores split stored text
(runs of letters and digits) and kept as typed: each store folds case and accents with the
very function it folded the stored text with (FTS5's tokenizer, PostgreSQL's
newsbot_search_text), so that a query and the text it should match can never disagree. The
compilers build their query syntax from those tokens only, so nothing the user typed reaches
FTS5 or tsquery syntax as it is: FTS5's own keywords (NEAR, AND, NOT, `title:x`, `*`, `^`,
parentheses) are plain words here.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from bot.errors import UserError

# Discord's limit for a string option; the command may declare it too.
MAX_QUERY_LENGTH = 512
# Each term is one more index lookup in the stores; a real query has a handful.
MAX_TERMS = 32
# Relevance ranks the newest this many matches: ranking every match of a word half the stories
# hold would score hundreds of thousands of them for one page, and the best match of a word
# years old is rarely the news being looked for.
RELEVANCE_WINDOW = 1000
# Words shorter than this match whole words only: "AI" should not find "aid", "air" and "aims",
# nor "EU" "euro"; from three letters on ("rob", "recog") a word is a prefix.
MIN_PREFIX_LENGTH = 3
# Longer than any real word, short enough that a pasted blob is refused rather than searched.
MAX_WORD_LENGTH = 64
# The page header counts matches up to this many and then says "more than": an exact count of
# a word half the stories hold would read hundreds of thousands of index entries per page, and
# counting to 1,000 on a topic that holds one story in twelve walks 12,000 matches (25 ms at a
# million stories) where 100 walk 1,200. Past a hundred, a reader narrows the search anyway.
MATCH_COUNT_CAP = 100

# Tokens as the stores split text: SQLite's unicode61 tokenizer and PostgreSQL's
# newsbot_search_text both keep runs of letters and digits and split on anything else.
_TOKEN = re.compile(r"[^\W_]+")
_TOPIC_PREFIX = "topic:"
_OR = "OR"


class Order(StrEnum):
    """How search results are ordered; the value is what /news sort: and --sort accept."""

    NEWEST = "newest"
    # By the engine's ranking (FTS5's bm25, PostgreSQL's ts_rank), newest first among equals.
    RELEVANCE = "relevance"


class QuerySyntaxError(UserError):
    """A search the parser cannot read; the message says why, with an example."""


@dataclass(frozen=True)
class Term:
    """Tokens that must appear next to each other in this order, the last as a prefix.

    A word is a term of one token (or of several when it holds punctuation: "don't" is
    "don" then "t", as the stores split it); a phrase is a term typed in quotes.
    """

    tokens: tuple[str, ...]
    phrase: bool = False


@dataclass(frozen=True)
class Query:
    """Every clause is required; a clause is satisfied by any of its terms; no excluded term
    may appear. `topic` is the topic the query named, as typed (not resolved)."""

    clauses: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    topic: str | None = None

    @property
    def has_terms(self) -> bool:
        return bool(self.clauses)

    @property
    def terms(self) -> tuple[Term, ...]:
        """Every term, required or excluded."""
        return tuple(term for clause in self.clauses for term in clause) + self.excluded


def order_for(query: Query | None, asked: Order) -> Order:
    """The order results come in: relevance ranks matches of words, so a search without any
    (none, or a topic alone) lists the newest whatever was asked."""
    return asked if query is not None and query.has_terms else Order.NEWEST


# What the lexer yields before folding: a word or phrase (possibly excluded), or OR.
@dataclass(frozen=True)
class _Item:
    text: str
    phrase: bool = False
    excluded: bool = False
    is_or: bool = False
    topic: bool = False


@dataclass
class _Clauses:
    required: list[list[_Item]] = field(default_factory=list)
    excluded: list[_Item] = field(default_factory=list)


_EXAMPLE = 'ai OR robotics -crypto "facial recognition"'
_SHORT_EXAMPLE = "facial recognition"


def _refuse(reason: str, example: str = _EXAMPLE) -> QuerySyntaxError:
    return QuerySyntaxError(f"{reason}, e.g. {example}")


def parse_query(text: str) -> Query:
    """The Query `text` asks for, or QuerySyntaxError saying what cannot be read."""
    if len(text) > MAX_QUERY_LENGTH:
        raise _refuse(
            f"That search is too long: at most {MAX_QUERY_LENGTH} characters", _SHORT_EXAMPLE
        )
    items = _lex(without_controls(text))
    topics = [item.text for item in items if item.topic]
    if len(topics) > 1:
        raise _refuse("A search can name one topic", 'topic:"Computer Vision" cameras')
    grouped = _group([item for item in items if not item.topic])
    clauses = tuple(
        clause for clause in (_terms(alternatives) for alternatives in grouped.required) if clause
    )
    excluded = _terms(grouped.excluded)
    if not clauses and excluded:
        raise _refuse(
            "Nothing to search for: add a word to find, not only words to leave out", "ai -crypto"
        )
    if not clauses and not topics:
        raise _refuse("Nothing to search for: type a word or two")
    if sum(len(clause) for clause in clauses) + len(excluded) > MAX_TERMS:
        raise _refuse(f"That search has too many words: at most {MAX_TERMS}", _SHORT_EXAMPLE)
    return Query(clauses, excluded, topics[0] if topics else None)


def without_controls(text: str) -> str:
    """Control and format characters (NUL, direction marks, zero-width joiners) as spaces:
    they are never part of a stored word, and a NUL must not reach a database."""
    return "".join(" " if unicodedata.category(char) in ("Cc", "Cf") else char for char in text)


def _lex(text: str) -> list[_Item]:
    items: list[_Item] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        item, position = _lex_item(text, position)
        items.append(item)
    return items


def _lex_item(text: str, start: int) -> tuple[_Item, int]:
    """One item starting at `start` (not a space) and where the next one may start."""
    excluded = text[start] == "-"
    position = start + 1 if excluded else start
    if excluded and (position == len(text) or text[position].isspace()):
        raise _refuse("A minus sign needs a word after it", "ai -crypto")
    if not excluded and text[position : position + len(_TOPIC_PREFIX)].lower() == _TOPIC_PREFIX:
        name, end = _lex_text(text, position + len(_TOPIC_PREFIX))
        if not name.strip():
            raise _refuse("topic: needs a topic name", 'topic:AI or topic:"Computer Vision"')
        return _Item(" ".join(name.split()), topic=True), end
    if text[position] == '"':
        phrase, end = _lex_text(text, position)
        return _Item(phrase, phrase=True, excluded=excluded), end
    word, end = _lex_text(text, position)
    if word == _OR and not excluded:
        return _Item(word, is_or=True), end
    return _Item(word, excluded=excluded), end


def _lex_text(text: str, start: int) -> tuple[str, int]:
    """A quoted phrase's inside (refused if it is never closed or empty), else a word up to
    the next space; a quote inside a word is just a character of it."""
    if start < len(text) and text[start] == '"':
        end = text.find('"', start + 1)
        if end < 0:
            raise _refuse("A quote is never closed", '"facial recognition"')
        inside = text[start + 1 : end]
        if not inside.strip():
            raise _refuse("Empty quotes: put words between them", '"facial recognition"')
        return inside, end + 1
    end = start
    while end < len(text) and not text[end].isspace():
        end += 1
    return text[start:end], end


def _group(items: list[_Item]) -> _Clauses:
    """Items into required clauses (OR joins its neighbours into one) and exclusions."""
    grouped = _Clauses()
    joining = False
    for index, item in enumerate(items):
        if item.is_or:
            after = items[index + 1] if index + 1 < len(items) else None
            before = items[index - 1] if index > 0 else None
            if not _can_join(before) or not _can_join(after):
                raise _refuse("OR needs a word or phrase on each side", "ai OR robotics")
            joining = True
        elif item.excluded:
            grouped.excluded.append(item)
        elif joining:
            grouped.required[-1].append(item)
            joining = False
        else:
            grouped.required.append([item])
    return grouped


def _can_join(item: _Item | None) -> bool:
    return item is not None and not item.is_or and not item.excluded


def _terms(items: list[_Item]) -> tuple[Term, ...]:
    """The items as terms; an item with no letters or digits (an emoji, `*`) matches nothing
    the stores keep, so it is dropped rather than refused."""
    terms = []
    for item in items:
        tokens = tokens_of(item.text)
        if tokens:
            terms.append(Term(tokens, item.phrase))
    return tuple(terms)


def tokens_of(text: str) -> tuple[str, ...]:
    """The tokens of `text`, as typed; refused when one is longer than any word."""
    tokens = tuple(_TOKEN.findall(text))
    if any(len(token) > MAX_WORD_LENGTH for token in tokens):
        raise _refuse(
            f"A word that long cannot be searched for: at most {MAX_WORD_LENGTH} characters",
            _SHORT_EXAMPLE,
        )
    return tokens


def tokens_in(query: Query) -> set[str]:
    """Every token the query's terms hold, for a store to fold in one go."""
    return {token for term in query.terms for token in term.tokens}


def refold(query: Query, folded: dict[str, tuple[str, ...]]) -> Query | None:
    """`query` with each token replaced by what a store's folding made of it (none, one or
    several tokens); None when a required clause is left without a term, so nothing matches."""

    def terms(of: tuple[Term, ...]) -> tuple[Term, ...]:
        refolded = (
            Term(tuple(t for token in term.tokens for t in folded.get(token, ())), term.phrase)
            for term in of
        )
        return tuple(term for term in refolded if term.tokens)

    clauses = tuple(terms(clause) for clause in query.clauses)
    if not all(clauses):
        return None
    return Query(clauses, terms(query.excluded), query.topic)


# Compilers. Tokens hold only letters and digits (no quote, backslash or space), and the
# quoting below would still keep one inside its string if they did.


def is_prefix(token: str) -> bool:
    """Whether `token`, when last in its term, matches the words it starts."""
    return len(token) >= MIN_PREFIX_LENGTH


def to_fts5(query: Query, expansions: Mapping[str, Sequence[str]] | None = None) -> str | None:
    """An FTS5 MATCH expression for `query`; None when it has no terms (a topic alone).

    `expansions` maps a prefix (a term's last token, as typed) to the indexed words it stands
    for: the term then asks for each of them exactly, which FTS5 answers match by match, where
    a prefix (`"recog"*`) makes it gather every match of every such word first. A prefix not
    in `expansions` is left to FTS5.
    """
    if not query.has_terms:
        return None
    known = expansions or {}
    required = " AND ".join(_fts5_clause(clause, known) for clause in query.clauses)
    if not query.excluded:
        return required
    # FTS5's NOT is binary ("a NOT b"), left-associative: (a NOT b) NOT c.
    if len(query.clauses) > 1:
        required = f"({required})"
    return required + "".join(f" NOT {_fts5_term(term, known)}" for term in query.excluded)


def _fts5_clause(terms: tuple[Term, ...], expansions: Mapping[str, Sequence[str]]) -> str:
    if len(terms) == 1:
        return _fts5_term(terms[0], expansions)
    return "(" + " OR ".join(_fts5_term(term, expansions) for term in terms) + ")"


def _fts5_term(term: Term, expansions: Mapping[str, Sequence[str]]) -> str:
    # A quoted string is one phrase in FTS5: its words adjacent.
    *head, last = term.tokens
    if not is_prefix(last):
        return _fts5_phrase(term.tokens)
    words = expansions.get(last)
    if words is None:
        return _fts5_phrase(term.tokens) + "*"
    if not words:  # no indexed word starts so: only the word itself could match
        return _fts5_phrase(term.tokens)
    phrases = [_fts5_phrase((*head, word)) for word in words]
    return phrases[0] if len(phrases) == 1 else "(" + " OR ".join(phrases) + ")"


def _fts5_phrase(tokens: Sequence[str]) -> str:
    inside = " ".join(tokens).replace('"', '""')
    return f'"{inside}"'


def to_tsquery(query: Query) -> str | None:
    """A PostgreSQL tsquery (for to_tsquery('simple', ...)); None when it has no terms."""
    if not query.has_terms:
        return None
    parts = [_tsquery_clause(clause) for clause in query.clauses]
    parts += [f"!{_tsquery_group(term)}" for term in query.excluded]
    return " & ".join(parts)


def _tsquery_clause(terms: tuple[Term, ...]) -> str:
    if len(terms) == 1:
        return _tsquery_group(terms[0])
    return "(" + " | ".join(_tsquery_term(term) for term in terms) + ")"


def _tsquery_group(term: Term) -> str:
    # Parenthesised when it is a phrase, so that `!` and `&` apply to the whole of it.
    compiled = _tsquery_term(term)
    return f"({compiled})" if len(term.tokens) > 1 else compiled


def _tsquery_term(term: Term) -> str:
    lexemes = [_tsquery_lexeme(token) for token in term.tokens]
    if is_prefix(term.tokens[-1]):
        lexemes[-1] += ":*"
    return " <-> ".join(lexemes)


def _tsquery_lexeme(token: str) -> str:
    escaped = token.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"


def describe(query: Query, order: Order = Order.NEWEST, *, markdown: bool = True) -> str:
    """How the query was read, for the page header: "stories with *ai* or *robotics*,
    without *crypto*, newest first" (without `markdown`, for a terminal or JSON: "stories
    with ai or robotics, without crypto, newest first")."""
    parts = []
    if query.clauses:
        several = len(query.clauses) > 1
        parts.append(
            "stories with "
            + " and ".join(_described_clause(clause, several, markdown) for clause in query.clauses)
        )
    else:
        parts.append("stories")
    if query.excluded:
        parts.append("without " + " or ".join(_described_term(t, markdown) for t in query.excluded))
    parts.append("newest first" if order is Order.NEWEST else "most relevant first")
    return ", ".join(parts)


def _described_clause(terms: tuple[Term, ...], among_others: bool, markdown: bool) -> str:
    described = " or ".join(_described_term(term, markdown) for term in terms)
    return f"({described})" if among_others and len(terms) > 1 else described


def _described_term(term: Term, markdown: bool) -> str:
    # Tokens are letters and digits only, so they cannot break the Markdown around them.
    words = " ".join(term.tokens)
    shown = f"“{words}”" if term.phrase else words
    return f"*{shown}*" if markdown else shown


def describe_matches(count: int, cap: int = MATCH_COUNT_CAP) -> str:
    """How many stories matched, as `count_matching` counted them up to `cap`: "1 match",
    "37 matches", "more than 1,000 matches"."""
    if count > cap:
        return f"more than {cap:,} matches"
    return f"{count:,} match" if count == 1 else f"{count:,} matches"
