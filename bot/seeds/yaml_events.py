"""YAML front matter to plain data, built from libyaml's events with bounded cost.

The loop stops at the first level nested deeper than MAX_DEPTH, refuses aliases (no "billion
laughs") and understands only plain tags, so no Python object is ever built. Errors are
yaml.YAMLError or TooDeep; bot.seeds turns them into a rejection with a line number.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from functools import cache
from typing import Any

import yaml

log = logging.getLogger(__name__)

MAX_DEPTH = 16

# Where an event starts: PyYAML's Mark, or libyaml's own type of it.
_Mark = Any
# PyYAML's error classes carry no type hints on their constructor.
_composer_error: Callable[..., yaml.YAMLError] = yaml.composer.ComposerError

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_STR = "tag:yaml.org,2002:str"
_MAPPING = "tag:yaml.org,2002:map"
_SEQUENCE = "tag:yaml.org,2002:seq"
# A tag left for the parser's resolver to decide: none written, or a bare "!".
_NO_TAGS = (None, "!")


class _AliasRefused(yaml.YAMLError):
    def __init__(self, mark: yaml.Mark | None) -> None:
        super().__init__("anchors and aliases are not allowed")
        self.problem_mark = mark


class TooDeep(Exception):
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


def parse_yaml(front: str) -> Any:
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
        # Any: the loop dispatches on the exact event type (faster than isinstance), which a
        # type checker does not narrow on.
        next_event: Callable[[], Any] = parser.get_event
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
                    raise TooDeep(event.start_mark)
        event = next_event()
        if not isinstance(event, yaml.StreamEndEvent):
            raise _composer_error(
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


def _scalar_value(tag: str, value: str, mark: _Mark) -> Any:
    if tag == _STR:
        return value
    method = _SCALAR_TAGS.get(tag)
    if method is None:
        raise _tag_refused(tag, mark)
    return getattr(_CONSTRUCTOR, method)(yaml.ScalarNode(tag, value))


def _check_tag(event: yaml.CollectionStartEvent, plain: str) -> None:
    if event.tag not in _NO_TAGS and event.tag != plain:
        raise _tag_refused(event.tag, event.start_mark)


def _tag_refused(tag: str | None, mark: _Mark) -> yaml.MarkedYAMLError:
    return yaml.constructor.ConstructorError(
        None, None, f"could not determine a constructor for the tag {tag!r}", mark
    )
