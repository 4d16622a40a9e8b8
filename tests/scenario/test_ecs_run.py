"""`/ecs run` through the running bot: signed slash commands and clicks, the real ECS SDK against the
emulator's Cloud Assistant, the worker running the job — live progress, the report and its file,
partial failures, truncation, templates, `status` / `stop`, refusals that write nothing, and a worker
killed with SIGKILL mid-poll that is replaced without running the command twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.pipeline.jobs import load_job
from bot.worker import Worker
from tests.support import click, find_button, kill_worker_when, resume_as_stale, slash, wait_for

ROOT = Path(__file__).resolve().parents[2]
CONFIRM = "plan.confirm"
WRITES = ("RunCommand", "StopInvocation")
POLICY = (
    """
roles:
  operators:
    members: [U_DAVE]
    permissions: [ecs.run.template.disk-usage]
run:
  max_command_bytes: 24576
  templates:
    disk-usage:
      type: shell
      command: "df -h {{ path }}"
      params: {path: {type: str, default: "/", pattern: "^/[A-Za-z0-9_./-]*$"}}
      timeout_seconds: 30
"""
    # a command typed in Slack is at most 4,096 characters: only a template reaches the size limits
    + f"""    over-base64:
      command: "echo {"x" * 19000}"
    over-policy:
      command: "echo {"x" * 25000}"
