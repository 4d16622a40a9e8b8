"""The console's `clock` command: show or move the bot's wall clock (`services.clock`, an OffsetClock in
`chatops sandbox`), so a schedule's evening, weekend or DST night passes in a minute.

Only the bot's sense of wall time moves: waits and timeouts stay real, and the emulators (the cloud)
keep real time. After every move the schedules' reconciliation, when the bot has it, runs at once.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.clock import OffsetClock
from sandbox import credentials
from sandbox.console_commands import console_command

RECONCILE_JOB = "schedules.reconcile"
WARN_JOB = "schedules.warn"  # the warning before a stop (Snooze / Skip tonight), when it is due
MAX_BEHIND = 86400.0  # the bot's clock is at most a day behind real time, and goes back a day at most
MAX_AHEAD = 400 * 86400.0  # and at most 400 days ahead
DST_LEAD = 300.0  # `clock dst` stops five minutes before the change

USAGE = (
    "clock [+3h | -30m | +1d2h | DATE TIME [ZONE] | dst [ZONE] | reset]\n"
    "                            the bot's wall clock: show it, move it, set it (e.g. clock 2027-03-27 21:55\n"
    "                            Europe/Berlin; the zone defaults to yours), jump to 5 minutes before the\n"
    "                            next DST change (dst), or back to real time; waits stay real"
)
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_RELATIVE = re.compile(r"^([+-])((?:\d+[dhms])+)$")
_PART = re.compile(r"(\d+)([dhms])")
_DATE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{1,2}:\d{2}(?::\d{2})?))?$")
_TIME = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?$")


class ClockRefused(ValueError):
    """A move the console does not make (out of range, a local time that does not exist)."""


@console_command("clock", USAGE)
def clock_command(console, rest: str) -> bool:
    services = console.bot.services
    clock = services.clock
    words = rest.split()
    if not words:
        show(console)
        return True
    if not isinstance(clock, OffsetClock):
        return console._bad("this bot's clock cannot be moved (it was not started with a movable clock)")
    try:
        move = _move(words, clock.time(), user_zone(console))
        if move.target is None:
            clock.reset()
        else:
            check_move(clock.time(), move.target, clock.base.time())
            if move.by is not None:
                clock.advance(move.by)  # exactly: `clock +3h` twice is 6 h ahead
            else:
                clock.set(move.target)
    except ClockRefused as exc:
        return console._bad(str(exc))
    except ValueError:
        return console._bad("usage: " + USAGE)
    show(console, move.zone)
    if move.note:
        console.say(f"  ({move.note})")
    if RECONCILE_JOB in services.registry.jobs:
        console._expect_from = len(console.shown_text)
        services.queue.enqueue(RECONCILE_JOB)
        if WARN_JOB in services.registry.jobs:
            services.queue.enqueue(WARN_JOB)
        console.say(f"({RECONCILE_JOB} runs now, with the new time)")
        console.settle()
    return True


@dataclass(frozen=True)
class Move:
    target: float | None  # the epoch second to set; None: back to real time
    zone: str | None = None  # a zone the user named, shown beside theirs
    note: str | None = None
    by: float | None = None  # a relative move: the seconds to advance by


# what the clock reads ----------------------------------------------------------------------------------


def user_zone(console) -> str:
    """The console user's Slack time zone, else UTC."""
    return credentials.USERS.get(console.user, {}).get("tz") or "UTC"


def show(console, named_zone: str | None = None) -> None:
    clock = console.bot.services.clock
    now = clock.time()
    zone = user_zone(console)
    name = credentials.USERS.get(console.user, {}).get("name", console.user)
    lines = [f"  bot time  {local(now, 'UTC')}"]
    if zone != "UTC":
        lines.append(f"            {local(now, zone)}  ({zone}, {name}'s zone)")
    if named_zone and named_zone not in ("UTC", zone):
        lines.append(f"            {local(now, named_zone)}  ({named_zone})")
    if isinstance(clock, OffsetClock):
        offset = clock.offset
        lines.append("  offset    " + ("none: real time" if abs(offset) < 0.5 else describe_offset(offset)))
    else:
        lines.append("  offset    none (a fixed clock: it cannot be moved)")
    console.say("\n".join(lines))


