"""A schedule whose holidays come from an ICS calendar, through the running bot: the reconciler reads
the calendar (conditional reads, every REFRESH_SECONDS), keeps the fleet stopped on its holidays, picks
up an edited calendar, and keeps the last known holidays when the calendar cannot be read (reported
once)."""

from __future__ import annotations

import pytest

from tests.scenario.test_schedules import office_fleet
from tests.support import slash

CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//example//company holidays//EN
BEGIN:VEVENT
UID:offsite
DTSTART;VALUE=DATE:20261229
DTEND;VALUE=DATE:20261230
SUMMARY:Company offsite
END:VEVENT
{more}END:VCALENDAR
"""
CLEANUP = """BEGIN:VEVENT
UID:cleanup
DTSTART;VALUE=DATE:20261230
SUMMARY:Year-end cleanup
END:VEVENT
"""


@pytest.fixture
def fleet(make_bot, redis_url, tmp_path):
    ics = tmp_path / "company-holidays.ics"
    ics.write_text(CALENDAR.format(more=""))
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        f"""
timezone: Asia/Tokyo
schedules:
  office:
    periods: [{{days: mon-fri, start: "09:00", stop: "21:00"}}]
    holidays: ["{ics}"]
"""
    )
    fleet = office_fleet(make_bot, redis_url, policy, 3)
    fleet.ics = ics
    return fleet


def reports(fleet) -> list[str]:
    return [
        m.text for m in fleet.bot.emulator("slack").channel_messages("C_OPS") if "cannot be read" in m.text
    ]


def test_calendar_holidays_keep_the_fleet_stopped_and_an_edited_calendar_is_picked_up(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    assert fleet.all("Running")
    fleet.at(2026, 12, 28, 21, 0)
    assert fleet.all("Stopped")
    shown = slash(fleet.bot, "/ecs", "schedule show office", user="U_CAROL").json()
    assert "calendar `company-holidays.ics` (1 ahead)" in str(shown["blocks"])
    assert "Company offsite" in str(shown["blocks"])
    preview = str(slash(fleet.bot, "/ecs", "schedule preview office 2", user="U_CAROL").json()["blocks"])
    assert "Tue 29 Dec" not in preview and "Wed 30 Dec 09:00 JST" in preview
    fleet.at(2026, 12, 29, 9, 0)  # the offsite, from the calendar: nothing starts
    assert fleet.all("Stopped")

    fleet.ics.write_text(CALENDAR.format(more=CLEANUP))  # someone adds a day to the calendar
    fleet.at(2026, 12, 30, 9, 0)
    assert fleet.all("Stopped")

    fleet.ics.write_text("this is not a calendar")
    fleet.at(2026, 12, 31, 9, 0)  # unreadable now: the holidays read before still count …
    assert fleet.all("Running")  # … and the 31st was never one
    assert len(reports(fleet)) == 1
    fleet.at(2026, 12, 31, 21, 0)
    fleet.at(2027, 1, 1, 8, 0)  # read again (and failed again) every half hour: reported once a day
    assert len(reports(fleet)) == 1
    shown = str(slash(fleet.bot, "/ecs", "schedule show office", user="U_CAROL").json()["blocks"])
    assert "cannot be read now" in shown
    fleet.at(2027, 1, 2, 8, 0)
    assert len(reports(fleet)) == 2
