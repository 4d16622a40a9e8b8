"""Power plans: what a confirmed power action will do, decided before anything changes. Pure.

A plan freezes the exact instance list the preview showed: `targets` get the action, `already` are in
(or on their way to) the target state and are only verified, `busy` are in a state the action cannot
leave (e.g. Starting, for a stop) and are left alone, `missing` are ids the selector named that do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot import records
from bot.ecs_model import TARGET_STATUS, InstanceInfo, classify
from bot.errors import Forbidden
from handlers.ecs.selectors import PowerOptions, Selector

VERBS = {
    "start": ("start", "Starting", "started"),
    "stop": ("stop", "Stopping", "stopped"),
    "reboot": ("reboot", "Rebooting", "rebooted"),
}


def sort_instances(instances: list[InstanceInfo]) -> list[InstanceInfo]:
    return sorted(instances, key=lambda i: (i.name.lower(), i.instance_id))


@dataclass(frozen=True)
class PowerPlan:
    plan_id: str
    action: str
    selector: str  # canonical selector text
    region: str
    tags: tuple[tuple[str, str | None], ...]  # the selector's tag filters (scope for waiting)
    options: PowerOptions
    requester: str
    channel: str | None
    created_at: float
    expires_at: float
    targets: tuple[InstanceInfo, ...]
    already: tuple[InstanceInfo, ...] = ()
    busy: tuple[InstanceInfo, ...] = ()
    missing: tuple[str, ...] = ()

    @property
    def target_status(self) -> str:
        return TARGET_STATUS[self.action]

    @property
    def target_ids(self) -> list[str]:
        return [i.instance_id for i in self.targets]

    @property
    def matched(self) -> int:
        return len(self.targets) + len(self.already) + len(self.busy)

    def summary(self) -> str:
        return f"{self.action} {len(self.targets)} instance(s) matching {self.selector} in {self.region}"

    def as_dict(self) -> dict:
        return records.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PowerPlan:
        return records.load(cls, data)


def build_plan(
    action: str,
    selector: Selector,
    options: PowerOptions,
    instances: list[InstanceInfo],
    *,
    plan_id: str,
    region: str,
    requester: str,
    channel: str | None,
    now: float,
    ttl_seconds: float,
) -> PowerPlan:
    groups: dict[str, list[InstanceInfo]] = {"act": [], "already": [], "busy": []}
    for inst in sort_instances(instances):
        groups[classify(action, inst.status)].append(inst)
    found = {i.instance_id for i in instances}
    return PowerPlan(
        plan_id=plan_id,
        action=action,
        selector=selector.text(),
        region=region,
        tags=selector.tags,
        options=options,
        requester=requester,
        channel=channel,
        created_at=now,
        expires_at=now + ttl_seconds,
        targets=tuple(groups["act"]),
        already=tuple(groups["already"]),
        busy=tuple(groups["busy"]),
        missing=tuple(i for i in selector.ids if i not in found),
    )


def check_cap(plan: PowerPlan, caps: dict[str, int]) -> None:
    """Refuse plans that would touch more instances than the policy allows for this action."""
    cap = caps.get(plan.action)
    count = len(plan.targets)
    if cap is not None and count > cap:
        verb = VERBS[plan.action][0]
        raise Forbidden(
            f"Refused: this would {verb} {count} instances, and the policy allows at most {cap} per "
            f"`/ecs {verb}`. Narrow the selector (add `tag:`, `name:` or `status:`) or ask an admin to "
            "raise `ecs.max_instances`."
        )
