"""The change pipeline's contract, on Redis and on SQLite, with a toy plan kind (tests/toy): preview →
Confirm → durable job → a worker process killed with SIGKILL mid-job → resume → report; the attempt cap;
and the gates' authorization (Cancel is authorized like Confirm)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.clock import ManualClock
from bot.pipeline.gates import submit
from bot.pipeline.jobs import (
    LEASE_TTL,
    MAX_ATTEMPTS,
    STALE_AFTER,
    load_job,
    resume_stale_jobs,
    save_job,
)
from bot.pipeline.plans import Origin, Plan, PlanTarget
from bot.services import Services
from bot.worker import Worker
from tests.support import click, find_button, slash, wait_for
from tests.toy import pipeline_kind as toy

ROOT = Path(__file__).resolve().parents[2]
CONFIRM, CANCEL = "plan.confirm", "plan.cancel"


@pytest.fixture(params=["sqlite", "redis"])
def bot(request, make_bot):
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    return make_bot(redis_url=redis_url, emulators=["slack"], worker=False, registry=toy.registry())


def later(bot, seconds: float) -> Services:
    """The same bot's services on a clock `seconds` ahead (to see heartbeats as stale)."""
    return Services(bot.settings, registry=toy.registry(), clock=ManualClock(time.time() + seconds))


def confirmed_plan(bot, text: str) -> str:
    answer = slash(bot, "/zz-toy", text).json()
    assert "Touch" in str(answer["blocks"]) and "Nothing changes before Confirm" in str(answer["blocks"])
    button = find_button(answer["blocks"], CONFIRM)
    click(bot, button)
    wait_for(lambda: load_job(bot.services.store, button["value"]), 10, message="the durable job")
    return button["value"]


def touched(bot, count: int) -> list[int]:
    store = bot.services.store
    return [int(store.get(toy.touched_key(f"t-{n:02d}")) or 0) for n in range(count)]


def channel_message(bot, fragment: str):
    return next((m for m in bot.emulator("slack").channel_messages("C_OPS") if fragment in m.text), None)


def ephemeral_texts(bot, user: str) -> list[str]:
    return [e.text for e in bot.emulator("slack").timeline if e.kind == "ephemeral" and e.user == user]


def expire_lease(services: Services, job_id: str) -> None:
    """What the lease's TTL does LEASE_TTL seconds after its worker died: the lease is gone."""
    key = f"job:{job_id}"
    holder = services.store.lease_holder(key)
    assert holder, "the killed worker held the job's lease"
    assert services.store.release_lease(key, holder)


