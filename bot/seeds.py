"""Seed files to stories: parse bounded YAML front matter, validate it and repair what feeds break.

A seed is a line `---`, a YAML mapping, a line `---`, then an optional body. `parse_seed` turns
the bytes of one file into a SeedResult: a Story with warnings, or a rejection naming the field
and the reason. It is pure (no I/O, no clock) so it runs unchanged in worker processes.

Cost is bounded: the size is capped before libyaml sees the text, and the front matter is
built from libyaml's events by a loop that stops at the first level nested too deep, refuses
aliases (no "billion laughs") and understands only plain tags, so no Python object is ever built.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from ftfy import fix_encoding
from ftfy.chardata import UTF8_DETECTOR_RE
from ftfy.fixes import unescape_html

from bot.models import Image, Problem, Provider, Related, SeedResult, Story, topic_key
from bot.urls import InvalidURL, canonical_url, is_web_url, story_id

log = logging.getLogger(__name__)

DEFAULT_MAX_FILE_BYTES = 256 * 1024
MAX_DEPTH = 16
MAX_TOPICS = 25
MAX_IMAGES = 10
MAX_RELATED = 25
# Discord's limits for what a story shows; longer texts are stored whole and cut when rendered.
DISCORD_TITLE_LIMIT = 256
DISCORD_DESCRIPTION_LIMIT = 4096

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"
_MAPPING = "tag:yaml.org,2002:map"
_SEQUENCE = "tag:yaml.org,2002:seq"
# A tag left for the parser's resolver to decide: none written, or a bare "!".
_NO_TAGS = (None, "!")
_SPACES = re.compile(r"\s+")
_C1_CONTROLS = re.compile("[\x80-\x9f]")


class _AliasRefused(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__("anchors and aliases are not allowed")
        self.problem_mark = mark


class _TooDeep(Exception):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__(f"nesting deeper than {MAX_DEPTH} levels")
        self.mark = mark


@cache
def _loader() -> type[yaml.SafeLoader]:
    """libyaml's event parser, or PyYAML's pure-Python one when libyaml is missing."""
    loader: type[Any] = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    if loader is yaml.SafeLoader:
        log.warning("libyaml is missing: seeds are parsed by the pure-Python loader (~10x slower)")
    return loader


@cache
def _implicit_resolvers() -> dict[str | None, tuple[tuple[str, re.Pattern[str]], ...]]:
    """The safe loader's rules for plain scalars, by first character ("" for an empty scalar,
    None for the rules that apply to any), without timestamps: dates stay text so that they
    get field-specific errors from our own parser."""
    table = _loader().yaml_implicit_resolvers
    anywhere = [(tag, rx) for tag, rx in table.get(None, ()) if tag != _TIMESTAMP_TAG]
    return {
        first: tuple((tag, rx) for tag, rx in [*resolvers, *anywhere] if tag != _TIMESTAMP_TAG)
        for first, resolvers in [*table.items(), (None, [])]
    }


# Scalar tags a seed may use besides text, with the SafeConstructor method that builds each;
# any other tag (timestamps, binary, set, omap, merge keys, python/*, custom) is refused.
_SCALAR_TAGS = {
    "tag:yaml.org,2002:null": "construct_yaml_null",
    "tag:yaml.org,2002:bool": "construct_yaml_bool",
    "tag:yaml.org,2002:int": "construct_yaml_int",
    "tag:yaml.org,2002:float": "construct_yaml_float",
}
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
# What short plain scalars resolved to (only immutable values), up to a bound.
_PLAIN_VALUES: dict[str, Any] = {}
_PLAIN_VALUE_LENGTH = 40
_PLAIN_VALUES_KEPT = 4096
# Marks a mapping waiting for its next key.
_NO_KEY: Any = object()

_Value = TypeVar("_Value")


def _parse_yaml(front: str) -> Any:
    """Plain Python data (dict, list, str, int, float, bool, None) from one YAML document.

    The depth rule (at most MAX_DEPTH levels, the first level too deep named with its line) is
    newsbot's own, whatever libyaml is underneath. libyaml 0.2.6 and newer refuse nesting past
    a limit of their own (1000 flow levels) while scanning ahead, before the events of those
    levels reach the loop that enforces MAX_DEPTH. Such a document breaks newsbot's rule too;
    to name the same level and line as on any other libyaml, the loop runs again on the text
    up to where libyaml stopped, which holds every level up to that point and no more.
    """
    try:
        return _parse_events(_loader(), front)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        if mark is None or not _is_libyaml_depth_limit(error):
            raise
    try:
        return _parse_events(_loader(), front[: mark.index])
    except yaml.MarkedYAMLError as error:
        if not _is_libyaml_depth_limit(error):
            raise
        # A libyaml whose own limit is below MAX_DEPTH: the pure-Python parser has none.
        return _parse_events(yaml.SafeLoader, front[: mark.index])


def _is_libyaml_depth_limit(error: yaml.MarkedYAMLError) -> bool:
    return "maximum nesting depth" in (error.problem or "")


def _parse_events(loader: type[yaml.SafeLoader], front: str) -> Any:
    """The document built from `loader`'s events, refusing nesting deeper than MAX_DEPTH.

    Built straight from the parser's events: PyYAML's composer and constructor recurse once
    per nesting level (libyaml's composer crashes the process near 100,000 levels) and spend
    more per node than libyaml spends parsing. This loop keeps its own stack and stops at the
    first level deeper than MAX_DEPTH, so a hostile file costs microseconds. It is stricter
    too: aliases are refused (no "billion laughs"; the data is bounded by the file's size) and
    only the plain tags are understood, so no Python object is ever built.
    """
    parser = loader(front)
    try:
        next_event = parser.get_event
        next_event()  # StreamStartEvent
        if isinstance(next_event(), yaml.StreamEndEvent):
            return None  # no document at all
        document: list[Any] = []
        parents: list[Any] = []
        container: Any = document
        key = _NO_KEY
        while True:
            event = next_event()
            kind = type(event)
            if kind is yaml.ScalarEvent:
                # Quoted text, by far the most common scalar, takes the short way.
                quoted = event.tag is None and not event.implicit[0]
                value = event.value if quoted else _scalar(event)
            elif kind is yaml.MappingStartEvent:
                _check_tag(event, _MAPPING)
                value = {}
            elif kind is yaml.SequenceStartEvent:
                _check_tag(event, _SEQUENCE)
                value = []
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                container = parents.pop()
                continue
            elif kind is yaml.AliasEvent:
                raise _AliasRefused(event.start_mark)
            else:  # DocumentEndEvent
                break
            if container.__class__ is dict:
                if key is _NO_KEY:
                    if kind is not yaml.ScalarEvent:
                        raise yaml.constructor.ConstructorError(
                            None, None, "found an unhashable key", event.start_mark
                        )
                    key = value
                    continue
                container[key] = value
                key = _NO_KEY
            else:
                container.append(value)
            if kind is not yaml.ScalarEvent:
                parents.append(container)
                container = value
                if len(parents) > MAX_DEPTH:
                    raise _TooDeep(event.start_mark)
        event = next_event()
        if not isinstance(event, yaml.StreamEndEvent):
            raise yaml.composer.ComposerError(
                "expected a single document in the stream",
                None,
                "but found another document",
                event.start_mark,
            )
        return document[0] if document else None
    finally:
        parser.dispose()


def _scalar(event: yaml.ScalarEvent) -> Any:
    tag = event.tag
    value = event.value
    if tag in _NO_TAGS:
        # Quoted (or "!"-tagged) scalars are text; plain ones follow YAML's implicit rules.
        if not event.implicit[0]:
            return value
        known = _PLAIN_VALUES.get(value, _NO_KEY)
        if known is not _NO_KEY:
            return known
        tag = _implicit_tag(value)
        # Field names and small numbers repeat in every file: remember what they mean.
        if len(value) <= _PLAIN_VALUE_LENGTH and len(_PLAIN_VALUES) < _PLAIN_VALUES_KEPT:
            _PLAIN_VALUES[value] = _scalar_value(tag, value, event.start_mark)
            return _PLAIN_VALUES[value]
    return _scalar_value(tag, value, event.start_mark)


def _implicit_tag(value: str) -> str:
    resolvers = _implicit_resolvers()
    for tag, pattern in resolvers.get(value[:1]) or resolvers[None]:
        if pattern.match(value):
            return tag
    return _STR


def _scalar_value(tag: str, value: str, mark: yaml.Mark | None) -> Any:
    if tag == _STR:
        return value
    method = _SCALAR_TAGS.get(tag)
    if method is None:
        raise _tag_refused(tag, mark)
    return getattr(_CONSTRUCTOR, method)(yaml.ScalarNode(tag, value))


def _check_tag(event: yaml.CollectionStartEvent, plain: str) -> None:
    if event.tag not in _NO_TAGS and event.tag != plain:
        raise _tag_refused(event.tag, event.start_mark)


def _tag_refused(tag: str | None, mark: yaml.Mark | None) -> yaml.MarkedYAMLError:
    return yaml.constructor.ConstructorError(
        None, None, f"could not determine a constructor for the tag {tag!r}", mark
    )


class _Rejected(Exception):
    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def content_hash(data: bytes) -> str:
    """blake2b of a file's bytes: lets a reload tell a touched file from an edited one."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def read_seed(path: Path, source: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SeedResult:
    """Read one seed file (never more than max_bytes + 1 bytes) and parse it.

    The folder scan skips FIFOs and devices, but an entry can be replaced between the scan and
    this read: opening without blocking and checking the opened file itself means a FIFO can
    never hang a reload.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        return _unreadable(source, error.strerror or str(error))
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return _unreadable(source, "not a regular file")
        try:
            data = handle.read(max_bytes + 1)
        except OSError as error:
            return _unreadable(source, error.strerror or str(error))
    return parse_seed(data, source, max_bytes)


def _unreadable(source: str, why: str) -> SeedResult:
    return SeedResult(source, None, (Problem(None, f"cannot read file: {why}"),))


def parse_files(
    folder: str, sources: list[str], max_bytes: int = DEFAULT_MAX_FILE_BYTES
) -> list[SeedResult]:
    """Parse a batch of files under `folder`; the unit of work handed to a worker process."""
    root = Path(folder)
    return [read_seed(root / source, source, max_bytes) for source in sources]


def parse_seed(data: bytes, source: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> SeedResult:
    """The verdict on one seed file's bytes: a story with warnings, or a rejection."""
    file_hash = content_hash(data)
    warnings: list[Problem] = []
    try:
        if len(data) > max_bytes:
            raise _Rejected(Problem(None, f"file is larger than the {max_bytes}-byte limit"))
        text = _decode(data, warnings)
        front, body, first_line = _split_front_matter(text)
        fields = _load_yaml(front, first_line)
        story = _build_story(fields, body, warnings)
    except _Rejected as rejected:
        return SeedResult(source, None, (rejected.problem,), tuple(warnings), file_hash)
    return SeedResult(source, story, (), tuple(warnings), file_hash)


def rank(story: Story) -> tuple[int, ...]:
    """Orders two records of one story: the better one ranks higher and is kept.

    Higher quality first, then completeness (a lead image, related coverage, a longer
    excerpt), then the more recent publication.
    """
    return (
        story.quality if story.quality is not None else -1,
        1 if story.images else 0,
        len(story.related),
        len(story.excerpt),
        int(story.published_at.timestamp()),
    )


# --- bytes to front matter -------------------------------------------------------------------


def _decode(data: bytes, warnings: list[Problem]) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = data.decode("utf-16", errors="replace")
    elif b"\x00" in data:
        raise _Rejected(Problem(None, "binary data, not a text file"))
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # Feeds that are not UTF-8 are nearly always Windows-1252 (a superset of Latin-1
            # for printable text); bytes it leaves undefined fall back to Latin-1.
            try:
                text = data.decode("cp1252")
                encoding = "Windows-1252"
            except UnicodeDecodeError:
                text = data.decode("latin-1")
                encoding = "Latin-1"
            warnings.append(Problem(None, f"repaired: file is not UTF-8, read as {encoding}"))
    if text.startswith("\ufeff"):
        text = text[1:]
    # C1 control characters only appear as mojibake (e.g. "â€\x9d" for "”"), and YAML refuses
    # them outright, so this repair must happen before parsing rather than per field.
    if not text.isascii() and _C1_CONTROLS.search(text):
        text = _C1_CONTROLS.sub("", fix_encoding(text))
        warnings.append(Problem(None, "repaired: mojibake with control characters"))
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _split_front_matter(text: str) -> tuple[str, str, int]:
    """(front matter, body, line number of the first front-matter line)."""
    first_end = text.find("\n")
    if text[: first_end if first_end != -1 else len(text)].rstrip() != "---":
        raise _Rejected(Problem(None, "no front matter: the file must start with a line '---'"))
    position = first_end
    while True:
        position = text.find("\n---", position)
        if position == -1:
            raise _Rejected(Problem(None, "front matter is not closed by a line '---'"))
        line_end = text.find("\n", position + 1)
        line_end = len(text) if line_end == -1 else line_end
        if text[position + 1 : line_end].rstrip() == "---":
            return text[first_end + 1 : position + 1], text[line_end + 1 :].strip(), 2
        position += 4


def _load_yaml(front: str, first_line: int) -> dict[Any, Any]:
    try:
        fields = _parse_yaml(front)
    except _TooDeep as error:
        line = error.mark.line + first_line if error.mark is not None else None
        raise _Rejected(Problem(None, str(error), line)) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + first_line if mark is not None else None
        message = error.problem or error.context or "invalid YAML"
        if message.startswith("could not determine a constructor for the tag"):
            message = "tag" + message.removeprefix("could not determine a constructor for the tag")
            message += " is not allowed"
        raise _Rejected(Problem(None, f"invalid YAML: {message}", line)) from None
    except yaml.reader.ReaderError as error:
        line = front.count("\n", 0, error.position) + first_line
        raise _Rejected(Problem(None, f"invalid YAML: {error.reason}", line)) from None
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise _Rejected(Problem(None, f"invalid YAML: {first}")) from None
    if not isinstance(fields, dict):
        raise _Rejected(
            Problem(None, f"front matter must be a mapping of fields, not {_kind(fields)}")
        )
    return fields


# --- fields to a story -----------------------------------------------------------------------


def _build_story(fields: dict[Any, Any], body: str, warnings: list[Problem]) -> Story:
    """Only the required fields (title, link, date) can reject a file; an optional field that
    is unusable is dropped with a warning and the story is kept without it."""
    title = _text(fields, "title", warnings, required=True, one_line=True)
    url, original_url = _story_link(fields, warnings)
    published_at = _required_datetime(fields, "publishedDateTime", warnings)

    def optional(build: Callable[[], _Value], missing: _Value) -> _Value:
        try:
            return build()
        except _Rejected as rejected:
            problem = rejected.problem
            warnings.append(Problem(problem.field, f"dropped: {problem.message}", problem.line))
            return missing

    excerpt = optional(lambda: _text(fields, "excerpt", warnings), "")
    if len(title) > DISCORD_TITLE_LIMIT:
        warnings.append(
            Problem("title", f"{len(title)} characters; Discord shows {DISCORD_TITLE_LIMIT}")
        )
    if len(excerpt) > DISCORD_DESCRIPTION_LIMIT:
        warnings.append(
            Problem(
                "excerpt", f"{len(excerpt)} characters; Discord shows {DISCORD_DESCRIPTION_LIMIT}"
            )
        )
    heat = optional(lambda: _integer(fields, "heat"), None)
    return Story(
        id=story_id(url),
        url=url,
        title=title,
        excerpt=excerpt,
        published_at=published_at,
        provider=optional(lambda: _provider(fields.get("provider"), "provider"), None),
        topics=optional(lambda: _topics(fields.get("topics"), warnings), ()),
        images=optional(lambda: tuple(_images(fields.get("images"), "images", warnings)), ()),
        related=optional(lambda: tuple(_related_items(fields.get("related"), warnings)), ()),
        quality=optional(lambda: _integer(fields, "quality"), None),
        heat=None if heat == -1 else heat,
        category=optional(lambda: _text(fields, "category", warnings, one_line=True), ""),
        kind=optional(lambda: _text(fields, "type", warnings, one_line=True), ""),
        published=optional(lambda: _boolean(fields, "published"), None),
        original_url=original_url,
        amp_url=_optional_link(fields, "ampWebUrl", warnings),
        cdn_amp_url=_optional_link(fields, "cdnAmpWebUrl", warnings),
        body=_repair(body) if body else "",
        secured=optional(lambda: _text(fields, "secured", warnings, repair=False), ""),
    )


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if value is None:
        return "nothing"
    return f"a {type(value).__name__}"


def _repair(value: str) -> str:
    """Undo what feeds do to text: HTML entities and mojibake (UTF-8 read as Windows-1252)."""
    return _fix_mojibake(unescape_html(value) if "&" in value else value)


def _fix_mojibake(value: str) -> str:
    # ASCII cannot hold mojibake; ftfy's own detector gates the (slower) repair.
    if not value.isascii() and UTF8_DETECTOR_RE.search(value):
        return fix_encoding(value)
    return value


def _text(
    fields: dict[Any, Any],
    name: str,
    warnings: list[Problem],
    *,
    required: bool = False,
    one_line: bool = False,
    repair: bool = True,
) -> str:
    value = fields.get(name)
    if value is None:
        if required:
            raise _Rejected(Problem(name, "missing"))
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _Rejected(Problem(name, f"expected text, got {_kind(value)}"))
    text = str(value)
    if repair:
        # Entities are how feeds escape text, so decoding them is silent; mojibake means the
        # feed broke its encoding, which its owner wants to hear about.
        unescaped = unescape_html(text) if "&" in text else text
        text = _fix_mojibake(unescaped)
        if text != unescaped:
            warnings.append(Problem(name, "repaired: mojibake"))
    text = _SPACES.sub(" ", text).strip() if one_line else text.strip()
    if required and not text:
        raise _Rejected(Problem(name, "empty"))
    return text


def _integer(fields: dict[Any, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise _Rejected(Problem(name, "expected a number, got true/false"))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return round(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise _Rejected(Problem(name, f"expected a number, got {_kind(value)}"))


def _boolean(fields: dict[Any, Any], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise _Rejected(Problem(name, f"expected true or false, got {_kind(value)}"))


def _parse_datetime(value: object) -> datetime | None:
    """An aware UTC datetime at second precision; a missing timezone means UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(microsecond=0)


def _required_datetime(fields: dict[Any, Any], name: str, warnings: list[Problem]) -> datetime:
    value = fields.get(name)
    if value is None:
        raise _Rejected(Problem(name, "missing"))
    moment = _parse_datetime(value)
    if moment is None:
        raise _Rejected(Problem(name, f"not an ISO 8601 date: {_shown(value)}"))
    if isinstance(value, str) and _lacks_timezone(value):
        warnings.append(Problem(name, "repaired: no timezone given, read as UTC"))
    return moment


def _lacks_timezone(value: str) -> bool:
    try:
        return datetime.fromisoformat(value.strip()).tzinfo is None
    except ValueError:
        return False


def _web_link(value: object) -> tuple[str, str] | None:
    """(canonical, as given) for an http(s) URL, else None."""
    if not isinstance(value, str):
        return None
    try:
        return canonical_url(value), value.strip()
    except InvalidURL:
        return None


def _shown(value: object) -> str:
    return repr(value[:80]) if isinstance(value, str) else _kind(value)


def _story_link(fields: dict[Any, Any], warnings: list[Problem]) -> tuple[str, str]:
    given = [(name, fields[name]) for name in ("webUrl", "originalUrl") if fields.get(name)]
    if not given:
        raise _Rejected(Problem("webUrl", "missing (a story needs webUrl or originalUrl)"))
    for position, (name, value) in enumerate(given):
        link = _web_link(value)
        if link is not None:
            if position:
                warnings.append(Problem(given[0][0], f"not an http(s) URL; used {name}"))
            return link
    name, value = given[0]
    raise _Rejected(Problem(name, f"not an http(s) URL: {_shown(value)}"))


def _optional_link(fields: dict[Any, Any], name: str, warnings: list[Problem]) -> str:
    value = fields.get(name)
    if value is None:
        return ""
    if isinstance(value, str) and is_web_url(value.strip()):
        return value.strip()
    warnings.append(Problem(name, "dropped: not an http(s) URL"))
    return ""


def _provider(value: object, name: str) -> Provider | None:
    if value is None:
        return None
    if isinstance(value, str):
        label = _SPACES.sub(" ", _repair(value)).strip()
        return Provider(label) if label else None
    if not isinstance(value, dict):
        raise _Rejected(
            Problem(name, f"expected a mapping with name and domain, got {_kind(value)}")
        )
    label, domain = value.get("name"), value.get("domain")
    label = _SPACES.sub(" ", _repair(label)).strip() if isinstance(label, str) else ""
    domain = domain.strip().lower() if isinstance(domain, str) else ""
    if not label and not domain:
        return None
    return Provider(label or domain, domain)


def _topics(value: object, warnings: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise _Rejected(Problem("topics", f"expected a list of names, got {_kind(value)}"))
    names: dict[str, str] = {}
    for item in items:
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            warnings.append(Problem("topics", f"dropped: expected a name, got {_kind(item)}"))
            continue
        name = _SPACES.sub(" ", _repair(item)).strip()
        if name:
            names.setdefault(topic_key(name), name)
    if len(names) > MAX_TOPICS:
        warnings.append(Problem("topics", f"dropped: more than {MAX_TOPICS} topics"))
    return tuple(names.values())[:MAX_TOPICS]


def _mappings(value: object, name: str, limit: int, warnings: list[Problem]) -> Iterator[dict]:
    """The mappings of a list field (a lone mapping counts as a list of one); others dropped."""
    if value is None:
        return
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise _Rejected(Problem(name, f"expected a list, got {_kind(value)}"))
    if len(items) > limit:
        warnings.append(Problem(name, f"dropped: items after the first {limit}"))
    for position, item in enumerate(items[:limit]):
        if isinstance(item, dict):
            yield item
        else:
            warnings.append(Problem(f"{name}[{position}]", f"dropped: got {_kind(item)}"))


def _dimension(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _images(value: object, name: str, warnings: list[Problem]) -> Iterator[Image]:
    for position, item in enumerate(_mappings(value, name, MAX_IMAGES, warnings)):
        url = item.get("url")
        if not isinstance(url, str) or not is_web_url(url := url.strip()):
            warnings.append(Problem(f"{name}[{position}]", "dropped: url is not http(s)"))
            continue
        yield Image(url, _dimension(item.get("width")), _dimension(item.get("height")))


def _related_items(value: object, warnings: list[Problem]) -> Iterator[Related]:
    for position, item in enumerate(_mappings(value, "related", MAX_RELATED, warnings)):
        where = f"related[{position}]"
        title = item.get("title")
        link = _web_link(item.get("webUrl")) or _web_link(item.get("originalUrl"))
        if not isinstance(title, str) or not title.strip():
            warnings.append(Problem(where, "dropped: no title"))
            continue
        if link is None:
            warnings.append(Problem(where, "dropped: no http(s) link"))
            continue
        excerpt = item.get("excerpt")
        published_at = _parse_datetime(item.get("publishedDateTime"))
        if item.get("publishedDateTime") is not None and published_at is None:
            warnings.append(Problem(f"{where}.publishedDateTime", "ignored: not an ISO 8601 date"))
        quality = item.get("quality")
        try:
            provider = _provider(item.get("provider"), f"{where}.provider")
        except _Rejected as rejected:
            warnings.append(Problem(rejected.problem.field, "ignored: not a mapping"))
            provider = None
        images = _images(item.get("images"), f"{where}.images", warnings)
        yield Related(
            title=_SPACES.sub(" ", _repair(title)).strip(),
            url=link[1],
            story_id=story_id(link[0]),
            excerpt=_repair(excerpt).strip() if isinstance(excerpt, str) else "",
            published_at=published_at,
            provider=provider,
            quality=quality if isinstance(quality, int) and not isinstance(quality, bool) else None,
            image=next(images, None),
        )
