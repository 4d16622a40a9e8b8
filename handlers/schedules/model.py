"""Office-hours schedules: the policy's `schedules` entries and their desired power state as a function of
time. Pure: no I/O; every question takes the time it is about.

Semantics (the policy file's documentation says the same):
- Periods are local to the schedule's zone. A wall time that a DST change skips acts at the first minute
  after the gap; one that a DST change repeats acts once, at its first occurrence.
- A period with a start and a stop is a running span; stop < start is overnight and belongs to the day
  it starts on. Several spans are a union: running while any of them runs.
- A start-only period turns instances on until the next stop of any period (or a holiday); a stop-only
  period turns them off unless a span is running at that minute.
- On a holiday the desired state is stopped all day: a stop at its first minute, which also cuts an
  overnight span from the day before, and no period of that day.
- An ICS calendar in `holidays` contributes the dates its all-day events cover; what the calendar says
  is read elsewhere (handlers.schedules.calendars) and given to compile_schedule as `calendar_days`.
- A make-up workday applies every period whose days include all of mon..fri (besides those that match
  the date itself), and an explicit workday overrides a country holiday on the same date.
- Transitions are the changes of that state; in one minute stops count before starts, so a span that
  ends when another begins is no transition.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.selectors import SelectorError, parse_selector
from handlers.schedules.days import (
    Calendar,
    Country,
    DayRule,
    country_holidays,
    local_instant,
    parse_date,
    parse_days,
    parse_holiday,
    parse_time,
)
from handlers.schedules.spec import Period, Schedule

State = Literal["running", "stopped"]
T = TypeVar("T")
UTC = dt.UTC
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LOOK_BACK = (dt.timedelta(days=40), dt.timedelta(days=400))  # last_transition's windows, shortest first
_PRIMING_DAYS = (8, 32, 128, 512)  # how far back to look for the event that set the state
_STOP, _START, _HOLIDAY = 0, 1, 2  # also the order of events within one minute
_DAY = dt.timedelta(days=1)
_DAY_CACHE = 8192


@dataclass(frozen=True)
class Transition:
    at: dt.datetime  # UTC, aware, whole minute
    state: State  # the desired state from `at` on
    local: dt.datetime  # the same instant in the schedule's zone
    reason: str  # "mon-fri 09:00–21:00 start", "holiday 2026-12-31 (listed in holidays)", …


@dataclass(frozen=True)
class _Period:
    rule: DayRule
    start: tuple[int, int] | None
    stop: tuple[int, int] | None
    label: str  # "mon-fri 09:00–21:00"

    @property
    def overnight(self) -> bool:
        return self.start is not None and self.stop is not None and self.stop < self.start


@dataclass(frozen=True)
class _Event:
    at: dt.datetime
    kind: int  # _STOP, _START or _HOLIDAY
    order: int  # the period's index (-1 for a holiday): a stable order within one minute
    span: tuple[int, dt.date] | None  # the occurrence of a period with start and stop; None if open-ended
    reason: str

    def key(self) -> tuple[dt.datetime, int, int]:
        return (self.at, self.kind, self.order)


class _Sweep:
    """The state machine behind the desired state: running spans that are open, and the latest open-ended
    event (a start-only start, any stop, a holiday)."""

    def __init__(self) -> None:
        self.open: set[tuple[int, dt.date]] = set()
        self.latch: State | None = None
        self.latch_at: dt.datetime | None = None

    @property
    def state(self) -> State | None:
        return "running" if self.open else self.latch

    def apply(self, events: list[_Event]) -> str:
        """Apply one minute's events (sorted by kind); returns the reason for the resulting state."""
        for event in events:
            if event.kind == _START and event.span is not None:
                self.open.add(event.span)
                continue
            if event.kind == _STOP and event.span is not None:
                self.open.discard(event.span)
            if event.kind == _HOLIDAY:
                self.open.clear()
            self.latch = "running" if event.kind == _START else "stopped"
            self.latch_at = event.at
        kinds = (_START,) if self.state == "running" else (_HOLIDAY, _STOP)  # what explains a change
        chosen = next((e for kind in kinds for e in events if e.kind == kind), events[0])
        return chosen.reason


