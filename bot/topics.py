"""Topic names as people type them: close matches for a name that is not a topic.

Shared by /news, /digest and the command line, so each suggests the same topics.
"""

from __future__ import annotations

import difflib


def suggest_topics(name: str, known: list[str]) -> list[str]:
    """Topics whose names are close to `name`, best first."""
    by_key = {topic.casefold(): topic for topic in known}
    close = difflib.get_close_matches(name.casefold(), list(by_key), n=3, cutoff=0.6)
    contained = [key for key in by_key if name.casefold() in key and key not in close]
    return [by_key[key] for key in [*close, *contained][:3]]
