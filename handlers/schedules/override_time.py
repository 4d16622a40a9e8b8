"""`until TIME` of `/ecs schedule override`: when an override ends, read in the caller's time zone. Pure.

    18:00                  today at 18:00 (a time already past is refused: say `tomorrow 18:00`)
    today 18:00, tomorrow 09:00
    fri 18:00              the next Friday (today, if it is Friday and 18:00 is still ahead)
    2026-12-24 18:00       a date and a time
    2026-12-24             that date at 00:00
    90m, 2h, 3d, 1h30m     from now

A local time that a DST change skips means the first minute after the gap; one it repeats, the first.
"""

from __future__ import annotations

import datetime as dt
import re

from bot.errors import UserError

UTC = dt.UTC
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TIME_HELP = (
    "TIME is `18:00`, `tomorrow 09:00`, `fri 18:00`, `2026-12-24 18:00` or a duration (`90m`, `2h`, `1d`)"
)
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
_SPAN = re.compile(r"^(?:(\d{1,3})d)?(?:(\d{1,4})h)?(?:(\d{1,5})m)?$")


def local_instant(day: dt.date, hour: int, minute: int, zone: dt.tzinfo) -> dt.datetime:
    """The UTC instant of a local wall time: the first minute after a DST gap when it does not exist,
    the first occurrence when it exists twice."""
    naive = dt.datetime.combine(day, dt.time(hour, minute))
    first = naive.replace(tzinfo=zone, fold=0)
    utc = first.astimezone(UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc
    # In a gap: the first valid local minute after it is the moment the clocks jumped.
    later = naive.replace(tzinfo=zone, fold=1).astimezone(UTC)
    low, high = min(utc, later), max(utc, later)
    probe = low
    while probe < high and probe.astimezone(zone).replace(tzinfo=None) < naive:
        probe += dt.timedelta(minutes=1)
    return probe


def parse_until(text: str, now: dt.datetime, zone: dt.tzinfo, max_span: dt.timedelta) -> dt.datetime:
    """The UTC instant `text` means, after `now` (aware) and at most `max_span` ahead; else UserError."""
    words = text.strip().lower().split()
    if not words:
        raise UserError(f"Say until when. {TIME_HELP}.")
    until = _parse(words, now, zone)
    if until is None:
        raise UserError(f"`{' '.join(words)}` is not a time. {TIME_HELP}.")
    if until <= now:
        raise UserError(
            f"{until.astimezone(zone):%Y-%m-%d %H:%M %Z} is already past. {TIME_HELP} (e.g. `tomorrow 18:00`)."
        )
    if until - now > max_span:
        days = max_span.total_seconds() / 86400
        raise UserError(f"An override lasts at most {days:g} days; pick an earlier TIME.")
    return until


def _parse(words: list[str], now: dt.datetime, zone: dt.tzinfo) -> dt.datetime | None:
    local_today = now.astimezone(zone).date()
    if len(words) == 1:
        span = _span(words[0])
        if span is not None:
            return now + span
        clock = _CLOCK.match(words[0])
        if clock:
            return local_instant(local_today, int(clock[1]), int(clock[2]), zone)
        day = _date(words[0])
        return local_instant(day, 0, 0, zone) if day else None
    if len(words) != 2:
        return None
    clock = _CLOCK.match(words[1])
    if not clock:
        return None
    hour, minute = int(clock[1]), int(clock[2])
    first = words[0]
    if first == "today":
        return local_instant(local_today, hour, minute, zone)
    if first == "tomorrow":
        return local_instant(local_today + dt.timedelta(days=1), hour, minute, zone)
    if first[:3] in WEEKDAYS and first in (first[:3], _full(first[:3])):
        ahead = (WEEKDAYS.index(first[:3]) - local_today.weekday()) % 7
        at = local_instant(local_today + dt.timedelta(days=ahead), hour, minute, zone)
        return (
            at if at > now else local_instant(local_today + dt.timedelta(days=ahead + 7), hour, minute, zone)
        )
    day = _date(first)
    return local_instant(day, hour, minute, zone) if day else None


def _full(short: str) -> str:
    return {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
            "sat": "saturday", "sun": "sunday"}[short]  # fmt: skip


def _span(word: str) -> dt.timedelta | None:
    m = _SPAN.match(word)
    if not m or not any(m.groups()):
        return None
    d, h, mins = (int(g) if g else 0 for g in m.groups())
    span = dt.timedelta(days=d, hours=h, minutes=mins)
    return span if span.total_seconds() > 0 else None


def _date(word: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(word)
    except ValueError:
        return None
