"""A parsed RSS or Atom feed to seed files: pure (no I/O, no clock), so a test can check every
rule on a hand-written feed.

Each entry becomes one seed file, or is skipped with the reason. The file's name comes from the
entry's stable identity and its bytes only from the entry and the feed's own fields, so the
same entry always makes the same file, whoever fetched it from wherever.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import feedparser
import yaml
from ftfy.fixes import unescape_html

from bot.discord_limits import DESCRIPTION_LIMIT, TITLE_LIMIT
from bot.embeds import shorten
from bot.models import topic_key
from bot.seeds import DEFAULT_MAX_FILE_BYTES, MAX_IMAGES, MAX_TOPICS, parse_seed
from bot.urls import is_web_url

# Imported files are named `feed_<hash>.txt`: recognisable in a seed folder, and apart from
# hand-written seeds.
NAME_PREFIX = "feed_"
_SPACES = re.compile(r"\s+")
# A URI scheme ("https:", "tag:", "urn:") marks an id unique across the web; a bare one ("42")
# is only unique within its feed.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
Entry = Mapping[str, Any]


class NotAFeed(Exception):
    """The bytes hold no feed entries: the message says why, in one line."""


@dataclass(frozen=True, slots=True)
class SeedFile:
    name: str
    data: bytes


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    entry: str  # the entry as a person would find it: its title, link, id or position
    reason: str


@dataclass(frozen=True, slots=True)
class Conversion:
    seeds: tuple[SeedFile, ...]
    skipped: tuple[SkippedEntry, ...]


@dataclass(frozen=True, slots=True)
class FeedSource:
    """What every entry of one feed shares: its outlet, and where its bare ids belong."""

    name: str  # the feed's title
    domain: str  # the host of the feed's link (the site's home), without "www."
    home: str  # the feed's link, else its title


class _Skip(Exception):
    """The entry cannot be a story: the message says why."""


def parse_feed(data: bytes, headers: Mapping[str, str] | None = None) -> Any:
    """feedparser's reading of the bytes, or NotAFeed. `headers` are the HTTP response's
    (Content-Location resolves relative links, Content-Type names the encoding).

    feedparser recovers what it can from malformed XML ("bozo" feeds); only a feed it got no
    entries out of is refused."""
    # Bytes, never a string: given a string, feedparser would fetch URLs or open files itself.
    parsed = feedparser.parse(data, response_headers=dict(headers or {}))
    if parsed.entries:
        return parsed
    if parsed.bozo:
        raise NotAFeed(f"not a readable feed: {_parse_error(parsed.bozo_exception)}")
    raise NotAFeed("the feed has no entries")


def _parse_error(error: Exception) -> str:
    line = getattr(error, "getLineNumber", None)
    message = getattr(error, "getMessage", None)
    if callable(line) and callable(message):
        return f"line {line()}: {message()}"
    return " ".join(str(error).split()) or type(error).__name__


def convert_feed(
    parsed: Any, topics: Sequence[str] = (), max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> Conversion:
    """One seed file per usable entry. Every file is read back through newsbot's own seed
    parser: an entry that would not load is skipped with the parser's reason, never written.
    An entry repeated in the feed (the same id) is written once."""
    source = feed_source(parsed.feed)
    seeds: dict[str, SeedFile] = {}
    skipped: list[SkippedEntry] = []
    for position, entry in enumerate(parsed.entries, 1):
        label = entry_label(entry, position)
        try:
            seed = seed_file(entry, source, topics)
        except _Skip as skip:
            skipped.append(SkippedEntry(label, str(skip)))
            continue
        verdict = parse_seed(seed.data, seed.name, max_file_bytes)
        if not verdict.ok:
            skipped.append(SkippedEntry(label, "; ".join(map(str, verdict.errors))))
        elif seed.name in seeds:
            skipped.append(SkippedEntry(label, "the same entry appears earlier in the feed"))
        else:
            seeds[seed.name] = seed
    return Conversion(tuple(seeds.values()), tuple(skipped))


def feed_source(feed: Entry) -> FeedSource:
    home = (feed.get("link") or "").strip()
    name = _one_line(_text_of(feed, "title"))
    return FeedSource(name=name, domain=_domain(home), home=home or name)


def _domain(url: str) -> str:
    if not is_web_url(url):
        return ""
    host = (urlsplit(url).hostname or "").lower()
    return host.removeprefix("www.")


def entry_label(entry: Entry, position: int) -> str:
    title = _one_line(_text_of(entry, "title"))
    return title or entry.get("link") or entry.get("id") or f"entry {position}"


def seed_file(entry: Entry, source: FeedSource, topics: Sequence[str] = ()) -> SeedFile:
    fields = seed_fields(entry, source, topics)
    return SeedFile(seed_name(entry, source.home), render_seed(fields))


def seed_fields(entry: Entry, source: FeedSource, topics: Sequence[str]) -> dict[str, Any]:
    title = shorten(_one_line(_text_of(entry, "title")), TITLE_LIMIT)
    link = (entry.get("link") or "").strip()
    if not title and not is_web_url(link):
        raise _Skip("no title and no http(s) link")
    if not title:
        raise _Skip("no title")
    if not is_web_url(link):
        raise _Skip("no http(s) link")
    published = published_at(entry)
    if published is None:
        raise _Skip("no published or updated date")
    fields: dict[str, Any] = {"title": _as_loaded(title)}
    excerpt = shorten(_one_line(_text_of(entry, "summary")), DESCRIPTION_LIMIT)
    if excerpt:
        fields["excerpt"] = _as_loaded(excerpt)
    fields["publishedDateTime"] = published.strftime("%Y-%m-%dT%H:%M:%SZ")
    fields["webUrl"] = link
    # A feed without a title or a home link: the story link's host names the outlet.
    domain = source.domain or _domain(link)
    fields["provider"] = {"name": _as_loaded(source.name or domain), "domain": domain}
    names = entry_topics(entry, topics)
    if names:
        fields["topics"] = [_as_loaded(name) for name in names]
    images = entry_images(entry)
    if images:
        fields["images"] = images
    return fields


def published_at(entry: Entry) -> datetime | None:
    """When the entry was published, else last updated (feedparser reads both as UTC); None
    when it says neither. The time of the import is never used: it would date a story by when
    it was fetched, and change the file each time."""
    parsed: time.struct_time | None = entry.get("published_parsed") or entry.get("updated_parsed")
    if parsed is None:
        return None
    return datetime(*parsed[:6], tzinfo=UTC)


def entry_topics(entry: Entry, topics: Sequence[str]) -> list[str]:
    """The --topic names first (so the topic cap never cuts them), then the entry's own
    categories: a category's label where it has one (Atom's display name), else its term.
    Names that differ only in case or spacing are one topic."""
    given = [*topics, *(tag.get("label") or tag.get("term") or "" for tag in entry.get("tags", ()))]
    names: dict[str, str] = {}
    for raw in given:
        name = _one_line(raw)
        if name:
            names.setdefault(topic_key(name), name)
    return list(names.values())[:MAX_TOPICS]


def entry_images(entry: Entry) -> list[dict[str, Any]]:
    """The entry's images, the lead first: media:content (the full image), then enclosures of
    an image type, then media:thumbnail (a small copy, the last resort)."""
    found: dict[str, dict[str, Any]] = {}
    candidates = [
        *(item for item in entry.get("media_content", ()) if _is_image(item)),
        *(
            {"url": link.get("href"), "type": link.get("type")}
            for link in entry.get("links", ())
            if link.get("rel") == "enclosure" and _is_image(link)
        ),
        *entry.get("media_thumbnail", ()),
    ]
    for item in candidates:
        url = (item.get("url") or "").strip()
        if is_web_url(url) and url not in found:
            image: dict[str, Any] = {"url": url}
            for dimension in ("width", "height"):
                size = _positive(item.get(dimension))
                if size is not None:
                    image[dimension] = size
            found[url] = image
    return list(found.values())[:MAX_IMAGES]


def _is_image(item: Mapping[str, Any]) -> bool:
    kind = (item.get("type") or "").lower()
    return item.get("medium") == "image" or kind.startswith("image/")


def _positive(value: object) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def seed_name(entry: Entry, home: str) -> str:
    """The file name from the entry's identity: its id (RSS guid, Atom id), else its link (an
    entry without a link is never a story, so no weaker identity such as title and date is
    needed). A bare id ("42") is only unique within its feed, so the feed's home joins it; a
    URI id is the same entry in whichever feed carries it."""
    identity = str(entry.get("id") or entry.get("link") or "")
    if not _URI_SCHEME.match(identity):
        identity = f"{home}\n{identity}"
    digest = hashlib.blake2b(identity.encode("utf-8"), digest_size=10).hexdigest()
    return f"{NAME_PREFIX}{digest}.txt"


def render_seed(fields: Mapping[str, Any]) -> bytes:
    front = yaml.safe_dump(
        dict(fields), sort_keys=False, allow_unicode=True, default_flow_style=False, width=10**6
    )
    return f"---\n{front}---\n".encode()


# --- text -------------------------------------------------------------------------------------


def _text_of(item: Entry, name: str) -> str:
    """A text field as plain text: feedparser says which are HTML (an RSS description always
    is; an Atom text construct says so itself)."""
    value = item.get(name) or ""
    detail = item.get(f"{name}_detail") or {}
    if detail.get("type") in {"text/html", "application/xhtml+xml"}:
        return plain_text(value)
    return str(value)


def plain_text(html: str) -> str:
    """The text of an HTML fragment, entities decoded, with a space where a block or line
    break separated words."""
    reader = _TextReader()
    reader.feed(html)
    reader.close()
    return "".join(reader.parts)


class _TextReader(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "blockquote"})
    _BREAKS |= frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "hr", "img", "figure", "section"})
    # Their content is never text: feedparser drops scripts already, but not every kind.
    _HIDDEN = frozenset({"script", "style", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._HIDDEN:
            self._hidden += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _as_loaded(text: str) -> str:
    """The text as written so that the seed parser, which decodes HTML entities (feeds' way of
    escaping), reads back exactly `text`: a literal "&lt;" is written "&amp;lt;"."""
    return text.replace("&", "&amp;") if unescape_html(text) != text else text