class CompiledSchedule:
    """A validated schedule: its zone, its periods parsed, its holidays resolved. Made by
    compile_schedule(); every method takes the time it is about (aware datetimes)."""

    def __init__(
        self,
        name: str,
        zone: ZoneInfo,
        schedule: Schedule,
        periods: tuple[_Period, ...],
        dates: frozenset[dt.date],
        countries: tuple[Country, ...],
        workdays: frozenset[dt.date],
        calendars: tuple[str, ...] = (),
        calendar_days: Mapping[str, Mapping[dt.date, str]] | None = None,
    ) -> None:
        self.name = name
        self.zone = zone
        self.schedule = schedule
        self._periods = periods
        self._dates = dates
        self._countries = countries  # (country, subdivision, language)
        self._workdays = workdays
        self.calendars = calendars  # the ICS calendars among the holidays, as written
        self._calendar_days = {url: (calendar_days or {}).get(url, {}) for url in calendars}
        self._years: dict[int, dict[dt.date, str]] = {}
        self._days: dict[dt.date, tuple[_Event, ...]] = {}

    def __repr__(self) -> str:
        return f"CompiledSchedule({self.name!r}, zone={self.zone.key!r})"

    # Calendar ------------------------------------------------------------------------------------
    def is_holiday(self, day: dt.date) -> str | None:
        """The holiday's name (from the country data; "listed in holidays" for a bare listed date; the
        event's summary and calendar for a calendar's), or None. An explicit workday is never a holiday."""
        if day in self._workdays:
            return None
        name = self._country_holidays(day.year).get(day)
        if name is None and day in self._dates:
            return "listed in holidays"
        for url in self.calendars if name is None else ():
            summary = self._calendar_days[url].get(day)
            if summary is not None:
                return f"{summary or 'holiday'}, calendar {calendar_label(url)}"
        return name

    def calendar_holidays(self, url: str) -> Mapping[dt.date, str]:
        """The dates one of the schedule's calendars makes holidays (as last read)."""
        return self._calendar_days.get(url, {})

    def is_workday(self, day: dt.date) -> bool:
        """Whether the date is one of the schedule's make-up working days (`workdays`)."""
        return day in self._workdays

    def _country_holidays(self, year: int) -> dict[dt.date, str]:
        found = self._years.get(year)
        if found is None:
            self._years[year] = found = country_holidays(self._countries, year)
        return found

    # Desired state -------------------------------------------------------------------------------
    def transitions(self, start: dt.datetime, end: dt.datetime) -> list[Transition]:
        """Every change of the desired state with start < at <= end, oldest first."""
        start, end = _utc(start, "start"), _utc(end, "end")
        if end <= start:
            return []
        sweep, later = self._primed(start, end)
        out: list[Transition] = []
        state = sweep.state
        for at, group in groupby(later, key=lambda e: e.at):
            if at > end:
                break
            reason = sweep.apply(list(group))
            if sweep.state != state and sweep.state is not None:
                out.append(Transition(at, sweep.state, at.astimezone(self.zone), reason))
            state = sweep.state
        return out

    def last_transition(self, at: dt.datetime) -> Transition | None:
        """The latest change with .at <= at (looking back 40 days, then 400); None if there is none."""
        at = _utc(at, "at")
        for back in LOOK_BACK:
            found = self.transitions(at - back, at)
            if found:
                return found[-1]
        return None

    def desired(self, at: dt.datetime) -> State | None:
        """The state of last_transition(at); None when there is none."""
        last = self.last_transition(at)
        return last.state if last else None

    def next_transitions(self, after: dt.datetime, days: int = 7) -> list[Transition]:
        """The transitions in the `days` days after `after` (exclusive) up to their end (inclusive)."""
        after = _utc(after, "after")
        return self.transitions(after, after + dt.timedelta(days=days))

    def _primed(self, start: dt.datetime, end: dt.datetime) -> tuple[_Sweep, list[_Event]]:
        """The state machine as it stands at `start`, and the events after it up to past `end`.

        The events of a day lie within that day and the next (an overnight stop), so a sweep over the
        days from `first` on knows every event after the first minute of `first + 2`. The state at
        `start` is known once the latest open-ended event before it is later than that."""
        today, last = self._local_date(start), self._local_date(end) + 2 * _DAY
        for back in _PRIMING_DAYS:
            first = today - back * _DAY
            complete_after = self._at(first + 2 * _DAY, (0, 0))
            events = self._events(first, last)
            sweep = _Sweep()
            i = 0
            for at, group in groupby(events, key=lambda e: e.at):
                if at > start:
                    break
                group = list(group)
                sweep.apply(group)
                i += len(group)
            if sweep.latch_at is not None and sweep.latch_at > complete_after:
                break
        return sweep, events[i:]

    def _events(self, first: dt.date, last: dt.date) -> list[_Event]:
        out: list[_Event] = []
        day = first
        while day <= last:
            out.extend(self._day_events(day))
            day += _DAY
        out.sort(key=_Event.key)
        return out

    def _day_events(self, day: dt.date) -> tuple[_Event, ...]:
        """The events that belong to a local date (an overnight stop falls on the next one)."""
        found = self._days.get(day)
        if found is not None:
            return found
        holiday = self.is_holiday(day)
        out: list[_Event] = []
        if holiday is not None:
            out.append(_Event(self._at(day, (0, 0)), _HOLIDAY, -1, None, f"holiday {day} ({holiday})"))
        else:
            workday = self.is_workday(day)
            for i, p in enumerate(self._periods):
                if p.rule.matches(day):
                    note = ""
                elif workday and p.rule.covers_workweek:
                    note = f" (make-up workday {day})"
                else:
                    continue
                out.extend(self._occurrence(i, p, day, note))
        if len(self._days) >= _DAY_CACHE:
            self._days.clear()
        self._days[day] = found = tuple(out)
        return found

    def _occurrence(self, i: int, p: _Period, day: dt.date, note: str) -> list[_Event]:
        begin = None if p.start is None else self._at(day, p.start)
        finish = None if p.stop is None else self._at(day + _DAY if p.overnight else day, p.stop)
        if begin is not None and finish is not None:
            if finish <= begin:  # both ends inside one DST gap: the period does not happen that day
                return []
            return [
                _Event(begin, _START, i, (i, day), f"{p.label} start{note}"),
                _Event(finish, _STOP, i, (i, day), f"{p.label} stop{note}"),
            ]
        if begin is not None:
            return [_Event(begin, _START, i, None, f"{p.label} start{note}")]
        return [] if finish is None else [_Event(finish, _STOP, i, None, f"{p.label} stop{note}")]

    def _at(self, day: dt.date, hhmm: tuple[int, int]) -> dt.datetime:
        return local_instant(self.zone, day, *hhmm)

    def _local_date(self, at: dt.datetime) -> dt.date:
        return at.astimezone(self.zone).date()


