"""Office-hours schedules driven by a simulated clock through the real entry points: the engine's tick,
the real ECS SDK against the emulator, the worker running the power jobs, signed Slack requests."""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest

from bot.clock import ManualClock
from bot.pipeline.jobs import ACTIVE
from handlers.schedules import overrides as ovr
from handlers.schedules.engine import compiled, reconcile, reconcile_schedule
from handlers.schedules.warnings import SNOOZE_ACTION, warn_before_stops
from sandbox import credentials
from tests.support import click, slash, wait_for

TOKYO = ZoneInfo("Asia/Tokyo")
POLICY = """
timezone: Asia/Tokyo
roles:
  sre:
    members: [U_BOB]
    permissions: ["ecs.*", schedule.override]
schedules:
  office:
    timezone: Asia/Tokyo
    periods: [{days: mon-fri, start: "09:00", stop: "21:00"}]
    holidays: ["2026-12-31"]
    workdays: ["2027-01-02"]
    stop_mode: StopCharging
"""


def tokyo(*args) -> float:
    return dt.datetime(*args, tzinfo=TOKYO).timestamp()


class Fleet:
    def __init__(self, bot, clock: ManualClock, ids: list[str]):
        self.bot, self.clock, self.ids = bot, clock, ids
        self.ecs = bot.emulator("ecs")

    def at(self, *when) -> None:
        """Move the clock to a Tokyo wall time and run one tick of the engine, then let its job finish."""
        self.clock.advance(tokyo(*when) - self.clock.time())
        reconcile(self.bot.services)
        self.settle()

    def settle(self) -> None:
        """Wait until every power job the tick started has finished (its report is posted)."""
        store = self.bot.services.store
        wait_for(lambda: not store.zrange_by_score(ACTIVE, 1, float("inf")), 30, message="the jobs done")

    def statuses(self) -> dict[str, str]:
        return {i: self.ecs.instances[i]["Status"] for i in self.ids}

    def all(self, status: str) -> bool:
        return set(self.statuses().values()) == {status}

    def calls(self, name: str) -> int:
        return len(self.ecs.calls_named(name))


def office_fleet(make_bot, redis_url, policy_path, count: int) -> Fleet:
    """`count` staging instances on the schedule `office` of the policy at `policy_path`, Running, the
    clock on Monday 2026-12-28 08:00 in Tokyo, one tick made."""
    clock = ManualClock(start=tokyo(2026, 12, 28, 8, 0))  # Monday morning in Tokyo
    bot = make_bot(
        redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": str(policy_path)}, clock=clock
    )
    ecs = bot.emulator("ecs")
    ecs.transition_seconds = 0.1
    ids = sorted(
        i
        for i, x in ecs.instances.items()
        if x["Tags"].get("env") == "staging" and x["RegionId"] == credentials.REGION_ID
    )[:count]
    for iid in ids:
        ecs.instances[iid]["Tags"]["Schedule"] = "office"
        ecs.set_status(iid, "Running")
    fleet = Fleet(bot, clock, ids)
    # The worker ticks on its own too, at whatever the clock says: every test starts where the clock
    # starts, and the clock moves only with a tick (or where a test says so), so the two agree.
    fleet.at(2026, 12, 28, 8, 0)
    return fleet


