"""`until TIME` of a schedule override, in the caller's zone (pure)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import UserError
from handlers.schedules.override_time import local_instant, parse_until

UTC = dt.UTC
BERLIN, TOKYO = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Tokyo")
WEEK = dt.timedelta(days=7)
NOW = dt.datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # a Tuesday: 10:30 in Berlin, 18:30 in Tokyo


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        ("18:00", BERLIN, dt.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
        ("today 18:00", BERLIN, dt.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)),
        ("tomorrow 09:00", TOKYO, dt.datetime(2026, 12, 2, 0, 0, tzinfo=UTC)),
        ("fri 18:00", BERLIN, dt.datetime(2026, 12, 4, 17, 0, tzinfo=UTC)),
        ("Tuesday 12:00", BERLIN, dt.datetime(2026, 12, 1, 11, 0, tzinfo=UTC)),  # today, still ahead
        ("tue 10:00", BERLIN, dt.datetime(2026, 12, 8, 9, 0, tzinfo=UTC)),  # today's is past: next week
        ("2026-12-03 07:15", BERLIN, dt.datetime(2026, 12, 3, 6, 15, tzinfo=UTC)),
        ("2026-12-03", TOKYO, dt.datetime(2026, 12, 2, 15, 0, tzinfo=UTC)),
        ("90m", BERLIN, NOW + dt.timedelta(minutes=90)),
        ("1h30m", BERLIN, NOW + dt.timedelta(minutes=90)),
        ("2d", BERLIN, NOW + dt.timedelta(days=2)),
    ],
)
def test_times_people_type(text, zone, expected):
    assert parse_until(text, NOW, zone, WEEK) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "Say until when"),
        ("soon", "is not a time"),
        ("25:00", "is not a time"),
        ("tomorrow noon", "is not a time"),
        ("08:00", "already past"),  # 08:00 Berlin today is before 10:30
        ("2026-11-30 12:00", "already past"),
        ("8d", "at most 7 days"),
        ("0m", "is not a time"),
    ],
)
def test_bad_times_get_a_clear_answer(text, why):
    with pytest.raises(UserError, match=why):
        parse_until(text, NOW, BERLIN, WEEK)


def test_a_time_the_clocks_skip_means_the_first_minute_after_and_a_repeated_one_the_first():
    spring = local_instant(dt.date(2026, 3, 29), 2, 30, BERLIN)  # 02:00 → 03:00 CEST
    assert spring == dt.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    assert spring.astimezone(BERLIN).strftime("%H:%M %Z") == "03:00 CEST"
    autumn = local_instant(dt.date(2026, 10, 25), 2, 30, BERLIN)  # 02:30 happens twice
    assert autumn == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # the first, still CEST


ZONES = [
    ZoneInfo(z)
    for z in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Tokyo", "America/Sao_Paulo")
]


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.dates(dt.date(2025, 1, 1), dt.date(2030, 12, 31)),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
)
def test_local_instant_is_that_wall_time_or_the_first_minute_after_a_gap(zone, day, hour, minute):
    at = local_instant(day, hour, minute, zone)
    wall = dt.datetime.combine(day, dt.time(hour, minute))
    seen = at.astimezone(zone).replace(tzinfo=None)
    assert at.second == 0 and at.tzinfo is UTC
    if seen != wall:  # skipped: the first minute after the gap, and the minute before is before the wall time
        assert seen > wall
        assert (at - dt.timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None) < wall
    else:  # exists: the first time it does (no instant in the 3 hours before shows the same wall time)
        earlier = (at - dt.timedelta(minutes=30 * k) for k in range(1, 7))
        assert all(x.astimezone(zone).replace(tzinfo=None) != wall for x in earlier)