def _utc(value: dt.datetime, what: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what}: an aware datetime is needed, got {value!r}")
    return value.astimezone(UTC)


# Compiling and validating ----------------------------------------------------------------------------
def calendar_label(url: str) -> str:
    """A calendar named without its secret: the file name of a path or URL (secret ICS addresses carry
    their secret in the path, never in the last segment alone)."""
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return tail if tail.lower().endswith(".ics") else "(ics)"


def compile_schedule(
    name: str,
    schedule: Schedule,
    default_zone: str | None,
    calendar_days: Mapping[str, Mapping[dt.date, str]] | None = None,
) -> CompiledSchedule:
    """The schedule ready to answer questions; ValueError naming the field when something is wrong.
    `calendar_days`: for each ICS calendar URL, the holidays it holds (date → summary)."""
    where = f"schedules.{name}"
    zone = _zone(where, schedule.timezone, default_zone)
    if not schedule.periods:
        raise ValueError(f"{where}.periods: at least one period is needed (e.g. days: mon-fri, start, stop)")
    periods = tuple(_period(f"{where}.periods[{i}]", p) for i, p in enumerate(schedule.periods))
    dates: set[dt.date] = set()
    countries: list[Country] = []
    calendars: list[str] = []
    for j, text in enumerate(schedule.holidays):
        entry = _field(f"{where}.holidays[{j}]", parse_holiday, text)
        if isinstance(entry, dt.date):
            dates.add(entry)
        elif isinstance(entry, Calendar):
            if entry.url not in calendars:
                calendars.append(entry.url)
        elif entry not in countries:
            countries.append(entry)
    workdays: set[dt.date] = set()
    for j, text in enumerate(schedule.workdays):
        day = _field(f"{where}.workdays[{j}]", parse_date, text)
        if day is None:
            raise ValueError(f"{where}.workdays[{j}]: {text!r} is not a date (YYYY-MM-DD)")
        if day in dates:
            raise ValueError(
                f"{where}.workdays[{j}]: {day} is also listed in holidays; a date is one or the other"
            )
        workdays.add(day)
    if not 0 <= schedule.warn_minutes <= 240:
        raise ValueError(f"{where}.warn_minutes: {schedule.warn_minutes} is outside 0..240")
    if schedule.selector is not None:
        _selector(f"{where}.selector", schedule.selector)
    return CompiledSchedule(
        name,
        zone,
        schedule,
        periods,
        frozenset(dates),
        tuple(countries),
        frozenset(workdays),
        tuple(calendars),
        calendar_days,
    )


