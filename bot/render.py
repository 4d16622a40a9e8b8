"""How the bot writes things for people, pure (strings in, strings out; no Slack objects): times in a
zone, time spans, tags, fixed-width tables, two-space rows and plurals. Every handler renders these
through here, so one instant, one tag set or one list reads the same everywhere.

Times: `local_time(when, tz, fmt)` takes an aware datetime or epoch seconds (a naive datetime is UTC)
and one of the formats below; `time_span` writes a window (`Tue 25 Mar 10:00–10:30 CET`);
`parse_time` reads the ISO 8601 stamps vendors send.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

# Formats (strftime) the bot shows times in.
STAMP = "%Y-%m-%d %H:%M:%S %Z"  # 2026-03-29 03:00:00 CEST (events)
SECONDS = "%Y-%m-%d %H:%M:%S"  # trails and audit lines, under a "times in ZONE" note
MINUTES = "%Y-%m-%d %H:%M"
MINUTES_ZONE = "%Y-%m-%d %H:%M %Z"
CLOCK = "%H:%M:%S"
CLOCK_ZONE = "%H:%M %Z"
DAY = "%a %d %b"  # Tue 25 Mar
DAY_YEAR = "%a %d %b %Y"
DAY_TIME_ZONE = "%a %d %b %H:%M %Z"  # Tue 25 Mar 10:00 CET (PagerDuty, on-call)
UNKNOWN_TIME = "time unknown"

When = dt.datetime | float | int


# times ---------------------------------------------------------------------------------------------
def in_zone(when: When, tz: dt.tzinfo) -> dt.datetime:
    """The instant `when` (an aware datetime, a naive one taken as UTC, or epoch seconds) in `tz`."""
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        return when.astimezone(tz)
    return dt.datetime.fromtimestamp(float(when), tz)


def local_time(when: When | None, tz: dt.tzinfo, fmt: str = STAMP, unknown: str = UNKNOWN_TIME) -> str:
    """`when` in `tz`, formatted; `unknown` when there is no time."""
    if when is None:
        return unknown
    return in_zone(when, tz).strftime(fmt)


def zone_name(tz: dt.tzinfo) -> str:
    """The IANA name of a zone (`Europe/Berlin`), else what the zone calls itself."""
    return getattr(tz, "key", None) or str(tz)


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO 8601 stamp (`Z` accepted; without an offset it is UTC); None when absent or unreadable."""
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def time_span(
    start: When, end: When | None, tz: dt.tzinfo, *, all_day: bool = False, year: bool = False
) -> str:
    """A window in `tz`: `Tue 25 Mar 10:00–10:30 CET` within a day, `Tue 25 Mar 22:00 → Wed 26 Mar
    02:00 CET` across days (`year`: with the year after the day); all-day windows (`end` exclusive, as
    calendars store them) read `Tue 25 Mar 2026 (all day)` or `Tue 25 Mar → Thu 27 Mar 2026 (all day)`."""
    s = in_zone(start, tz)
    e = in_zone(end, tz) if end is not None else None
    if all_day:
        last = (e - dt.timedelta(days=1)) if e is not None else s
        if last.date() <= s.date():
            return f"{s:{DAY_YEAR}} (all day)"
        return f"{s:{DAY}} → {last:{DAY_YEAR}} (all day)"
    day = DAY_YEAR if year else DAY
    if e is None:
        return f"{s:{day} %H:%M %Z}"
    if e.date() == s.date():
        return f"{s:{day} %H:%M}–{e:%H:%M %Z}"
    return f"{s:{day} %H:%M} → {e:{day} %H:%M %Z}"


def clock_span(start: When, end: When, tz: dt.tzinfo) -> str:
    """`10:00:01–10:04:59 CET`: a span shorter than a day, by the clock."""
    s, e = in_zone(start, tz), in_zone(end, tz)
    return f"{s:{CLOCK}}–{e:{CLOCK}} {e:%Z}".strip()


def ago(seconds: float) -> str:
    """`42s ago`, `12m ago`, `3h ago`."""
    if seconds < 90:
        return f"{int(seconds)}s ago"
    if seconds < 5400:
        return f"{int(seconds // 60)}m ago"
    return f"{int(seconds // 3600)}h ago"


# tags ----------------------------------------------------------------------------------------------
def tag_text(
    tags: dict[str, str],
    limit: int | None = 6,
    *,
    first: Sequence[str] = (),
    sep: str = ", ",
    more: str = " (+{})",
) -> str:
    """`key=value` pairs: the keys named in `first` (in that order), then the rest alphabetically; at
    most `limit` of them, then `more` with the number left out (`env=prod, app=web (+3)`)."""
    keys = [k for k in first if k in tags] + sorted(k for k in tags if k not in first)
    shown = keys if limit is None else keys[: max(0, limit)]
    text = sep.join(f"{k}={tags[k]}" for k in shown)
    hidden = len(keys) - len(shown)
    if hidden:
        note = more.format(hidden)
        text = text + note if text else note.strip()
    return text


# tables and rows -----------------------------------------------------------------------------------
def clip(text: str, width: int) -> str:
    """`text` cut to `width` characters, with `…` when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A fixed-width table (for a code block): columns two spaces apart, no trailing spaces."""
    lines = [list(header), *(list(r) for r in rows)]
    widths = [max(len(r[c]) for r in lines) for c in range(len(header))]
    return "\n".join("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip() for r in lines)


def tsv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Tab-separated text with a header line (for a file upload), ending in a newline."""
    lines = ["\t".join(header), *("\t".join(r) for r in rows)]
    return "\n".join(lines) + "\n"


def row(*cells: str) -> str:
    """One line of a list: the non-empty cells, two spaces apart (`2026-03-25 10:00:00  web-1  → Stopped`)."""
    return "  ".join(c for c in cells if c)


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 instance`, `3 instances` (`many` for irregular plurals)."""
    return f"{n} {word}" if n == 1 else f"{n} {many or word + 's'}"


def escape(text: object) -> str:
    """Text that did not come from the bot, made inert for Slack's mrkdwn: `&`, `<` and `>` escaped,
    so a typed `<!channel>` or `<@U…>` is shown, never acted on."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
