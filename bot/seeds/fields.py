"""Front matter fields to a Story: validation, with repairs for what feeds commonly break.

Only the required fields (title, link, date) can reject a file; an optional field that is
unusable is dropped with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from ftfy import fix_encoding
from ftfy.chardata import UTF8_DETECTOR_RE
from ftfy.fixes import unescape_html

from bot.discord_limits import DESCRIPTION_LIMIT as DISCORD_DESCRIPTION_LIMIT
from bot.discord_limits import TITLE_LIMIT as DISCORD_TITLE_LIMIT
from bot.models import Image, Problem, Provider, Related, Story, topic_key
from bot.urls import InvalidURL, canonical_url, is_web_url, story_id

MAX_TOPICS = 25
MAX_IMAGES = 10
MAX_RELATED = 25

_SPACES = re.compile(r"\s+")
_Value = TypeVar("_Value")


class Rejected(Exception):
    """The file cannot become a story: `problem` names the field and the reason."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def build_story(fields: dict[Any, Any], body: str, warnings: list[Problem]) -> Story:
    """Only the required fields (title, link, date) can reject a file; an optional field that
    is unusable is dropped with a warning and the story is kept without it."""
    title = _text(fields, "title", warnings, required=True, one_line=True)
    url, original_url = _story_link(fields, warnings)
    published_at = _required_datetime(fields, "publishedDateTime", warnings)

    def optional(build: Callable[[], _Value], missing: _Value) -> _Value:
        try:
            return build()
        except Rejected as rejected:
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


def kind(value: object) -> str:
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
            raise Rejected(Problem(name, "missing"))
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise Rejected(Problem(name, f"expected text, got {kind(value)}"))
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
        raise Rejected(Problem(name, "empty"))
    return text


def _integer(fields: dict[Any, Any], name: str) -> int | None:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise Rejected(Problem(name, "expected a number, got true/false"))
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return round(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise Rejected(Problem(name, f"expected a number, got {kind(value)}"))


def _boolean(fields: dict[Any, Any], name: str) -> bool | None:
    value = fields.get(name)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise Rejected(Problem(name, f"expected true or false, got {kind(value)}"))


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
        raise Rejected(Problem(name, "missing"))
    moment = _parse_datetime(value)
    if moment is None:
        raise Rejected(Problem(name, f"not an ISO 8601 date: {_shown(value)}"))
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
    return repr(value[:80]) if isinstance(value, str) else kind(value)


def _story_link(fields: dict[Any, Any], warnings: list[Problem]) -> tuple[str, str]:
    given = [(name, fields[name]) for name in ("webUrl", "originalUrl") if fields.get(name)]
    if not given:
        raise Rejected(Problem("webUrl", "missing (a story needs webUrl or originalUrl)"))
    for position, (name, value) in enumerate(given):
        link = _web_link(value)
        if link is not None:
            if position:
                warnings.append(Problem(given[0][0], f"not an http(s) URL; used {name}"))
            return link
    name, value = given[0]
    raise Rejected(Problem(name, f"not an http(s) URL: {_shown(value)}"))


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
        raise Rejected(Problem(name, f"expected a mapping with name and domain, got {kind(value)}"))
    given_label, given_domain = value.get("name"), value.get("domain")
    label = _SPACES.sub(" ", _repair(given_label)).strip() if isinstance(given_label, str) else ""
    domain = given_domain.strip().lower() if isinstance(given_domain, str) else ""
    if not label and not domain:
        return None
    return Provider(label or domain, domain)


def _topics(value: object, warnings: list[Problem]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list):
        raise Rejected(Problem("topics", f"expected a list of names, got {kind(value)}"))
    names: dict[str, str] = {}
    for item in items:
        if isinstance(item, int | float) and not isinstance(item, bool):
            item = str(item)
        if not isinstance(item, str):
            warnings.append(Problem("topics", f"dropped: expected a name, got {kind(item)}"))
            continue
        name = _SPACES.sub(" ", _repair(item)).strip()
        if name:
            names.setdefault(topic_key(name), name)
    if len(names) > MAX_TOPICS:
        warnings.append(Problem("topics", f"dropped: more than {MAX_TOPICS} topics"))
    return tuple(names.values())[:MAX_TOPICS]


def _mappings(
    value: object, name: str, limit: int, warnings: list[Problem]
) -> Iterator[dict[Any, Any]]:
    """The mappings of a list field (a lone mapping counts as a list of one); others dropped."""
    if value is None:
        return
    items = [value] if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise Rejected(Problem(name, f"expected a list, got {kind(value)}"))
    if len(items) > limit:
        warnings.append(Problem(name, f"dropped: items after the first {limit}"))
    for position, item in enumerate(items[:limit]):
        if isinstance(item, dict):
            yield item
        else:
            warnings.append(Problem(f"{name}[{position}]", f"dropped: got {kind(item)}"))


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
        except Rejected as rejected:
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
