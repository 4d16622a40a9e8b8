"""Calendar occurrences (icalendar + recurring-ical-events through the adapter) and the pure planning:
recurrence, EXDATE, moved and cancelled instances, time zones across DST, all-day events, lead time,
edits and cancellations before and after the start, resolve at the end."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.adapters.calendar import CalendarFeeds
from handlers.pagerduty.planning import (
    AddNote,
    CalendarConfig,
    OpenIncident,
    ResolveIncident,
    incident_key,
    is_due,
    opened_state,
    plan,
)
from sandbox.pagerduty_calendar import calendar, vevent

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC
FEEDS = CalendarFeeds()
CONFIG = CalendarConfig(url="/tmp/ops.ics", service_id="PSVC001")


def occurrences(ics: str, start: dt.datetime, end: dt.datetime, tz=BERLIN):
    return FEEDS.occurrences("/tmp/ops.ics", ics.encode(), start, end, tz)


def utc(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


WEEKLY = vevent(
    "patch@x",
    dt.datetime(2025, 3, 20, 9, 0),
    dt.datetime(2025, 3, 20, 10, 0),
    summary="Weekly patch",
    tzid="Europe/Berlin",
    rrule="FREQ=WEEKLY;COUNT=4",
)


def test_weekly_recurrence_keeps_local_time_across_the_dst_change():
    occ = occurrences(calendar(WEEKLY), utc(2025, 3, 1), utc(2025, 5, 1))
    # 09:00 Berlin is 08:00 UTC before 30 March 2025 and 07:00 UTC after it
    assert [o.start for o in occ] == [
        utc(2025, 3, 20, 8),
        utc(2025, 3, 27, 8),
        utc(2025, 4, 3, 7),
        utc(2025, 4, 10, 7),
    ]
    assert all(o.end - o.start == dt.timedelta(hours=1) for o in occ)
    assert len({o.identity for o in occ}) == 4 and all(o.recurring for o in occ)


def test_exdate_removes_an_instance_and_a_recurrence_id_moves_one_keeping_its_identity():
    moved = vevent(
        "patch@x",
        dt.datetime(2025, 4, 3, 11, 0),
        dt.datetime(2025, 4, 3, 12, 0),
        summary="Weekly patch (moved)",
        tzid="Europe/Berlin",
        recurrence_id=dt.datetime(2025, 4, 3, 9, 0),
    )
    base = WEEKLY.replace("RRULE:", "EXDATE;TZID=Europe/Berlin:20250327T090000\nRRULE:")
    before = {o.identity: o for o in occurrences(calendar(WEEKLY), utc(2025, 3, 1), utc(2025, 5, 1))}
    after = {o.identity: o for o in occurrences(calendar(base, moved), utc(2025, 3, 1), utc(2025, 5, 1))}
    assert len(after) == 3  # the EXDATE'd 27 March is gone
    removed = set(before) - set(after)
    assert [before[i].start for i in removed] == [utc(2025, 3, 27, 8)]
    moved_occ = next(o for o in after.values() if o.summary.endswith("(moved)"))
    assert moved_occ.start == utc(2025, 4, 3, 9)  # 11:00 CEST
    assert moved_occ.identity in before  # same occurrence, just moved …
    assert incident_key(moved_occ) == incident_key(before[moved_occ.identity])  # … so the same key


def test_cancelled_instance_is_flagged_and_never_due():
    cancelled = vevent(
        "patch@x",
        dt.datetime(2025, 4, 10, 9, 0),
        dt.datetime(2025, 4, 10, 10, 0),
        tzid="Europe/Berlin",
        recurrence_id=dt.datetime(2025, 4, 10, 9, 0),
        status="CANCELLED",
    )
    occ = occurrences(calendar(WEEKLY, cancelled), utc(2025, 4, 9), utc(2025, 4, 11))
    assert len(occ) == 1 and occ[0].cancelled
    assert not is_due(occ[0], utc(2025, 4, 10, 7, 30), dt.timedelta(0))
    assert plan(occ, {}, CONFIG, utc(2025, 4, 10, 7, 30), BERLIN) == []


def test_all_day_and_floating_events_are_in_the_team_time_zone():
    allday = vevent("freeze@x", dt.date(2025, 7, 1), dt.date(2025, 7, 2), summary="Change freeze")
    floating = vevent("float@x", dt.datetime(2025, 7, 1, 8, 0), dt.datetime(2025, 7, 1, 9, 0))
    occ = {o.uid: o for o in occurrences(calendar(allday, floating), utc(2025, 6, 30), utc(2025, 7, 3))}
    assert occ["freeze@x"].all_day and occ["freeze@x"].start == utc(2025, 6, 30, 22)  # midnight CEST
    assert occ["freeze@x"].end == utc(2025, 7, 1, 22)
    assert occ["float@x"].start == utc(2025, 7, 1, 6)
    shanghai = occurrences(calendar(allday), utc(2025, 6, 30), utc(2025, 7, 3), tz=ZoneInfo("Asia/Shanghai"))
    assert shanghai[0].start == utc(2025, 6, 30, 16)


def test_x_wr_timezone_calendars_use_their_zone():
    floating = vevent("g@x", dt.datetime(2025, 1, 15, 10, 0), dt.datetime(2025, 1, 15, 11, 0))
    occ = occurrences(
        calendar(floating, x_wr_timezone="America/New_York"), utc(2025, 1, 14), utc(2025, 1, 16)
    )
    assert occ[0].start == utc(2025, 1, 15, 15)


def test_an_occurrence_opens_once_its_start_minus_the_lead_has_come():
    ev = vevent("m@x", utc(2025, 5, 5, 10), utc(2025, 5, 5, 11), summary="DB failover test")
    occ = occurrences(calendar(ev), utc(2025, 5, 4), utc(2025, 5, 6))
    lead = CalendarConfig(url="/tmp/ops.ics", service_id="S", lead=dt.timedelta(minutes=15))
    assert plan(occ, {}, CONFIG, utc(2025, 5, 5, 9, 50), BERLIN) == []
    opened = plan(occ, {}, lead, utc(2025, 5, 5, 9, 50), BERLIN)
    assert len(opened) == 1 and isinstance(opened[0], OpenIncident)
    assert (
        opened[0].title == "DB failover test"
        and "Window: Mon 05 May 2025 12:00–13:00 CEST" in opened[0].details
    )
    assert plan(occ, {}, CONFIG, utc(2025, 5, 5, 11, 0), BERLIN) == []  # over: nothing to open


def test_edit_before_the_start_just_moves_the_opening_and_cancel_before_opens_nothing():
    original = vevent("x@x", utc(2025, 5, 5, 10), utc(2025, 5, 5, 11), summary="Rotate keys")
    moved = vevent("x@x", utc(2025, 5, 5, 14), utc(2025, 5, 5, 15), summary="Rotate keys", sequence=1)
    cancelled = vevent("x@x", utc(2025, 5, 5, 10), utc(2025, 5, 5, 11), status="CANCELLED", sequence=2)
    at_old_start = utc(2025, 5, 5, 10, 1)
    assert (
        len(
            plan(
                occurrences(calendar(original), utc(2025, 5, 4), utc(2025, 5, 6)),
                {},
                CONFIG,
                at_old_start,
                BERLIN,
            )
        )
        == 1
    )
    moved_occ = occurrences(calendar(moved), utc(2025, 5, 4), utc(2025, 5, 6))
    assert plan(moved_occ, {}, CONFIG, at_old_start, BERLIN) == []
    assert len(plan(moved_occ, {}, CONFIG, utc(2025, 5, 5, 14, 0), BERLIN)) == 1
    cancelled_occ = occurrences(calendar(cancelled), utc(2025, 5, 4), utc(2025, 5, 6))
    assert plan(cancelled_occ, {}, CONFIG, at_old_start, BERLIN) == []


def test_after_opening_an_edit_or_a_cancellation_adds_one_note_and_the_end_may_resolve():
    ev = vevent("y@x", utc(2025, 5, 5, 10), utc(2025, 5, 5, 11), summary="Upgrade kernel")
    occ = occurrences(calendar(ev), utc(2025, 5, 4), utc(2025, 5, 6))[0]
    state = opened_state(occ, "Q1", incident_key(occ))
    now = utc(2025, 5, 5, 10, 30)
    assert plan([occ], {occ.identity: state}, CONFIG, now, BERLIN) == []  # unchanged: nothing to do

    edited = occurrences(
        calendar(vevent("y@x", utc(2025, 5, 5, 10), utc(2025, 5, 5, 12), summary="Upgrade kernel + reboot")),
        utc(2025, 5, 4),
        utc(2025, 5, 6),
    )
    [note] = plan(edited, {occ.identity: state}, CONFIG, now, BERLIN)
    assert isinstance(note, AddNote)
    assert "title “Upgrade kernel” → “Upgrade kernel + reboot”" in note.text and "window" in note.text
    # once remembered, the same edit plans nothing more
    assert plan(edited, {occ.identity: note.updated}, CONFIG, now, BERLIN) == []

    [gone] = plan([], {occ.identity: state}, CONFIG, now, BERLIN)
    assert (
        isinstance(gone, AddNote) and "removed from the calendar" in gone.text and gone.claim == "cancelled"
    )
    assert plan([], {occ.identity: gone.updated}, CONFIG, now, BERLIN) == []

    resolving = CalendarConfig(url="/tmp/ops.ics", service_id="S", resolve_at_end=True)
    assert plan([occ], {occ.identity: state}, resolving, now, BERLIN) == []
    assert plan([occ], {occ.identity: state}, resolving, utc(2025, 5, 5, 11), BERLIN) == [
        ResolveIncident(state)
    ]


def test_incident_key_depends_on_uid_and_original_start_only():
    a = occurrences(calendar(WEEKLY), utc(2025, 3, 1), utc(2025, 5, 1))
    again = occurrences(calendar(WEEKLY.replace("Weekly patch", "Renamed")), utc(2025, 3, 1), utc(2025, 5, 1))
    assert [incident_key(o) for o in a] == [incident_key(o) for o in again]
    assert len({incident_key(o) for o in a}) == len(a)
    assert all(incident_key(o).startswith("chatops-cal-") and len(incident_key(o)) < 255 for o in a)


@settings(max_examples=60, deadline=None)
@given(
    offset=st.integers(min_value=-300, max_value=300),
    duration=st.integers(min_value=0, max_value=180),
    lead=st.integers(min_value=0, max_value=60),
)
def test_due_exactly_from_start_minus_lead_until_the_end(offset, duration, lead):
    start = utc(2025, 10, 26, 1, 30)  # inside the autumn DST change of Europe/Berlin
    ev = vevent("p@x", start, start + dt.timedelta(minutes=duration), summary="Window")
    [occ] = occurrences(calendar(ev), utc(2025, 10, 25), utc(2025, 10, 28))
    now = start + dt.timedelta(minutes=offset)
    config = CalendarConfig(url="/tmp/ops.ics", service_id="S", lead=dt.timedelta(minutes=lead))
    end = max(occ.end, occ.start + dt.timedelta(minutes=5))
    expected = start - dt.timedelta(minutes=lead) <= now < end
    assert bool(plan([occ], {}, config, now, BERLIN)) == expected
    # once opened (state remembered), planning never opens it again
    state = opened_state(occ, "Q", incident_key(occ))
    assert not any(
        isinstance(a, OpenIncident) for a in plan([occ], {occ.identity: state}, config, now, BERLIN)
    )
