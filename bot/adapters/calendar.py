"""ICS calendars: fetching (conditional GET, or a file's mtime) and expanding occurrences with icalendar +
recurring-ical-events (RRULE, RDATE, EXDATE, RECURRENCE-ID overrides, TZID and X-WR-TIMEZONE, all-day).

Occurrences come out as plain `Occurrence` values in UTC; what to do with them is decided elsewhere
(handlers/pagerduty/planning.py), so this module is the only one that knows the iCalendar libraries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import icalendar
import recurring_ical_events

from bot.errors import UpstreamError
from bot.registry import Capability

capability = Capability("bot.adapters.calendar")

MAX_FEED_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class FetchResult:
    """`body` is None when the feed did not change since the validators we sent (HTTP 304)."""

    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.body is None


@dataclass(frozen=True)
class Occurrence:
    """One occurrence of a calendar event, times in UTC.

    `identity` names the occurrence across edits: the UID for a one-off event, UID plus the original
    start (RECURRENCE-ID) for an instance of a series, so a moved or retitled instance stays itself.
    `original_start` is that original start (the start itself for one-off events)."""

    calendar: str
    uid: str
    identity: str
    start: dt.datetime
    end: dt.datetime
    original_start: dt.datetime
    all_day: bool
    summary: str
    description: str
    location: str
    cancelled: bool
    recurring: bool


class CalendarFeeds:
    def __init__(self, timeout: float = 10.0, max_bytes: int = MAX_FEED_BYTES):
        self.timeout = timeout
        self.max_bytes = max_bytes

    # fetching ------------------------------------------------------------------------------------
    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch a feed, conditionally when validators from the previous fetch are given."""
        path = local_path(url)
        if path is not None:
            return self._fetch_file(path, etag)
        headers = {"Accept": "text/calendar, */*;q=0.5", "User-Agent": "alibaba-chatops calendar-sync"}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        req = urllib.request.Request(url, headers=headers, method="GET")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - http(s) only
                body = resp.read(self.max_bytes + 1)
                if len(body) > self.max_bytes:
                    raise UpstreamError("Calendar", f"{_redact(url)} is larger than {self.max_bytes} bytes")
                return FetchResult(body, resp.headers.get("ETag"), resp.headers.get("Last-Modified"))
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return FetchResult(None, exc.headers.get("ETag") or etag, last_modified)
            raise UpstreamError(
                "Calendar",
                f"{_redact(url)} answered HTTP {exc.code}",
                str(exc.code),
                retryable=exc.code == 429 or exc.code >= 500,
            ) from None
        except (urllib.error.URLError, OSError, TimeoutError) as exc:
            reason = getattr(exc, "reason", exc)
            raise UpstreamError("Calendar", f"{_redact(url)} unreachable: {reason}", retryable=True) from None

    def _fetch_file(self, path: Path, etag: str | None) -> FetchResult:
        try:
            stat = path.stat()
            validator = f'"{stat.st_mtime_ns:x}-{stat.st_size:x}"'
            if etag == validator:
                return FetchResult(None, etag)
            if stat.st_size > self.max_bytes:
                raise UpstreamError("Calendar", f"{path} is larger than {self.max_bytes} bytes")
            return FetchResult(path.read_bytes(), validator)
        except OSError as exc:
            raise UpstreamError("Calendar", f"cannot read {path}: {exc.strerror or exc}") from None

    # expanding -----------------------------------------------------------------------------------
    def occurrences(
        self,
        calendar_url: str,
        body: bytes,
        window_start: dt.datetime,
        window_end: dt.datetime,
        default_tz: dt.tzinfo,
    ) -> list[Occurrence]:
        """Every occurrence (cancelled ones flagged) that overlaps [window_start, window_end]."""
        try:
            cal = icalendar.Calendar.from_ical(body)
            recurring = _recurring_uids(cal)
            components = recurring_ical_events.of(cal, skip_bad_series=True).between(
                window_start.astimezone(dt.UTC), window_end.astimezone(dt.UTC)
            )
        except Exception as exc:  # noqa: BLE001 - any parser failure means "not a usable feed"
            raise UpstreamError(
                "Calendar", f"{_redact(calendar_url)} is not a valid iCalendar feed: {exc}"
            ) from None
        out = []
        for comp in components:
            occ = _occurrence(calendar_url, comp, recurring, default_tz)
            if occ is not None:
                out.append(occ)
        out.sort(key=lambda o: (o.start, o.identity))
        return out


def local_path(url: str) -> Path | None:
    """The file a calendar address names (a file:// URL or a path), or None for http(s)."""
    if url.startswith("file://"):
        return Path(unquote(urlsplit(url).path))
    if url.startswith(("http://", "https://")):
        return None
    return Path(os.path.expanduser(url))


def _redact(url: str) -> str:
    """Secret iCal addresses carry their secret in the path: show scheme and host only."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}/…"
    return url


def _recurring_uids(cal) -> set[str]:
    uids = set()
    for comp in cal.walk("VEVENT"):
        if comp.get("RRULE") or comp.get("RDATE") or comp.get("RECURRENCE-ID"):
            uids.add(str(comp.get("UID") or ""))
    return uids


def _to_utc(value, default_tz: dt.tzinfo) -> tuple[dt.datetime, bool]:
    """(aware UTC datetime, is_all_day). Dates are midnight and floating times are local in `default_tz`."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=default_tz)
        return aware.astimezone(dt.UTC), False
    if isinstance(value, dt.date):
        midnight = dt.datetime(value.year, value.month, value.day, tzinfo=default_tz)
        return midnight.astimezone(dt.UTC), True
    raise ValueError(f"not a date: {value!r}")


def _occurrence(calendar_url: str, comp, recurring: set[str], default_tz: dt.tzinfo) -> Occurrence | None:
    if comp.get("DTSTART") is None:
        return None
    uid = str(comp.get("UID") or "")
    if not uid:  # a UID-less event still needs a stable identity
        uid = "nouid-" + hashlib.sha256(comp.to_ical()).hexdigest()[:16]
    start, all_day = _to_utc(comp["DTSTART"].dt, default_tz)
    end = _to_utc(comp["DTEND"].dt, default_tz)[0] if comp.get("DTEND") is not None else None
    if end is None or end < start:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(0))
    rid = comp.get("RECURRENCE-ID")
    original = _to_utc(rid.dt, default_tz)[0] if rid is not None else start
    is_recurring = uid in recurring
    identity = f"{uid}@{original:%Y%m%dT%H%M%SZ}" if is_recurring else uid
    return Occurrence(
        calendar=calendar_url,
        uid=uid,
        identity=identity,
        start=start,
        end=end,
        original_start=original if is_recurring else start,
        all_day=all_day,
        summary=str(comp.get("SUMMARY") or "").strip(),
        description=str(comp.get("DESCRIPTION") or "").strip(),
        location=str(comp.get("LOCATION") or "").strip(),
        cancelled=str(comp.get("STATUS") or "").upper() == "CANCELLED",
        recurring=is_recurring,
    )


@capability.adapter("calendar")
def build(services) -> CalendarFeeds:
    return CalendarFeeds()
