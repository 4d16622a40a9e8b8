"""Runbooks through the running bot: signed slash commands and clicks, the real ECS SDK against the
emulator (power and Cloud Assistant), the worker running the run's job — step order, the live message and
its thread, retries and `on_failure`, cancel, an approval step, bad input, a cron with two workers, and a
worker killed with SIGKILL mid-run-step that is replaced without running the command twice."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.pipeline.jobs import load_job
from bot.pipeline.plans import Origin
from bot.services import Services
from handlers.runbooks.job import RUN_KIND
from handlers.runbooks.triggers import fire_crons, start_triggered
from tests.support import (
    click,
    find_button,
    finish_on_a_new_worker,
    kill_worker_when,
    press_for_answer,
    slash,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIRM = "plan.confirm"
POLICY = """
timezone: Asia/Tokyo
roles:
  sre:
    members: [U_BOB]
    permissions: ["ecs.*", approve]
  readers:
    members: [U_CAROL]
    permissions: []
runbooks:
  batch:
    params: {day: {type: str, default: today, pattern: "^[a-z0-9-]+$"}}
    steps:
      - {name: start, power: start, selector: "tag:role=rb", wait: true}
      - name: work
        run: "echo {{ day }}"
        selector: "tag:role=rb"
        retry: {attempts: 2, backoff_seconds: 0}
        on_failure: [cleanup]
      - {name: stop, power: stop, selector: "tag:role=rb"}
      - {notify: "work said {{ work.output }}", channel: C_OPS}
    recovery:
      - {name: cleanup, power: stop, selector: "tag:role=rb"}
  gated:
    steps:
      - {name: ask, approve: "go ahead?", ttl_seconds: 600}
      - {notify: "approved: {{ ask.by }}", channel: C_OPS}
  kick:
    steps:
      - {name: kick, power: start, selector: "tag:role=rb", wait: false}
  nightly:
    trigger: {cron: "0 2 * * *", timezone: Asia/Tokyo}
    steps: [{notify: "nightly ran", channel: C_OPS}]
"""


@pytest.fixture
def bot(make_bot, redis_url, tmp_path):
    return start(make_bot, redis_url, tmp_path)


def start(make_bot, redis_url, tmp_path, worker: bool = True):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    bot = make_bot(
        redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": str(policy)}, worker=worker
    )
    bot.emulator("ecs").transition_seconds = 0.1
    return bot


def machines(ecs, count: int = 3, status: str = "Stopped") -> list[str]:
    return [
        ecs.add_instance(f"rb-{n:03d}", status=status, tags={"env": "rb", "role": "rb"}) for n in range(count)
    ]


def messages(bot, fragment: str, thread: bool | None = None) -> list:
    found = [m for m in bot.emulator("slack").channel_messages("C_OPS") if fragment in m.text]
    if thread is not None:
        found = [m for m in found if bool(m.thread_ts) is thread]
    return found


def confirm(bot, text: str, user: str = "U_ALICE") -> str:
    answer = slash(bot, "/ecs", text, user=user).json()
    button = find_button(answer["blocks"], CONFIRM)
    click(bot, button, user=user)
    return button["value"]


def summary(bot, run_id: str, outcome: str):
    """The run's one message once it shows the outcome (the job ends just before its message is edited)."""
    return wait_for(
        lambda: messages(bot, f"run {run_id} {outcome}", thread=False), 20, message="the summary"
    )[0]


def finished(bot, run_id: str, timeout: float = 60):
    return wait_for(
        lambda: (r := load_job(bot.services.store, run_id)) and r.finished and r, timeout, message="the run"
    )