"""
)


@pytest.fixture
def bot(make_bot, redis_url, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    return make_bot(redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": str(policy)})


def linux_dev(ecs, count: int = 6, prefix: str = "run") -> list[str]:
    return [ecs.add_instance(f"{prefix}-{n:02d}", tags={"env": "runs", "app": prefix}) for n in range(count)]


def channel_message(bot, fragment: str):
    return next((m for m in bot.emulator("slack").channel_messages("C_OPS") if fragment in m.text), None)


def confirm(bot, text: str, user: str = "U_ALICE") -> tuple[dict, str]:
    answer = slash(bot, "/ecs", text, user=user).json()
    button = find_button(answer["blocks"], CONFIRM)
    click(bot, button, user=user)
    return answer, button["value"]


def uploaded(bot) -> str:
    """The content of the last file uploaded, once its upload is complete."""
    files = bot.emulator("slack").files
    done = wait_for(
        lambda: [f for f in list(files.values()) if f.get("content") is not None], 10, message="the file"
    )
    return done[-1]["content"].decode()


def writes(ecs) -> list:
    return [c for c in ecs.calls if c.name in WRITES]


def test_a_run_reports_each_instance_groups_identical_output_and_attaches_every_output(bot):
    ecs = bot.emulator("ecs")
    ids = linux_dev(ecs, 6)
    ecs.set_status(ids[5], "Stopped")
    ecs.agents[ids[4]] = "stopped"
    ecs.command_behaviour = lambda inst, text, kind: (
        (0.5, 3, "disk full\nsecond line") if inst["InstanceName"] == "run-03" else (0.5, 0, "up 3 days\n")
    )
    answer, plan_id = confirm(bot, "run tag:env=runs -- uptime")
    shown = str(answer["blocks"])
    assert "Run a shell script on 4 instances" in shown and "(4 Linux)" in shown and "uptime" in shown
    assert "Cannot run it (2)" in shown and "agent is not running" in shown and "not running" in shown
    report = wait_for(lambda: channel_message(bot, "Ran on 4"), 60, message="the report")
    assert "1 Failed, 3 Success" in report.text
    body = str(report.blocks)
    assert "run-03" in body and "exit 3" in body and "disk full" in body
    assert "3 instances* printed the same 1 line" in body and "up 3 days" in body
    assert report.edits >= 1  # the progress message, edited in place, then replaced by the report
    runs = [c for c in ecs.calls_named("RunCommand")]
    assert len(runs) == 1
    query = runs[0].request.query
    assert query["ContentEncoding"] == "Base64" and query["ClientToken"].startswith("chatops-")
    assert sorted(v for k, v in query.items() if k.startswith("InstanceId.")) == sorted(ids[:4])
    content = uploaded(bot)
    assert content.count("=== ") == 6 and "disk full\nsecond line" in content and "not run —" in content

    def audited() -> list:
        return [r for r in bot.services.authz.recent(20) if r.what == "ecs.run"]

    # the report shows first, then its result is written to the audit trail
    wait_for(lambda: any(r.result for r in audited()), 10, message="the audited result")
    audit = audited()
    assert any("-- uptime" in (r.detail or "") for r in audit)  # the full command text is audited
    assert [r.result for r in audit if r.result] == ["1 failed"]
    assert load_job(bot.services.store, plan_id).status == "done"


def test_truncated_output_says_so_and_a_timeout_is_a_plain_word(bot):
    ecs = bot.emulator("ecs")
    ids = linux_dev(ecs, 2, prefix="big")
    ecs.command_behaviour = lambda inst, text, kind: (
        (0.3, 0, "x" * 30000) if inst["InstanceId"] == ids[0] else (5.0, 0, "late")
    )
    confirm(bot, "run tag:app=big --timeout 1 -- produce")
    report = wait_for(lambda: channel_message(bot, "Ran on 2"), 60, message="the report")
    assert "1 Timeout, 1 Success" in report.text and "ran past its timeout" in str(report.blocks)
    assert "Output cut" in str(report.blocks) and "5,424 bytes" in str(report.blocks)
    content = uploaded(bot)
    assert "5,424 bytes were dropped" in content


def test_templates_are_validated_and_need_their_own_permission(bot):
    ecs = bot.emulator("ecs")
    linux_dev(ecs, 2, prefix="tpl")
    before = len(writes(ecs))
    bad = slash(bot, "/ecs", "run tag:app=tpl template disk-usage path=/etc;reboot", user="U_DAVE").json()
    assert "does not match" in bad["text"]
    unknown = slash(bot, "/ecs", "run tag:app=tpl template disk-usag", user="U_DAVE").json()
    assert "Did you mean `disk-usage`" in unknown["text"]
    free = slash(bot, "/ecs", "run tag:app=tpl -- reboot", user="U_DAVE").json()
    assert "not allowed" in free["text"]
    _, plan_id = confirm(bot, "run tag:app=tpl template disk-usage path=/var", user="U_DAVE")
    wait_for(lambda: channel_message(bot, "Ran on 2"), 60, message="the report")
    sent = ecs.calls_named("RunCommand")[-1].request.query["CommandContent"]
    import base64

    assert base64.b64decode(sent).decode() == "df -h /var"
    assert len(writes(ecs)) == before + 1
    assert load_job(bot.services.store, plan_id).plan.permission == "ecs.run.template.disk-usage"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("run tag:env=runs --   ", "is empty"),
        ("run tag:env=runs --type powershell -- Get-Date", "can run this powershell command"),
        ("run tag:env=nothing-here -- uptime", "No instances match"),
        ("run tag:env=runs template nope", "There is no template"),
        ("run status t-doesnotexist", "No run `t-doesnotexist`"),
        ("run tag:env=runs template disk-usage colour=red", "has no parameter `colour`"),
        ("run tag:env=runs template disk-usage path=/etc;reboot", "does not match"),
        ("run tag:env=runs -- " + "x" * 5000, "a command takes at most 4,096"),
        ("run tag:env=runs template over-base64", "once Base64-encoded"),
        ("run tag:env=runs template over-policy", "the policy allows 24,576"),
    ],
)
def test_bad_input_gets_a_clear_answer_and_writes_nothing(bot, text, says):
    ecs = bot.emulator("ecs")
    linux_dev(ecs, 2)
    answer = slash(bot, "/ecs", text).json()
    assert says in answer["text"], answer
    assert answer["response_type"] == "ephemeral"
    assert writes(ecs) == []


def test_slacks_escaping_is_undone_in_what_runs_and_in_the_audit_record(bot):
    import base64

    ecs = bot.emulator("ecs")
    linux_dev(ecs, 1, prefix="esc")
    confirm(bot, "run tag:app=esc -- echo a &amp;&amp; curl -s <http://x.test/h|x.test/h> &gt; /tmp/o")
    wait_for(lambda: channel_message(bot, "Ran on 1"), 60, message="the report")
    sent = ecs.calls_named("RunCommand")[-1].request.query["CommandContent"]
    assert base64.b64decode(sent).decode() == "echo a && curl -s x.test/h > /tmp/o"
    audit = [r for r in bot.services.authz.recent(20) if r.what == "ecs.run" and r.decision == "allow"]
    assert any("echo a && curl -s x.test/h > /tmp/o" in (r.detail or "") for r in audit), audit


def test_a_mixed_selection_without_a_type_is_refused_with_the_counts(bot):
    ecs = bot.emulator("ecs")
    linux_dev(ecs, 2, prefix="mix")
    ecs.add_instance("mix-win", tags={"env": "runs", "app": "mix"}, os_type="windows")
    answer = slash(bot, "/ecs", "run tag:app=mix -- hostname").json()
    assert "2 Linux and 1 Windows" in answer["text"]
    assert writes(ecs) == []


def test_status_and_stop_while_it_runs(bot):
    ecs = bot.emulator("ecs")
    linux_dev(ecs, 3, prefix="slow")
    ecs.command_behaviour = lambda inst, text, kind: (30.0, 0, "done")
    _, plan_id = confirm(bot, "run tag:app=slow -- sleep 30")
    record = wait_for(
        lambda: (r := load_job(bot.services.store, plan_id)) and r.phase == "running" and r,
        30,
        message="polling",
    )
    invoke_id = record.state["batches"][0]["invoke_id"]
    status = slash(bot, "/ecs", f"run status {invoke_id}").json()
    assert "(running) on 3" in status["text"]
    stop = slash(bot, "/ecs", f"run stop {invoke_id}").json()
    assert "Stop run" in str(stop["blocks"])
    click(bot, find_button(stop["blocks"], CONFIRM))
    report = wait_for(lambda: channel_message(bot, "Ran on 3"), 60, message="the run's report")
    assert "3 Terminated" in report.text
    assert len(ecs.calls_named("StopInvocation")) == 1
    finished = slash(bot, "/ecs", f"run stop {invoke_id}").json()
    assert "finished already" in finished["text"]


def test_a_worker_killed_mid_poll_is_replaced_without_running_the_command_twice(
    make_bot, redis_url, tmp_path
):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    bot = make_bot(
        redis_url=redis_url, emulators=["slack", "ecs"], env={"CHATOPS_CONFIG": str(policy)}, worker=False
    )
    ecs = bot.emulator("ecs")
    ids = linux_dev(ecs, 120, prefix="kill")  # two batches
    ecs.command_behaviour = lambda inst, text, kind: (6.0, 0, f"hello from {inst['InstanceName']}")
    _, plan_id = confirm(bot, "run tag:app=kill -- echo hello")
    kill_worker_when(
        bot,
        tmp_path / "worker1.log",
        lambda: (r := load_job(bot.services.store, plan_id)) and r.phase == "running",
        "polling",
        timeout=60,
    )
    assert len(ecs.calls_named("RunCommand")) == 2
    resume_as_stale(bot, plan_id)
    second = Worker(bot.services, workers=1)
    second.start()
    try:
        report = wait_for(lambda: channel_message(bot, "Ran on 120"), 90, message="the report")
    finally:
        second.stop(timeout=10)
    assert "120 Success" in report.text
    assert len(ecs.calls_named("RunCommand")) == 2  # the command ran once on each instance
    assert len(ecs.invocations) == 2 and sum(len(v["instances"]) for v in ecs.invocations.values()) == len(
        ids
    )
    reports = [m for m in bot.emulator("slack").channel_messages("C_OPS") if "Ran on 120" in m.text]
    assert len(reports) == 1
    assert load_job(bot.services.store, plan_id).attempts == 2
