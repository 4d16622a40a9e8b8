"""ICS text for the sandbox's sample planned-work calendar and for tests (written by hand, as a calendar
server would, so the bot's parser is exercised on plain RFC 5545 text)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

_VTIMEZONE_BERLIN = """BEGIN:VTIMEZONE
TZID:Europe/Berlin
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU
END:STANDARD
END:VTIMEZONE"""


def _when(name: str, value: dt.datetime | dt.date, tzid: str | None = None) -> str:
    if isinstance(value, dt.datetime):
        if tzid:
            return f"{name};TZID={tzid}:{value:%Y%m%dT%H%M%S}"
        if value.tzinfo is None:
            return f"{name}:{value:%Y%m%dT%H%M%S}"  # floating
        return f"{name}:{value.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
    return f"{name};VALUE=DATE:{value:%Y%m%d}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")


def vevent(
    uid: str,
    start: dt.datetime | dt.date,
    end: dt.datetime | dt.date | None = None,
    summary: str = "Planned work",
    description: str = "",
    location: str = "",
    tzid: str | None = None,
    rrule: str | None = None,
    exdates: Iterable[dt.datetime | dt.date] = (),
    recurrence_id: dt.datetime | dt.date | None = None,
    status: str | None = None,
    sequence: int = 0,
) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T000000Z", _when("DTSTART", start, tzid)]
    if end is not None:
        lines.append(_when("DTEND", end, tzid))
    if rrule:
        lines.append(f"RRULE:{rrule}")
    lines += [_when("EXDATE", x, tzid) for x in exdates]
    if recurrence_id is not None:
        lines.append(_when("RECURRENCE-ID", recurrence_id, tzid))
    lines.append(f"SUMMARY:{_escape(summary)}")
    if description:
        lines.append(f"DESCRIPTION:{_escape(description)}")
    if location:
        lines.append(f"LOCATION:{_escape(location)}")
    if status:
        lines.append(f"STATUS:{status}")
    lines += [f"SEQUENCE:{sequence}", "END:VEVENT"]
    return "\n".join(lines)


def calendar(*events: str, name: str = "Planned work", x_wr_timezone: str | None = None) -> str:
    head = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//alibaba-chatops//sandbox//EN",
        f"X-WR-CALNAME:{name}",
    ]
    if x_wr_timezone:
        head.append(f"X-WR-TIMEZONE:{x_wr_timezone}")
    body = "\n".join([*head, _VTIMEZONE_BERLIN, *events, "END:VCALENDAR"]) + "\n"
    return body.replace("\n", "\r\n")


def sample_calendar(planned_start: dt.datetime) -> str:
    """One planned maintenance starting at `planned_start` (30 minutes), and a weekly patch window."""
    start = planned_start.astimezone(dt.UTC).replace(microsecond=0)
    berlin_night = (start + dt.timedelta(days=1)).replace(hour=22, minute=0, second=0, tzinfo=None)
    return calendar(
        vevent(
            "sandbox-maintenance-1@chatops.example",
            start,
            start + dt.timedelta(minutes=30),
            summary="Planned maintenance: rolling restart of the web tier",
            description="Restart web-1..web-4 one by one behind the SLB; expect brief 5xx bursts.",
            location="cn-hangzhou",
        ),
        vevent(
            "sandbox-weekly-patch@chatops.example",
            berlin_night,
            berlin_night + dt.timedelta(hours=1),
            summary="Weekly patch window",
            description="OS patches on the batch fleet.",
            tzid="Europe/Berlin",
            rrule="FREQ=WEEKLY;COUNT=8",
        ),
    )
