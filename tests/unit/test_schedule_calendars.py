"""ICS calendars as a schedule's holidays: which events count, how the model uses them, and the
start-up check of a calendar file (handlers.schedules.calendars, handlers.schedules.model)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from bot.adapters.calendar import CalendarFeeds
from handlers.schedules.calendars import calendar_urls, check_files, holiday_days
from handlers.schedules.days import Calendar, parse_holiday
from handlers.schedules.model import Schedule, calendar_label, compile_schedule

UTC = dt.UTC
TOKYO = ZoneInfo("Asia/Tokyo")
ICS = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//example//holidays//EN
BEGIN:VEVENT
UID:offsite
DTSTART;VALUE=DATE:20261229
DTEND;VALUE=DATE:20261230
SUMMARY:Company offsite
END:VEVENT
BEGIN:VEVENT
UID:shutdown
DTSTART;VALUE=DATE:20261230
DTEND;VALUE=DATE:20270102
SUMMARY:Year-end shutdown
END:VEVENT
BEGIN:VEVENT
UID:dropped
DTSTART;VALUE=DATE:20261228
SUMMARY:Cancelled day off
STATUS:CANCELLED
END:VEVENT
BEGIN:VEVENT
UID:meeting
DTSTART:20261228T050000Z
DTEND:20261228T060000Z
SUMMARY:All hands
END:VEVENT
BEGIN:VEVENT
UID:founders
DTSTART;VALUE=DATE:20260601
RRULE:FREQ=YEARLY
SUMMARY:Founders' day
END:VEVENT
END:VCALENDAR
"""
URL = "https://calendar.example.com/private-s3cret/holidays.ics"
OFFICE = {"timezone": "Asia/Tokyo", "periods": [{"days": "mon-fri", "start": "09:00", "stop": "21:00"}]}


def days_of(ics: str) -> tuple[dict[dt.date, str], int]:
    start = dt.datetime(2026, 11, 1, tzinfo=UTC)
    found = CalendarFeeds().occurrences(URL, ics.encode(), start, start + dt.timedelta(days=400), UTC)
    return holiday_days(found)


def test_all_day_events_are_holidays_on_every_date_they_cover_and_the_rest_is_left_out():
    days, timed = days_of(ICS)
    assert days == {
        dt.date(2026, 12, 29): "Company offsite",
        dt.date(2026, 12, 30): "Year-end shutdown",
        dt.date(2026, 12, 31): "Year-end shutdown",
        dt.date(2027, 1, 1): "Year-end shutdown",
        dt.date(2027, 6, 1): "Founders' day",  # a yearly series, expanded
    }
    assert timed == 1  # the meeting; the cancelled day off is no holiday either


def test_a_holiday_from_a_calendar_keeps_the_day_stopped_unless_it_is_a_workday():
    schedule = Schedule.model_validate({**OFFICE, "holidays": [URL], "workdays": ["2026-12-31"]})
    cs = compile_schedule("office", schedule, None, {URL: days_of(ICS)[0]})
    assert cs.calendars == (URL,)
    assert cs.is_holiday(dt.date(2026, 12, 29)) == "Company offsite, calendar holidays.ics"
    assert cs.is_holiday(dt.date(2026, 12, 31)) is None  # the explicit workday wins
    assert cs.is_holiday(dt.date(2026, 12, 28)) is None
    starts = [
        t.local.date()
        for t in cs.transitions(
            dt.datetime(2026, 12, 28, tzinfo=TOKYO), dt.datetime(2027, 1, 2, tzinfo=TOKYO)
        )
        if t.state == "running"
    ]
    assert starts == [dt.date(2026, 12, 28), dt.date(2026, 12, 31)]


def test_a_calendar_not_read_yet_adds_no_holiday():
    cs = compile_schedule("office", Schedule.model_validate({**OFFICE, "holidays": [URL]}), None)
    assert cs.is_holiday(dt.date(2026, 12, 29)) is None and cs.calendar_holidays(URL) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URL, Calendar(URL)),
        ("file:///etc/chatops/holidays.ics", Calendar("file:///etc/chatops/holidays.ics")),
        ("/etc/chatops/company.ICS", Calendar("/etc/chatops/company.ICS")),
        ("2026-12-31", dt.date(2026, 12, 31)),
        ("JP", ("JP", None, "en_US")),
    ],
)
def test_a_holidays_entry_is_a_date_a_country_or_a_calendar(text, expected):
    assert parse_holiday(text) == expected


def test_an_entry_that_is_none_of_them_says_what_would_be():
    with pytest.raises(ValueError, match="nor an ICS calendar"):
        parse_holiday("next tuesday")


def test_a_calendar_is_named_without_its_secret_address():
    assert calendar_label(URL) == "holidays.ics"
    assert "s3cret" not in calendar_label("https://example.com/private-s3cret/")


def test_a_calendar_file_that_is_not_there_stops_start_up_naming_the_field(tmp_path):
    there = tmp_path / "company.ics"
    there.write_text(ICS)
    good = Schedule.model_validate({**OFFICE, "holidays": ["JP", str(there), f"file://{there}", URL]})
    check_files({"office": good})  # an http(s) calendar is not checked at start-up
    assert calendar_urls({"office": good}) == [str(there), f"file://{there}", URL]
    bad = Schedule.model_validate({**OFFICE, "holidays": ["JP", str(tmp_path / "missing.ics")]})
    with pytest.raises(ValueError, match=r"schedules\.office\.holidays\[1\]: no calendar file at "):
        check_files({"office": bad})
