"""Runbooks started by ECS events and runbooks that page, through the running bot: system events that
CloudMonitor puts on the MNS queue (the MNS emulator, the worker's consumer, real Redis) start a run of
the runbook whose `trigger.event` and selector match — once per event however often it is delivered,
never for an instance outside the selector — and an `incident` step opens one PagerDuty incident (the
real client against the emulator) with its rendered title, whose number later steps can read, also when
its worker is killed while PagerDuty is answering."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from bot.pipeline.jobs import load_job
from bot.services import Services
from handlers.runbooks.job import RUN_KIND, runs_key
from handlers.runbooks.triggers import on_ecs_event
from sandbox.mns_events import system_event
from tests.support import click, find_button, finish_on_a_new_worker, kill_worker_when, slash, wait_for

CONFIRM = "plan.confirm"
POLICY = """
timezone: Asia/Tokyo
roles:
  sre:
    members: [U_BOB]
    permissions: ["ecs.*", "incident.*", approve]
events:
  wait_seconds: 1
  claim_seconds: 5
  digest_quiet_seconds: 1.0
  channel_rate_per_second: 1.0
runbooks:
  drain:
    channel: C_RB
    trigger:
      event: {name: "Instance:SystemMaintenance.Reboot", selector: "tag:role=db"}
    steps:
      - {name: hello, notify: "drain run {{ run_id }} for maintenance", channel: C_RB}
  page:
    params: {site: {type: str, default: tokyo, pattern: "^[a-z-]+$"}}
    steps:
      - {name: paged, incident: "disk full at {{ site }}", urgency: low}
      - {notify: "paged #{{ paged.number }} ({{ paged.id }}): {{ paged.status }}", channel: C_OPS}
  page-again:
    steps:
      - {name: paged, incident: "db down", retry: {attempts: 2, backoff_seconds: 0}}
      - {notify: "paged again #{{ paged.number }}", channel: C_OPS}
