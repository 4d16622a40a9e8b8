"""`bench schedules`: its set-up, its expected transitions (checked against the schedule model), the
seed's cron triggers, and how our calls are sorted by purpose."""

from __future__ import annotations

import datetime as dt

import pytest

from bench.baselines.schedules_naive import NaiveScheduler, cron_triggers
from bench.schedules import (
    WEEKDAYS,
    desired_at,
    expected_transitions,
    make_specs,
    missed,
    model_transitions,
    policy_for,
    purposes,
)
from handlers.schedules.model import NAME, Schedule, compile_schedule
from sandbox import credentials
from sandbox.ecs_emulator import EcsEmulator
from sandbox.emulator import Call, Request

UTC = dt.UTC
WEDNESDAY = dt.datetime(2026, 6, 10, tzinfo=UTC)
DAY = dt.timedelta(days=1)


def test_twenty_schedules_in_four_zones_staggered_by_15_and_20_minutes():
    specs = make_specs(20)
    assert len({s.name for s in specs}) == 20 and all(NAME.match(s.name) for s in specs)
    assert {s.zone for s in specs} == {"Asia/Tokyo", "Europe/Berlin", "America/New_York", "UTC"}
    assert (specs[0].start, specs[1].start, specs[19].start) == (
        dt.time(7, 0),
        dt.time(7, 15),
        dt.time(11, 45),
    )
    assert (specs[0].stop, specs[1].stop, specs[19].stop) == (
        dt.time(17, 0),
        dt.time(17, 20),
        dt.time(23, 20),
    )
    for name, raw in policy_for(specs)["schedules"].items():
        compile_schedule(name, Schedule.model_validate(raw), "UTC")  # valid policy entries
    with pytest.raises(ValueError):
        make_specs(21)


def test_a_weekday_has_one_start_and_one_stop_per_schedule():
    specs = make_specs(20)
    due = expected_transitions(specs, WEDNESDAY, WEDNESDAY + DAY)
    assert len(due) == 40
    assert [d.at for d in due] == sorted(d.at for d in due)
    for s in specs:
        assert sorted(d.state for d in due if d.schedule == s.name) == ["running", "stopped"]
    # Tokyo 09:00 is midnight UTC: the start at the window's opening is yesterday's, the next one is in
    tokyo_nine = [d for d in due if d.schedule == specs[8].name and d.state == "running"]
    assert [d.at for d in tokyo_nine] == [WEDNESDAY + DAY]
    # New York 21:40 EDT (Tuesday) is 01:40 UTC Wednesday
    ny = [d for d in due if d.schedule == specs[14].name and d.state == "stopped"]
    assert [d.at for d in ny] == [WEDNESDAY + dt.timedelta(hours=1, minutes=40)]


@pytest.mark.parametrize(
    "day",
    [
        dt.date(2026, 6, 10),  # the benchmark's Wednesday
        dt.date(2026, 3, 9),  # the Monday after New York moved to daylight saving time
        dt.date(2026, 3, 30),  # the Monday after Berlin did
        dt.date(2026, 6, 13),  # a Saturday (Friday evening in New York)
    ],
)
def test_expected_transitions_agree_with_the_schedule_model(day):
    specs = make_specs(20)
    t0 = dt.datetime.combine(day, dt.time(0, 0), tzinfo=UTC)
    due = expected_transitions(specs, t0, t0 + DAY)
    assert due == model_transitions(specs, t0, t0 + DAY)
    by_name = {s.name: s for s in specs}
    for d in due:  # the desired state from each transition on
        assert desired_at(by_name[d.schedule], d.at) == d.state
        assert desired_at(by_name[d.schedule], d.at - dt.timedelta(minutes=1)) != d.state


def test_the_seeds_cron_triggers_are_utc_with_the_weekday_shifted():
    tokyo_nine, tokyo_nine_stop = cron_triggers(
        "a", "Asia/Tokyo", WEEKDAYS, dt.time(9, 0), dt.time(17, 0), dt.date(2026, 6, 10)
    )
    assert (tokyo_nine.expression, tokyo_nine_stop.expression) == (
        "0 0 * * mon,tue,wed,thu,fri",
        "0 8 * * mon,tue,wed,thu,fri",
    )
    early, _ = cron_triggers("a", "Asia/Tokyo", WEEKDAYS, dt.time(7, 0), dt.time(17, 0), dt.date(2026, 6, 10))
    assert early.expression == "0 22 * * mon,tue,wed,thu,sun"
    _, ny_late = cron_triggers(
        "a", "America/New_York", WEEKDAYS, dt.time(9, 0), dt.time(21, 40), dt.date(2026, 6, 10)
    )
    assert ny_late.expression == "40 1 * * tue,wed,thu,fri,sat"


