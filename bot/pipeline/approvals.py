"""The second gate: two-person approval, between Confirm and the job, for every plan kind.

Where a rule of the policy's `approvals` applies to a confirmed plan (its permission, its targets, their
number), the plan does not start: an approval request is posted where the channel can see it, with
Approve / Deny, and nothing runs until a different user who holds `approve` for every target (and is
of the rule's `approvers`, when it names them) clicks Approve. Then the job starts, once.

    approval:<plan id>         the request (who asked, where it is posted, the rules, the Confirm's audit)
    approval:<plan id>:used    approved by / denied by / withdrawn by / expired (set once, with the job)
    approvals:pending          sorted set: plan id → when the request expires (`approvals.expire`)

A refused click (the requester's own Approve, someone without `approve`, someone out of scope) is
answered to that person only, audited, and does not use the request up. A request expires after the
rule's `ttl_seconds`; its message then says so. `request_approval` is the one entry point: the Confirm
gate calls it, and so can any step of a longer workflow that needs the same rule.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot import blocks, records
from bot.access_policy import APPROVE, ApprovalRule
from bot.authz import Actor, AuditRecord
from bot.commands import ActionRequest, Reply
from bot.errors import ChatOpsError, Forbidden
from bot.pipeline.jobs import start_job
from bot.pipeline.plans import Plan, claim_plan, discard_plan, load_plan, save_plan, used_key
from bot.records import Record
from bot.registry import PLAN_PERMISSION, Capability
from bot.render import escape, local_time

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("bot.pipeline.approvals")
capability.permissions(APPROVE)
log = logging.getLogger(__name__)

APPROVE_ACTION = "approval.approve"
DENY_ACTION = "approval.deny"
PENDING = "approvals:pending"
KEEP_AFTER_EXPIRY = 86400.0  # the request stays readable this long after it expired (its message is edited)

GONE = ":hourglass: This approval request has expired or does not exist; nothing was changed."


class ApprovalRequest(Record):
    plan_id: str
    requester: str
    requester_channel: str | None = None
    channel: str  # where the request is posted
    ts: str | None = None
    rules: tuple[str, ...] = ()  # "approvals[0] (`tag:env=prod`)"
    approvers: tuple[tuple[str, ...], ...] = ()  # per rule that names approvers: the roles, one needed
    created_at: float
    expires_at: float
    audit: dict | None = None  # the Confirm's audit record: the job's result is recorded on it


def _key(plan_id: str) -> str:
    return f"approval:{plan_id}"


def _used(plan_id: str) -> str:
    return f"approval:{plan_id}:used"


def decision(services: Services, plan_id: str) -> str | None:
    """How a request was decided ("approved by <@U…>", "denied by …", "expired"), None while open."""
    return services.store.get(_used(plan_id))


def rules_for(services: Services, plan: Plan) -> list[tuple[int, ApprovalRule]]:
    targets = plan.authz_targets()
    return [(i, r) for i, r in enumerate(services.policy.approvals) if r.applies(plan.permission, targets)]


def request_approval(
    services: Services,
    plan: Plan,
    confirmed: AuditRecord | None,
    rules: list[tuple[str, ApprovalRule]] | None = None,
) -> Reply | None:
    """Post an approval request for a confirmed plan, or None when no rule applies (start the job).
    `rules` (a label and a rule each) replaces the policy's `approvals` for a step that always asks."""
    if rules is None:
        rules = [(f"approvals[{i}] ({r.describe()})", r) for i, r in rules_for(services, plan)]
    if not rules:
        return None
    requester = plan.requester or ""
    earlier = claim_plan(services.store, plan, f"sent for approval by <@{requester}>")
    if earlier is not None:
        return Reply(f":information_source: This preview was already {earlier}; it runs once.")
    now = services.clock.time()
    ttl = min(r.ttl_seconds for _, r in rules)
    channel = next((r.channel for _, r in rules if r.channel), None) or plan.channel or ""
    request = ApprovalRequest(
        plan_id=plan.id,
        requester=requester,
        requester_channel=plan.channel,
        channel=channel,
        rules=tuple(label for label, _ in rules),
        approvers=tuple(r.approvers for _, r in rules if r.approvers),
        created_at=now,
        expires_at=now + ttl,
        audit=records.to_dict(confirmed) if confirmed else None,
    )
    waiting = plan.model_copy(update={"expires_at": request.expires_at})
    save_plan(services.store, waiting, now)
    _save(services, request)
    services.store.zadd(PENDING, plan.id, request.expires_at)
    text, body = _request_message(services, waiting, request)
    try:
        posted = services.slack.post(channel, text, body)
    except ChatOpsError:
        services.store.delete(_used(plan.id))
        services.store.zadd(PENDING, plan.id, 0)
        services.store.delete(_key(plan.id))
        services.store.delete(used_key(plan.id))
        raise
    _save(services, request.model_copy(update={"ts": posted.ts}))
    pending = AuditRecord(
        who=requester,
        channel=plan.channel,
        what=plan.permission,
        targets=plan.target_ids[:200],
        decision="pending",
        detail=f"approval requested in <#{channel}>: {plan.summary}",
        rule=", ".join(request.rules),
        time=now,
    )
    if confirmed is not None:
        pending.id = confirmed.id  # one change, one id: Confirm, the approval request, its outcome
    services.authz.append(pending)
    where = "here" if channel == plan.channel else f"in <#{channel}>"
    minutes = max(1, round(ttl / 60))
    return Reply(
        f":raised_hand: Approval requested {where}: {escape(plan.summary)}. Nothing runs until someone other than "
        f"you who holds `approve` approves it (rule {', '.join(request.rules)}); the request expires in "
        f"{minutes} min. The outcome is posted in this channel.",
        replace_original=True,
    )


