"""Seed files to stories: parse bounded YAML front matter, validate it and repair what feeds break.

A seed is a line `---`, a YAML mapping, a line `---`, then an optional body. `parse_seed` turns
the bytes of one file into a SeedResult: a Story with warnings, or a rejection naming the field
and the reason. It is pure (no I/O, no clock) so it runs unchanged in worker processes.

Two steps, one module each: yaml_events turns the front matter into plain data (bounded: the
size is capped before libyaml sees the text, nesting, aliases and tags are limited), and fields
turns that data into a Story. This module reads the file and joins them.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from ftfy import fix_encoding

from bot.config import SeedSettings
from bot.discord_limits import DESCRIPTION_LIMIT as DISCORD_DESCRIPTION_LIMIT
from bot.discord_limits import TITLE_LIMIT as DISCORD_TITLE_LIMIT
from bot.models import Problem, SeedResult, Story
from bot.seeds.fields import (
    MAX_IMAGES,
    MAX_RELATED,
    MAX_TOPICS,
    Rejected,
    build_story,
    kind,
)
from bot.seeds.yaml_events import MAX_DEPTH, TooDeep, parse_yaml

DEFAULT_MAX_FILE_BYTES = SeedSettings().max_file_bytes

_C1_CONTROLS = re.compile("[\x80-\x9f]")

__all__ = [
    "DEFAULT_MAX_FILE_BYTES",
    "DISCORD_DESCRIPTION_LIMIT",
    "DISCORD_TITLE_LIMIT",
    "MAX_DEPTH",
    "MAX_IMAGES",
    "MAX_RELATED",
    "MAX_TOPICS",
    "content_hash",
    "parse_files",
    "parse_seed",
    "rank",
    "read_seed",
]


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
            raise Rejected(Problem(None, f"file is larger than the {max_bytes}-byte limit"))
        text = _decode(data, warnings)
        front, body, first_line = _split_front_matter(text)
        fields = _load_yaml(front, first_line)
        story = build_story(fields, body, warnings)
    except Rejected as rejected:
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
        raise Rejected(Problem(None, "binary data, not a text file"))
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
        raise Rejected(Problem(None, "no front matter: the file must start with a line '---'"))
    position = first_end
    while True:
        position = text.find("\n---", position)
        if position == -1:
            raise Rejected(Problem(None, "front matter is not closed by a line '---'"))
        line_end = text.find("\n", position + 1)
        line_end = len(text) if line_end == -1 else line_end
        if text[position + 1 : line_end].rstrip() == "---":
            return text[first_end + 1 : position + 1], text[line_end + 1 :].strip(), 2
        position += 4


def _load_yaml(front: str, first_line: int) -> dict[Any, Any]:
    try:
        fields = parse_yaml(front)
    except TooDeep as error:
        line = error.mark.line + first_line if error.mark is not None else None
        raise Rejected(Problem(None, str(error), line)) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + first_line if mark is not None else None
        message = error.problem or error.context or "invalid YAML"
        if message.startswith("could not determine a constructor for the tag"):
            message = "tag" + message.removeprefix("could not determine a constructor for the tag")
            message += " is not allowed"
        raise Rejected(Problem(None, f"invalid YAML: {message}", line)) from None
    except yaml.reader.ReaderError as error:
        line = front.count("\n", 0, error.position) + first_line
        raise Rejected(Problem(None, f"invalid YAML: {error.reason}", line)) from None
    except yaml.YAMLError as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise Rejected(Problem(None, f"invalid YAML: {first}")) from None
    if not isinstance(fields, dict):
        raise Rejected(
            Problem(None, f"front matter must be a mapping of fields, not {kind(fields)}")
        )
    return fields
