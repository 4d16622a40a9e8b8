"""The progress line of a power job and its report's head: words that match the phase, counts out of the
plan's targets that never jump."""

from hypothesis import given
from hypothesis import strategies as st

from bot.ecs_model import ACCEPTED, ALREADY_THERE, DONE, InstanceInfo, InstanceResult
from handlers.ecs.plan import build_plan
from handlers.ecs.power_render import progress, report
from handlers.ecs.selectors import PowerOptions, parse_selector


def _plan(statuses: list[str], action: str = "stop"):
    instances = [InstanceInfo(f"i-{n}", f"web-{n}", status) for n, status in enumerate(statuses)]
    return build_plan(
        action,
        parse_selector("tag:env=dev"),
        PowerOptions(),
        instances,
        plan_id="p1",
        region="cn-hangzhou",
        requester="U1",
        channel="C1",
        now=0.0,
        ttl_seconds=600,
    )


def test_sending_line_says_sent_not_done():
    plan = _plan(["Running"] * 12)
    sent = [InstanceResult(i, ACCEPTED, "", "", "Running", "Stopping") for i in plan.target_ids[:5]]
    line, _ = progress(plan, sent, "sending")
    assert line == "Stopping 12 — 5 sent, 0 failed, 7 to send"
    line, _ = progress(plan, sent + [InstanceResult(i, ACCEPTED) for i in plan.target_ids[5:]], "sending")
    assert line == "Stopping 12 — 12 sent, 0 failed" and "done" not in line


def test_waiting_line_counts_only_the_targets():
    plan = _plan(["Running", "Running", "Running", "Stopped"])
    results = [InstanceResult(i, ACCEPTED, "", "", "Running", "Stopping") for i in plan.target_ids]
    line, _ = progress(plan, results, "waiting", reached=2, waiting=4)  # the wait watches 3 + 1 already
    assert line == "Stopping 3 — 3 sent, 0 failed · 1 of 3 Stopped"
    line, _ = progress(plan, results, "waiting", reached=4, waiting=4)
    assert line.endswith("· 3 of 3 Stopped")


def test_waiting_line_without_instances_already_there():
    plan = _plan(["Running", "Running"])
    results = [InstanceResult(i, ACCEPTED, "", "", "Running", "Stopping") for i in plan.target_ids]
    line, _ = progress(plan, results, "waiting", reached=0, waiting=2)
    assert "already" not in line
    assert line.endswith("· 0 of 2 Stopped")
    line, _ = progress(plan, results, "waiting", reached=None, waiting=2)
    assert line.endswith("waiting for Stopped")


@given(st.integers(1, 12), st.integers(0, 5), st.integers(0, 40))
def test_counts_never_exceed_the_targets(targets, already, reached):
    plan = _plan(["Running"] * targets + ["Stopped"] * already)
    results = [InstanceResult(i, ACCEPTED) for i in plan.target_ids]
    line, _ = progress(
        plan, results, "waiting", reached=min(reached, targets + already), waiting=targets + already
    )
    there = int(line.rsplit("· ", 1)[1].split(" of ")[0])
    assert 0 <= there <= targets and f"of {targets} Stopped" in line


def test_a_reboot_report_never_says_already_running():
    plan = _plan(["Running", "Running"], action="reboot")
    results = [InstanceResult(i, DONE, "", "", "Running", "Running") for i in plan.target_ids]
    head, _, _ = report(plan, results, 3.0)
    assert head == "Rebooted 2 of 2 — 2 done, 0 failed (3 s)"
    stop = _plan(["Running", "Stopped"])
    results = [
        InstanceResult(stop.target_ids[0], DONE),
        InstanceResult(stop.already[0].instance_id, ALREADY_THERE),
    ]
    assert report(stop, results, 1.0)[0] == "Stopped 1 of 1 — 1 done, 1 already Stopped, 0 failed (1 s)"
