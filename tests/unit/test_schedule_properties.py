"""Properties of office-hours schedules over real zones (with and without DST), random periods and dates."""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from handlers.schedules.days import WEEKDAYS, local_instant, parse_days
from handlers.schedules.model import CompiledSchedule, Period, Schedule, compile_schedule

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)
ZONES = (
    "UTC",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Asia/Kathmandu",  # +05:45
    "Asia/Shanghai",
    "America/Sao_Paulo",  # no DST since 2019
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "America/Santiago",  # changes at midnight
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST
    "Pacific/Auckland",
    "Pacific/Chatham",  # +12:45 / +13:45
    "Africa/Cairo",
)
FIRST, LAST = dt.datetime(2025, 1, 1, tzinfo=UTC), dt.datetime(2030, 12, 1, tzinfo=UTC)
PROPERTY = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@functools.cache
def offset_changes(key: str) -> tuple[dt.datetime, ...]:
    """The instants (to the hour) at which the zone's UTC offset changes between FIRST and LAST."""
    zone, out = ZoneInfo(key), []
    at, offset = FIRST, FIRST.astimezone(ZoneInfo(key)).utcoffset()
    while at < LAST:
        at += dt.timedelta(hours=1)
        now = at.astimezone(zone).utcoffset()
        if now != offset:
            out.append(at)
            offset = now
    return tuple(out)


NO_DST = tuple(key for key in ZONES if not offset_changes(key))

# Strategies ------------------------------------------------------------------------------------------
TRICKY = [(0, 0), (0, 30), (1, 0), (1, 30), (2, 0), (2, 15), (2, 30), (2, 45), (3, 0), (23, 0), (23, 45)]
hhmm = st.one_of(st.sampled_from(TRICKY), st.tuples(st.integers(0, 23), st.sampled_from([0, 15, 30, 45])))
weekday = st.sampled_from(WEEKDAYS)
day_term = st.one_of(
    st.sampled_from(["daily", "weekdays", "weekends", "mon-fri", "fri-mon", "sat-sun"]),
    weekday,
    st.tuples(weekday, weekday).filter(lambda p: p[0] != p[1]).map("-".join),
    st.tuples(weekday, st.integers(1, 5)).map(lambda p: f"{p[0]}#{p[1]}"),
    weekday.map(lambda d: f"{d}L"),
)
days_text = st.lists(day_term, min_size=1, max_size=3).map(",".join)


def text(t: tuple[int, int] | None) -> str | None:
    return None if t is None else f"{t[0]:02d}:{t[1]:02d}"


@st.composite
def periods(draw) -> Period:
    days = draw(days_text)
    kind = draw(st.sampled_from(["span", "span", "span", "start", "stop"]))
    start = draw(hhmm) if kind in ("span", "start") else None
    stop = draw(hhmm.filter(lambda t: t != start)) if kind in ("span", "stop") else None
    return Period(days=days, start=text(start), stop=text(stop))


@st.composite
def schedules(draw, spans_only: bool = False) -> tuple[CompiledSchedule, dt.datetime]:
    """A compiled schedule and an instant in 2025–2030 (often near one of the zone's DST changes)."""
    key = draw(st.sampled_from(ZONES))
    ps = draw(st.lists(periods(), min_size=1, max_size=3))
    if spans_only:
        ps = [p for p in ps if p.start and p.stop] or [Period(days="mon-fri", start="09:00", stop="17:00")]
    near = offset_changes(key)
    if near and draw(st.booleans()):
        at = draw(st.sampled_from(near)) + draw(st.integers(-4 * 1440, 4 * 1440)) * MINUTE
    else:
        at = FIRST + draw(st.integers(0, int((LAST - FIRST) / MINUTE))) * MINUTE
    at += dt.timedelta(seconds=draw(st.sampled_from([0, 0, 0, 1, 30, 59])))
    around = st.dates((at - dt.timedelta(days=5)).date(), (at + dt.timedelta(days=25)).date())
    holidays = draw(st.lists(around.map(dt.date.isoformat), max_size=3, unique=True))
    workdays = draw(st.lists(around.map(dt.date.isoformat).filter(lambda d: d not in holidays), max_size=2))
    schedule = Schedule(timezone=key, periods=tuple(ps), holidays=tuple(holidays), workdays=tuple(workdays))
    return compile_schedule("prop", schedule, None), at