def test_steps_run_in_order_with_one_live_message_a_thread_and_the_output_file(bot):
    ecs = bot.emulator("ecs")
    ids = machines(ecs)
    answer = slash(bot, "/ecs", "runbook run batch day=monday").json()
    shown = str(answer["blocks"])
    assert "Run runbook batch" in shown and "echo monday" in shown and "3 instances" in shown
    click(bot, find_button(answer["blocks"], CONFIRM))
    run_id = find_button(answer["blocks"], CONFIRM)["value"]
    record = finished(bot, run_id)
    assert record.status == "done" and record.plan.kind == RUN_KIND
    order = [c.name for c in ecs.calls if c.name in ("StartInstances", "RunCommand", "StopInstances")]
    assert order == ["StartInstances", "RunCommand", "StopInstances"]
    assert all(ecs.instances[i]["Status"] == "Stopped" for i in ids)
    final = wait_for(lambda: messages(bot, f"run {run_id} succeeded", thread=False), 10, message="summary")
    assert len(final) == 1 and final[0].edits >= 3  # one message, edited as the steps went
    body = str(final[0].blocks)
    assert ":white_check_mark: *2. work* run `echo monday`" in body and "3 of 3 instances succeeded" in body
    thread = [m for m in bot.emulator("slack").channel_messages("C_OPS") if m.thread_ts == final[0].ts]
    assert [m.text.split(":")[0] for m in thread] == [
        "Step 1 start",
        "Step 2 work",
        "Step 3 stop",
        "Step 4 notify",
    ]
    assert messages(bot, "work said monday")
    files = wait_for(lambda: [f for f in bot.emulator("slack").files.values() if f.get("content")], 10)
    assert any(b"monday" in f["content"] for f in files)
    shown = slash(bot, "/ecs", "runbook show batch", user="U_CAROL").json()
    assert run_id in str(shown["blocks"]) and "succeeded" in str(shown["blocks"])
    status = slash(bot, "/ecs", f"runbook status {run_id}", user="U_CAROL").json()
    assert "succeeded" in status["text"]
    invoke_id = ecs.calls_named("RunCommand")[0].response["InvokeId"]
    pointer = slash(bot, "/ecs", f"run status {invoke_id}", user="U_CAROL").json()
    assert f"is a step of runbook run `{run_id}`" in pointer["text"]
    assert f"/ecs runbook status {run_id}" in pointer["text"]


def test_a_power_step_with_wait_false_does_not_wait_for_the_target_state(bot):
    ecs = bot.emulator("ecs")
    ecs.transition_seconds = 30  # a wait would outlast the test
    machines(ecs)
    run_id = confirm(bot, "runbook run kick")
    record = finished(bot, run_id, 20)
    assert record.status == "done"
    assert "3 of 3 instances sent (not waited for)" in record.state["steps"]["0"]["summary"]
    assert len(ecs.calls_named("StartInstances")) == 1
    names = [c.name for c in ecs.calls]
    after = names[names.index("StartInstances") + 1 :]
    assert "DescribeInstances" not in after  # no wait: nothing looked at the instances again


def test_a_retry_then_on_failure_runs_the_recovery_and_skips_the_rest(bot):
    ecs = bot.emulator("ecs")
    machines(ecs, 2)
    ecs.command_behaviour = lambda inst, text, kind: (0.2, 4, "broken")
    run_id = confirm(bot, "runbook run batch")
    finished(bot, run_id)
    assert len(ecs.calls_named("RunCommand")) == 2  # two tries, each its own invocation
    tokens = {c.request.query["ClientToken"] for c in ecs.calls_named("RunCommand")}
    assert len(tokens) == 2
    final = summary(bot, run_id, "failed")
    body = str(final.blocks)
    assert ":x: *2. work*" in body and "try 2" in body and "*5. cleanup*" in body
    assert "*3. stop*" in body and not messages(bot, "work said")  # neither stop nor notify ran
    assert len(ecs.calls_named("StopInstances")) == 1  # the cleanup


def test_cancel_stops_the_running_command_then_runs_on_failure(bot):
    ecs = bot.emulator("ecs")
    machines(ecs, 2)
    ecs.command_behaviour = lambda inst, text, kind: (30.0, 0, "slow")
    run_id = confirm(bot, "runbook run batch")
    wait_for(
        lambda: (r := load_job(bot.services.store, run_id)) and "step 1: running" in r.phase,
        30,
        message="polling",
    )
    refused = slash(bot, "/ecs", f"runbook cancel {run_id}", user="U_CAROL").json()
    assert "not allowed" in refused["text"]
    answer = slash(bot, "/ecs", f"runbook cancel {run_id}").json()
    assert "Cancelling runbook" in answer["text"]
    finished(bot, run_id)
    assert len(ecs.calls_named("StopInvocation")) == 1
    final = summary(bot, run_id, "cancelled")
    assert ":no_entry_sign: *2. work*" in str(final.blocks) and "*5. cleanup*" in str(final.blocks)
    assert len(ecs.calls_named("StopInstances")) == 1


def test_an_approval_step_parks_the_run_until_someone_else_approves(bot):
    run_id = confirm(bot, "runbook run gated")
    request = wait_for(lambda: messages(bot, "Approval needed"), 30, message="the approval request")[0]
    record = wait_for(
        lambda: (r := load_job(bot.services.store, run_id)) and r.status == "waiting" and r,
        20,
        message="parked",
    )
    assert record.attempts == 0  # parking is not a lost worker
    approve = find_button(request.blocks, "approval.approve")
    assert "someone else who holds `approve`" in press_for_answer(bot, approve, "U_ALICE")
    click(bot, approve, user="U_BOB")
    finished(bot, run_id)
    assert messages(bot, "approved: <@U_BOB>") or messages(bot, "approved: &lt;@U_BOB&gt;")
    assert summary(bot, run_id, "succeeded")


