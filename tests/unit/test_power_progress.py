"""The progress line of a power job while it waits for the target state."""

from bot.ecs_model import ACCEPTED, InstanceInfo, InstanceResult
from handlers.ecs.plan import build_plan
from handlers.ecs.power_render import progress
from handlers.ecs.selectors import PowerOptions, parse_selector


def _plan(statuses: list[str]):
    instances = [InstanceInfo(f"i-{n}", f"web-{n}", status) for n, status in enumerate(statuses)]
    return build_plan(
        "stop",
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


def test_waiting_line_says_how_many_were_there_before_the_run():
    plan = _plan(["Running", "Running", "Running", "Stopped"])
    results = [InstanceResult(i, ACCEPTED, "", "", "Running", "Stopping") for i in plan.target_ids]
    line, _ = progress(plan, results, "waiting", reached=2, waiting=4)
    assert line == "Stopping 3 — 3 sent, 0 failed · waiting for Stopped (2/4 there, 1 already was)"


def test_waiting_line_without_instances_already_there():
    plan = _plan(["Running", "Running"])
    results = [InstanceResult(i, ACCEPTED, "", "", "Running", "Stopping") for i in plan.target_ids]
    line, _ = progress(plan, results, "waiting", reached=0, waiting=2)
    assert "already" not in line
    assert line.endswith("waiting for Stopped (0/2 there)")
    line, _ = progress(plan, results, "waiting", reached=None, waiting=2)
    assert line.endswith("waiting for Stopped")


def test_waiting_line_counts_several_already_there():
    plan = _plan(["Running", "Stopped", "Stopped"])
    results = [InstanceResult(i, ACCEPTED, "", "", "Running", "Stopping") for i in plan.target_ids]
    line, _ = progress(plan, results, "waiting", reached=3, waiting=3)
    assert line.endswith("(3/3 there, 2 already were)")
