"""Office-hours schedules: the desired state as a function of time, by hand-written cases in real zones."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from handlers.schedules.model import CompiledSchedule, Schedule, Transition, compile_schedule

UTC = dt.UTC
D = dt.date


def schedule(zone: str, *periods: dict, **fields) -> CompiledSchedule:
    return compile_schedule("office-hours", Schedule(timezone=zone, periods=periods, **fields), None)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def local(cs: CompiledSchedule, *args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=cs.zone)


def walls(transitions: list[Transition]) -> list[tuple[str, str]]:
    """(local wall time with its offset, state): what a person reads."""
    return [(t.local.strftime("%a %Y-%m-%d %H:%M %z"), t.state) for t in transitions]


def test_tokyo_office_hours_over_a_week():
    cs = schedule("Asia/Tokyo", {"days": "mon-fri", "start": "09:00", "stop": "21:00"})
    week = cs.transitions(local(cs, 2026, 6, 7), local(cs, 2026, 6, 14))  # Sunday to Sunday
    assert [(t.at, t.state) for t in week] == [
        (utc(2026, 6, d, h), state)
        for d in range(8, 13)
        for h, state in ((0, "running"), (12, "stopped"))  # 09:00 and 21:00 JST
    ]
    assert week[0].reason == "mon-fri 09:00–21:00 start"
    assert week[1].reason == "mon-fri 09:00–21:00 stop"
    assert all(t.local.tzinfo == cs.zone and t.local == t.at for t in week)
    assert cs.desired(local(cs, 2026, 6, 10, 8, 59)) == "stopped"
    assert cs.desired(local(cs, 2026, 6, 10, 9, 0)) == "running"  # the start's own minute
    assert cs.desired(local(cs, 2026, 6, 10, 20, 59, 59)) == "running"
    assert cs.desired(local(cs, 2026, 6, 10, 21, 0)) == "stopped"
    saturday = cs.last_transition(local(cs, 2026, 6, 13, 15))
    assert saturday is not None and saturday.at == utc(2026, 6, 12, 12) and saturday.state == "stopped"
    upcoming = cs.next_transitions(local(cs, 2026, 6, 12, 21), days=3)  # up to Monday 21:00, inclusive
    assert upcoming[0] == Transition(
        utc(2026, 6, 15, 0), "running", local(cs, 2026, 6, 15, 9), "mon-fri 09:00–21:00 start"
    )
    assert [t.local for t in upcoming[1:]] == [local(cs, 2026, 6, 15, 21)]


def test_window_bounds_are_start_exclusive_end_inclusive():
    cs = schedule("Asia/Tokyo", {"days": "daily", "start": "09:00", "stop": "21:00"})
    nine = local(cs, 2026, 6, 10, 9)
    assert cs.transitions(nine, nine + dt.timedelta(hours=1)) == []
    assert [t.at for t in cs.transitions(nine - dt.timedelta(minutes=1), nine)] == [nine]
    assert cs.transitions(nine, nine) == []
    assert cs.transitions(nine, nine - dt.timedelta(days=1)) == []
    with pytest.raises(ValueError, match="aware"):
        cs.transitions(dt.datetime(2026, 6, 10), nine)
    with pytest.raises(ValueError, match="aware"):
        cs.desired(dt.datetime(2026, 6, 10))


def test_berlin_spring_forward_a_skipped_start_acts_at_the_first_minute_after_the_gap():
    cs = schedule(
        "Europe/Berlin",
        {"days": "daily", "start": "02:30", "stop": "05:00"},
        {"days": "mon-fri", "start": "09:00", "stop": "17:00"},
    )
    got = cs.transitions(local(cs, 2026, 3, 27), local(cs, 2026, 3, 31))
    assert walls(got) == [
        ("Fri 2026-03-27 02:30 +0100", "running"),
        ("Fri 2026-03-27 05:00 +0100", "stopped"),
        ("Fri 2026-03-27 09:00 +0100", "running"),
        ("Fri 2026-03-27 17:00 +0100", "stopped"),
        ("Sat 2026-03-28 02:30 +0100", "running"),
        ("Sat 2026-03-28 05:00 +0100", "stopped"),
        ("Sun 2026-03-29 03:00 +0200", "running"),  # 02:30 does not exist that night
        ("Sun 2026-03-29 05:00 +0200", "stopped"),
        ("Mon 2026-03-30 02:30 +0200", "running"),
        ("Mon 2026-03-30 05:00 +0200", "stopped"),
        ("Mon 2026-03-30 09:00 +0200", "running"),
        ("Mon 2026-03-30 17:00 +0200", "stopped"),
    ]
    assert got[6].at == utc(2026, 3, 29, 1, 0)
    assert [t.at.hour for t in got if t.local.hour == 9] == [
        8,
        7,
    ]  # 09:00 local moved from 08:00 to 07:00 UTC


def test_berlin_a_period_inside_the_gap_does_not_happen_that_day():
    cs = schedule("Europe/Berlin", {"days": "daily", "start": "02:10", "stop": "02:50"})
    got = cs.transitions(local(cs, 2026, 3, 28, 12), local(cs, 2026, 3, 30, 12))
    assert walls(got) == [
        ("Mon 2026-03-30 02:10 +0200", "running"),
        ("Mon 2026-03-30 02:50 +0200", "stopped"),
    ]


def test_berlin_fall_back_a_repeated_stop_acts_once_at_its_first_occurrence():
    cs = schedule("Europe/Berlin", {"days": "daily", "start": "01:00", "stop": "02:30"})
    got = cs.transitions(local(cs, 2026, 10, 24, 12), local(cs, 2026, 10, 26, 12))
    assert [(t.at, t.state) for t in got] == [
        (utc(2026, 10, 24, 23, 0), "running"),  # 01:00 CEST
        (utc(2026, 10, 25, 0, 30), "stopped"),  # the first 02:30 (CEST); none at the second (01:30 UTC)
        (utc(2026, 10, 26, 0, 0), "running"),  # 01:00 CET
        (utc(2026, 10, 26, 1, 30), "stopped"),
    ]
    assert cs.desired(utc(2026, 10, 25, 1, 45)) == "stopped"  # the second 02:45, CET


def test_berlin_fall_back_a_period_inside_the_repeated_hour_runs_once():
    cs = schedule("Europe/Berlin", {"days": "daily", "start": "02:10", "stop": "02:50"})
    got = cs.transitions(utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
    assert [(t.at, t.state) for t in got] == [
        (utc(2026, 10, 25, 0, 10), "running"),
        (utc(2026, 10, 25, 0, 50), "stopped"),
    ]


def test_new_york_spring_forward():
    cs = schedule(
        "America/New_York",
        {"days": "mon-fri", "start": "08:00", "stop": "18:00"},
        {"days": "sun", "start": "02:15"},  # start-only, inside the gap
    )
    got = cs.transitions(local(cs, 2026, 3, 6), local(cs, 2026, 3, 11))
    assert [(t.at, t.state) for t in got] == [
        (utc(2026, 3, 6, 13), "running"),  # Friday 08:00 EST
        (utc(2026, 3, 6, 23), "stopped"),
        (utc(2026, 3, 8, 7), "running"),  # Sunday 02:15 does not exist: 03:00 EDT
        (utc(2026, 3, 9, 22), "stopped"),  # Monday 08:00 EDT finds them running; 18:00 EDT stops
        (utc(2026, 3, 10, 12), "running"),  # Tuesday 08:00 EDT
        (utc(2026, 3, 10, 22), "stopped"),
    ]
    assert got[2].local.strftime("%H:%M %Z") == "03:00 EDT" and got[2].reason == "sun 02:15 start"


def test_new_york_fall_back_repeated_times_act_once():
    cs = schedule(
        "America/New_York",
        {"days": "mon-fri", "start": "08:00", "stop": "18:00"},
        {"days": "sat", "start": "23:00"},
        {"days": "sun", "stop": "01:30"},  # 01:00–01:59 happens twice that night
        {"days": "sun", "start": "01:45"},
    )
    got = cs.transitions(local(cs, 2026, 10, 31), local(cs, 2026, 11, 3))
    assert [(t.at, t.state) for t in got] == [
        (utc(2026, 11, 1, 3), "running"),  # Saturday 23:00 EDT
        (utc(2026, 11, 1, 5, 30), "stopped"),  # the first 01:30 (EDT)
        (utc(2026, 11, 1, 5, 45), "running"),  # the first 01:45; no stop at the second 01:30 (06:30 UTC)
        (utc(2026, 11, 2, 23), "stopped"),  # Monday 18:00 EST
    ]
    assert [t.local.strftime("%H:%M %Z") for t in got[1:3]] == ["01:30 EDT", "01:45 EDT"]


def test_an_overnight_period_belongs_to_the_day_it_starts_on():
    cs = schedule("Asia/Tokyo", {"days": "fri", "start": "22:00", "stop": "06:00"})
    got = cs.transitions(local(cs, 2026, 6, 1), local(cs, 2026, 6, 15))
    assert walls(got) == [
        ("Fri 2026-06-05 22:00 +0900", "running"),
        ("Sat 2026-06-06 06:00 +0900", "stopped"),
        ("Fri 2026-06-12 22:00 +0900", "running"),
        ("Sat 2026-06-13 06:00 +0900", "stopped"),
    ]
    assert got[1].reason == "fri 22:00–06:00 stop"
    assert cs.desired(local(cs, 2026, 6, 6, 3)) == "running"
    assert cs.desired(local(cs, 2026, 6, 1, 3)) == "stopped"  # Monday 03:00: no Sunday period


def test_overlapping_spans_are_a_union_and_adjacent_ones_are_no_transition():
    cs = schedule(
        "Asia/Tokyo",
        {"days": "daily", "start": "09:00", "stop": "13:00"},
        {"days": "daily", "start": "11:00", "stop": "17:00"},
        {"days": "daily", "start": "17:00", "stop": "19:00"},  # begins when the second ends
        {"days": "daily", "stop": "12:00"},  # a stop-only while spans run: no effect
    )
    got = cs.transitions(local(cs, 2026, 6, 10), local(cs, 2026, 6, 11))
    assert walls(got) == [
        ("Wed 2026-06-10 09:00 +0900", "running"),
        ("Wed 2026-06-10 19:00 +0900", "stopped"),
    ]
    assert got[1].reason == "daily 17:00–19:00 stop"


def test_start_only_and_stop_only_periods():
    cs = schedule(
        "Asia/Tokyo",
        {"days": "mon-fri", "start": "08:00"},
        {"days": "daily", "stop": "20:00"},
    )
    got = cs.transitions(local(cs, 2026, 6, 7), local(cs, 2026, 6, 14))
    assert [t.local.strftime("%a %H:%M") for t in got] == [
        f"{day} {hhmm}" for day in ("Mon", "Tue", "Wed", "Thu", "Fri") for hhmm in ("08:00", "20:00")
    ]  # the weekend's 20:00 stops find the instances stopped already: no transitions
    assert got[0].reason == "mon-fri 08:00 start" and got[1].reason == "daily 20:00 stop"


def test_a_start_only_period_runs_until_the_next_stop_of_any_period():
    cs = schedule(
        "Asia/Tokyo",
        {"days": "mon-fri", "start": "09:00", "stop": "17:00"},
        {"days": "sat", "start": "10:00"},
    )
    got = cs.transitions(local(cs, 2026, 6, 12, 12), local(cs, 2026, 6, 16))
    assert walls(got) == [
        ("Fri 2026-06-12 17:00 +0900", "stopped"),
        ("Sat 2026-06-13 10:00 +0900", "running"),  # through Sunday and Monday morning
        ("Mon 2026-06-15 17:00 +0900", "stopped"),
    ]
    assert cs.desired(local(cs, 2026, 6, 14, 23)) == "running"


def test_first_monday_and_last_friday_across_month_ends_of_a_leap_year():
    cs = schedule(
        "Asia/Tokyo",
        {"days": "mon#1", "start": "09:00", "stop": "10:00"},
        {"days": "friL", "start": "18:00", "stop": "20:00"},
    )
    got = cs.transitions(local(cs, 2028, 1, 25), local(cs, 2028, 4, 5))
    starts = [t.local.strftime("%a %Y-%m-%d %H:%M") for t in got if t.state == "running"]
    assert starts == [
        "Fri 2028-01-28 18:00",
        "Mon 2028-02-07 09:00",  # February 2028 begins on a Tuesday
        "Fri 2028-02-25 18:00",  # the 29th is a Tuesday
        "Mon 2028-03-06 09:00",
        "Fri 2028-03-31 18:00",  # March 2028 has five Fridays: the fifth is the last
        "Mon 2028-04-03 09:00",
    ]


def test_desired_looks_back_past_forty_days_for_a_rare_rule():
    cs = schedule("Asia/Tokyo", {"days": "fri#5", "start": "09:00", "stop": "17:00"})
    # 2026: five Fridays in January, then not until May
    last = cs.last_transition(local(cs, 2026, 4, 20))
    assert last is not None and last.local == local(cs, 2026, 1, 30, 17) and last.state == "stopped"
    assert cs.desired(local(cs, 2026, 4, 20)) == "stopped"
    assert cs.next_transitions(local(cs, 2026, 4, 20), days=40)[0].local == local(cs, 2026, 5, 29, 9)


def test_holiday_explicit_date():
    cs = schedule(
        "Asia/Tokyo", {"days": "mon-fri", "start": "09:00", "stop": "21:00"}, holidays=("2026-12-31",)
    )
    got = cs.transitions(local(cs, 2026, 12, 30, 12), local(cs, 2027, 1, 2))
    assert walls(got) == [
        ("Wed 2026-12-30 21:00 +0900", "stopped"),
        ("Fri 2027-01-01 09:00 +0900", "running"),  # no country listed: New Year's Day is a weekday here
        ("Fri 2027-01-01 21:00 +0900", "stopped"),
    ]
    assert cs.is_holiday(D(2026, 12, 31)) == "listed in holidays"
    assert cs.is_holiday(D(2027, 1, 1)) is None


def test_a_holiday_cuts_an_overnight_period_at_its_first_minute_and_the_next_day_is_normal():
    cs = schedule(
        "Asia/Tokyo", {"days": "daily", "start": "22:00", "stop": "06:00"}, holidays=("2026-12-31",)
    )
    got = cs.transitions(local(cs, 2026, 12, 30, 12), local(cs, 2027, 1, 2, 12))
    assert walls(got) == [
        ("Wed 2026-12-30 22:00 +0900", "running"),
        ("Thu 2026-12-31 00:00 +0900", "stopped"),
        ("Fri 2027-01-01 22:00 +0900", "running"),
        ("Sat 2027-01-02 06:00 +0900", "stopped"),
    ]
    assert got[1].reason == "holiday 2026-12-31 (listed in holidays)"


def test_a_holiday_stops_what_a_start_only_period_started():
    cs = schedule("Asia/Tokyo", {"days": "daily", "start": "08:00"}, holidays=("2026-12-31",))
    got = cs.transitions(local(cs, 2026, 12, 29), local(cs, 2027, 1, 2))
    assert walls(got) == [
        ("Thu 2026-12-31 00:00 +0900", "stopped"),
        ("Fri 2027-01-01 08:00 +0900", "running"),
    ]


def test_country_holidays_japan():
    cs = schedule("Asia/Tokyo", {"days": "mon-fri", "start": "09:00", "stop": "21:00"}, holidays=("JP",))
    assert cs.is_holiday(D(2027, 1, 1)) == "New Year's Day"
    assert cs.is_holiday(D(2027, 1, 4)) is None
    got = cs.transitions(local(cs, 2026, 12, 31, 12), local(cs, 2027, 1, 5))
    assert walls(got) == [
        ("Thu 2026-12-31 21:00 +0900", "stopped"),
        ("Mon 2027-01-04 09:00 +0900", "running"),
        ("Mon 2027-01-04 21:00 +0900", "stopped"),
    ]


def test_country_subdivision_bavaria():
    cs = schedule(
        "Europe/Berlin", {"days": "mon-fri", "start": "09:00", "stop": "17:00"}, holidays=("DE-BY",)
    )
    assert cs.is_holiday(D(2026, 1, 6)) == "Epiphany"  # a Tuesday; Bavaria only
    assert cs.desired(local(cs, 2026, 1, 6, 12)) == "stopped"
    assert cs.desired(local(cs, 2026, 1, 7, 12)) == "running"


def test_desired_across_a_long_weekend_golden_week():
    cs = schedule("Asia/Tokyo", {"days": "mon-fri", "start": "09:00", "stop": "21:00"}, holidays=("JP",))
    # 2026: Sun 3 May to Wed 6 May are holidays; the last stop is Friday 1 May 21:00
    for day in (2, 3, 4, 5, 6):
        last = cs.last_transition(local(cs, 2026, 5, day, 12))
        assert last is not None and last.local == local(cs, 2026, 5, 1, 21) and last.state == "stopped"
    assert cs.desired(local(cs, 2026, 5, 6, 23, 59)) == "stopped"
    assert cs.next_transitions(local(cs, 2026, 5, 2), days=7)[0].local == local(cs, 2026, 5, 7, 9)


def test_make_up_workday_saturday_china():
    cs = schedule(
        "Asia/Shanghai",
        {"days": "mon-fri", "start": "09:00", "stop": "21:00"},
        {"days": "mon-thu", "start": "06:00", "stop": "07:00"},  # not every weekday: not on a workday
        holidays=("CN",),
        workdays=("2026-10-10",),
    )
    assert cs.is_workday(D(2026, 10, 10)) and not cs.is_workday(D(2026, 10, 9))
    got = cs.transitions(local(cs, 2026, 10, 7), local(cs, 2026, 10, 12))
    assert walls(got) == [
        ("Thu 2026-10-08 06:00 +0800", "running"),
        ("Thu 2026-10-08 07:00 +0800", "stopped"),
        ("Thu 2026-10-08 09:00 +0800", "running"),
        ("Thu 2026-10-08 21:00 +0800", "stopped"),
        ("Fri 2026-10-09 09:00 +0800", "running"),
        ("Fri 2026-10-09 21:00 +0800", "stopped"),
        ("Sat 2026-10-10 09:00 +0800", "running"),
        ("Sat 2026-10-10 21:00 +0800", "stopped"),
    ]
    assert got[6].reason == "mon-fri 09:00–21:00 start (make-up workday 2026-10-10)"
    assert cs.is_holiday(D(2026, 10, 7)) is not None  # the National Day week before it


def test_an_explicit_workday_overrides_a_country_holiday():
    cs = schedule(
        "Asia/Tokyo",
        {"days": "weekdays", "start": "09:00", "stop": "21:00"},
        holidays=("JP",),
        workdays=("2027-01-01",),
    )
    assert cs.is_holiday(D(2027, 1, 1)) is None and cs.is_workday(D(2027, 1, 1))
    assert cs.desired(local(cs, 2027, 1, 1, 12)) == "running"


def test_the_zone_defaults_to_the_policy_timezone():
    cs = compile_schedule(
        "office-hours", Schedule(periods=({"start": "09:00", "stop": "17:00"},)), "Asia/Kolkata"
    )
    assert cs.zone == ZoneInfo("Asia/Kolkata") and cs.name == "office-hours"
    assert cs.next_transitions(utc(2026, 6, 10), days=1)[0].at == utc(2026, 6, 10, 3, 30)
    own = compile_schedule("x", Schedule(timezone="UTC", periods=({"start": "09:00"},)), "Asia/Kolkata")
    assert own.zone == ZoneInfo("UTC")


# The naive approach, for contrast ---------------------------------------------------------------------
def utc_cron_daily(hour: int, minute: int, first: dt.date, days: int) -> list[dt.datetime]:
    """When a cron line `M H * * *` evaluated in UTC fires."""
    return [
        dt.datetime.combine(first + dt.timedelta(days=i), dt.time(hour, minute), UTC) for i in range(days)
    ]


def test_a_utc_cron_is_an_hour_off_in_winter_while_the_schedule_is_not():
    berlin = ZoneInfo("Europe/Berlin")
    cs = schedule("Europe/Berlin", {"days": "daily", "start": "09:00", "stop": "18:00"})
    for first in (D(2026, 7, 1), D(2026, 1, 12)):
        cron = [
            t.astimezone(berlin).hour for t in utc_cron_daily(7, 0, first, 5)
        ]  # "0 7 * * *", meant as 09:00
        since = dt.datetime.combine(first, dt.time(), UTC)
        ours = [t.local.hour for t in cs.next_transitions(since, days=5) if t.state == "running"]
        assert ours == [9] * 5
        assert cron == ([9] * 5 if first.month == 7 else [8] * 5)  # CEST in July; CET in January: 08:00
