"""The calendar under office-hours schedules: `days` rules, local wall times across DST, country data."""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.schedules.days import (
    country_entry,
    country_holidays,
    local_instant,
    parse_date,
    parse_days,
    parse_time,
)

UTC = dt.UTC
D = dt.date


def days_of(text: str, first: dt.date, last: dt.date) -> list[dt.date]:
    rule = parse_days(text)
    out, day = [], first
    while day <= last:
        if rule.matches(day):
            out.append(day)
        day += dt.timedelta(days=1)
    return out


def weekdays_of(text: str) -> set[str]:
    monday = D(2026, 6, 1)  # a Monday
    return {
        (monday + dt.timedelta(days=i)).strftime("%a").lower()
        for i in range(7)
        if parse_days(text).matches(monday + dt.timedelta(days=i))
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("daily", {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}),
        ("weekdays", {"mon", "tue", "wed", "thu", "fri"}),
        ("weekends", {"sat", "sun"}),
        ("mon-fri", {"mon", "tue", "wed", "thu", "fri"}),
        ("fri-mon", {"fri", "sat", "sun", "mon"}),  # a range wraps
        ("sat-sun", {"sat", "sun"}),
        ("sun-tue", {"sun", "mon", "tue"}),
        ("mon,wed,fri", {"mon", "wed", "fri"}),
        (" Mon , Thu-Fri ", {"mon", "thu", "fri"}),  # case and spaces do not matter
        ("tue,tue", {"tue"}),
        ("weekends,wed", {"sat", "sun", "wed"}),
    ],
)
def test_weekday_terms(text, expected):
    assert weekdays_of(text) == expected


def test_covers_workweek():
    assert parse_days("mon-fri").covers_workweek
    assert parse_days("weekdays").covers_workweek
    assert parse_days("daily").covers_workweek
    assert parse_days("sun-fri").covers_workweek
    assert parse_days("mon,tue,wed,thu,fri").covers_workweek
    assert not parse_days("mon-thu").covers_workweek
    assert not parse_days("weekends").covers_workweek
    assert not parse_days("mon#1,tue#1,wed#1,thu#1,fri#1").covers_workweek


def test_first_monday_of_each_month_2026():
    found = days_of("mon#1", D(2026, 1, 1), D(2026, 12, 31))
    assert len(found) == 12
    assert found[:3] == [D(2026, 1, 5), D(2026, 2, 2), D(2026, 3, 2)]
    assert all(d.weekday() == 0 and d.day <= 7 for d in found)


def test_fifth_friday_only_in_months_that_have_one():
    # 2026: January, May, July and October have five Fridays
    assert days_of("fri#5", D(2026, 1, 1), D(2026, 12, 31)) == [
        D(2026, 1, 30),
        D(2026, 5, 29),
        D(2026, 7, 31),
        D(2026, 10, 30),
    ]


def test_last_friday_across_month_ends_and_a_leap_february():
    found = days_of("friL", D(2028, 1, 1), D(2028, 4, 30))
    # Feb 2028 has 29 days and ends on a Tuesday; its last Friday is the 25th. March 2028 has five Fridays.
    assert found == [D(2028, 1, 28), D(2028, 2, 25), D(2028, 3, 31), D(2028, 4, 28)]
    assert days_of("tueL", D(2028, 2, 1), D(2028, 2, 29)) == [D(2028, 2, 29)]
    assert days_of("tue#5", D(2028, 2, 1), D(2028, 2, 29)) == [D(2028, 2, 29)]
    assert days_of("tue#5", D(2027, 2, 1), D(2027, 2, 28)) == []  # not in a 28-day February


@given(st.integers(2025, 2030), st.integers(1, 12), st.integers(0, 6))
def test_last_weekday_is_the_latest_such_day_of_the_month(year, month, weekday):
    name = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")[weekday]
    end = calendar.monthrange(year, month)[1]
    found = days_of(f"{name}L", D(year, month, 1), D(year, month, end))
    expected = max(D(year, month, d) for d in range(1, end + 1) if D(year, month, d).weekday() == weekday)
    assert found == [expected]
    nth = days_of(f"{name}#{(expected.day - 1) // 7 + 1}", D(year, month, 1), D(year, month, end))
    assert nth == [expected]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "names no days"),
        ("mon#6", "from #1 to #5"),
        ("mon#0", "from #1 to #5"),
        ("monday", "write 'mon'"),
        ("funday", "is not a day"),
        ("mon,,fri", "empty term"),
        ("mon-mon", "from a day to itself"),
        ("mon-xyz", "is not a day"),
        ("L", "is not a day"),
    ],
)
def test_bad_days(text, message):
    with pytest.raises(ValueError, match=message):
        parse_days(text)


