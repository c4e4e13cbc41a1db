"""A folder of hostile and broken seed files, each with the verdict newsbot must reach.

Used by the tests, and by hand: `python -m tests.hostile_corpus DIR` writes the corpus to DIR
so that `newsbot seeds check DIR` can be tried on it.
"""

from __future__ import annotations

import sys
from pathlib import Path

GOOD = """---
title: "A good story"
excerpt: "It loads."
publishedDateTime: 2024-03-01T10:00:00Z
webUrl: "https://news.example.com/good"
topics: [AI]
---
"""


def _story(**fields: str) -> str:
    base = {
        "title": '"A story"',
        "publishedDateTime": "2024-03-01T10:00:00Z",
        "webUrl": '"https://news.example.com/a"',
    }
    base.update(fields)
    lines = [f"{key}: {value}" for key, value in base.items() if value != "<omit>"]
    return "---\n" + "\n".join(lines) + "\n---\n"


_BOMB = (
    "---\n"
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + 'title: *i\npublishedDateTime: 2024-03-01T10:00:00Z\nwebUrl: "https://x.example.com/"\n---\n'
)

# file name -> (content, a phrase the rejection reason must contain)
HOSTILE: dict[str, tuple[bytes, str]] = {
    "invalid_yaml.txt": (_story(title='"unterminated').encode(), "invalid YAML"),
    "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" * 20, "binary data"),
    "no_front_matter.txt": (b"title: just yaml\n", "no front matter"),
    "unclosed_front_matter.txt": (b"---\ntitle: x\n", "not closed"),
    "list_root.txt": (b"---\n- a\n- b\n---\n", "must be a mapping"),
    "title_is_list.txt": (_story(title="[a, b]").encode(), "title: expected text, got a list"),
    "title_is_mapping.txt": (
        _story(title="{x: 1}").encode(),
        "title: expected text, got a mapping",
    ),
    "alias_bomb.txt": (_BOMB.encode(), "aliases are not allowed"),
    "deep_flow.txt": (
        ("---\ntitle: x\nnested: " + "[" * 5000 + "]" * 5000 + "\n---\n").encode(),
        "nesting deeper than",
    ),
    "deep_block.txt": (
        (
            "---\n"
            + "".join(" " * depth + f"k{depth}:\n" for depth in range(60))
            + " " * 60
            + "leaf: 1\n---\n"
        ).encode(),
        "nesting deeper than",
    ),
    "deep_compact.txt": (("---\nx:\n" + "- " * 200 + "z\n---\n").encode(), "nesting deeper than"),
    "oversized.txt": (_story(excerpt='"' + "x" * 300_000 + '"').encode(), "larger than the"),
    "python_object.txt": (
        _story(title="!!python/object/apply:os.system ['echo pwned']").encode(),
        "invalid YAML",
    ),
    "python_name.txt": (_story(title="!!python/name:os.system").encode(), "invalid YAML"),
    "unknown_tag.txt": (_story(title="!secret x").encode(), "invalid YAML"),
    "missing_title.txt": (_story(title="<omit>").encode(), "title: missing"),
    "empty_title.txt": (_story(title='"   "').encode(), "title: empty"),
    "missing_link.txt": (_story(webUrl="<omit>").encode(), "webUrl: missing"),
    "javascript_link.txt": (_story(webUrl='"javascript:alert(1)"').encode(), "not an http(s) URL"),
    "relative_link.txt": (_story(webUrl='"/news/a"').encode(), "not an http(s) URL"),
    "missing_date.txt": (_story(publishedDateTime="<omit>").encode(), "publishedDateTime: missing"),
    "bad_date.txt": (_story(publishedDateTime='"yesterday"').encode(), "not an ISO 8601 date"),
    "impossible_date.txt": (
        _story(publishedDateTime="2024-13-45T10:00:00Z").encode(),
        "not an ISO 8601 date",
    ),
    "empty.txt": (b"", "no front matter"),
}

# Only the required fields can reject a file: an unusable optional field is dropped, and the
# story loads with a warning. File name -> (content, a phrase the warning must contain)
DAMAGED: dict[str, tuple[bytes, str]] = {
    "topics_is_mapping.txt": (
        _story(topics="{a: 1}", webUrl='"https://news.example.com/topics"').encode(),
        "topics: dropped: expected a list",
    ),
    "quality_is_text.txt": (
        _story(quality='"very high"', webUrl='"https://news.example.com/quality"').encode(),
        "quality: dropped: expected a number",
    ),
    "heat_is_list.txt": (
        _story(heat="[1, 2]", webUrl='"https://news.example.com/heat"').encode(),
        "heat: dropped: expected a number",
    ),
    "excerpt_is_list.txt": (
        _story(excerpt="[a, b]", webUrl='"https://news.example.com/excerpt"').encode(),
        "excerpt: dropped: expected text",
    ),
}


def write_hostile_corpus(folder: Path) -> dict[str, str]:
    """Write every hostile and damaged file plus two good ones (one a duplicate); return
    name -> phrase for the hostile ones."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (content, _) in (HOSTILE | DAMAGED).items():
        (folder / name).write_bytes(content)
    (folder / "good.txt").write_text(GOOD, encoding="utf-8")
    # The same story as good.txt once tracking parameters are stripped: a duplicate.
    (folder / "good_duplicate.txt").write_text(
        GOOD.replace("/good", "/good?utm_source=feed&fbclid=abc"), encoding="utf-8"
    )
    return {name: phrase for name, (_, phrase) in HOSTILE.items()}


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "hostile-seeds")
    write_hostile_corpus(target)
    print(f"wrote {len(HOSTILE) + len(DAMAGED) + 2} files to {target}")