"""


def start(make_bot, redis_url, tmp_path, emulators: list[str], worker: bool = True):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    empty = tmp_path / "empty.ics"  # no planned work: the calendar would open incidents of its own
    empty.write_text("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\nEND:VCALENDAR\n")
    return make_bot(
        redis_url=redis_url,
        emulators=emulators,
        env={"CHATOPS_CONFIG": str(policy), "CALENDAR_ICS_URLS": str(empty)},
        worker=worker,
    )


def texts(bot, channel: str, fragment: str) -> list[str]:
    return [m.text for m in bot.emulator("slack").channel_messages(channel) if fragment in m.text]


def runs(bot, name: str) -> list[str]:
    return bot.services.store.zrange_by_score(runs_key(name), 0, float("inf"))


def finished(bot, run_id: str, timeout: float = 30):
    return wait_for(
        lambda: (r := load_job(bot.services.store, run_id)) and r.finished and r, timeout, message="the run"
    )


# event triggers ------------------------------------------------------------------------------------
@pytest.fixture
def events_bot(make_bot, redis_url, tmp_path):
    return start(make_bot, redis_url, tmp_path, ["slack", "ecs", "mns"])


def test_a_maintenance_event_starts_one_run_however_often_it_is_delivered(events_bot):
    bot = events_bot
    ecs, mns = bot.emulator("ecs"), bot.emulator("mns")
    db = ecs.add_instance("db-001", tags={"role": "db"})
    web = ecs.add_instance("web-001", tags={"role": "web"})
    event = system_event(dict(ecs.instances[db]), "SystemMaintenance.Reboot", "Scheduled", 1.9e9)
    mns.send_event(system_event(dict(ecs.instances[web]), "SystemMaintenance.Reboot", "Scheduled", 1.9e9))
    mns.send_event(event)
    mns.send_event(event)  # CloudMonitor delivers at least once
    wait_for(lambda: len(runs(bot, "drain")) >= 1, 30, message="the triggered run")
    [run_id] = runs(bot, "drain")
    record = finished(bot, run_id)
    assert record.status == "done" and record.plan.kind == RUN_KIND
    assert record.plan.origin.kind == "event" and record.plan.origin.name == event["id"]
    summary = wait_for(lambda: texts(bot, "C_RB", f"run {run_id} succeeded"), 20, message="the summary")
    assert len(summary) == 1  # the run's one message, in the runbook's channel
    assert texts(bot, "C_RB", f"drain run {run_id} for maintenance") != []
    # both instances' events were handled (their notices posted) and the queue is empty
    wait_for(lambda: mns.depth() == 0, 20, message="the queue drained")
    wait_for(lambda: texts(bot, "C_OPS", web) and texts(bot, "C_OPS", db), 20, message="the notices")
    mns.send_event(event)  # once more, after the run: the event is known
    under_way = {  # the same maintenance's next notice: a message of its own
        **event,
        "id": event["id"] + "-2",
        "name": "Instance:SystemMaintenance.Reboot:Executing",
        "content": {**event["content"], "eventStatus": "Executing"},
    }
    mns.send_event(under_way)
    wait_for(lambda: mns.depth() == 0, 20, message="the redelivery handled")
    wait_for(lambda: len(texts(bot, "C_OPS", "Executing")) == 1, 20, message="the second notice")
    second = Services(bot.settings)  # another worker that sees the same event
    facts = SimpleNamespace(instance_id=db, tags={"role": "db"})
    try:
        assert on_ecs_event(second, event["name"], event["id"], facts, event["content"]["eventId"]) == []
    finally:
        second.close()
    assert runs(bot, "drain") == [run_id]
    assert len(texts(bot, "C_RB", "for maintenance")) == 1
    assert len([t for t in texts(bot, "C_OPS", db) if "Scheduled" in t]) == 1  # announced once too


def test_an_event_outside_the_selector_of_another_name_or_a_cancelled_one_starts_nothing(events_bot):
    bot = events_bot
    ecs, mns = bot.emulator("ecs"), bot.emulator("mns")
    web = ecs.add_instance("web-002", tags={"role": "web"})
    db = ecs.add_instance("db-002", tags={"role": "db"})
    mns.send_event(system_event(dict(ecs.instances[web]), "SystemMaintenance.Reboot", "Scheduled", 1.9e9))
    mns.send_event(system_event(dict(ecs.instances[db]), "SystemFailure.Reboot", "Executing", 1.9e9))
    mns.send_event(system_event(dict(ecs.instances[db]), "SystemMaintenance.Reboot", "Canceled", 1.9e9))
    wait_for(lambda: mns.depth() == 0, 20, message="the queue drained")
    wait_for(
        lambda: texts(bot, "C_OPS", web) and len(texts(bot, "C_OPS", db)) == 2, 20, message="the notices"
    )
    assert runs(bot, "drain") == []
    assert texts(bot, "C_RB", "") == []


# incident steps ------------------------------------------------------------------------------------
def confirm(bot, text: str, user: str = "U_BOB") -> str:
    answer = slash(bot, "/ecs", text, user=user).json()
    button = find_button(answer["blocks"], CONFIRM)
    click(bot, button, user=user)
    return button["value"]


def test_an_incident_step_opens_one_incident_with_its_rendered_title_for_later_steps(
    make_bot, redis_url, tmp_path
):
    bot = start(make_bot, redis_url, tmp_path, ["slack", "pagerduty"])
    pd = bot.emulator("pagerduty")
    run_id = confirm(bot, "runbook run page site=osaka")
    record = finished(bot, run_id)
    assert record.status == "done"
    [incident] = pd.incident_by_title("disk full at osaka")
    assert incident["urgency"] == "low" and len(pd.incidents) == 1
    said = wait_for(lambda: texts(bot, "C_OPS", "paged #"), 20, message="the notify step")
    assert said == [f"paged #{incident['number']} ({incident['id']}): succeeded"]
    assert f"opened #{incident['number']}" in record.state["steps"]["0"]["summary"]


def test_an_incident_step_whose_worker_dies_waiting_for_pagerduty_opens_one_incident(
    make_bot, redis_url, tmp_path
):
    bot = start(make_bot, redis_url, tmp_path, ["slack", "pagerduty"], worker=False)
    pd = bot.emulator("pagerduty")
    answered = threading.Event()
    created = pd.handle

    def handle(req):  # PagerDuty opens the incident; its answer arrives after the worker died
        resp = created(req)
        if req.method == "POST" and req.path.rstrip("/").endswith("/incidents"):
            answered.wait(30)
        return resp

    pd.handle = handle
    try:
        run_id = confirm(bot, "runbook run page")
        kill_worker_when(
            bot,
            tmp_path / "worker1.log",
            lambda: pd.incident_by_title("disk full at tokyo"),
            "the incident opened",
        )
    finally:
        answered.set()
    record = load_job(bot.services.store, run_id)
    assert not record.finished and record.state["steps"]["0"]["status"] == "running"
    record = finish_on_a_new_worker(bot, run_id, 60)
    assert record.status == "done" and record.attempts == 2
    [incident] = pd.incident_by_title("disk full at tokyo")
    assert len(pd.incidents) == 1
    said = wait_for(lambda: texts(bot, "C_OPS", "paged #"), 20, message="the notify step")
    assert said == [f"paged #{incident['number']} ({incident['id']}): succeeded"]


def test_a_retried_incident_step_takes_the_incident_its_first_try_opened(make_bot, redis_url, tmp_path):
    bot = start(make_bot, redis_url, tmp_path, ["slack", "pagerduty"])
    pd = bot.emulator("pagerduty")
    real = pd.handle
    lost: list[str] = []

    def handle(req):  # the first create reaches PagerDuty, but its answer is a 500
        resp = real(req)
        if req.method == "POST" and req.path.rstrip("/").endswith("/incidents") and not lost:
            lost.append(req.path)
            return pd._error(500, "Server error", 2020)
        return resp

    pd.handle = handle
    run_id = confirm(bot, "runbook run page-again")
    record = finished(bot, run_id)
    assert lost  # the first try failed
    assert record.state["steps"]["0"]["tries"] == 2 and record.state["steps"]["0"]["status"] == "succeeded"
    [incident] = pd.incident_by_title("db down")
    assert len(pd.incidents) == 1
    said = wait_for(lambda: texts(bot, "C_OPS", "paged again #"), 20, message="the notify step")
    assert said == [f"paged again #{incident['number']}"]
