"""What a /news page button carries in its custom id: the press it stands for (`PageTurn`), with
the search in it, or a short key to a search too long to fit (`LongSearches`). Pure, so that
any newsbot process can answer a press, across restarts."""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from bot.search_query import Order

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
PAGE_BUTTON = re.compile(
    r"news:(?P<direction>[np])(?P<relevance>r?):(?P<owner>[0-9a-z]+):(?P<expires>[0-9a-z]+):(?P<per_page>[1-9a])"
    r":(?P<offset>[0-9a-z]+):(?P<page>[0-9a-z]+):(?P<search>.*)",
    re.DOTALL,
)
KEPT = "#"  # a search that starts with this is a key into LongSearches


def _base36(number: int) -> str:
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _BASE36[digit] + digits
        if number == 0:
            return digits


def encode_search(topic: str | None, words: str | None) -> str:
    """A topic and words as one string: the topic's length (base 36), ":", topic, words."""
    topic = topic or ""
    return f"{_base36(len(topic))}:{topic}{words or ''}"


def decode_search(search: str) -> tuple[str | None, str | None]:
    length, _, rest = search.partition(":")
    size = int(length, 36)
    return rest[:size] or None, rest[size:] or None


@dataclass(frozen=True, slots=True)
class PageTurn:
    """A press of Previous or Next, as the button's custom id carries it.

    Next carries the page to show (`offset`, `page`); Previous carries the page it sits under,
    since the page before is only known by laying out the stories again (`page_before`).
    `expires` is when the button stops working (Unix seconds, newsbot's clock), `search`
    is the topic and words (`encode_search`) or, when they are too long, a key to them, and
    `order` the order asked for: "r" after the direction for relevance, nothing for newest,
    so that buttons from before there was a choice still read as newest first.
    """

    backwards: bool
    owner_id: int
    expires: int
    per_page: int
    offset: int
    page: int
    search: str
    order: Order = Order.NEWEST

    @property
    def custom_id(self) -> str:
        numbers = (self.owner_id, self.expires, self.per_page, self.offset, self.page)
        fields = ":".join(_base36(number) for number in numbers)
        direction = "p" if self.backwards else "n"
        relevance = "r" if self.order is Order.RELEVANCE else ""
        return f"news:{direction}{relevance}:{fields}:{self.search}"

    @classmethod
    def from_custom_id(cls, custom_id: str) -> PageTurn | None:
        match = PAGE_BUTTON.fullmatch(custom_id)
        return cls.from_match(match) if match else None

    @classmethod
    def from_match(cls, match: re.Match[str]) -> PageTurn:
        number = functools.partial(int, base=36)
        return cls(
            backwards=match["direction"] == "p",
            owner_id=number(match["owner"]),
            expires=number(match["expires"]),
            per_page=number(match["per_page"]),
            offset=number(match["offset"]),
            page=number(match["page"]),
            search=match["search"],
            order=Order.RELEVANCE if match["relevance"] else Order.NEWEST,
        )


class LongSearches:
    """Searches too long for a custom id, kept in memory while their buttons work.

    A topic (up to 100 characters) and words (up to 512) do not always fit in the 100
    characters of a custom id beside the page state. Most searches do and travel in it; the
    rest are kept here under a short key, and a press after a restart gets the "expired"
    answer. A database row would survive a restart, but /news would then write on every use,
    and a write waits behind a seed reload's transaction.
    """

    def __init__(self) -> None:
        self._kept: dict[str, tuple[str | None, str | None, float]] = {}

    def keep(self, topic: str | None, words: str | None, *, until: float, now: float) -> str:
        self._kept = {key: kept for key, kept in self._kept.items() if kept[2] >= now}
        digest = hashlib.blake2b(f"{topic}\0{words}".encode(), digest_size=8).hexdigest()
        key = KEPT + digest
        self._kept[key] = (topic, words, until)
        return key

    def recall(self, key: str) -> tuple[str | None, str | None] | None:
        kept = self._kept.get(key)
        return None if kept is None else kept[:2]