def test_a_job_killed_mid_run_is_resumed_by_another_worker_and_reported_once(bot, tmp_path):
    job_id = confirmed_plan(bot, "touch 5 hold=2")
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(bot.env, PYTHONPATH=str(ROOT))
    log = open(tmp_path / "worker1.log", "w")  # noqa: SIM115 - closed below
    first = subprocess.Popen(
        [sys.executable, "-m", "tests.toy.pipeline_kind"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        wait_for(lambda: bot.services.store.get("toy:holding") == job_id, 60, message="the job holding")
    finally:
        first.kill()  # SIGKILL: no cleanup, the lease stays until it expires
        first.wait(10)
        log.close()
    record = load_job(bot.services.store, job_id)
    assert (record.status, record.attempts, record.acting) == ("running", 1, True)
    assert touched(bot, 5) == [1, 1, 0, 0, 0]

    stale = later(bot, STALE_AFTER + LEASE_TTL + 1)
    try:
        queued = bot.services.queue.pending()  # what the killed worker's scheduler left, if anything
        resume_stale_jobs(stale)  # the lease is still held: nothing is taken over yet
        assert bot.services.queue.pending() == queued
        expire_lease(stale, job_id)
        resume_stale_jobs(stale)
        assert bot.services.queue.pending() == queued + 1
    finally:
        stale.close()

    second = Worker(bot.services, workers=1)
    second.start()
    try:
        report = wait_for(lambda: channel_message(bot, "Touched 5 of 5"), 30, message="the report")
    finally:
        second.stop(timeout=10)
    assert touched(bot, 5) == [1, 1, 1, 1, 1]  # nothing touched twice
    record = load_job(bot.services.store, job_id)
    assert (record.status, record.attempts) == ("done", 2)
    assert report.edits >= 2  # the progress message, edited, then replaced by the report
    assert "requested by <@U_ALICE>" in str(report.blocks)
    assert [f["name"] for f in bot.emulator("slack").files.values()] == [f"toy-{job_id}.txt"]
    results = [r for r in bot.services.authz.recent(20) if r.what == "toy.touch" and r.result]
    assert [r.result for r in results] == ["ok"]


def test_a_job_past_its_attempt_cap_is_reported_interrupted_with_what_is_known(bot):
    job_id = confirmed_plan(bot, "touch 3")
    record = load_job(bot.services.store, job_id)
    record.status, record.attempts, record.acting = "running", MAX_ATTEMPTS, True
    record.state["done"] = ["t-00"]
    save_job(bot.services.store, record)
    stale = later(bot, STALE_AFTER + 1)
    try:
        resume_stale_jobs(stale)
    finally:
        stale.close()
    report = wait_for(lambda: channel_message(bot, "giving up"), 10, message="the interrupted report")
    assert "Touched 1 of 3" in report.text and f"stopped {MAX_ATTEMPTS} times" in report.text
    assert load_job(bot.services.store, job_id).status == "failed"
    assert bot.services.queue.pending() == 1  # only the original run: nothing was enqueued again
    assert any(r.what == "toy.touch" and r.result == "error" for r in bot.services.authz.recent(20))


def test_cancel_is_authorized_like_confirm(make_bot, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("confirmation:\n  others_may_confirm: true\n")
    bot = make_bot(
        emulators=["slack"], worker=False, registry=toy.registry(), env={"CHATOPS_CONFIG": str(policy)}
    )
    answer = slash(bot, "/zz-toy", "touch 2").json()
    click(bot, find_button(answer["blocks"], CANCEL), user="U_CAROL")  # holds no `toy.touch`
    texts = wait_for(lambda: ephemeral_texts(bot, "U_CAROL"), 10, message="the refusal")
    assert "not allowed to run `toy.touch`" in texts[0]
    denied = [r for r in bot.services.authz.recent(10) if r.who == "U_CAROL"]
    assert denied and denied[0].decision == "deny" and denied[0].targets == ["t-00", "t-01"]
    click(bot, find_button(answer["blocks"], CONFIRM))  # the refused click did not use the plan up
    wait_for(lambda: ephemeral_texts(bot, "U_ALICE"), 10, message="the confirmation")
    assert "Confirmed by <@U_ALICE>" in ephemeral_texts(bot, "U_ALICE")[0]


def test_a_plan_from_a_schedule_runs_without_buttons_and_is_audited_with_its_origin(bot):
    now = time.time()
    plan = Plan(
        id="sched-0001",
        kind=toy.KIND.name,
        permission="toy.touch",
        origin=Origin(kind="schedule", name="office-hours", channel="C_OPS"),
        summary="touch 2 targets",
        created_at=now,
        expires_at=now + 600,
        targets=(PlanTarget(id="t-00"), PlanTarget(id="t-01")),
    )
    submit(bot.services, plan)
    worker = Worker(bot.services, workers=1)
    worker.start()
    try:
        report = wait_for(lambda: channel_message(bot, "Touched 2 of 2"), 30, message="the report")
    finally:
        worker.stop(timeout=10)
    assert "requested by schedule `office-hours`" in str(report.blocks) and "<@" not in str(report.blocks)
    records = [r for r in bot.services.authz.recent(10) if r.what == "toy.touch"]
    assert {r.origin for r in records} == {"schedule office-hours"} and records[0].result == "ok"
    assert touched(bot, 2) == [1, 1]
