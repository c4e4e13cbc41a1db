"""Which Discord servers this newsbot process serves: pure functions over shard numbers.

Discord splits a large bot's servers into shards by a fixed rule, and newsbot may run as
several processes, each connecting a range of the shards of one total. A process posts the
digests of its own shards' servers only: the others are another process's, not servers
newsbot has left.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


def shard_of(guild_id: int, count: int) -> int:
    """The shard Discord sends a server's events to (Discord's documented rule, as
    discord.utils uses it): the snowflake's timestamp bits modulo the count."""
    return (guild_id >> 22) % count


def parse_shard_ids(text: str) -> tuple[int, ...]:
    """Shard ids written as `0-3`, `0,1,2,3` or a mix (`0-1,4`); ValueError with a short
    reason for anything else (empty, not numbers, a backward range, an id twice)."""
    ids: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if not dash:
            ids.append(_shard_number(first, text))
            continue
        start, end = _shard_number(first, text), _shard_number(last, text)
        if end < start:
            raise ValueError(f"must not hold a backward range, not {text!r}")
        ids.extend(range(start, end + 1))
    return checked_shard_ids(ids)


def checked_shard_ids(ids: Sequence[int]) -> tuple[int, ...]:
    """`ids` as a tuple, or ValueError when empty or when an id comes twice (a typo that would
    otherwise pass silently)."""
    if not ids:
        raise ValueError("must list at least one shard id")
    repeated = sorted({shard for shard in ids if ids.count(shard) > 1})
    if repeated:
        raise ValueError(f"lists shard {repeated[0]} twice")
    return tuple(ids)


def _shard_number(text: str, whole: str) -> int:
    text = text.strip()
    if not text.isdigit():
        raise ValueError(f"must be shard ids such as 0-3 or 0,1,2,3, not {whole!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class Shards:
    """The shards one process runs: `ids` of `count` in all. `count` None: Discord's
    recommended count, learnt at connection; `ids` None: every shard of the count."""

    count: int | None = None
    ids: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise ValueError(f"shard count must be a positive whole number, not {self.count}")
        if self.ids is None:
            return
        if self.count is None:
            raise ValueError("shard ids need a shard count")
        checked_shard_ids(self.ids)
        outside = [shard for shard in self.ids if not 0 <= shard < self.count]
        if outside:
            raise ValueError(f"shard {outside[0]} is not one of 0-{self.count - 1}")

    def owns(self, guild_id: int) -> bool:
        """Whether the server is on one of this process's shards (any server when it runs
        them all)."""
        if self.ids is None or self.count is None:
            return True
        return shard_of(guild_id, self.count) in self.ids

    def describe(self) -> str:
        """For the log: "shards 0-1 of 8", "shard 3 of 8", "all shards (as many as Discord
        recommends)"."""
        if self.count is None:
            return "all shards (as many as Discord recommends)"
        ids = self.ids if self.ids is not None else tuple(range(self.count))
        word = "shard" if len(ids) == 1 else "shards"
        return f"{word} {_ranges(ids)} of {self.count}"


def _ranges(ids: Sequence[int]) -> str:
    """`0,1,2,5` -> "0-2, 5": consecutive ids as one range."""
    spans: list[list[int]] = []
    for shard in sorted(ids):
        if spans and shard == spans[-1][1] + 1:
            spans[-1][1] = shard
        else:
            spans.append([shard, shard])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