def test_a_second_run_beyond_the_concurrency_is_refused_with_the_running_one_named(bot):
    first = confirm(bot, "runbook run gated")  # parks at its approval: still running
    wait_for(
        lambda: (r := load_job(bot.services.store, first)) and r.status == "waiting", 20, message="parked"
    )
    answer = slash(bot, "/ecs", "runbook run gated").json()  # asked in chat: refused at once
    assert "is running already" in answer["text"] and first in answer["text"] and "blocks" not in answer
    # started by a trigger at the same time: the run's job is refused, naming the one that runs
    book = bot.services.policy.runbooks["gated"]
    origin = Origin(kind="runbook", name="gated test trigger", channel="C_OPS")
    assert start_triggered(bot.services, "gated", book, "rbsecondgated", origin)
    record = finished(bot, "rbsecondgated")
    assert record.state.get("refused") == first
    refusal = wait_for(lambda: messages(bot, "run `rbsecondgated` was refused"), 10, message="refusal")[0]
    assert f"run `{first}` is still running" in refusal.text and "allows 1 at a time" in refusal.text
    assert load_job(bot.services.store, first).status == "waiting"  # the first one goes on


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("runbook run batch day=NOT_OK", "does not match"),
        ("runbook run batch color=red", "has no parameter `color`"),
        ("runbook run nope", "There is no runbook `nope`"),
        ("runbook status rb-unknown", "No runbook run `rb-unknown`"),
        ("runbook frobnicate", "is not a runbook command"),
    ],
)
def test_bad_input_gets_a_usage_message_and_changes_nothing(bot, text, says):
    ecs = bot.emulator("ecs")
    machines(ecs, 1)
    answer = slash(bot, "/ecs", text).json()
    assert says in answer["text"], answer
    if "batch" in text:
        assert "/ecs runbook run batch [day=…]" in answer["text"]
    assert not [c for c in ecs.calls if c.name in ("StartInstances", "RunCommand")]


def test_running_needs_the_runbooks_permission(bot):
    answer = slash(bot, "/ecs", "runbook run gated", user="U_CAROL").json()
    assert "not allowed" in answer["text"] and "ecs.runbook.gated" in answer["text"]
    listed = slash(bot, "/ecs", "runbook list", user="U_CAROL").json()
    assert "nightly" in str(listed["blocks"]) and "0 2 * * *" in str(listed["blocks"])


def test_a_cron_seen_by_two_workers_starts_one_run(bot):
    due = dt.datetime(2027, 1, 5, 2, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=9))).timestamp()
    workers = [Services(bot.settings, clock=ManualClock(due)) for _ in range(2)]
    try:
        threads = [threading.Thread(target=fire_crons, args=(s,), daemon=True) for s in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        fire_crons(workers[0])  # a later tick of the same minute starts nothing either
    finally:
        for s in workers:
            s.close()
    wait_for(lambda: messages(bot, "nightly ran"), 30, message="the cron run")
    runs = bot.services.store.zrange_by_score("runbook:runs:nightly", 0, float("inf"))
    assert len(runs) == 1
    assert len(messages(bot, "nightly ran")) == 1


def test_a_worker_killed_mid_run_step_is_replaced_without_running_the_command_twice(
    make_bot, redis_url, tmp_path
):
    bot = start(make_bot, redis_url, tmp_path, worker=False)
    ecs = bot.emulator("ecs")
    ids = machines(ecs, 120, status="Running")  # two batches
    ecs.command_behaviour = lambda inst, text, kind: (6.0, 0, f"hello from {inst['InstanceName']}")
    run_id = confirm(bot, "runbook run batch")
    kill_worker_when(
        bot,
        tmp_path / "worker1.log",
        lambda: (r := load_job(bot.services.store, run_id)) and "step 1: running" in r.phase,
        "the run step polling",
    )
    assert len(ecs.calls_named("RunCommand")) == 2
    record = finish_on_a_new_worker(bot, run_id, 120)
    assert record.status == "done" and record.attempts == 2
    assert len(ecs.calls_named("RunCommand")) == 2  # the command ran once on each instance
    assert sum(len(v["instances"]) for v in ecs.invocations.values()) == len(ids)
    assert (
        summary(bot, run_id, "succeeded") and len(messages(bot, f"run {run_id} succeeded", thread=False)) == 1
    )
    assert len(messages(bot, "Step 2 work", thread=True)) == 1