window_days = st.integers(1, 20)


# (a) (c) ---------------------------------------------------------------------------------------------
@PROPERTY
@given(schedules(), window_days)
def test_transitions_alternate_and_are_whole_utc_minutes_seen_locally(case, days):
    cs, start = case
    got = cs.next_transitions(start, days=days)
    assert all(a.at < b.at for a, b in zip(got, got[1:], strict=False))
    assert all(a.state != b.state for a, b in zip(got, got[1:], strict=False))
    before = cs.desired(start)
    if got and before is not None:
        assert got[0].state != before  # the first one changes what held at `start`
    for t in got:
        assert start < t.at <= start + dt.timedelta(days=days)
        assert t.at.tzinfo is UTC and t.at.second == 0 and t.at.microsecond == 0
        # the same instant (compared in UTC: == across zones is always False for a time in a fold)
        assert t.local.astimezone(UTC) == t.at and t.local.tzinfo is cs.zone
        assert t.local.replace(tzinfo=None) == (t.at + t.local.utcoffset()).replace(tzinfo=None)


# (b) -------------------------------------------------------------------------------------------------
@PROPERTY
@given(schedules(), window_days, st.lists(st.floats(0, 1, exclude_max=True), min_size=1, max_size=4))
def test_desired_is_the_last_transition_and_constant_between_transitions(case, days, fractions):
    cs, start = case
    end = start + dt.timedelta(days=days)
    got = cs.transitions(start, end)
    head = cs.last_transition(start)  # what holds from before the window up to its first transition
    marks = [head, *got] if head else got
    for i, mark in enumerate(marks):
        following = marks[i + 1] if i + 1 < len(marks) else None
        assert cs.last_transition(mark.at) == mark
        since, until = max(mark.at, start), following.at if following else end
        for f in fractions if since < until else ():  # a few instants inside [since, until)
            t = min(since + (until - since) * f, until - dt.timedelta(microseconds=1))
            assert cs.desired(t) == mark.state
            assert cs.last_transition(t) == mark
    if not head and got:  # nothing before: then nothing up to the first transition either
        assert cs.desired(got[0].at - MINUTE) is None


