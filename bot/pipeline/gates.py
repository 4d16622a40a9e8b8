"""The gates a plan passes before its job runs: one pair of buttons for every plan kind.

    propose()   save the plan and answer with its preview, Confirm and Cancel (nothing changes before)
    submit()    a plan from a schedule, a runbook or an event, where no person is asked: audited with
                its origin, then the job
    Confirm     re-authorizes with the plan's permission and targets, works once, expires with the
                policy's confirmation TTL; then the approval gate (bot.pipeline.approvals: where a
                rule applies, a second person must approve), then the durable job
    Cancel      authorized like Confirm; works once

Both are refused to anyone but the requester unless the policy's `confirmation.others_may_confirm` is
on. Every decision, refused or not, leaves an audit record.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot import blocks
from bot.authz import AuditRecord
from bot.commands import ActionRequest, Reply
from bot.errors import ChatOpsError, Forbidden
from bot.pipeline.approvals import request_approval
from bot.pipeline.jobs import start_job
from bot.pipeline.kinds import Attachment
from bot.pipeline.plans import Plan, claim_plan, discard_plan, load_plan, save_plan, used_key
from bot.registry import PLAN_PERMISSION, Capability

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("bot.pipeline.gates")
log = logging.getLogger(__name__)

CONFIRM_ACTION = "plan.confirm"
CANCEL_ACTION = "plan.cancel"
# The ids power previews carried before every plan kind shared one pair of buttons.
LEGACY_ACTIONS = {"ecs.power.confirm": CONFIRM_ACTION, "ecs.power.cancel": CANCEL_ACTION}

EXPIRED = (
    ":hourglass: This preview has expired or was already used; nothing was changed. "
    "Run the command again for a fresh preview."
)


def propose(services: Services, plan: Plan) -> Reply:
    """Save the plan and answer with its preview and the gate buttons."""
    kind = services.registry.plan_kind(plan.kind)
    shown = kind.preview(plan, services.policy)
    save_plan(services.store, plan, services.clock.time())
    attached = _attach(services, plan, shown.attachment)
    minutes = max(1, round((plan.expires_at - plan.created_at) / 60))
    others = services.policy.confirmation.others_may_confirm
    who = "anyone allowed to" if others or not plan.requester else f"only <@{plan.requester}> may"
    notes = [*shown.notes, f"Expires in {minutes} min; {who} confirm. Nothing changes before Confirm."]
    if attached is not None:
        notes.insert(0, attached)
    body = [
        *shown.blocks,
        blocks.context(*notes),
        blocks.actions(
            blocks.button(
                shown.confirm_label, CONFIRM_ACTION, plan.id, style="danger" if shown.danger else "primary"
            ),
            blocks.button("Cancel", CANCEL_ACTION, plan.id),
            block_id=f"plan-{plan.id}",
        ),
    ]
    return Reply(shown.text, blocks.limit_blocks(body))


def _attach(services: Services, plan: Plan, attachment: Attachment | None) -> str | None:
    """Upload the full list beside the preview; the note that says where it is (or that it is not)."""
    if attachment is None:
        return None
    if not plan.channel:
        return "The full list could not be attached (no channel)."
    try:
        services.slack.upload_text(
            plan.channel, attachment.filename, attachment.content, title=attachment.title
        )
    except ChatOpsError as exc:
        log.warning("could not attach a preview's list", extra={"plan": plan.id, "error": str(exc)})
        return "The full list could not be attached; narrow the selector to see every target here."
    return "The full list is attached to this channel."


def submit(services: Services, plan: Plan) -> bool:
    """Run a plan whose origin is not a person (a schedule, a runbook step, an event) without buttons,
    where the policy lets that origin act: the decision is audited with the origin, then the job starts.
    Once per plan id: a plan whose id derives from what asked for it (a schedule's transition) starts one
    job however often it is submitted. False when it had been submitted before."""
    if services.store.get(used_key(plan.id)):
        return False
    record = AuditRecord(
        who=plan.requester or "",
        channel=plan.channel,
        what=plan.permission,
        targets=plan.target_ids[:200],
        decision="allow",
        detail=plan.summary,
        origin=plan.origin.audit_label(),
        time=services.clock.time(),
    )
    if (
        start_job(services, plan, record, claim=(used_key(plan.id), f"submitted by {plan.origin.mention()}"))
        is None
    ):
        return False
    services.authz.append(record)
    return True


def _audit_refusal(req: ActionRequest, plan: Plan, detail: str) -> None:
    req.services.authz.append(
        AuditRecord(
            who=req.actor.user_id,
            channel=req.actor.channel_id,
            what=plan.permission,
            targets=plan.target_ids[:200],
            decision="deny",
            detail=f"{detail}: {plan.summary}",
            time=req.services.clock.time(),
        )
    )


def _decide(req: ActionRequest, verb: str) -> tuple[Plan | None, AuditRecord | None]:
    """Load the plan and authorize the click: the requester (or anyone, when the policy says so)
    holding the plan's permission for its targets."""
    services = req.services
    plan = load_plan(services.store, req.value, services.clock.time())
    if plan is None:
        return None, None
    requester = plan.requester
    if requester and req.actor.user_id != requester and not services.policy.confirmation.others_may_confirm:
        _audit_refusal(req, plan, f"{verb} <@{requester}>'s preview")
        raise Forbidden(
            f"Only <@{requester}> can {verb} this preview (the policy's `confirmation.others_may_confirm` is off)."
        )
    record = req.authorize(plan.permission, plan.authz_targets(), detail=f"{verb}: {plan.summary}")
    return plan, record


@capability.action(CONFIRM_ACTION, permission=PLAN_PERMISSION)
def confirm(req: ActionRequest) -> Reply:
    plan, record = _decide(req, "confirm")
    if plan is None:
        return Reply(EXPIRED, replace_original=True)
    services = req.services
    waiting = request_approval(services, plan, record)
    if waiting is not None:
        return waiting
    verdict = f"confirmed by <@{req.actor.user_id}>"
    if (
        start_job(services, plan, record, confirmed_by=req.actor.user_id, claim=(used_key(plan.id), verdict))
        is None
    ):
        earlier = services.store.get(used_key(plan.id)) or "used"
        return Reply(f":information_source: This preview was already {earlier}; it runs once.")
    discard_plan(services.store, plan.id)
    kind = services.registry.plan_kind(plan.kind)
    return Reply(kind.confirmed_text(plan, req.actor.user_id), replace_original=True)


@capability.action(CANCEL_ACTION, permission=PLAN_PERMISSION)
def cancel(req: ActionRequest) -> Reply:
    plan, record = _decide(req, "cancel")
    if plan is None:
        return Reply(EXPIRED, replace_original=True)
    services = req.services
    earlier = claim_plan(services.store, plan, f"cancelled by <@{req.actor.user_id}>")
    if earlier is not None:
        return Reply(f":information_source: Too late to cancel: this preview was already {earlier}.")
    discard_plan(services.store, plan.id)
    if record is not None:
        services.authz.record_result(record, "cancelled", f"cancel: {plan.summary}")
    return Reply(
        f":no_entry_sign: Cancelled by <@{req.actor.user_id}>: nothing was changed.", replace_original=True
    )


for _legacy, _current in LEGACY_ACTIONS.items():
    capability.action(_legacy, permission=PLAN_PERMISSION)(confirm if _current == CONFIRM_ACTION else cancel)