@pytest.fixture
def fleet(make_bot, redis_url, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return office_fleet(make_bot, redis_url, path, 5)


def test_a_week_of_ticks_follows_office_hours_holidays_and_a_make_up_workday(fleet):
    assert fleet.all("Stopped")  # first sight, at 08:00: the latest transition (Friday 21:00) is a stop
    stops = [c for c in fleet.ecs.calls_named("StopInstances") if c.status == 200]
    assert {c.request.query.get("StoppedMode") for c in stops} == {"StopCharging"}
    fleet.at(2026, 12, 28, 9, 0)
    assert fleet.all("Running")
    fleet.at(2026, 12, 28, 20, 59)
    assert fleet.all("Running")
    fleet.at(2026, 12, 28, 21, 3)  # no tick from 20:59 to 21:03: the missed stop is made at once
    assert fleet.all("Stopped")

    calls = fleet.calls("DescribeInstances")
    for minute in range(4, 30):  # between transitions a tick calls nothing
        fleet.at(2026, 12, 28, 21, minute)
    assert fleet.calls("DescribeInstances") == calls

    manual = fleet.ids[0]
    fleet.ecs.set_status(manual, "Running")  # someone starts one by hand in the evening
    fleet.at(2026, 12, 28, 23, 0)
    assert fleet.statuses()[manual] == "Running"  # respected until the next transition
    fleet.at(2026, 12, 29, 9, 0)
    fleet.at(2026, 12, 29, 21, 0)
    assert fleet.all("Stopped")

    fleet.at(2026, 12, 31, 9, 0)  # New Year's Eve is a holiday: nothing starts
    assert fleet.all("Stopped")
    fleet.at(2027, 1, 1, 9, 0)  # a Friday
    assert fleet.all("Running")
    fleet.at(2027, 1, 1, 21, 0)
    fleet.at(2027, 1, 2, 9, 0)  # Saturday, a make-up workday
    assert fleet.all("Running")
    fleet.at(2027, 1, 2, 21, 0)
    fleet.at(2027, 1, 3, 9, 0)  # Sunday
    assert fleet.all("Stopped")
    origins = {r.origin for r in fleet.bot.services.authz.recent(50) if r.what in ("ecs.start", "ecs.stop")}
    assert origins == {"schedule office"}


def test_racing_reconcilers_act_once(fleet):
    services = fleet.bot.services
    cs = compiled(services)["office"]
    fleet.clock.advance(tokyo(2026, 12, 28, 9, 0) - fleet.clock.time())
    go, results = threading.Barrier(2, timeout=30), []

    def race():
        go.wait()
        services.store.hdel("schedules:state", "office")  # both think the transition is new
        results.append(reconcile_schedule(services, "office", cs, services.clock.time(), []))

    threads = [threading.Thread(target=race, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    wait_for(lambda: fleet.all("Running"), 30)
    fleet.settle()
    assert results.count(True) <= 1  # (the worker's own tick may have been the one that acted)
    assert sum(1 for c in fleet.ecs.calls_named("StartInstances") if c.status == 200) == 1


def test_an_override_holds_instances_back_and_gives_them_back_when_it_ends(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    kept = fleet.ids[0]
    name = fleet.ecs.instances[kept]["InstanceName"]
    fleet.clock.advance(tokyo(2026, 12, 28, 20, 0) - fleet.clock.time())
    answer = slash(
        fleet.bot,
        "/ecs",
        f"schedule override {name} keep-running until 21:30",
        user="U_BOB",  # Shanghai: 22:30 in Tokyo
    ).json()
    assert "keep running until" in answer["text"], answer
    fleet.at(2026, 12, 28, 21, 0)
    assert fleet.statuses()[kept] == "Running"
    assert all(s == "Stopped" for i, s in fleet.statuses().items() if i != kept)
    overrides = slash(fleet.bot, "/ecs", "schedule overrides", user="U_CAROL").json()
    assert name in str(overrides["blocks"])
    fleet.at(2026, 12, 28, 22, 31)
    assert fleet.all("Stopped")


def test_override_times_that_make_no_sense_change_nothing(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    name = fleet.ecs.instances[fleet.ids[0]]["InstanceName"]
    for until, why in (("soon", "is not a time"), ("08:00", "already past"), ("9d", "at most 7 days")):
        answer = slash(
            fleet.bot, "/ecs", f"schedule override {name} keep-running until {until}", user="U_BOB"
        )
        assert why in answer.json()["text"]
    refused = slash(fleet.bot, "/ecs", f"schedule override {name} keep-running until 22:00", user="U_CAROL")
    assert "not allowed" in refused.json()["text"]
    assert fleet.bot.services.store.hgetall("schedules:overrides") == {}


def test_skip_tonight_keeps_them_up_for_one_night_only(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    fleet.clock.advance(tokyo(2026, 12, 28, 20, 46) - fleet.clock.time())
    warn_before_stops(fleet.bot.services)
    warning = wait_for(
        lambda: next(
            (m for m in fleet.bot.emulator("slack").channel_messages("C_OPS") if "stops 5 running" in m.text),
            None,
        ),
        10,
    )
    assert "in 14 min" in warning.text
    skip = next(b for b in warning.blocks[1]["elements"] if b["text"]["text"] == "Skip tonight")
    assert skip["action_id"] == SNOOZE_ACTION
    click(fleet.bot, skip, user="U_BOB")
    wait_for(lambda: fleet.bot.services.store.hgetall("schedules:overrides"), 10, message="the override")
    fleet.at(2026, 12, 28, 21, 0)
    assert fleet.all("Running")  # tonight: skipped
    fleet.at(2026, 12, 29, 9, 1)
    fleet.at(2026, 12, 29, 21, 0)
    assert fleet.all("Stopped")  # the next night is a normal night


def test_skip_tonight_on_a_friday_keeps_them_up_that_night_and_not_the_weekend(fleet):
    # Friday 2027-01-08: the schedule's next start is Monday 09:00; Skip tonight ends on Saturday 09:00
    # (the next start's time the first time it comes round), and the weekend is stopped as usual.
    fleet.at(2027, 1, 8, 9, 0)
    fleet.clock.advance(tokyo(2027, 1, 8, 20, 46) - fleet.clock.time())
    warn_before_stops(fleet.bot.services)
    stamp = str(int(tokyo(2027, 1, 8, 21, 0)))

    def friday_warning():
        for m in fleet.bot.emulator("slack").channel_messages("C_OPS"):
            if "stops 5 running" in m.text and stamp in str(m.blocks):
                return m
        return None

    warning = wait_for(friday_warning, 10, message="Friday's warning")
    skip = next(b for b in warning.blocks[1]["elements"] if b["text"]["text"] == "Skip tonight")
    click(fleet.bot, skip, user="U_BOB")
    store = fleet.bot.services.store
    (kept,) = wait_for(lambda: ovr.load_all(store), 10, message="the override")
    assert kept.until == tokyo(2027, 1, 9, 9, 0)
    fleet.at(2027, 1, 8, 21, 0)
    assert fleet.all("Running")  # tonight: skipped
    fleet.at(2027, 1, 9, 8, 59)
    assert fleet.all("Running")
    fleet.at(2027, 1, 9, 9, 1)  # the night is over: the schedule has them back, and Saturday is off
    assert fleet.all("Stopped")
    assert store.hgetall("schedules:overrides") == {}
    fleet.at(2027, 1, 11, 9, 0)  # Monday
    assert fleet.all("Running")


def test_schedule_commands_show_instances_and_next_transitions(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    fleet.at(2026, 12, 28, 10, 0)
    listing = str(slash(fleet.bot, "/ecs", "schedule list", user="U_CAROL").json()["blocks"])
    assert "office" in listing and "Asia/Tokyo" in listing and "stopped Mon 21:00" in listing
    shown = str(slash(fleet.bot, "/ecs", "schedule show office", user="U_CAROL").json()["blocks"])
    assert "5 Running" in shown and "StopCharging" in shown, shown[:1500]
    preview = str(slash(fleet.bot, "/ecs", "schedule preview office 4", user="U_CAROL").json()["blocks"])
    assert "Thu 31 Dec" not in preview.split("WHY")[1].split("09:00")[0] or "holiday" in preview
    assert "Mon 28 Dec 21:00 JST" in preview and "Tue 29 Dec 09:00 JST" in preview
    unknown = slash(fleet.bot, "/ecs", "schedule show nope", user="U_CAROL").json()["text"]
    assert "There is no schedule `nope`" in unknown


def test_a_tag_naming_an_unknown_schedule_is_reported_once(fleet):
    from handlers.schedules.engine import report_unknown_schedules

    stray = untagged(fleet)
    fleet.ecs.instances[stray]["Tags"]["Schedule"] = "ofice"  # a typo
    report_unknown_schedules(fleet.bot.services)
    report_unknown_schedules(fleet.bot.services)
    slack = fleet.bot.emulator("slack")
    notes = [m.text for m in slack.channel_messages("C_OPS") if "no schedule `ofice`" in m.text]
    assert len(notes) == 1 and fleet.ecs.instances[stray]["InstanceName"] in notes[0]
    fleet.ecs.set_status(stray, "Running")
    fleet.at(2026, 12, 28, 9, 0)
    fleet.at(2026, 12, 28, 21, 0)
    assert fleet.ecs.instances[stray]["Status"] == "Running"  # left alone by the 21:00 stop


def untagged(fleet) -> str:
    """An instance of the fleet's region that carries no Schedule tag."""
    return next(
        i
        for i, x in sorted(fleet.ecs.instances.items())
        if "Schedule" not in x["Tags"] and x["RegionId"] == credentials.REGION_ID
    )


def test_each_day_has_one_thread_that_sums_the_schedule_up(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    fleet.at(2026, 12, 28, 21, 0)
    slack = fleet.bot.emulator("slack")
    heads = [
        m for m in slack.channel_messages("C_OPS") if m.text.startswith("Schedule `office` — Mon 28 Dec 2026")
    ]
    assert len(heads) == 1
    head = str(heads[0].blocks)
    assert (
        "Fri 25 Dec 21:00 (acted at 08:00) stop 5 instances" in head
    )  # the first tick caught up on Friday's stop
    assert "09:00 start 5 instances" in head and "21:00 stop" in head
    assert "≈ 60 instance-hours off today" in head  # 5 instances × 12 h (00:00–09:00, 21:00–24:00)
    replies = [m for m in slack.channel_messages("C_OPS") if m.thread_ts == heads[0].ts]
    assert any("Started 5 of 5" in m.text for m in replies) and any(
        "Stopped 5 of 5" in m.text for m in replies
    )


def test_a_start_that_fails_for_lack_of_stock_is_retried_then_escalated(fleet):
    short = fleet.ids[2]
    fleet.ecs.no_stock.add(short)
    fleet.at(2026, 12, 28, 9, 0)
    assert fleet.statuses()[short] == "Stopped"
    fleet.at(2026, 12, 28, 9, 5)  # retried
    fleet.ecs.no_stock.discard(short)
    fleet.at(2026, 12, 28, 9, 8)  # not yet: every 5 minutes
    assert fleet.statuses()[short] == "Stopped"
    fleet.at(2026, 12, 28, 9, 10)  # stock is back: started
    assert fleet.all("Running")
    starts = [c for c in fleet.ecs.calls_named("StartInstances") if short in str(c.request.query)]
    assert len(starts) == 3

    fleet.at(2026, 12, 28, 21, 0)
    fleet.ecs.no_stock.add(short)
    for minute in (0, 5, 10, 15, 20, 25, 30, 35):
        fleet.at(2026, 12, 29, 9, minute)
    alerts = [
        m.text for m in fleet.bot.emulator("slack").channel_messages("C_OPS") if "lack of stock" in m.text
    ]
    assert len(alerts) == 1 and short in alerts[0]


def test_an_override_that_ends_with_a_transition_due_makes_one_job(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    name = fleet.ecs.instances[fleet.ids[0]]["InstanceName"]
    fleet.clock.advance(tokyo(2026, 12, 28, 20, 0) - fleet.clock.time())
    slash(fleet.bot, "/ecs", f"schedule override {name} keep-running until 21:30", user="U_BOB")  # Shanghai
    stops = fleet.calls("StopInstances")
    fleet.at(2026, 12, 29, 21, 5)  # the override ended long ago and the 21:00 stop is due: both at once
    assert fleet.all("Stopped")
    assert fleet.calls("StopInstances") == stops + 1  # one batch: the transition took the instance back
    assert fleet.bot.services.store.hgetall("schedules:overrides") == {}


ENFORCING = POLICY.replace(
    "timezone: Asia/Tokyo\nroles:", "timezone: Asia/Tokyo\nschedule_tag: Hours\nroles:"
).replace("    stop_mode: StopCharging\n", "    stop_mode: StopCharging\n    manual: enforce\n")


def test_a_renamed_schedule_tag_and_enforce_make_the_schedule_win_every_minute(make_bot, redis_url, tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(ENFORCING)
    fleet = office_fleet(
        make_bot, redis_url, path, 4
    )  # tagged Schedule=office: not the key this policy reads
    assert fleet.all("Running")  # the 08:00 tick saw none of them
    opted_in, left_out = fleet.ids[:3], fleet.ids[3]
    for iid in opted_in:
        tags = fleet.ecs.instances[iid]["Tags"]
        tags["Hours"] = tags.pop("Schedule")
    fleet.at(2026, 12, 28, 8, 1)  # enforce: off hours, so what runs is stopped at the next tick
    assert {fleet.statuses()[i] for i in opted_in} == {"Stopped"}
    assert fleet.statuses()[left_out] == "Running"  # `Schedule=office` is not this policy's tag
    fleet.at(2026, 12, 28, 9, 0)
    assert {fleet.statuses()[i] for i in opted_in} == {"Running"}
    fleet.ecs.set_status(opted_in[0], "Stopped")  # stopped by hand during office hours …
    fleet.at(2026, 12, 28, 9, 1)
    assert fleet.statuses()[opted_in[0]] == "Running"  # … and started again at the next tick
    fleet.at(2026, 12, 28, 21, 0)
    fleet.ecs.set_status(opted_in[1], "Running")  # started by hand in the evening …
    fleet.at(2026, 12, 28, 23, 0)
    assert {fleet.statuses()[i] for i in opted_in} == {"Stopped"}  # … and stopped again
    assert fleet.statuses()[left_out] == "Running"


SELECTING = POLICY.replace(
    "    stop_mode: StopCharging\n", '    stop_mode: StopCharging\n    selector: "tag:squad=night"\n'
)


def test_a_schedules_selector_adds_instances_and_cancel_hands_an_override_back_at_once(
    make_bot, redis_url, tmp_path
):
    path = tmp_path / "policy.yaml"
    path.write_text(SELECTING)
    fleet = office_fleet(make_bot, redis_url, path, 4)
    selected = fleet.ids[3]
    tags = fleet.ecs.instances[selected]["Tags"]
    del tags["Schedule"]
    tags["squad"] = "night"  # no schedule tag: in the schedule through its selector
    fleet.ecs.set_status(selected, "Stopped")
    fleet.at(2026, 12, 28, 9, 0)
    assert fleet.all("Running")
    name = fleet.ecs.instances[selected]["InstanceName"]
    fleet.clock.advance(tokyo(2026, 12, 28, 20, 0) - fleet.clock.time())
    answer = slash(fleet.bot, "/ecs", f"schedule override {name} keep-running until 23:00", user="U_BOB")
    assert "keep running until" in answer.json()["text"], answer.json()
    fleet.at(2026, 12, 28, 21, 0)
    assert fleet.statuses()[selected] == "Running"
    assert all(s == "Stopped" for i, s in fleet.statuses().items() if i != selected)
    fleet.at(2026, 12, 28, 21, 30)
    (o,) = fleet.bot.services.store.hgetall("schedules:overrides")
    override_id = o.decode() if isinstance(o, bytes) else o
    refused = slash(fleet.bot, "/ecs", f"schedule cancel {override_id}", user="U_CAROL").json()
    assert "not allowed" in refused["text"]
    cancelled = slash(fleet.bot, "/ecs", f"schedule cancel {override_id}", user="U_BOB").json()
    assert f"Override `{override_id}` ended" in cancelled["text"], cancelled
    fleet.settle()
    wait_for(lambda: fleet.all("Stopped"), 30, message="the cancelled override's instance stopped")
    assert fleet.bot.services.store.hgetall("schedules:overrides") == {}
    stops = [r for r in fleet.bot.services.authz.recent(50) if r.what == "ecs.stop"]
    assert {r.origin for r in stops} == {"schedule office"}


def test_a_scheduled_stop_records_its_intent_so_auto_restart_leaves_it_alone(fleet):
    from bot.intents import intents_for

    fleet.at(2026, 12, 28, 9, 0)
    fleet.at(2026, 12, 28, 21, 0)
    found = intents_for(fleet.bot.services.store, fleet.ids)
    assert set(found) == set(fleet.ids)
    assert {(i.action, i.source, i.actor) for i in found.values()} == {("stop", "schedule", "office")}


def test_the_unknown_schedule_check_reads_one_count_while_nothing_changes(fleet):
    from handlers.schedules.engine import report_unknown_schedules

    services = fleet.bot.services
    report_unknown_schedules(services)  # the first run lists every tagged instance
    # then, every 10 minutes, one count of the tagged instances: no listing while it stays the same
    before = len(fleet.ecs.calls)
    for _ in range(3):
        fleet.clock.advance(600)
        report_unknown_schedules(services)
    made = fleet.ecs.calls[before:]
    assert [(c.name, c.request.query.get("PageSize")) for c in made] == [("DescribeInstances", "1")] * 3
    fleet.ecs.instances[fleet.ids[2]]["Tags"]["Schedule"] = "ofice"  # edited in place: the same count
    fleet.ecs.instances[untagged(fleet)]["Tags"]["Schedule"] = "nightly"  # one tagged instance more
    slack = fleet.bot.emulator("slack")
    report_unknown_schedules(services)
    notes = [m.text for m in slack.channel_messages("C_OPS") if "but the policy has no schedule" in m.text]
    assert any("`ofice`" in n for n in notes) and any("`nightly`" in n for n in notes)
    fleet.ecs.instances[fleet.ids[3]]["Tags"]["Schedule"] = "later"  # the same count: found within a day
    fleet.clock.advance(86400)
    report_unknown_schedules(services)
    assert any("no schedule `later`" in m.text for m in slack.channel_messages("C_OPS"))


def test_warning_buttons_need_schedule_override_and_are_audited(fleet):
    fleet.at(2026, 12, 28, 9, 0)
    fleet.clock.advance(tokyo(2026, 12, 28, 20, 50) - fleet.clock.time())
    warn_before_stops(fleet.bot.services)
    slack = fleet.bot.emulator("slack")
    warning = wait_for(
        lambda: next((m for m in slack.channel_messages("C_OPS") if "stops 5 running" in m.text), None), 10
    )
    snooze = next(b for b in warning.blocks[1]["elements"] if b["text"]["text"] == "Snooze 1 h")
    click(fleet.bot, snooze, user="U_CAROL")  # read-only
    store, authz = fleet.bot.services.store, fleet.bot.services.authz
    wait_for(
        lambda: any(r.who == "U_CAROL" and r.decision == "deny" for r in authz.recent(20)),
        10,
        message="the refusal",
    )
    assert store.hgetall("schedules:overrides") == {}
    click(fleet.bot, snooze, user="U_BOB")
    (o,) = wait_for(lambda: ovr.load_all(store), 10, message="the override")
    assert o.by == "U_BOB" and o.until == tokyo(2026, 12, 28, 22, 0)
    audited = [r for r in authz.recent(20) if r.who == "U_BOB" and r.what == "schedule.override"]
    assert audited and any(o.id in (r.result or "") + (r.detail or "") for r in audited), audited
    fleet.at(2026, 12, 28, 21, 0)
    assert fleet.all("Running")
    fleet.at(2026, 12, 28, 22, 1)  # the snooze is over
    assert fleet.all("Stopped")
