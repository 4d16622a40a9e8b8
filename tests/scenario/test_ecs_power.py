"""`/ecs list|status|start|stop|reboot` through the real entry points: signed Slack requests into the
running app, the real ECS SDK against the ECS emulator, a real Redis, the worker running the jobs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.authz import AuditRecord
from bot.intents import intent_for
from bot.pipeline.jobs import JobRecord, load_job, mark_active, resume_stale_jobs, save_job
from bot.pipeline.plans import load_plan
from handlers.ecs.power_job import power_plan
from sandbox import credentials
from tests.support import click, find_button, run_sandbox_script, slash, wait_for

CONFIRM, CANCEL = "plan.confirm", "plan.cancel"
SCRIPT = Path(__file__).resolve().parents[2] / "sandbox" / "data" / "ecs_stop_dev.script"


def write_policy(tmp_path, ecs_caps: str = "", others_may_confirm: bool = False) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(
        "roles:\n  operators:\n    members: [U_BOB]\n    permissions: ['ecs.*']\n"
        f"confirmation:\n  ttl_seconds: 600\n  others_may_confirm: {str(others_may_confirm).lower()}\n"
        + ecs_caps
    )
    return str(path)


@pytest.fixture
def bot(make_bot, redis_url):
    stack = make_bot(redis_url=redis_url, emulators=["slack", "ecs"])
    stack.emulator("ecs").transition_seconds = 0.2
    return stack


def dev_instances(ecs) -> tuple[list[str], list[str]]:
    dev = [
        i
        for i, x in ecs.instances.items()
        if x["Tags"].get("env") == "dev" and x["RegionId"] == credentials.REGION_ID
    ]
    return dev, [i for i in dev if ecs.instances[i]["Status"] == "Running"]


def channel_message(bot, fragment: str, channel: str = "C_OPS"):
    return next((m for m in bot.emulator("slack").channel_messages(channel) if fragment in m.text), None)


def ephemeral_texts(bot, user: str) -> list[str]:
    return [e.text for e in bot.emulator("slack").timeline if e.kind == "ephemeral" and e.user == user]


def preview(bot, text: str, user: str = "U_ALICE") -> dict:
    resp = slash(bot, "/ecs", text, user=user)
    assert resp.status == 200
    return resp.json()


def test_stop_by_tag_previews_then_stops_every_dev_instance_and_reports(bot):
    ecs = bot.emulator("ecs")
    dev, running = dev_instances(ecs)
    answer = preview(bot, "stop tag:env=dev")
    assert f"Stop {len(running)} instances" in str(answer["blocks"])
    assert f"Already Stopped ({len(dev) - len(running)})" in str(answer["blocks"])
    assert not ecs.calls_named("StopInstances")  # nothing changes before Confirm
    click(bot, find_button(answer["blocks"], CONFIRM))
    report = wait_for(
        lambda: channel_message(bot, f"Stopped {len(running)} of {len(running)}"),
        30,
        message="the final report",
    )
    assert set(ecs.statuses(dev).values()) == {"Stopped"}
    listing = str(report.blocks)
    assert all(f"✓ {ecs.instances[i]['InstanceName']}  {i}  Stopped" in listing for i in running)
    assert report.edits >= 2  # progress edits, then the report replaced the same message
    assert all(intent_for(bot.services.store, i).action == "stop" for i in running)
    batch = ecs.calls_named("StopInstances")[0].request.query
    assert batch["BatchOptimization"] == "SuccessFirst" and sorted(
        v for k, v in batch.items() if k.startswith("InstanceId.")
    ) == sorted(running)
    audit = bot.services.authz.recent(10)
    assert any(r.what == "ecs.stop" and r.result == "ok" for r in audit)


def test_confirm_runs_once_even_when_clicked_twice_or_replayed(bot):
    ecs = bot.emulator("ecs")
    _, running = dev_instances(ecs)
    answer = preview(bot, "stop tag:env=dev")
    button = find_button(answer["blocks"], CONFIRM)
    click(bot, button)
    click(bot, button)
    wait_for(lambda: channel_message(bot, "Stopped "), 30, message="the report")
    click(bot, button)  # a replay after the run
    wait_for(lambda: len(ephemeral_texts(bot, "U_ALICE")) >= 3, 10, message="three answers")
    texts = ephemeral_texts(bot, "U_ALICE")
    assert sum("Confirmed by" in t for t in texts) == 1
    assert sum("already" in t or "expired" in t for t in texts) == 2
    assert len(ecs.calls_named("StopInstances")) == 1
    assert len([m for m in bot.emulator("slack").channel_messages("C_OPS") if "Stop" in m.text]) == 1


def test_cancel_changes_nothing_and_the_plan_cannot_be_confirmed_after(bot):
    ecs = bot.emulator("ecs")
    dev, _ = dev_instances(ecs)
    before = ecs.statuses(dev)
    answer = preview(bot, "stop tag:env=dev")
    click(bot, find_button(answer["blocks"], CANCEL))
    click(bot, find_button(answer["blocks"], CONFIRM))
    wait_for(lambda: len(ephemeral_texts(bot, "U_ALICE")) >= 2, 10, message="two answers")
    cancelled, late = ephemeral_texts(bot, "U_ALICE")[:2]
    assert "Cancelled by" in cancelled and "nothing was changed" in cancelled
    assert "expired or was already used" in late
    time.sleep(0.5)
    assert ecs.statuses(dev) == before and not ecs.calls_named("StopInstances")


def test_the_policy_cap_refuses_with_the_count(make_bot, redis_url, tmp_path):
    policy = write_policy(tmp_path, "ecs:\n  max_instances: {stop: 5, start: 500, reboot: 200}\n")
    bot = make_bot(redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": policy})
    _, running = dev_instances(bot.emulator("ecs"))
    answer = preview(bot, "stop tag:env=dev", user="U_BOB")
    assert f"this would stop {len(running)} instances" in answer["text"] and "at most 5" in answer["text"]
    assert "blocks" not in answer or not any(b.get("type") == "actions" for b in answer["blocks"])


def test_someone_else_may_not_confirm_unless_the_policy_says_so(make_bot, redis_url, tmp_path):
    bot = make_bot(
        redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": write_policy(tmp_path)}
    )
    answer = preview(bot, "reboot name:dev-web-01", user="U_BOB")
    click(bot, find_button(answer["blocks"], CONFIRM), user="U_ALICE")
    wait_for(lambda: ephemeral_texts(bot, "U_ALICE"), 10, message="the refusal")
    assert "Only <@U_BOB> can confirm" in ephemeral_texts(bot, "U_ALICE")[0]
    assert not bot.emulator("ecs").calls_named("RebootInstances")
    refused = preview(bot, "stop tag:env=dev", user="U_CAROL")  # read-only: refused before any lookup
    assert "not allowed" in refused["text"]


def test_partial_failures_are_reported_with_the_ecs_code(bot):
    ecs = bot.emulator("ecs")
    ids = [i for i, x in ecs.instances.items() if x["Tags"]["env"] == "staging" and x["Status"] == "Running"][
        :3
    ]
    for iid in ids:
        ecs.set_status(iid, "Stopped")
    ecs.no_stock.add(ids[0])
    answer = preview(bot, f"start {','.join(ids)}")
    click(bot, find_button(answer["blocks"], CONFIRM))
    report = wait_for(lambda: channel_message(bot, "Started 2 of 3"), 30, message="the report")
    assert "1 failed" in report.text and "OperationDenied.NoStock" in str(report.blocks)
    assert ecs.statuses(ids) == {ids[0]: "Stopped", ids[1]: "Running", ids[2]: "Running"}


def test_dry_run_shows_the_plan_and_ecs_verdict_and_changes_nothing(bot):
    ecs = bot.emulator("ecs")
    answer = preview(bot, "stop tag:env=dev --dry-run --stop-mode stop-charging")
    text = str(answer["blocks"])
    assert "Dry run" in text and "DRYRUN.SUCCESS" in text and "StoppedMode: StopCharging" in text
    assert not any(b.get("type") == "actions" for b in answer["blocks"])
    calls = ecs.calls_named("StopInstances")
    assert calls and {c.request.query["DryRun"] for c in calls} == {"True"}
    assert {c.request.query["BatchOptimization"] for c in calls} == {"AllTogether"}
    _, running = dev_instances(ecs)
    assert set(ecs.statuses(running).values()) == {"Running"}


def test_malformed_selectors_answer_with_the_grammar(bot):
    answer = preview(bot, "stop env=dev")
    assert "`env=dev` is not a selector term" in answer["text"] and "tag:KEY=VALUE" in answer["text"]
    assert answer["response_type"] == "ephemeral"


def test_list_shows_the_head_and_attaches_the_full_list(bot):
    ecs = bot.emulator("ecs")
    fleet = sum(1 for x in ecs.instances.values() if x["RegionId"] == credentials.REGION_ID)
    assert fleet > 40
    answer = preview(bot, "list")
    assert f"{fleet} instances" in answer["text"] and f"and {fleet - 20} more" in str(answer["blocks"])
    files = wait_for(lambda: list(bot.emulator("slack").files.values()), 10, message="the upload")
    assert files[0]["content"].decode().count("\n") == fleet + 1  # a header and a row per instance
    status = preview(bot, "status tag:env=prod status:stopped")
    assert "Stopped" in status["text"] and "LAST ACTION" in str(status["blocks"])


def previewed_stop(bot):
    """`/ecs stop tag:env=dev` previewed (not confirmed): the plan id, the saved plan, the power plan."""
    answer = preview(bot, "stop tag:env=dev")
    plan_id = find_button(answer["blocks"], CONFIRM)["value"]
    saved = load_plan(bot.services.store, plan_id, time.time())
    return plan_id, saved, power_plan(saved)


def test_a_job_whose_worker_died_is_resumed_and_reported(bot):
    ecs = bot.emulator("ecs")
    dev, running = dev_instances(ecs)
    plan_id, saved, plan = previewed_stop(bot)
    # The crashed worker had stopped the first half and recorded it, then died without a word.
    adapter = bot.services.adapter("ecs")
    done_before = adapter.power("stop", plan.target_ids[:5], region=plan.region)
    record = AuditRecord(
        who="U_ALICE", channel="C_OPS", what="ecs.stop", targets=plan.target_ids, decision="allow"
    )
    state = JobRecord(
        plan=saved,
        status="running",
        phase="sending",
        acting=True,
        state={"results": {r.instance_id: r.as_dict() for r in done_before}},
        audit=record.__dict__,
        confirmed_by="U_ALICE",
        attempts=1,
    )
    save_job(bot.services.store, state)
    mark_active(bot.services.store, plan_id, time.time() - 600)
    resume_stale_jobs(bot.services)
    report = wait_for(
        lambda: channel_message(bot, f"Stopped {len(running)} of {len(running)}"), 30, message="the report"
    )
    assert set(ecs.statuses(dev).values()) == {"Stopped"}
    assert load_job(bot.services.store, plan_id).status == "done"
    assert "0 failed" in report.text
    sent = [
        v
        for c in ecs.calls_named("StopInstances")
        for k, v in c.request.query.items()
        if k.startswith("InstanceId.")
    ]
    assert sorted(sent) == sorted(plan.target_ids)  # nobody was stopped twice


def test_the_sandbox_script_stops_every_dev_instance(tmp_path):
    proc = run_sandbox_script(tmp_path, SCRIPT, timeout=120, keep_redis=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Stopped 12 of 12" in proc.stdout and "0 failed step(s)" in proc.stdout


def test_a_lookup_too_slow_for_slacks_three_seconds_is_answered_later(bot):
    bot.emulator("ecs").latency = 2.5  # one page takes longer than the inline budget
    answer = preview(bot, "list tag:env=dev")
    assert "still looking it up" in answer["text"]
    later = wait_for(
        lambda: [t for t in ephemeral_texts(bot, "U_ALICE") if "14 instances" in t], 20, message="the answer"
    )
    assert "tag:env=dev" in later[0]


def test_a_power_job_accepted_by_an_earlier_version_is_taken_over_and_reported(bot):
    from handlers.ecs.power_legacy import adopt_legacy_power_jobs

    ecs = bot.emulator("ecs")
    dev, running = dev_instances(ecs)
    answer = preview(bot, "stop tag:env=dev")
    plan_id = find_button(answer["blocks"], CONFIRM)["value"]
    power = power_plan(load_plan(bot.services.store, plan_id, time.time()))
    record = AuditRecord(
        who="U_ALICE", channel="C_OPS", what="ecs.stop", targets=power.target_ids, decision="allow"
    )
    legacy = {  # what an earlier version saved when Confirm was pressed, before its worker went away
        "plan": power.as_dict(),
        "status": "queued",
        "results": {},
        "progress_channel": None,
        "progress_ts": None,
        "audit": record.__dict__,
        "confirmed_by": "U_ALICE",
        "attempts": 0,
        "error": None,
        "created_at": time.time() - 600,
        "finished_at": None,
    }
    bot.services.store.set_json(f"ecs:job:{plan_id}", legacy)
    bot.services.store.zadd("ecs:jobs:active", plan_id, time.time() - 600)
    adopt_legacy_power_jobs(bot.services)
    report = wait_for(
        lambda: channel_message(bot, f"Stopped {len(running)} of {len(running)}"), 30, message="the report"
    )
    assert "requested by <@U_ALICE>, confirmed by <@U_ALICE>" in str(report.blocks)
    assert set(ecs.statuses(dev).values()) == {"Stopped"}
    assert bot.services.store.get(f"ecs:job:{plan_id}") is None
    assert bot.services.store.zrange_by_score("ecs:jobs:active", 0, time.time()) == []
    assert any(r.id == record.id and r.result == "ok" for r in bot.services.authz.recent(10))


def test_a_long_preview_counts_targets_per_env_and_attaches_every_target(bot):
    ecs = bot.emulator("ecs")
    running = [
        i
        for i, x in ecs.instances.items()
        if x["Status"] == "Running" and x["RegionId"] == credentials.REGION_ID
    ]
    assert len(running) > 15  # more than the preview's table shows
    answer = preview(bot, "stop status:running")
    text = str(answer["blocks"])
    envs = {}
    for i in running:
        env = ecs.instances[i]["Tags"].get("env")
        envs[env] = envs.get(env, 0) + 1
    assert all(f"{n} {env}" in text for env, n in envs.items()) and "env: " in text
    assert "The full list is attached to this channel." in text
    files = wait_for(lambda: list(bot.emulator("slack").files.values()), 10, message="the upload")
    listed = files[0]["content"].decode().splitlines()[1:]
    assert sorted(line.split("\t")[0] for line in listed) == sorted(running)
    assert not ecs.calls_named("StopInstances")


def test_a_resumed_stop_counts_what_its_first_attempt_stopped_as_its_own(bot):
    ecs = bot.emulator("ecs")
    dev, running = dev_instances(ecs)
    plan_id, saved, plan = previewed_stop(bot)
    # The first attempt stopped five and died before it recorded anything.
    bot.services.adapter("ecs").power("stop", plan.target_ids[:5], region=plan.region)
    wait_for(lambda: set(ecs.statuses(plan.target_ids[:5]).values()) == {"Stopped"}, 20)
    state = JobRecord(
        plan=saved, status="running", phase="sending", acting=True, confirmed_by="U_ALICE", attempts=1
    )
    save_job(bot.services.store, state)
    mark_active(bot.services.store, plan_id, time.time() - 600)
    resume_stale_jobs(bot.services)
    already = len(dev) - len(running)
    head = (
        f"Stopped {len(running)} of {len(running)} — {len(running)} done, {already} already Stopped, 0 failed"
    )
    wait_for(lambda: channel_message(bot, head), 30, message="the report")
    assert set(ecs.statuses(dev).values()) == {"Stopped"}