def test_triggers_deployed_in_winter_fire_an_hour_late_in_summer():
    start, _ = cron_triggers(
        "a", "Europe/Berlin", WEEKDAYS, dt.time(8, 15), dt.time(17, 0), dt.date(2026, 1, 15)
    )
    fired = start.at(WEDNESDAY.date())
    assert fired.astimezone(dt.timezone(dt.timedelta(hours=2))).time() == dt.time(9, 15)


def test_triggers_deployed_on_the_day_fire_at_every_expected_transition():
    specs = make_specs(20)
    fired = []
    for s in specs:
        for t in cron_triggers(s.name, s.zone, WEEKDAYS, s.start, s.stop, WEDNESDAY.date()):
            for day in (WEDNESDAY.date(), (WEDNESDAY + DAY).date()):
                if t.fires_on(day) and WEDNESDAY < t.at(day) <= WEDNESDAY + DAY:
                    fired.append((t.at(day), s.name, "running" if t.action == "start" else "stopped"))
    due = expected_transitions(specs, WEDNESDAY, WEDNESDAY + DAY)
    assert sorted(fired) == [(d.at, d.schedule, d.state) for d in due]


def test_missed_counts_instances_not_in_the_desired_state():
    statuses = {"i-1": "Running", "i-2": "Stopped", "i-3": "Starting"}
    assert missed(statuses, ["i-1", "i-2", "i-3", "i-gone"], "running") == 3
    assert missed(statuses, ["i-1", "i-2"], "stopped") == 1


def _call(name: str, **query: str) -> Call:
    return Call(name, Request("POST", "/", "/", query, {}, b""), 200)


def test_our_calls_by_purpose():
    calls = [
        _call("DescribeInstances", RegionId="r", **{"Tag.1.Key": "Schedule", "Tag.1.Value": "a"}),
        _call("DescribeInstances", RegionId="r", InstanceIds='["i-1", "i-2", "i-3"]'),
        _call("StopInstances", RegionId="r", **{"InstanceId.1": "i-1", "InstanceId.2": "i-2"}),
        _call("DescribeInstances", RegionId="r", InstanceIds='["i-1", "i-2", "i-3"]'),
        _call("DescribeInstances", RegionId="r", InstanceIds='["i-1", "i-2", "i-3"]'),
        _call("DescribeInstances", RegionId="r", **{"Tag.1.Key": "Schedule", "Tag.1.Value": "a"}),
        # the next transition, planned from a fresh listing and sent without a refresh
        _call("DescribeInstances", RegionId="r", **{"Tag.1.Key": "Schedule", "Tag.1.Value": "a"}),
        _call("StartInstances", RegionId="r", **{"InstanceId.1": "i-1", "InstanceId.2": "i-2"}),
        _call("DescribeInstances", RegionId="r", InstanceIds='["i-1", "i-2", "i-3"]'),
    ]
    assert purposes(calls, warning_calls={5}) == {
        "engine_member_lookups": 2,
        "job_power": 2,
        "job_refresh_by_id": 1,
        "job_wait_polls": 3,
        "warning_counts": 1,
    }


def test_the_seeds_listing_reads_the_first_page_and_the_fixed_one_reads_every_page():
    emu = EcsEmulator().start()
    try:
        ids = emu.seed_fleet(25, extra_tags={"Schedule": "a"}, status="Running")
        emu.seed_fleet(5, status="Running")
        args = (emu.base_url, credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET)
        first = NaiveScheduler(*args, credentials.REGION_ID)
        assert [i for i, _ in first.list_by_tag("a")] == ids[:10]
        assert first.api_calls == 1
        paged = NaiveScheduler(*args, credentials.REGION_ID, paged=True)
        assert sorted(i for i, _ in paged.list_by_tag("a")) == sorted(ids)
        assert paged.api_calls == 3
        assert all("PageSize" not in c.request.query for c in emu.calls_named("DescribeInstances"))
    finally:
        emu.stop()