def local(epoch: float, zone: str) -> str:
    """`2027-03-28 01:55:00 CET` — the wall time in `zone`, with its abbreviation."""
    at = dt.datetime.fromtimestamp(epoch, ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M:%S ") + (at.tzname() or zone)


def describe_offset(seconds: float) -> str:
    """`+3h 30m (ahead of real time)`, `-1d (behind real time)`."""
    total = round(abs(seconds))
    parts = []
    for unit, size in _UNITS.items():
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    sign, where = ("+", "ahead of") if seconds > 0 else ("-", "behind")
    return f"{sign}{' '.join(parts) or '0s'} ({where} real time)"


# where the clock goes ------------------------------------------------------------------------------------


def _move(words: list[str], now: float, default_zone: str) -> Move:
    """Where the words ask the clock to go. ValueError: not a clock argument."""
    head = words[0].lower()
    if head == "reset" and len(words) == 1:
        return Move(None)
    if head == "dst" and len(words) <= 2:
        zone = words[1] if len(words) == 2 else default_zone
        change = next_dst_change(now, _zone(zone))
        if change is None:
            raise ClockRefused(f"{zone} has no DST change in the next 400 days")
        before, after = local(change - 1, zone), local(change, zone)
        note = f"{zone} changes its clocks in {DST_LEAD / 60:.0f} minutes: {before} is followed by {after}"
        return Move(change - DST_LEAD, zone, note)
    relative = _RELATIVE.match(head)
    if relative and len(words) == 1:
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(relative.group(2)))
        by = float(seconds if relative.group(1) == "+" else -seconds)
        return Move(now + by, by=by)
    target, zone = parse_local(words, default_zone)
    return Move(target, zone)


def parse_local(words: list[str], default_zone: str) -> tuple[float, str]:
    """`2027-03-27 21:55 [ZONE]` (or `2027-03-27T21:55`) as an epoch second, and the zone."""
    date = _DATE.match(words[0])
    if date is None:
        raise ValueError(words[0])
    rest = words[1:]
    clock_time = date.group(2)
    if clock_time is None:
        if not rest or not _TIME.match(rest[0]):
            raise ValueError("a time is needed")
        clock_time, rest = rest[0], rest[1:]
    if len(rest) > 1:
        raise ValueError("too many words")
    zone_name = rest[0] if rest else default_zone
    zone = _zone(zone_name)
    hour, minute, *second = (int(part) for part in clock_time.split(":"))
    try:
        naive = dt.datetime.combine(dt.date.fromisoformat(date.group(1)), dt.time(hour, minute, *second))
    except ValueError:
        raise ClockRefused(f"{date.group(1)} {clock_time} is not a date and time") from None
    at = naive.replace(tzinfo=zone)
    back = at.astimezone(dt.UTC).astimezone(zone).replace(tzinfo=None)
    if back != naive:  # a wall time the zone skips (the night its clocks go forward)
        raise ClockRefused(
            f"{naive:%Y-%m-%d %H:%M} does not exist in {zone_name}: its clocks skip that hour; "
            "give a time before or after the gap"
        )
    return at.timestamp(), zone_name  # a repeated wall time (the clocks go back): the first of the two


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClockRefused(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin or UTC"
        ) from None


def next_dst_change(after: float, zone: ZoneInfo, within: float = MAX_AHEAD) -> float | None:
    """The first epoch second after `after` at which `zone`'s UTC offset changes, within `within` s."""

    def offset(epoch: float) -> dt.timedelta | None:
        return dt.datetime.fromtimestamp(epoch, zone).utcoffset()

    start = int(after)
    before = offset(start)
    step = 3600
    for lo in range(start, start + int(within), step):
        hi = lo + step
        if offset(hi) != before:
            while hi - lo > 1:  # the first second with the new offset
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if offset(mid) == before else (lo, mid)
            return float(hi)
    return None


def check_move(now: float, target: float, real: float) -> None:
    """Refuse a time too far from real time, or a move back by more than a day."""
    if target > real + MAX_AHEAD:
        raise ClockRefused(
            f"refused: {local(target, 'UTC')} is {describe_days(target - real)} ahead of real time; "
            "the bot's clock runs at most 400 days ahead"
        )
    if target < real - MAX_BEHIND:
        raise ClockRefused(
            f"refused: {local(target, 'UTC')} is {describe_days(real - target)} behind real time; "
            "the bot's clock runs at most 1 day behind (try `clock dst ZONE` for the next DST change)"
        )
    if target < now - MAX_BEHIND:
        raise ClockRefused(
            f"refused: that moves the bot's clock back {describe_days(now - target)}; it goes back at most "
            "1 day at a time (`clock reset` returns to real time)"
        )


def describe_days(seconds: float) -> str:
    days = seconds / 86400
    return f"{days:.0f} days" if days >= 2 else f"{seconds / 3600:.0f} hours"
