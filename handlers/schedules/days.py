"""The calendar of a schedule: which dates a period's `days` mean, when a local wall time acts, and the
holidays of a country (from the holidays package). Pure functions.

    DAYS := TERM { "," TERM }            any term matches (case and spaces around commas do not matter)
    TERM := daily | weekdays | weekends
          | DAY                          mon tue wed thu fri sat sun
          | DAY-DAY                      a range, inclusive; it may wrap: fri-mon = fri,sat,sun,mon
          | DAY#N                        the Nth such weekday of the month, N = 1..5 (mon#1: first Monday)
          | DAYL                         the last such weekday of the month (friL: last Friday)
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import holidays as holiday_data

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WORKWEEK = frozenset(range(5))  # mon..fri
_NAMED = {"daily": frozenset(range(7)), "weekdays": WORKWEEK, "weekends": frozenset({5, 6})}
_DAY = "(" + "|".join(WEEKDAYS) + ")"
_RANGE = re.compile(rf"^{_DAY}-{_DAY}$")
_NTH = re.compile(rf"^{_DAY}#(\d+)$")
_LAST = re.compile(rf"^{_DAY}l$")
_ONE_WEEK = dt.timedelta(days=7)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_COUNTRY = re.compile(r"^([A-Za-z]{2})(?:-([A-Za-z0-9]{1,20}))?$")  # JP, DE-BY


@dataclass(frozen=True)
class DayRule:
    """Parsed `days`: plain weekdays (0 = Monday), nth weekdays of the month and last weekdays."""

    weekdays: frozenset[int] = frozenset()
    nth: frozenset[tuple[int, int]] = frozenset()  # (weekday, n) with n = 1..5
    last: frozenset[int] = frozenset()

    @property
    def covers_workweek(self) -> bool:
        """Whether every weekday mon..fri matches: such a rule also applies on a make-up workday."""
        return WORKWEEK <= self.weekdays

    def matches(self, day: dt.date) -> bool:
        """Whether the rule applies on this calendar date (make-up workdays are the caller's business)."""
        weekday = day.weekday()
        if weekday in self.weekdays:
            return True
        if (weekday, (day.day - 1) // 7 + 1) in self.nth:
            return True
        return weekday in self.last and (day + _ONE_WEEK).month != day.month


def parse_days(text: str) -> DayRule:
    """The rule for a `days` text; ValueError with a one-line reason (the caller names the field)."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"{text!r} names no days (e.g. mon-fri, daily, sat,sun, mon#1, friL)")
    weekdays: set[int] = set()
    nth: set[tuple[int, int]] = set()
    last: set[int] = set()
    for raw in text.split(","):
        term = raw.strip().lower()
        if not term:
            raise ValueError(f"{text!r} has an empty term (two commas, or one at an end)")
        if term in _NAMED:
            weekdays |= _NAMED[term]
        elif term in WEEKDAYS:
            weekdays.add(WEEKDAYS.index(term))
        elif m := _RANGE.match(term):
            first, end = WEEKDAYS.index(m[1]), WEEKDAYS.index(m[2])
            if first == end:
                raise ValueError(f"{raw.strip()!r} is a range from a day to itself; write {m[1]!r}")
            span = (end - first) % 7
            weekdays.update((first + i) % 7 for i in range(span + 1))
        elif m := _NTH.match(term):
            n = int(m[2])
            if not 1 <= n <= 5:
                raise ValueError(f"{raw.strip()!r}: the nth weekday of a month goes from #1 to #5")
            nth.add((WEEKDAYS.index(m[1]), n))
        elif m := _LAST.match(term):
            last.add(WEEKDAYS.index(m[1]))
        elif "-" in term and (bad := [p for p in term.split("-", 1) if p not in WEEKDAYS]):
            raise ValueError(f"{raw.strip()!r}: {bad[0]!r} is not a day{_hint(bad[0])}")
        else:
            raise ValueError(f"{raw.strip()!r} is not a day{_hint(term)}")
    return DayRule(frozenset(weekdays), frozenset(nth), frozenset(last))


def parse_time(text: str | None) -> tuple[int, int] | None:
    """(hour, minute) of an "HH:MM" text (None for None); ValueError with a one-line reason."""
    if text is None:
        return None
    m = _TIME.match(text.strip()) if isinstance(text, str) else None
    if not m or int(m[1]) > 23 or int(m[2]) > 59:
        hint = " (for the end of the day write 00:00: a stop before the start is the next day)"
        raise ValueError(f"{text!r} is not a time (HH:MM){hint if str(text).strip() == '24:00' else ''}")
    return int(m[1]), int(m[2])


def parse_date(text: str) -> dt.date | None:
    """The date of a "YYYY-MM-DD" text; None when the text does not look like a date, ValueError when
    it looks like one that does not exist (2026-02-30)."""
    if not isinstance(text, str) or not _ISO_DATE.match(text.strip()):
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _hint(term: str) -> str:
    """A short pointer to the grammar, with the intended weekday when a full name was written."""
    for name in WEEKDAYS:
        if len(term) > 3 and term.isalpha() and term.startswith(name):
            return f" (write {name!r}: days are mon, tue, wed, thu, fri, sat, sun)"
    return (
        " (write mon..sun, a range like mon-fri, daily, weekdays, weekends, "
        "an nth weekday like mon#1 or a last weekday like friL)"
    )


@functools.lru_cache(maxsize=65536)
def local_instant(zone: ZoneInfo, day: dt.date, hour: int, minute: int) -> dt.datetime:
    """The UTC instant at which the wall time `day hour:minute` of `zone` acts: a repeated wall time at its
    first occurrence; a skipped one (inside a DST gap) at the first minute after the gap."""
    wall = dt.datetime.combine(day, dt.time(hour, minute))
    # fold=0: the first occurrence; in a gap, the reading with the offset from before the change (too late)
    first = wall.replace(tzinfo=zone).astimezone(dt.UTC)
    if _wall(first, zone) == wall:
        return first
    # In a gap: the change happened between the reading with the later offset and `first`; find the first
    # minute whose wall time is at or past the one asked for (wall time only grows over that stretch).
    low = _minutes(wall.replace(tzinfo=zone, fold=1).astimezone(dt.UTC))
    high = _minutes(first)
    while low < high:
        mid = (low + high) // 2
        if _wall(_EPOCH + dt.timedelta(minutes=mid), zone) >= wall:
            high = mid
        else:
            low = mid + 1
    return _EPOCH + dt.timedelta(minutes=low)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _minutes(at: dt.datetime) -> int:
    return (at - _EPOCH) // dt.timedelta(minutes=1)


def _wall(at: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return at.astimezone(zone).replace(tzinfo=None)


Country = tuple[str, str | None, str | None]  # (ISO 3166 code, subdivision, language of the names)


@functools.cache
def _supported() -> dict[str, tuple[str, ...]]:
    return {code: tuple(subdivs) for code, subdivs in holiday_data.list_supported_countries().items()}


@dataclass(frozen=True)
class Calendar:
    """An ICS calendar whose all-day events are holidays: an http(s) URL, a file:// URL or a path."""

    url: str


def is_calendar(text: str) -> bool:
    lowered = text.strip().lower()
    return lowered.startswith(("http://", "https://", "file://")) or lowered.endswith(".ics")


def parse_holiday(text: str) -> dt.date | Country | Calendar:
    """A `holidays` entry: an ISO date, a country code (JP, DE-BY) for the holidays package, or an ICS
    calendar (a URL, or a path ending in .ics)."""
    day = parse_date(text)
    if day is not None:
        return day
    if isinstance(text, str) and is_calendar(text):
        return Calendar(text.strip())
    m = _COUNTRY.match(text.strip()) if isinstance(text, str) else None
    if not m:
        raise ValueError(
            f"{text!r} is neither a date (YYYY-MM-DD), a country code (JP, DE-BY) nor an ICS calendar "
            "(an https:// URL or a path ending in .ics)"
        )
    return country_entry(m[1].upper(), m[2])


def country_entry(code: str, subdiv: str | None) -> Country:
    """The country (and subdivision, spelled as the holidays package does) with English names where the
    package has them; ValueError with a one-line reason for one it does not know."""
    subdivs = _supported().get(code)
    if subdivs is None:
        raise ValueError(f"no holiday data for the country code {code!r} (ISO 3166, e.g. JP, CN, DE)")
    if subdiv is not None:
        spelled = next((s for s in subdivs if s.lower() == subdiv.lower()), None)
        if spelled is None:
            known = (", ".join(subdivs[:12]) + (" …" if len(subdivs) > 12 else "")) or "none"
            raise ValueError(f"{code} has no subdivision {subdiv!r} (known: {known})")
        subdiv = spelled
    languages = holiday_data.country_holidays(code, subdiv=subdiv).supported_languages
    language = next((lang for lang in ("en_US", "en_GB") if lang in languages), None)
    return code, subdiv, language


def country_holidays(countries: tuple[Country, ...], year: int) -> dict[dt.date, str]:
    """The holidays of the countries in one year: date → name(s), "; " between several."""
    names: dict[dt.date, list[str]] = {}
    for code, subdiv, language in countries:
        data = holiday_data.country_holidays(code, subdiv=subdiv, language=language, years=year)
        for day, text in data.items():
            known = names.setdefault(day, [])
            known += [n for n in text.split("; ") if n not in known]
    return {day: "; ".join(found) for day, found in sorted(names.items())}
