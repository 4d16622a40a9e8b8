"""`/ecs start|stop|reboot SELECTOR [--force] [--stop-mode …] [--dry-run]` and its Confirm / Cancel buttons.

The command resolves the selector to an exact instance list and answers with a preview; nothing changes
before Confirm. Confirm re-checks authorization (the policy decides whether someone other than the
requester may confirm), works once (a double click or a replayed payload finds the plan used) and expires
with the policy's confirmation TTL. The work itself runs in the `ecs.power` job.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import TYPE_CHECKING

from bot.authz import Actor, AuditRecord
from bot.commands import ActionRequest, CommandRequest, Reply, action, subcommand
from bot.ecs_model import ACTIONS
from bot.errors import Forbidden
from handlers.ecs.lookup import answer, builder, default_region, resolve
from handlers.ecs.plan import VERBS, PowerPlan, build_plan, check_cap
from handlers.ecs.plan_store import (
    JobState,
    claim_plan,
    discard_plan,
    heartbeat,
    load_plan,
    save_job,
    save_plan,
)
from handlers.ecs.power_render import CANCEL_ACTION, CONFIRM_ACTION, dry_run, nothing_to_do, preview
from handlers.ecs.selectors import POWER_OPTIONS, parse_power_args

if TYPE_CHECKING:
    from bot.services import Services

SUMMARIES = {
    "start": "Start instances: preview, then Confirm. Instances already running are skipped.",
    "stop": "Stop instances: preview, then Confirm. Instances already stopped are skipped.",
    "reboot": "Reboot running instances: preview, then Confirm.",
}


def _register(act: str) -> None:
    @subcommand(
        "/ecs",
        act,
        permission=f"ecs.{act}",
        usage=f"/ecs {act} SELECTOR {POWER_OPTIONS[act]}",
        summary=SUMMARIES[act],
    )
    def command(req: CommandRequest) -> Reply:
        return answer(req, f"power:{act}")

    @builder(f"power:{act}")
    def build(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
        return build_preview(services, actor, act, args, deadline)


for _act in ACTIONS:
    _register(_act)


def build_preview(services: Services, actor: Actor, act: str, args: str, deadline: float | None) -> Reply:
    selector, options = parse_power_args(act, args)
    region = default_region(services, selector)
    instances = resolve(services, selector, deadline)
    policy = services.policy
    plan = build_plan(
        act,
        selector,
        options,
        instances,
        plan_id=uuid.uuid4().hex[:16],
        region=region,
        requester=actor.user_id,
        channel=actor.channel_id,
        now=time.time(),
        ttl_seconds=policy.confirmation.ttl_seconds,
    )
    if plan.matched == 0:
        missing = f" Not found: {', '.join(plan.missing)}." if plan.missing else ""
        return Reply(f"No instances match `{plan.selector}` in {region}; nothing to {act}.{missing}")
    check_cap(plan, policy.ecs.max_instances)
    if not plan.targets:
        return Reply(*nothing_to_do(plan))
    if options.dry_run:
        results = services.adapter("ecs").power(
            act,
            plan.target_ids,
            region=region,
            force=options.force,
            stopped_mode=options.stopped_mode,
            dry_run=True,
            skip_in_target=False,
        )
        return Reply(*dry_run(plan, results))
    save_plan(services.store, plan)
    return Reply(*preview(plan, policy.confirmation.others_may_confirm))


def _audit(
    req: ActionRequest, plan: PowerPlan, decision: str, detail: str, result: str | None = None
) -> None:
    req.services.authz.append(
        AuditRecord(
            who=req.actor.user_id,
            channel=req.actor.channel_id,
            what=f"ecs.{plan.action}",
            targets=plan.target_ids[:200],
            decision=decision,
            result=result,
            detail=f"{detail}: {plan.summary()}",
        )
    )


def _may_decide(req: ActionRequest, plan: PowerPlan, verb: str) -> None:
    if req.actor.user_id != plan.requester and not req.services.policy.confirmation.others_may_confirm:
        _audit(req, plan, "deny", f"{verb} <@{plan.requester}>'s preview")
        raise Forbidden(
            f"Only <@{plan.requester}> can {verb} this preview (the policy's `confirmation.others_may_confirm` is off)."
        )


_EXPIRED = ":hourglass: This preview has expired or was already used; nothing was changed. Run the command again for a fresh preview."


@action(CONFIRM_ACTION)
def confirm(req: ActionRequest) -> Reply:
    services = req.services
    plan = load_plan(services.store, req.value)
    if plan is None:
        return Reply(_EXPIRED, replace_original=True)
    _may_decide(req, plan, "confirm")
    record = req.authorize(f"ecs.{plan.action}", plan.target_ids, detail=f"confirm: {plan.summary()}")
    earlier = claim_plan(services.store, plan, f"confirmed by <@{req.actor.user_id}>")
    if earlier is not None:
        return Reply(f":information_source: This preview was already {earlier}; it runs once.")
    save_job(services.store, JobState(plan=plan, audit=asdict(record), confirmed_by=req.actor.user_id))
    heartbeat(services.store, plan.plan_id)
    discard_plan(services.store, plan.plan_id)
    services.queue.enqueue("ecs.power", plan_id=plan.plan_id)
    gerund = VERBS[plan.action][1].lower()
    return Reply(
        f":white_check_mark: Confirmed by <@{req.actor.user_id}>: {gerund} {len(plan.targets)} instance(s) "
        f"matching `{plan.selector}`. Progress is posted in this channel.",
        replace_original=True,
    )


@action(CANCEL_ACTION)
def cancel(req: ActionRequest) -> Reply:
    services = req.services
    plan = load_plan(services.store, req.value)
    if plan is None:
        return Reply(_EXPIRED, replace_original=True)
    _may_decide(req, plan, "cancel")
    earlier = claim_plan(services.store, plan, f"cancelled by <@{req.actor.user_id}>")
    if earlier is not None:
        return Reply(f":information_source: Too late to cancel: this preview was already {earlier}.")
    discard_plan(services.store, plan.plan_id)
    _audit(req, plan, "allow", "cancel", result="cancelled")
    return Reply(
        f":no_entry_sign: Cancelled by <@{req.actor.user_id}>: nothing was changed.", replace_original=True
    )
