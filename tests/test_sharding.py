"""Which servers a process serves: shard numbers, the shard-id syntax and its mistakes."""

from __future__ import annotations

import pytest

from bot.sharding import Shards, parse_shard_ids, shard_of

# A real-looking snowflake and the shard Discord puts it on for 8 shards.
GUILD = 81384788765712384


def test_a_server_is_on_the_shard_its_snowflake_timestamp_picks() -> None:
    # 81384788765712384 >> 22 == 19403645698, and 19403645698 % 8 == 2.
    assert shard_of(GUILD, 8) == 2
    assert shard_of(GUILD, 1) == 0
    assert shard_of((5 << 22) + 123, 4) == 1  # the low (worker, counter) bits do not count


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("0-3", (0, 1, 2, 3)),
        ("0,1,2,3", (0, 1, 2, 3)),
        (" 4 ", (4,)),
        ("0-1, 6", (0, 1, 6)),
        ("5-5", (5,)),
    ],
)
def test_shard_ids_are_read_as_ranges_or_lists(text: str, ids: tuple[int, ...]) -> None:
    assert parse_shard_ids(text) == ids


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "not ''"),
        ("one", "not 'one'"),
        ("0-", "not '0-'"),
        ("-1", "not '-1'"),
        ("0;1", "not '0;1'"),
        ("3-1", "backward range"),
        ("0,1,1", "lists shard 1 twice"),
        ("0-2,2", "lists shard 2 twice"),
    ],
)
def test_unreadable_shard_ids_are_refused_with_the_reason(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_shard_ids(text)


def test_a_process_owns_only_the_servers_of_its_shards() -> None:
    guilds = [(n << 22) for n in range(8)]  # one server on each of 8 shards

    owned = [guild for guild in guilds if Shards(8, (0, 1)).owns(guild)]

    assert owned == guilds[:2]


def test_a_process_running_every_shard_owns_every_server() -> None:
    assert Shards().owns(GUILD)
    assert Shards(8).owns(GUILD)


@pytest.mark.parametrize(
    ("count", "ids", "reason"),
    [
        (None, (0,), "need a shard count"),
        (4, (0, 4), "shard 4 is not one of 0-3"),
        (4, (), "at least one"),
        (4, (1, 1), "lists shard 1 twice"),
        (0, None, "positive"),
    ],
)
def test_impossible_shard_choices_are_refused(
    count: int | None, ids: tuple[int, ...] | None, reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        Shards(count, ids)


@pytest.mark.parametrize(
    ("shards", "text"),
    [
        (Shards(8, (0, 1)), "shards 0-1 of 8"),
        (Shards(8, (3,)), "shard 3 of 8"),
        (Shards(8, (5, 0, 1, 2)), "shards 0-2, 5 of 8"),
        (Shards(2), "shards 0-1 of 2"),
        (Shards(), "all shards (as many as Discord recommends)"),
    ],
)
def test_the_log_line_names_the_shards(shards: Shards, text: str) -> None:
    assert shards.describe() == text