def _save(services: Services, request: ApprovalRequest) -> None:
    ttl = request.expires_at - services.clock.time() + KEEP_AFTER_EXPIRY
    services.store.set(_key(request.plan_id), records.dump(request), max(1.0, ttl))


def _load(services: Services, plan_id: str) -> ApprovalRequest | None:
    if not plan_id or len(plan_id) > 64:
        return None
    raw = services.store.get(_key(plan_id))
    return records.load_or_none(ApprovalRequest, raw) if raw else None


def _request_message(services: Services, plan: Plan, request: ApprovalRequest) -> tuple[str, list[dict]]:
    shown = services.registry.plan_kind(plan.kind).preview(plan, services.policy)
    when = local_time(request.expires_at, services.timezone, "%H:%M %Z")
    text = f"Approval needed: <@{request.requester}> asks to {escape(plan.summary)}"
    body = [
        blocks.section(
            f":raised_hand: *Approval needed* — <@{request.requester}> asks to *{escape(plan.summary)}*"
        ),
        *shown.blocks[:20],
        blocks.context(
            f"Rule {', '.join(request.rules)}. Anyone but <@{request.requester}> who holds `approve` for these "
            f"instances may approve. Expires at {when}."
        ),
        blocks.actions(
            blocks.button("Approve", APPROVE_ACTION, plan.id, style="primary"),
            blocks.button("Deny", DENY_ACTION, plan.id, style="danger"),
            block_id=f"approval-{plan.id}",
        ),
    ]
    return text, blocks.limit_blocks(body)


def _closed(request: ApprovalRequest, plan_summary: str, line: str) -> tuple[str, list[dict]]:
    text = f"{line} — <@{request.requester}>'s request to {escape(plan_summary)}"
    return text, [blocks.section(text), blocks.context(f"Rule {', '.join(request.rules)}.")]


def _refuse(req: ActionRequest, plan: Plan, why: str, rule: str) -> Reply:
    req.services.authz.append(
        AuditRecord(
            who=req.actor.user_id,
            channel=req.actor.channel_id,
            what=APPROVE,
            targets=plan.target_ids[:200],
            decision="deny",
            detail=f"{why.rstrip('.')} ({plan.summary})",
            rule=rule,
            time=req.services.clock.time(),
        )
    )
    return Reply(f":no_entry: {why}")


def _open(req: ActionRequest) -> tuple[ApprovalRequest | None, Plan | None, Reply | None]:
    """The request and its plan, or the answer when it is gone, used or expired."""
    services = req.services
    request = _load(services, req.value)
    if request is None:
        return None, None, Reply(GONE)
    used = services.store.get(_used(request.plan_id))
    if used:
        return None, None, Reply(f":information_source: This request was already {used}.")
    if request.expires_at <= services.clock.time():
        expire(services, request)
        return None, None, Reply(GONE)
    plan = load_plan(services.store, request.plan_id, services.clock.time())
    if plan is None:  # decided by a click that came in meanwhile (it discards the plan), or gone
        used = services.store.get(_used(request.plan_id))
        return None, None, Reply(f":information_source: This request was already {used}." if used else GONE)
    return request, plan, None


def _in_approvers(services: Services, actor: Actor, request: ApprovalRequest) -> bool:
    if services.authz.is_admin(actor):
        return True
    mine = set(services.authz.roles_of(actor))
    return all(mine & set(roles) for roles in request.approvers)


def _approver_refusal(req: ActionRequest, plan: Plan, request: ApprovalRequest, verb: str) -> Reply | None:
    """None when the caller may approve (or deny) this request: of the rule's approvers where it names
    them, holding `approve` for every target (audited either way); else the refusal."""
    if not _in_approvers(req.services, req.actor, request):
        roles = " or ".join(", ".join(r) for r in request.approvers)
        return _refuse(req, plan, f"Only members of {roles} may {verb} this request.", "approvers")
    try:
        req.authorize(APPROVE, plan.authz_targets(), detail=f"{verb}: {plan.summary}")
    except Forbidden as exc:
        return Reply(f":no_entry: {exc.message}")
    return None


