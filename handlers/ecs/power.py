"""`/ecs start|stop|reboot SELECTOR [--force] [--stop-mode …] [--dry-run]`: build the power plan.

The command resolves the selector to an exact instance list, authorizes with those instances, and
answers with the pipeline's preview; nothing changes before Confirm (bot.pipeline.gates). The work is
the `ecs.power` plan kind (handlers.ecs.power_job).
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from bot.authz import Actor
from bot.commands import CommandRequest, Reply
from bot.ecs_model import ACTIONS
from bot.errors import Forbidden
from bot.pipeline.gates import propose
from bot.pipeline.plans import Origin, Plan, targets_of
from bot.registry import Capability
from handlers.ecs.lookup import answer, default_region, resolve
from handlers.ecs.plan import PowerPlan, build_plan, check_cap
from handlers.ecs.power_job import KIND
from handlers.ecs.power_render import dry_run, nothing_to_do
from handlers.ecs.selectors import POWER_OPTIONS, PowerOptions, Selector, parse_power_args

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.ecs.power")

SUMMARIES = {
    "start": "Start instances: preview, then Confirm. Instances already running are skipped.",
    "stop": "Stop instances: preview, then Confirm. Instances already stopped are skipped.",
    "reboot": "Reboot running instances: preview, then Confirm.",
}


def _register(act: str) -> None:
    @capability.subcommand(
        "/ecs",
        act,
        permission=f"ecs.{act}",
        usage=f"/ecs {act} SELECTOR {POWER_OPTIONS[act]}",
        summary=SUMMARIES[act],
        authorizes_targets=True,
    )
    def command(req: CommandRequest) -> Reply:
        return answer(req, f"power:{act}")

    @capability.builder(f"power:{act}")
    def build(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
        return build_preview(services, actor, act, args, deadline)


for _act in ACTIONS:
    _register(_act)


def as_plan(power: PowerPlan, origin: Origin) -> Plan:
    """The pipeline's plan for a power plan: its targets are what authorization sees."""
    return Plan(
        id=power.plan_id,
        kind=KIND.name,
        permission=f"ecs.{power.action}",
        origin=origin,
        summary=power.summary(),
        created_at=power.created_at,
        expires_at=power.expires_at,
        targets=targets_of(power.targets),
        body=power.as_dict(),
    )


def plan_power(
    services: Services,
    act: str,
    selector: Selector,
    options: PowerOptions,
    origin: Origin,
    deadline: float | None = None,
) -> tuple[PowerPlan, Plan]:
    """Resolve the selector and freeze what the action would do, for any origin (a person's command,
    a schedule's transition, a runbook step): the power plan and the pipeline's plan around it."""
    instances = resolve(services, selector, deadline)
    return plan_power_on(services, act, selector, options, origin, instances)


def plan_power_on(
    services: Services,
    act: str,
    selector: Selector,
    options: PowerOptions,
    origin: Origin,
    instances: list,
    plan_id: str | None = None,
) -> tuple[PowerPlan, Plan]:
    """The same for instances already resolved (`selector` names them in the plan's summary); a
    `plan_id` derived from what asked makes a repeated request the same plan."""
    power = build_plan(
        act,
        selector,
        options,
        instances,
        plan_id=plan_id or uuid.uuid4().hex[:16],
        region=default_region(services, selector),
        requester=origin.name,
        channel=origin.channel,
        now=services.clock.time(),
        ttl_seconds=services.policy.confirmation.ttl_seconds,
    )
    return power, as_plan(power, origin)


def build_preview(services: Services, actor: Actor, act: str, args: str, deadline: float | None) -> Reply:
    selector, options = parse_power_args(act, args)
    origin = Origin(kind="user", name=actor.user_id, channel=actor.channel_id)
    power, plan = plan_power(services, act, selector, options, origin, deadline)
    if power.matched == 0:
        missing = f" Not found: {', '.join(power.missing)}." if power.missing else ""
        return Reply(f"No instances match `{power.selector}` in {power.region}; nothing to {act}.{missing}")
    record = services.authz.authorize(
        actor, plan.permission, plan.authz_targets(), detail=f"/ecs {act} {args}".strip()
    )
    try:
        check_cap(power, services.policy.ecs.max_instances)
    except Forbidden as exc:
        services.authz.record_result(record, "refused", exc.message[:300])
        raise
    if not power.targets:
        return Reply(*nothing_to_do(power))
    if options.dry_run:
        results = services.adapter("ecs").power(
            act,
            power.target_ids,
            region=power.region,
            force=options.force,
            stopped_mode=options.stopped_mode,
            dry_run=True,
            skip_in_target=False,
        )
        return Reply(*dry_run(power, results))
    return propose(services, plan)
