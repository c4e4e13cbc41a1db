"""Daily digests without a clock: schedules across DST and downtime, ranking and clustering,
nonces, and the parsing of what admins type."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.digest import (
    DEFAULT_CATCH_UP,
    DigestItem,
    DueDigest,
    describe_age,
    digest_nonce,
    due_digests,
    explain_next_run,
    local_date_of,
    matching_zones,
    next_run,
    parse_local_time,
    parse_max_age,
    scheduled_instant,
    score,
    select_items,
    split_by_age,
    suggest_zones,
    too_old_note,
    zone,
)
from bot.models import DigestRun, DigestSettings, Story
from tests.factories import make_story

NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
MINUTE = timedelta(minutes=1)
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def digest(
    at: str = "09:00",
    tz: str = "America/New_York",
    *,
    guild_id: int = 1,
    enabled: bool = True,
    effective_from: datetime = LONG_AGO,
) -> DigestSettings:
    return DigestSettings(
        guild_id=guild_id,
        channel_id=guild_id * 10,
        local_time=parse_local_time(at),
        timezone=tz,
        enabled=enabled,
        effective_from=effective_from,
    )


def ran(settings: DigestSettings, local_date: date, status: str = "sent") -> DigestRun:
    moment = scheduled_instant(local_date, settings.local_time, zone(settings.timezone))
    return DigestRun(
        guild_id=settings.guild_id,
        local_date=local_date,
        channel_id=settings.channel_id,
        status=status,  # type: ignore[arg-type]
        scheduled_for=moment,
        claimed_at=moment,
    )


def ledger(*rows: DigestRun) -> dict[tuple[int, date], DigestRun]:
    return {(row.guild_id, row.local_date): row for row in rows}


@dataclass(frozen=True)
class Event:
    """What the scheduler did at one tick of the simulated clock."""

    now: datetime
    due: DueDigest


def simulate(
    settings: Iterable[DigestSettings],
    start: datetime,
    end: datetime,
    runs: dict[tuple[int, date], DigestRun] | None = None,
) -> list[Event]:
    """Tick a clock minute by minute from `start` to `end` (inclusive), claiming every digest
    the scheduler is told to post or skip, as the bot does, so the ledger feeds the next tick."""
    settings = list(settings)
    runs = {} if runs is None else runs
    events: list[Event] = []
    now = start
    while now <= end:
        for due in due_digests(settings, runs, now):
            events.append(Event(now, due))
            status = "sent" if due.action == "post" else "skipped"
            runs[(due.settings.guild_id, due.local_date)] = ran(
                due.settings, due.local_date, status
            )
        now += MINUTE
    return events


def posts(events: list[Event]) -> list[tuple[date, datetime, datetime]]:
    return [
        (e.due.local_date, e.due.scheduled_for, e.now) for e in events if e.due.action == "post"
    ]


# --- scheduled_instant ---------------------------------------------------------------------------


def test_scheduled_instant_on_ordinary_days_in_paris_follows_summer_and_winter_time() -> None:
    summer = scheduled_instant(date(2024, 6, 15), time(9, 0), PARIS)
    winter = scheduled_instant(date(2024, 1, 15), time(9, 0), PARIS)
    assert summer == utc(2024, 6, 15, 7, 0) and summer.tzinfo is UTC
    assert winter == utc(2024, 1, 15, 8, 0) and winter.tzinfo is UTC


def test_scheduled_instant_in_the_spring_forward_gap_fires_as_far_past_the_gap() -> None:
    # 02:30 does not exist on 2024-03-10 in New York: clocks jump from 02:00 EST to 03:00 EDT.
    instant = scheduled_instant(date(2024, 3, 10), time(2, 30), NEW_YORK)
    assert instant == utc(2024, 3, 10, 7, 30)
    assert instant.astimezone(NEW_YORK).time() == time(3, 30)


def test_scheduled_instant_in_the_repeated_fall_back_hour_fires_at_the_first_one() -> None:
    # 01:30 happens twice on 2024-11-03 in New York: 01:30 EDT (05:30 UTC), then 01:30 EST.
    assert scheduled_instant(date(2024, 11, 3), time(1, 30), NEW_YORK) == utc(2024, 11, 3, 5, 30)


def test_scheduled_instant_in_utc_is_the_wall_time() -> None:
    assert scheduled_instant(date(2024, 3, 10), time(2, 30), ZoneInfo("UTC")) == utc(
        2024, 3, 10, 2, 30
    )


def test_scheduled_instant_ignores_a_fold_or_zone_on_the_time_itself() -> None:
    odd = time(1, 30, fold=1, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert scheduled_instant(date(2024, 11, 3), odd, NEW_YORK) == utc(2024, 11, 3, 5, 30)


def test_local_date_of_is_the_date_on_the_servers_wall_clock() -> None:
    now = utc(2024, 6, 15, 2, 0)
    assert local_date_of(now, "America/New_York") == date(2024, 6, 14)
    assert local_date_of(now, "Asia/Tokyo") == date(2024, 6, 15)


# --- due_digests over simulated clocks -----------------------------------------------------------


def test_a_digest_in_the_repeated_fall_back_hour_posts_exactly_once() -> None:
    start = utc(2024, 11, 3, 3, 0)  # 2024-11-02 23:00 EDT
    settings = digest("01:30", effective_from=start)
    events = simulate([settings], start, utc(2024, 11, 4, 5, 0))  # 2024-11-04 00:00 EST
    # The second 01:30 (EST, 06:30 UTC) is the same local date: the ledger already has it.
    assert posts(events) == [(date(2024, 11, 3), utc(2024, 11, 3, 5, 30), utc(2024, 11, 3, 5, 30))]
    assert len(events) == 1


def test_a_digest_in_the_spring_forward_gap_still_posts_exactly_once() -> None:
    start = utc(2024, 3, 10, 4, 0)  # 2024-03-09 23:00 EST
    settings = digest("02:30", effective_from=start)
    events = simulate([settings], start, utc(2024, 3, 11, 4, 0))  # 2024-03-11 00:00 EDT
    assert posts(events) == [(date(2024, 3, 10), utc(2024, 3, 10, 7, 30), utc(2024, 3, 10, 7, 30))]
    assert len(events) == 1


def test_an_ordinary_day_posts_exactly_once_at_the_right_minute() -> None:
    start = utc(2024, 6, 14, 22, 0)  # 2024-06-15 00:00 in Paris
    settings = digest("09:00", "Europe/Paris", effective_from=start)
    events = simulate([settings], start, utc(2024, 6, 15, 22, 0))
    assert posts(events) == [(date(2024, 6, 15), utc(2024, 6, 15, 7, 0), utc(2024, 6, 15, 7, 0))]
    assert len(events) == 1


def test_a_schedule_set_after_todays_time_waits_for_tomorrow() -> None:
    # Set to 09:00 at 10:00 EDT: today's 09:00 was never this schedule's, so it is no catch-up.
    set_at = utc(2024, 6, 15, 14, 0)
    settings = digest("09:00", effective_from=set_at)
    events = simulate([settings], set_at, utc(2024, 6, 17, 3, 0))
    assert posts(events) == [(date(2024, 6, 16), utc(2024, 6, 16, 13, 0), utc(2024, 6, 16, 13, 0))]
    assert len(events) == 1


def test_a_schedule_set_before_todays_time_fires_today() -> None:
    set_at = utc(2024, 6, 15, 12, 0)  # 08:00 EDT
    settings = digest("09:00", effective_from=set_at)
    events = simulate([settings], set_at, utc(2024, 6, 15, 23, 0))
    assert posts(events) == [(date(2024, 6, 15), utc(2024, 6, 15, 13, 0), utc(2024, 6, 15, 13, 0))]


def test_downtime_shorter_than_the_catch_up_window_posts_at_start() -> None:
    settings = digest("09:00")
    runs = ledger(ran(settings, date(2024, 6, 14)))
    now = utc(2024, 6, 15, 15, 0)  # 2 h after 09:00 EDT
    assert due_digests([settings], runs, now) == [
        DueDigest(settings, date(2024, 6, 15), utc(2024, 6, 15, 13, 0), "post")
    ]


def test_downtime_longer_than_the_catch_up_window_records_a_skip() -> None:
    settings = digest("09:00")
    runs = ledger(ran(settings, date(2024, 6, 14)))
    now = utc(2024, 6, 15, 20, 0)  # 7 h after 09:00 EDT
    assert due_digests([settings], runs, now) == [
        DueDigest(settings, date(2024, 6, 15), utc(2024, 6, 15, 13, 0), "skip")
    ]


def test_the_catch_up_window_includes_its_end_and_can_be_changed() -> None:
    settings = digest("09:00")
    runs = ledger(ran(settings, date(2024, 6, 14)))
    instant = utc(2024, 6, 15, 13, 0)
    assert due_digests([settings], runs, instant + DEFAULT_CATCH_UP)[0].action == "post"
    assert due_digests([settings], runs, instant + DEFAULT_CATCH_UP + MINUTE)[0].action == "skip"
    short = timedelta(minutes=30)
    assert due_digests([settings], runs, instant + MINUTE * 31, short)[0].action == "skip"


def test_yesterdays_miss_beyond_the_window_is_skipped_and_todays_still_comes_on_time() -> None:
    settings = digest("09:00")
    runs = ledger(ran(settings, date(2024, 6, 13)))
    start = utc(2024, 6, 15, 9, 0)  # back up at 05:00 EDT after missing 06-14 entirely
    events = simulate([settings], start, utc(2024, 6, 16, 3, 0), runs)
    assert [(e.now, e.due.local_date, e.due.action) for e in events] == [
        (start, date(2024, 6, 14), "skip"),
        (utc(2024, 6, 15, 13, 0), date(2024, 6, 15), "post"),
    ]


def test_yesterdays_miss_within_the_window_is_posted_once_after_local_midnight() -> None:
    settings = digest("23:30")
    runs = ledger(ran(settings, date(2024, 6, 14)))
    start = utc(2024, 6, 16, 5, 0)  # 01:00 EDT on 06-16, 1.5 h after the 06-15 digest was due
    events = simulate([settings], start, utc(2024, 6, 16, 12, 0), runs)
    assert posts(events) == [(date(2024, 6, 15), utc(2024, 6, 16, 3, 30), start)]
    assert len(events) == 1


def test_any_ledger_row_means_the_date_is_handled() -> None:
    settings = digest("09:00")
    now = utc(2024, 6, 15, 13, 30)
    for status in ("claimed", "sent", "empty", "skipped", "failed"):
        runs = ledger(ran(settings, date(2024, 6, 14)), ran(settings, date(2024, 6, 15), status))
        assert due_digests([settings], runs, now) == []


def test_a_disabled_digest_never_fires() -> None:
    settings = digest("09:00", enabled=False)
    assert simulate([settings], utc(2024, 6, 15, 0, 0), utc(2024, 6, 16, 23, 59)) == []


def test_servers_in_different_zones_fire_at_their_own_local_nine() -> None:
    start = utc(2024, 6, 14, 23, 0)
    zones = ["Asia/Tokyo", "Europe/Paris", "America/New_York", "Asia/Kolkata"]
    servers = [digest("09:00", tz, guild_id=i, effective_from=start) for i, tz in enumerate(zones)]
    events = simulate(servers, start, utc(2024, 6, 15, 22, 59))
    fired = {e.due.settings.timezone: e.now for e in events if e.due.action == "post"}
    assert fired == {
        "Asia/Tokyo": utc(2024, 6, 15, 0, 0),
        "Asia/Kolkata": utc(2024, 6, 15, 3, 30),
        "Europe/Paris": utc(2024, 6, 15, 7, 0),
        "America/New_York": utc(2024, 6, 15, 13, 0),
    }
    assert len(events) == len(zones)


def test_due_digests_are_sorted_by_instant_then_guild() -> None:
    late_b = digest("09:00", "Europe/Paris", guild_id=3)
    early = digest("08:00", "Europe/Paris", guild_id=9)
    late_a = digest("09:00", "Europe/Paris", guild_id=2)
    utc_one = digest("07:00", "UTC", guild_id=5)  # 07:00 UTC = 09:00 Paris in June
    day = date(2024, 6, 15)
    runs = ledger(*(ran(s, day - timedelta(days=1)) for s in (late_b, early, late_a, utc_one)))
    due = due_digests([late_b, early, late_a, utc_one], runs, utc(2024, 6, 15, 8, 0))
    assert [(d.scheduled_for, d.settings.guild_id) for d in due] == [
        (utc(2024, 6, 15, 6, 0), 9),
        (utc(2024, 6, 15, 7, 0), 2),
        (utc(2024, 6, 15, 7, 0), 3),
        (utc(2024, 6, 15, 7, 0), 5),
    ]


def test_a_setting_with_an_unknown_zone_does_not_stop_the_others() -> None:
    broken = digest("09:00", "Mars/Base", guild_id=1)
    fine = digest("09:00", "UTC", guild_id=2)
    runs = ledger(ran(fine, date(2024, 6, 14)))
    due = due_digests([broken, fine], runs, utc(2024, 6, 15, 9, 0))
    assert [d.settings.guild_id for d in due] == [2]


def test_due_digests_refuses_a_naive_clock() -> None:
    with pytest.raises(ValueError, match="naive"):
        due_digests([digest()], {}, datetime(2024, 6, 15, 9, 0))


# --- next_run ------------------------------------------------------------------------------------


def test_next_run_is_later_today_when_todays_is_still_ahead() -> None:
    assert next_run(digest("09:00"), {}, utc(2024, 6, 15, 12, 0)) == utc(2024, 6, 15, 13, 0)


def test_next_run_is_tomorrow_once_todays_has_run() -> None:
    settings = digest("09:00")
    runs = ledger(ran(settings, date(2024, 6, 15)))
    assert next_run(settings, runs, utc(2024, 6, 15, 14, 0)) == utc(2024, 6, 16, 13, 0)
    # Also when today's ran early (e.g. caught up just after a schedule change).
    assert next_run(settings, runs, utc(2024, 6, 15, 12, 0)) == utc(2024, 6, 16, 13, 0)


def test_next_run_is_tomorrow_once_todays_instant_has_passed() -> None:
    assert next_run(digest("09:00"), {}, utc(2024, 6, 15, 13, 0)) == utc(2024, 6, 16, 13, 0)


def test_next_run_keeps_local_time_across_a_dst_change() -> None:
    # 09:00 EST is 14:00 UTC; the day after the spring-forward, 09:00 EDT is 13:00 UTC.
    assert next_run(digest("09:00"), {}, utc(2024, 3, 9, 17, 0)) == utc(2024, 3, 10, 13, 0)
    assert next_run(digest("02:30"), {}, utc(2024, 3, 9, 17, 0)) == utc(2024, 3, 10, 7, 30)


def test_next_run_waits_for_a_schedule_that_starts_later() -> None:
    settings = digest("09:00", effective_from=utc(2024, 6, 20, 14, 0))
    assert next_run(settings, {}, utc(2024, 6, 15, 12, 0)) == utc(2024, 6, 21, 13, 0)


def test_next_run_is_none_when_disabled() -> None:
    assert next_run(digest("09:00", enabled=False), {}, utc(2024, 6, 15, 12, 0)) is None


@pytest.mark.parametrize("status", ["sent", "claimed", "empty", "skipped", "failed"])
def test_explain_next_run_says_why_a_later_time_today_waits_for_tomorrow(status: str) -> None:
    # Today's ran at 09:00; at 12:00 the admin moves the time to 18:00 (still ahead today).
    moved = digest("18:00")
    runs = ledger(ran(digest("09:00"), date(2024, 6, 15), status))

    upcoming = explain_next_run(moved, runs, utc(2024, 6, 15, 16, 0))

    assert upcoming.at == utc(2024, 6, 16, 22, 0)  # 18:00 EDT tomorrow
    assert upcoming.tomorrow
    assert upcoming.reason.startswith("Today's digest ")
    assert ("already posted" in upcoming.reason) == (status == "sent")


def test_explain_next_run_agrees_with_next_run_and_is_plain_when_today_is_still_ahead() -> None:
    upcoming = explain_next_run(digest("18:00"), {}, utc(2024, 6, 15, 16, 0))

    assert upcoming.at == next_run(digest("18:00"), {}, utc(2024, 6, 15, 16, 0))
    assert upcoming.at == utc(2024, 6, 15, 22, 0)
    assert (upcoming.reason, upcoming.tomorrow) == ("", False)


def test_explain_next_run_says_when_todays_time_has_passed() -> None:
    upcoming = explain_next_run(digest("09:00"), {}, utc(2024, 6, 15, 16, 0))

    assert upcoming.at == utc(2024, 6, 16, 13, 0)
    assert upcoming.reason == "09:00 has already passed today"


# --- score and select_items ----------------------------------------------------------------------

NOW = utc(2024, 6, 15, 12, 0)


def story(name: str, *, hours_old: float = 1, **fields: object) -> Story:
    return make_story(
        f"https://news.example.com/{name}",
        title=name,
        published_at=NOW - timedelta(hours=hours_old),
        **fields,
    )


def test_a_fresher_story_beats_an_older_one_of_equal_quality() -> None:
    fresh, old = story("fresh", hours_old=2, quality=50), story("old", hours_old=30, quality=50)
    assert score(fresh, NOW) > score(old, NOW)


def test_recency_halves_every_24_hours() -> None:
    now_score = score(story("a", hours_old=0, quality=0, heat=0), NOW)
    day_score = score(story("b", hours_old=24, quality=0, heat=0), NOW)
    assert day_score == pytest.approx(now_score / 2)


def test_higher_quality_and_heat_win_at_equal_age() -> None:
    assert score(story("a", quality=90), NOW) > score(story("b", quality=40), NOW)
    assert score(story("a", heat=80), NOW) > score(story("b", heat=10), NOW)


def test_unknown_quality_and_heat_count_as_a_low_middle_value() -> None:
    unknown = score(story("a", quality=None, heat=None), NOW)
    assert score(story("b", quality=10, heat=10), NOW) < unknown
    assert unknown < score(story("c", quality=50, heat=50), NOW)


def test_scores_stay_between_zero_and_one() -> None:
    best = story("best", hours_old=-5, quality=10_000, heat=10_000)
    worst = story("worst", hours_old=10_000, quality=-3, heat=0)
    assert 0 <= score(worst, NOW) < score(best, NOW) <= 1


def test_linked_stories_cluster_transitively_with_the_best_as_the_item() -> None:
    a = story("a", quality=40)
    b = story("b", quality=90)
    c = story("c", quality=60)
    lone = story("lone", quality=10)
    links = {a.id: {b.id}, c.id: {b.id}}  # A-B and B-C: one event
    items = select_items([a, lone, c, b], links, 5, NOW)
    assert items == [DigestItem(b, (c, a)), DigestItem(lone)]
    assert items[0].story_ids == (b.id, c.id, a.id)
    assert items[1].story_ids == (lone.id,)


def test_links_through_stories_that_are_not_candidates_are_ignored() -> None:
    a, b = story("a"), story("b")
    delivered = story("already-delivered")
    links = {a.id: {delivered.id}, delivered.id: {a.id, b.id}, b.id: {delivered.id}}
    items = select_items([a, b], links, 5, NOW)
    assert [item.also for item in items] == [(), ()]
    assert {item.story.id for item in items} == {a.id, b.id}


def test_select_items_returns_at_most_count_best_first() -> None:
    stories = [story(f"s{i}", hours_old=i) for i in range(8)]
    items = select_items(stories, {}, 3, NOW)
    assert [item.story for item in items] == stories[:3]
    assert select_items(stories, {}, 0, NOW) == []
    assert select_items([], {}, 5, NOW) == []


def test_select_items_breaks_score_ties_by_higher_id() -> None:
    twins = [story("twin-1"), story("twin-2"), story("twin-3")]
    items = select_items(twins, {}, 3, NOW)
    assert [item.story.id for item in items] == sorted((s.id for s in twins), reverse=True)


def test_select_items_does_not_depend_on_input_order() -> None:
    stories = [story(f"s{i}", hours_old=i % 3, quality=(i * 37) % 100) for i in range(12)]
    pairs = [(0, 5), (5, 9), (2, 3), (7, 11), (11, 1)]
    links: dict[int, set[int]] = {}
    for x, y in pairs:
        links.setdefault(stories[x].id, set()).add(stories[y].id)
        links.setdefault(stories[y].id, set()).add(stories[x].id)
    expected = select_items(stories, links, 10, NOW)
    shuffler = random.Random(7)
    for _ in range(5):
        shuffled = stories[:]
        shuffler.shuffle(shuffled)
        reordered = dict(sorted(links.items(), key=lambda _: shuffler.random()))
        assert select_items(shuffled, reordered, 10, NOW) == expected
    assert sum(len(item.story_ids) for item in expected) == len(stories)


def test_a_story_listed_twice_is_one_item() -> None:
    a = story("a")
    assert select_items([a, a], {}, 5, NOW) == [DigestItem(a)]


def test_split_by_age_leaves_out_stories_older_than_the_limit() -> None:
    fresh, old, future = (
        story("fresh", hours_old=23),
        story("old", hours_old=25),
        story("future", hours_old=-2),
    )

    assert split_by_age([fresh, old, future], NOW, timedelta(hours=24)) == ([fresh, future], [old])
    assert split_by_age([fresh, old], NOW, None) == ([fresh, old], [])
    assert split_by_age([fresh, old], NOW, timedelta(0)) == ([fresh, old], [])


# --- ages: parse_max_age, describe_age, too_old_note ----------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("90m", timedelta(minutes=90)),
        ("2w", timedelta(weeks=2)),
        (" 7 D ", timedelta(days=7)),
        ("off", timedelta(0)),
        ("0", timedelta(0)),
    ],
)
def test_parse_max_age_reads_a_number_and_a_unit(text: str, expected: timedelta) -> None:
    assert parse_max_age(text) == expected


@pytest.mark.parametrize("text", ["", "7", "3x", "-1d", "0d", "1.5d", "7 days", "9999999d", "7\nd"])
def test_parse_max_age_refuses_anything_else_naming_the_value_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="invalid maximum age") as error:
        parse_max_age(text)
    message = str(error.value)
    assert message.startswith(f"invalid maximum age {text!r}: use a number and a unit, e.g. 24h")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("age", "words"),
    [("24h", "24 hours"), ("7d", "7 days"), ("2w", "2 weeks"), ("90m", "90 minutes"),
     ("1h", "1 hour"), ("48h", "2 days")],
)  # fmt: skip
def test_describe_age_reads_back_what_was_typed(age: str, words: str) -> None:
    assert describe_age(parse_max_age(age)) == words


def test_too_old_note_counts_what_the_limit_left_out() -> None:
    week = timedelta(days=7)
    assert too_old_note(None, 3) == ""
    assert too_old_note(week, 0) == "Left out as older than 7 days: none."
    assert too_old_note(week, 1) == "Left out as older than 7 days: 1 story."
    assert too_old_note(week, 100, exact=False) == (
        "Left out as older than 7 days: 100 or more stories."
    )


# --- digest_nonce --------------------------------------------------------------------------------


def test_digest_nonce_fits_discord_and_is_stable() -> None:
    big_guild = 2**64 - 1
    nonce = digest_nonce(big_guild, date(2024, 6, 15), 12)
    assert len(nonce) <= 25
    assert nonce == digest_nonce(big_guild, date(2024, 6, 15), 12)


def test_a_later_attempt_at_a_date_gets_new_nonces_and_the_first_keeps_its_own() -> None:
    guild, day = 123456789012345678, date(2024, 6, 15)

    assert digest_nonce(guild, day, 0, 0) == digest_nonce(guild, day, 0)
    assert digest_nonce(guild, day, 0, 0) == "dgc6d026c9bae087a9a2c580"  # as before attempts
    nonces = {digest_nonce(guild, day, index, attempt) for index in (0, 1) for attempt in (0, 1, 2)}
    assert len(nonces) == 6
    assert all(len(nonce) <= 25 for nonce in nonces)


def test_digest_nonce_differs_by_guild_date_and_index() -> None:
    base = (123456789012345678, date(2024, 6, 15), 0)
    variants = [
        base,
        (123456789012345679, date(2024, 6, 15), 0),
        (123456789012345678, date(2024, 6, 16), 0),
        (123456789012345678, date(2024, 6, 15), 1),
    ]
    assert len({digest_nonce(*v) for v in variants}) == len(variants)


# --- parse_local_time, zone, matching_zones ------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("09:00", time(9, 0)),
        ("9:05", time(9, 5)),
        ("00:00", time(0, 0)),
        ("23:59", time(23, 59)),
        (" 18:30 ", time(18, 30)),
    ],
)
def test_parse_local_time_reads_24_hour_times(text: str, expected: time) -> None:
    assert parse_local_time(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8:30pm", time(20, 30)),
        ("8pm", time(20, 0)),
        ("8:30 PM", time(20, 30)),
        ("8 a.m.", time(8, 0)),
        ("12am", time(0, 0)),
        ("12:15am", time(0, 15)),
        ("12pm", time(12, 0)),
        ("11:59 pm", time(23, 59)),
    ],
)
def test_parse_local_time_reads_12_hour_times(text: str, expected: time) -> None:
    assert parse_local_time(text) == expected


def test_a_12_hour_time_out_of_range_is_refused_with_the_24_hour_example() -> None:
    with pytest.raises(ValueError, match="invalid time") as error:
        parse_local_time("13pm")
    assert str(error.value) == (
        "invalid time '13pm': use 24-hour HH:MM, e.g. 09:00 or 20:30 (or 8:30pm)"
    )


@pytest.mark.parametrize(
    "text",
    [
        "25:00",
        "24:00",
        "12:60",
        "9",
        "9:5",
        "09:00:00",
        "-1:00",
        "",
        "１２:00",
        "9:00\npm",
        "13pm",
        "0am",
        "12:60pm",
        "8:30 pmx",
        "8:3pm",
    ],
)
def test_parse_local_time_rejects_anything_else_in_one_line(text: str) -> None:
    with pytest.raises(ValueError, match="HH:MM") as error:
        parse_local_time(text)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("typed", "suggested"),
    [
        ("paris", "Europe/Paris"),
        ("Europe/Pariss", "Europe/Paris"),
        ("Europe/Berln", "Europe/Berlin"),
        ("new york", "America/New_York"),
    ],
)
def test_suggest_zones_finds_what_was_meant(typed: str, suggested: str) -> None:
    assert suggest_zones(typed)[0] == suggested


def test_suggest_zones_suggests_nothing_for_nonsense() -> None:
    assert suggest_zones("Mars/Olympus") == []


def test_zone_accepts_iana_names_in_any_case() -> None:
    assert zone("Europe/Paris") == PARIS
    assert zone("europe/paris").key == "Europe/Paris"
    assert zone("UTC").key == "UTC"


def test_zone_rejects_unknown_names_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match=r"^unknown time zone 'Mars/Base'$"):
        zone("Mars/Base")


@pytest.mark.parametrize(
    "name", ["../etc", "/etc/localtime", "Europe/../UTC", "localtime", "", "Europe/Paris\nx"]
)
def test_zone_rejects_paths_and_non_zones(name: str) -> None:
    with pytest.raises(ValueError, match="unknown time zone") as error:
        zone(name)
    assert "\n" not in str(error.value)


def test_matching_zones_ignores_case_and_spaces() -> None:
    assert "America/New_York" in matching_zones("new york")
    assert matching_zones("PARIS") == ["Europe/Paris"]
    assert matching_zones("Atlantis") == []


def test_matching_zones_lists_names_starting_with_the_text_first() -> None:
    found = matching_zones("indian", limit=100)
    starting = [name for name in found if name.startswith("Indian/")]
    assert starting and found[: len(starting)] == starting
    assert "America/Indiana/Indianapolis" in found[len(starting) :]


def test_matching_zones_respects_the_limit() -> None:
    assert len(matching_zones("")) == 25
    assert len(matching_zones("america", limit=5)) == 5
    assert matching_zones("europe", limit=0) == []