def validate_schedules(schedules: Mapping[str, Schedule], default_zone: str | None) -> None:
    """Compile every schedule; the first problem as a ValueError naming the field."""
    for name, schedule in schedules.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ValueError(
                f"schedules.{name}: {name!r} is not a schedule name (up to 63 of a-z, 0-9, - and _, "
                "starting with a letter or digit)"
            )
        compile_schedule(name, schedule, default_zone)


def _zone(where: str, own: str | None, default: str | None) -> ZoneInfo:
    key, source = (own, "") if own is not None else (default, " (the top-level timezone)")
    if key is None:
        raise ValueError(f"{where}.timezone: no time zone; set one here or the top-level `timezone`")
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(
            f"{where}.timezone: {key!r}{source} is not an IANA time zone (e.g. Asia/Tokyo)"
        ) from None


def _period(where: str, period: Period) -> _Period:
    rule = _field(f"{where}.days", parse_days, period.days)
    start = _field(f"{where}.start", parse_time, period.start)
    stop = _field(f"{where}.stop", parse_time, period.stop)
    if start is None and stop is None:
        raise ValueError(f"{where}: a period needs a start, a stop or both")
    if start is not None and start == stop:
        raise ValueError(
            f"{where}.stop: {period.stop!r} is the start as well; give a different stop, or only one of them"
        )
    days = ",".join(term.strip() for term in period.days.split(","))
    label = " ".join([days, "–".join(f"{t[0]:02d}:{t[1]:02d}" for t in (start, stop) if t is not None)])
    return _Period(rule, start, stop, label)


def _field(where: str, parse: Callable[..., T], *args: object) -> T:
    """parse(*args), its ValueError naming the field it is about."""
    try:
        return parse(*args)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _selector(field: str, text: str) -> None:
    try:
        selector = parse_selector(text)
    except SelectorError as exc:
        raise ValueError(f"{field}: {exc.message}") from None
    if selector.status is not None:
        raise ValueError(
            f"{field}: a schedule's selector cannot use `status:` (the schedule sets the status)"
        )
    if selector.is_empty:
        raise ValueError(f"{field}: {text!r} selects every instance; narrow it down (tags, names or ids)")