@capability.action(APPROVE_ACTION, permission=PLAN_PERMISSION)
def approve(req: ActionRequest) -> Reply:
    services, actor = req.services, req.actor
    request, plan, answer = _open(req)
    if answer is not None:
        return answer
    if actor.user_id == request.requester:
        return _refuse(
            req,
            plan,
            "You asked for this change: someone else who holds `approve` must approve it.",
            "two-person rule",
        )
    refused = _approver_refusal(req, plan, request, "approve")
    if refused is not None:
        return refused
    audit = None
    if request.audit:  # the requester's Confirm: the job's result is recorded on it, with the approver
        rule = "; ".join(r for r in (request.audit.get("rule"), *request.rules) if r)
        audit = AuditRecord(**{**request.audit, "approver": actor.user_id, "rule": rule})
    started = start_job(
        services,
        plan,
        audit,
        confirmed_by=request.requester,
        approved_by=actor.user_id,
        claim=(_used(plan.id), f"approved by <@{actor.user_id}>"),
    )
    if started is None:
        return Reply(
            f":information_source: This request was already {services.store.get(_used(plan.id)) or 'used'}."
        )
    services.store.zadd(PENDING, plan.id, 0)
    discard_plan(services.store, plan.id)
    text, body = _closed(request, plan.summary, f":white_check_mark: Approved by <@{actor.user_id}>")
    if request.requester_channel and request.requester_channel != request.channel:
        body.append(blocks.context(f"Progress is posted in <#{request.requester_channel}>."))
    return Reply(text, body, ephemeral=False, replace_original=True)


@capability.action(DENY_ACTION, permission=PLAN_PERMISSION)
def deny(req: ActionRequest) -> Reply:
    services, actor = req.services, req.actor
    request, plan, answer = _open(req)
    if answer is not None:
        return answer
    withdrawn = actor.user_id == request.requester
    if not withdrawn:
        refused = _approver_refusal(req, plan, request, "deny")
        if refused is not None:
            return refused
    verdict = f"{'withdrawn' if withdrawn else 'denied'} by <@{actor.user_id}>"
    if not services.store.set_nx(_used(plan.id), verdict, 7 * 86400):
        return Reply(
            f":information_source: This request was already {services.store.get(_used(plan.id)) or 'used'}."
        )
    _close(services, request, plan.summary, verdict, "withdrawn" if withdrawn else "denied", plan)
    text, body = _closed(
        request, plan.summary, f":no_entry_sign: {verdict[0].upper()}{verdict[1:]}: nothing was changed"
    )
    return Reply(text, body, ephemeral=False, replace_original=True)


def _close(
    services: Services,
    request: ApprovalRequest,
    summary: str,
    verdict: str,
    result: str,
    plan: Plan | None = None,
) -> None:
    """A request that ends without a job (`result`: denied, withdrawn, expired): audited, the plan's
    kind told (a runbook waiting on it goes on), and the requester told in the channel they asked from."""
    services.store.zadd(PENDING, request.plan_id, 0)
    discard_plan(services.store, request.plan_id)
    kind = services.registry.plan_kinds.get(plan.kind) if plan is not None else None
    if kind is not None:
        kind.closed(services, plan, result)
    if request.audit:
        services.authz.record_result(
            records.load(AuditRecord, request.audit), result, f"{verdict}: {summary}"[:300]
        )
    if request.requester_channel and request.requester_channel != request.channel:
        try:
            services.slack.post(
                request.requester_channel,
                f"<@{request.requester}>, your request to {escape(summary)} was {verdict}; nothing was changed.",
            )
        except ChatOpsError as exc:
            log.warning("could not tell the requester", extra={"plan": request.plan_id, "error": str(exc)})


def expire(services: Services, request: ApprovalRequest) -> bool:
    """End a request whose time is up: its message says so. False when someone decided it first."""
    if not services.store.set_nx(_used(request.plan_id), "expired", 7 * 86400):
        if services.store.get(_used(request.plan_id)) != "expired":  # someone decided it first
            services.store.zadd(PENDING, request.plan_id, 0)
            return False
        # marked expired by a sweep that stopped before it closed the request: close it now
    minutes = max(1, round((request.expires_at - request.created_at) / 60))
    raw = services.store.get(f"plan:{request.plan_id}")
    plan = records.load_or_none(Plan, raw) if raw else None
    summary = plan.summary if plan else "make a change"
    _close(services, request, summary, f"expired: nobody approved it within {minutes} min", "expired", plan)
    if request.ts:
        text, body = _closed(
            request,
            summary,
            f":hourglass: Expired: nobody approved within {minutes} min; nothing was changed",
        )
        try:
            services.slack.update(request.channel, request.ts, text, body)
        except ChatOpsError as exc:
            log.warning(
                "could not mark an approval request expired",
                extra={"plan": request.plan_id, "error": str(exc)},
            )
    return True


@capability.periodic("approvals.expire", minute="*")
def expire_requests(services: Services) -> None:
    now = services.clock.time()
    for plan_id in services.store.zrange_by_score(PENDING, 1, now, limit=100):
        request = _load(services, plan_id)
        if request is None:
            services.store.zadd(PENDING, plan_id, 0)
            continue
        try:
            expire(services, request)
        except ChatOpsError as exc:
            log.warning("could not expire an approval request", extra={"plan": plan_id, "error": str(exc)})
    services.store.zremove_below(PENDING, 1)