def test_times_and_dates():
    assert parse_time("09:00") == (9, 0)
    assert parse_time("9:05") == (9, 5)
    assert parse_time("23:59") == (23, 59)
    assert parse_time(None) is None
    for bad in ("25:00", "12:60", "0900", "9", "noon", "-1:00"):
        with pytest.raises(ValueError, match="is not a time"):
            parse_time(bad)
    with pytest.raises(ValueError, match="end of the day write 00:00"):
        parse_time("24:00")
    assert parse_date("2026-12-31") == D(2026, 12, 31)
    assert parse_date("JP") is None
    with pytest.raises(ValueError, match="is not a date"):
        parse_date("2026-02-30")


# Local wall times -------------------------------------------------------------------------------------
BERLIN, NEW_YORK, LORD_HOWE = (
    ZoneInfo("Europe/Berlin"),
    ZoneInfo("America/New_York"),
    ZoneInfo("Australia/Lord_Howe"),
)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("zone", "day", "hhmm", "expected"),
    [
        (BERLIN, D(2026, 3, 28), (2, 30), utc(2026, 3, 28, 1, 30)),  # CET, the day before
        (BERLIN, D(2026, 3, 29), (2, 30), utc(2026, 3, 29, 1, 0)),  # skipped: acts at 03:00 CEST
        (BERLIN, D(2026, 3, 29), (2, 0), utc(2026, 3, 29, 1, 0)),  # the gap's first minute
        (BERLIN, D(2026, 3, 29), (3, 0), utc(2026, 3, 29, 1, 0)),  # the first minute after it
        (BERLIN, D(2026, 3, 29), (1, 59), utc(2026, 3, 29, 0, 59)),
        (BERLIN, D(2026, 10, 25), (2, 30), utc(2026, 10, 25, 0, 30)),  # repeated: the first (CEST) one
        (BERLIN, D(2026, 10, 25), (3, 0), utc(2026, 10, 25, 2, 0)),
        (NEW_YORK, D(2026, 3, 8), (2, 15), utc(2026, 3, 8, 7, 0)),  # skipped: 03:00 EDT
        (NEW_YORK, D(2026, 11, 1), (1, 30), utc(2026, 11, 1, 5, 30)),  # repeated: 01:30 EDT
        (LORD_HOWE, D(2026, 10, 4), (2, 10), utc(2026, 10, 3, 15, 30)),  # 30-minute gap 02:00→02:30
        (LORD_HOWE, D(2026, 4, 5), (1, 45), utc(2026, 4, 4, 14, 45)),  # repeated half hour: the first
    ],
)
def test_local_instant(zone, day, hhmm, expected):
    got = local_instant(zone, day, *hhmm)
    assert got == expected
    assert got.tzinfo is not None and got.second == 0 and got.microsecond == 0


@given(
    st.sampled_from(
        ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Tokyo"]
    ),
    st.dates(D(2025, 1, 1), D(2030, 12, 31)),
    st.integers(0, 23),
    st.integers(0, 59),
)
def test_local_instant_is_the_wall_time_or_the_first_minute_after_the_gap(key, day, hour, minute):
    zone = ZoneInfo(key)
    wall = dt.datetime.combine(day, dt.time(hour, minute))
    got = local_instant(zone, day, hour, minute)
    seen = got.astimezone(zone).replace(tzinfo=None)
    if seen != wall:  # only inside a gap, and then it is the first minute after it
        assert seen > wall
        before = (got - dt.timedelta(minutes=1)).astimezone(zone).replace(tzinfo=None)
        assert before < wall  # the minute before is still before the gap
        assert seen - before > dt.timedelta(minutes=1)
    else:  # a repeated wall time acts at its first occurrence: no earlier instant shows it
        for back in (30, 60, 120):
            earlier = (got - dt.timedelta(minutes=back)).astimezone(zone).replace(tzinfo=None)
            assert earlier != wall


# Country holidays -------------------------------------------------------------------------------------
def test_country_entries():
    assert country_entry("JP", None) == ("JP", None, "en_US")
    assert country_entry("DE", "by") == ("DE", "BY", "en_US")
    with pytest.raises(ValueError, match="no holiday data for the country code 'XX'"):
        country_entry("XX", None)
    with pytest.raises(ValueError, match="DE has no subdivision 'ZZ'"):
        country_entry("DE", "ZZ")


def test_country_holidays_in_english():
    jp = country_holidays((country_entry("JP", None),), 2027)
    assert jp[D(2027, 1, 1)] == "New Year's Day"
    bavaria = country_holidays((country_entry("DE", "BY"),), 2026)
    assert D(2026, 1, 6) in bavaria  # Epiphany: Bavaria, not Berlin
    assert D(2026, 1, 6) not in country_holidays((country_entry("DE", "BE"),), 2026)
    both = country_holidays((country_entry("JP", None), country_entry("DE", None)), 2027)
    assert both[D(2027, 1, 1)] == "New Year's Day"  # one name, though both countries have it
