"""Validating office-hours schedules: every error names the field it is about."""

from __future__ import annotations

import datetime as dt
import re

import pydantic
import pytest
import yaml

from handlers.schedules.model import Period, Schedule, compile_schedule, validate_schedules

GOOD = {"timezone": "Asia/Tokyo", "periods": [{"days": "mon-fri", "start": "09:00", "stop": "21:00"}]}


def with_(**changes) -> dict:
    return {**GOOD, **changes}


def period(**fields) -> dict:
    return with_(periods=[{"days": "mon-fri", **fields}])


@pytest.mark.parametrize(
    ("raw", "zone", "field", "message"),
    [
        (period(start="25:00", stop="21:00"), None, "periods[0].start", "'25:00' is not a time (HH:MM)"),
        (period(start="09:00", stop="9pm"), None, "periods[0].stop", "'9pm' is not a time"),
        (period(start="09:00", stop="24:00"), None, "periods[0].stop", "end of the day write 00:00"),
        (period(start="09:00", stop="09:00"), None, "periods[0].stop", "is the start as well"),
        (period(), None, "periods[0]", "a period needs a start, a stop or both"),
        (with_(periods=[]), None, "periods", "at least one period"),
        (
            with_(periods=[{"start": "09:00"}, {"days": "mon-frday", "stop": "10:00"}]),
            None,
            "periods[1].days",
            "'mon-frday': 'frday' is not a day",
        ),
        (period(days="mon#6", start="09:00"), None, "periods[0].days", "from #1 to #5"),
        (period(days="", start="09:00"), None, "periods[0].days", "names no days"),
        (with_(timezone="Asia/Tokio"), None, "timezone", "'Asia/Tokio' is not an IANA time zone"),
        (with_(timezone="../etc/passwd"), None, "timezone", "is not an IANA time zone"),
        (with_(timezone=None), None, "timezone", "no time zone; set one here or the top-level"),
        (with_(timezone=None), "Mars/Olympus", "timezone", "'Mars/Olympus' (the top-level timezone)"),
        (
            with_(holidays=["2026-12-31", "XX"]),
            None,
            "holidays[1]",
            "no holiday data for the country code 'XX'",
        ),
        (with_(holidays=["DE-ZZ"]), None, "holidays[0]", "DE has no subdivision 'ZZ'"),
        (with_(holidays=["2026-02-30"]), None, "holidays[0]", "'2026-02-30' is not a date"),
        (
            with_(holidays=["new year"]),
            None,
            "holidays[0]",
            "neither a date (YYYY-MM-DD), a country code (JP, DE-BY) nor an ICS calendar",
        ),
        (with_(workdays=["2026-10-10", "10/11/2026"]), None, "workdays[1]", "is not a date (YYYY-MM-DD)"),
        (with_(workdays=["JP"]), None, "workdays[0]", "is not a date"),
        (
            with_(holidays=["2026-10-10"], workdays=["2026-10-10"]),
            None,
            "workdays[0]",
            "2026-10-10 is also listed in holidays",
        ),
        (with_(warn_minutes=241), None, "warn_minutes", "241 is outside 0..240"),
        (with_(warn_minutes=-1), None, "warn_minutes", "-1 is outside 0..240"),
        (with_(selector="tag:env=dev status:running"), None, "selector", "cannot use `status:`"),
        (with_(selector="env=dev"), None, "selector", "Did you mean `tag:env=dev`?"),
        (with_(selector="region:cn-hangzhou"), None, "selector", "selects every instance"),
        (with_(selector=""), None, "selector", "selects every instance"),
    ],
)
def test_errors_name_the_field(raw, zone, field, message):
    schedule = Schedule.model_validate(raw)
    with pytest.raises(ValueError) as caught:
        compile_schedule("office-hours", schedule, zone)
    text = str(caught.value)
    assert text.startswith(f"schedules.office-hours.{field}: "), text
    assert message in text


def test_the_documented_message_exactly():
    schedule = Schedule.model_validate(period(start="25:00", stop="21:00"))
    with pytest.raises(
        ValueError, match=re.escape("schedules.office-hours.periods[0].start: '25:00' is not a time (HH:MM)")
    ):
        compile_schedule("office-hours", schedule, None)


@pytest.mark.parametrize("name", ["Office", "-office", "office hours", "a" * 64, "", "ünï"])
def test_schedule_names(name):
    with pytest.raises(ValueError, match=re.escape(f"schedules.{name}: ") + ".*is not a schedule name"):
        validate_schedules({"ok": Schedule.model_validate(GOOD), name: Schedule.model_validate(GOOD)}, None)


def test_validate_schedules_reports_the_first_problem_and_accepts_good_ones():
    good = Schedule.model_validate(GOOD)
    validate_schedules(
        {"office-hours": good, "a" * 63: good, "dev_2": good.model_copy(update={"timezone": None})}, "UTC"
    )
    bad = Schedule.model_validate(period(start="09:00", stop="09:00"))
    with pytest.raises(ValueError, match=r"^schedules\.second\.periods\[0\]\.stop: "):
        validate_schedules({"first": good, "second": bad, "third": bad}, "UTC")


def test_overlapping_periods_and_good_selectors_are_fine():
    raw = with_(
        periods=[{"start": "09:00", "stop": "17:00"}, {"start": "12:00", "stop": "20:00"}],
        selector="tag:env=dev name:web-*",
        holidays=["JP", "jp", "2026-12-31", "DE-by"],
        workdays=["2027-01-01"],
        warn_minutes=0,
    )
    compile_schedule("office-hours", Schedule.model_validate(raw), None)


@pytest.mark.parametrize(
    "raw",
    [
        with_(colour="blue"),
        with_(periods=[{"days": "mon", "start": "09:00", "end": "17:00"}]),
        with_(stop_mode="Hibernate"),
        with_(manual="sometimes"),
        {"timezone": "UTC"},  # periods is required
    ],
)
def test_unknown_keys_and_bad_literals_are_model_errors(raw):
    with pytest.raises(pydantic.ValidationError):
        Schedule.model_validate(raw)


def test_models_are_frozen_and_defaults_are_the_documented_ones():
    s = Schedule.model_validate({"periods": [{"start": "09:00"}]})
    assert (s.timezone, s.holidays, s.workdays, s.stop_mode, s.manual, s.selector, s.warn_minutes) == (
        None,
        (),
        (),
        "KeepCharging",
        "respect",
        None,
        15,
    )
    assert s.periods == (Period(days="daily", start="09:00", stop=None),)
    with pytest.raises(pydantic.ValidationError):
        s.periods[0].days = "mon"  # type: ignore[misc]


def test_the_policy_example_as_yaml_reads_back_even_unquoted():
    text = """
office-hours:
  timezone: Asia/Tokyo
  periods:
    - {days: mon-fri, start: 09:00, stop: 21:00}
  holidays: [2026-12-31]
  workdays: [2026-10-10]
  stop_mode: KeepCharging
"""
    raw = yaml.safe_load(text)["office-hours"]
    assert raw["periods"][0]["stop"] == 1260  # YAML 1.1 reads 21:00 as a base-60 number
    assert raw["holidays"] == [dt.date(2026, 12, 31)]
    schedule = Schedule.model_validate(raw)
    assert schedule.periods[0] == Period(days="mon-fri", start="09:00", stop="21:00")
    assert schedule.holidays == ("2026-12-31",) and schedule.workdays == ("2026-10-10",)
    cs = compile_schedule("office-hours", schedule, None)
    assert cs.is_holiday(dt.date(2026, 12, 31)) and cs.is_workday(dt.date(2026, 10, 10))