# (d) -------------------------------------------------------------------------------------------------
def is_first_minute_after_a_gap(local: dt.datetime, wall: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether `wall` does not exist in `zone` and `local` is the first minute after the gap it is in."""
    round_trip = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
    before = (local.astimezone(UTC) - MINUTE).astimezone(zone).replace(tzinfo=None)  # in UTC, not wall time
    return round_trip != wall and before < wall < local.replace(tzinfo=None)


def wall_matches(t, hhmm_text: str, day: dt.date, zone: ZoneInfo) -> bool:
    h, m = map(int, hhmm_text.split(":"))
    wall = dt.datetime.combine(day, dt.time(h, m))
    return t.local.replace(tzinfo=None) == wall or is_first_minute_after_a_gap(t.local, wall, zone)


@PROPERTY
@given(schedules(), window_days)
def test_start_and_stop_walls_are_the_periods_times_or_the_end_of_a_gap(case, days):
    cs, start = case
    for t in cs.next_transitions(start, days=days):
        day = t.local.date()
        if t.state == "running":
            assert t.reason.split(" (")[0].endswith(" start"), t.reason
            starts = {p.start for p in cs.schedule.periods if p.start}
            assert any(wall_matches(t, s, day, cs.zone) for s in starts), (t, starts)
        elif t.reason.startswith("holiday "):
            assert wall_matches(t, "00:00", day, cs.zone) and cs.is_holiday(day)
        else:
            stops = {p.stop for p in cs.schedule.periods if p.stop}
            assert any(wall_matches(t, s, day, cs.zone) for s in stops), (t, stops)


# (e) -------------------------------------------------------------------------------------------------
@PROPERTY
@given(st.sampled_from(NO_DST), st.dates(FIRST.date(), LAST.date()), st.integers(7, 60))
def test_without_dst_a_daily_start_is_always_the_same_utc_time(key, first, days):
    cs = compile_schedule("d", Schedule(timezone=key, periods=(Period(start="09:00", stop="17:00"),)), None)
    begin = dt.datetime.combine(first, dt.time(), ZoneInfo(key))
    starts = [t for t in cs.next_transitions(begin, days=days) if t.state == "running"]
    assert len(starts) == days
    assert len({t.at.time() for t in starts}) == 1
    assert all(t.local.time() == dt.time(9) for t in starts)


def test_the_zone_lists_cover_both_kinds():
    assert {"UTC", "Asia/Tokyo", "Asia/Kolkata", "Asia/Kathmandu", "America/Sao_Paulo"} <= set(NO_DST)
    assert {"Europe/Berlin", "Australia/Lord_Howe", "America/Santiago"}.isdisjoint(NO_DST)
    zone = ZoneInfo("Australia/Lord_Howe")
    change = offset_changes("Australia/Lord_Howe")[0]
    before, after = (change - dt.timedelta(hours=1)).astimezone(zone), change.astimezone(zone)
    assert abs(after.utcoffset() - before.utcoffset()) == dt.timedelta(minutes=30)


# (f) -------------------------------------------------------------------------------------------------
@PROPERTY
@given(schedules(), window_days, st.floats(0, 1), st.booleans())
def test_windows_split_anywhere_add_up(case, days, fraction, at_a_transition):
    cs, a = case
    c = a + dt.timedelta(days=days)
    whole = cs.transitions(a, c)
    b = a + (c - a) * fraction
    if at_a_transition and whole:
        b = whole[int(fraction * (len(whole) - 1))].at  # a boundary right on a transition
    assume(a <= b <= c)
    assert cs.transitions(a, b) + cs.transitions(b, c) == whole


# The union of spans, checked against a direct reading of the rules ---------------------------------------
def running_by_the_rules(cs: CompiledSchedule, t: dt.datetime) -> bool:
    """Running iff some period's span that day covers t: spans on holidays do not happen, an overnight
    span is cut at the first minute of a holiday, a make-up workday takes the periods that cover mon..fri."""
    zone, day0 = cs.zone, t.astimezone(cs.zone).date()
    for back in range(3):
        day = day0 - dt.timedelta(days=back)
        if cs.is_holiday(day):
            continue
        for p in cs.schedule.periods:
            rule = parse_days(p.days)
            if not (rule.matches(day) or (cs.is_workday(day) and rule.covers_workweek)):
                continue
            (sh, sm), (eh, em) = map(int, p.start.split(":")), map(int, p.stop.split(":"))
            begin = local_instant(zone, day, sh, sm)
            stop_day = day + dt.timedelta(days=1) if (eh, em) < (sh, sm) else day
            finish = local_instant(zone, stop_day, eh, em)
            if stop_day != day and cs.is_holiday(stop_day):
                finish = min(finish, local_instant(zone, stop_day, 0, 0))
            if begin <= t < finish:
                return True
    return False


@PROPERTY
@given(schedules(spans_only=True), st.lists(st.integers(0, 20 * 1440), min_size=1, max_size=6))
def test_with_spans_only_the_desired_state_is_the_union_of_the_spans(case, offsets):
    cs, start = case
    for minutes in offsets:
        t = start + minutes * MINUTE
        expected = "running" if running_by_the_rules(cs, t) else "stopped"
        assert cs.desired(t) in (expected, None)
        if cs.last_transition(t) is not None:
            assert cs.desired(t) == expected, (t, cs.last_transition(t))
