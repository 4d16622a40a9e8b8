"""A plan read moments ago is sent as read; an older one, or a resumed job, re-reads each batch first
(handlers.ecs.power_job.execute_plan over a recording adapter)."""

from __future__ import annotations

import pytest

from bot.ecs_model import ACCEPTED, InstanceInfo, InstanceResult
from handlers.ecs.plan import build_plan
from handlers.ecs.power_job import execute_plan
from handlers.ecs.selectors import PowerOptions, parse_selector


class RecordingAdapter:
    def __init__(self):
        self.sent: list[dict] = []

    def power(self, action, ids, **kw):
        self.sent.append({"action": action, "ids": list(ids), **kw})
        results = [InstanceResult(i, ACCEPTED, "200", "") for i in ids]
        kw["on_progress"](results)
        return results

    def wait_for_state(self, ids, target, **kw):
        return dict.fromkeys(ids, target)


def _plan():
    instances = [InstanceInfo(f"i-{n}", f"web-{n}", "Running") for n in range(3)]
    return build_plan(
        "stop",
        parse_selector("tag:env=dev"),
        PowerOptions(),
        instances,
        plan_id="p1",
        region="cn-hangzhou",
        requester="U1",
        channel="C1",
        now=1000.0,
        ttl_seconds=300,
    )


@pytest.mark.parametrize(
    ("fresh", "resume", "refreshed"), [(True, False, False), (False, False, True), (True, True, True)]
)
def test_which_plans_are_read_again_before_sending(fresh, resume, refreshed):
    adapter = RecordingAdapter()
    final = execute_plan(adapter, _plan(), resume=resume, fresh=fresh)
    assert [s["skip_in_target"] for s in adapter.sent] == [refreshed]
    assert {r.instance_id for r in final} == {"i-0", "i-1", "i-2"}
