"""`/ecs run stop INVOKE_ID`: stop a run that is still going (StopInvocation on each of its unfinished
invocations), behind Confirm like every change. It needs the permission the run needed; the run's own
job sees its instances end (Terminated / Cancelled) and reports as usual."""

from __future__ import annotations

import uuid

from bot import blocks
from bot.commands import CommandRequest, Reply
from bot.errors import ChatOpsError
from bot.pipeline.gates import propose
from bot.pipeline.jobs import JobRun
from bot.pipeline.kinds import PlanKind, Preview, Report
from bot.pipeline.plans import Origin, Plan, PlanTarget
from bot.policy import Policy
from bot.registry import Capability
from bot.render import escape, plural
from bot.run_model import InstanceRun
from handlers.ecs.run_job import find_run, run_plan, runs_of

capability = Capability("handlers.ecs.run_stop")


def propose_stop(req: CommandRequest, ident: str) -> Reply:
    services = req.services
    record = find_run(services, ident)
    if record.finished:
        return Reply(f":information_source: Run `{escape(ident)}` has finished already; nothing to stop.")
    run = run_plan(record.plan)
    runs = runs_of(record.state)
    going = [i for i in run.targets if not runs.get(i.instance_id, InstanceRun(i.instance_id)).finished]
    batches = [b for b in record.state.get("batches") or () if b.get("invoke_id") and not b.get("done")]
    if not going or not batches:
        return Reply(f":information_source: Nothing of run `{escape(ident)}` is still running.")
    now = services.clock.time()
    plan = Plan(
        id=uuid.uuid4().hex[:16],
        kind=KIND.name,
        permission=record.plan.permission,
        origin=Origin(kind="user", name=req.actor.user_id, channel=req.actor.channel_id),
        summary=f"stop run {batches[0]['invoke_id']} on {len(going)} instance(s)",
        created_at=now,
        expires_at=now + services.policy.confirmation.ttl_seconds,
        targets=tuple(PlanTarget(id=i.instance_id, name=i.name, tags=i.tags, region=i.region) for i in going),
        body={
            "run": run.plan_id,
            "invoke_ids": [b["invoke_id"] for b in batches],
            "selector": run.selector,
            "region": run.region,
        },
    )
    services.authz.authorize(
        req.actor, plan.permission, plan.authz_targets(), detail=f"/ecs run stop {ident}"
    )
    return propose(services, plan)


class RunStopKind(PlanKind):
    name = "ecs.run.stop"

    def preview(self, plan: Plan, policy: Policy) -> Preview:
        body = plan.body
        text = (
            f"*Stop run `{escape(body['invoke_ids'][0])}`* (`/ecs run {escape(body['selector'])}` in "
            f"{body['region']}): {plural(len(plan.targets), 'instance')} still running are stopped "
            "(StopInvocation); those that finished keep their result."
        )
        return Preview(
            text=f"Preview: stop the run on {len(plan.targets)} instance(s)",
            blocks=[blocks.section(text)],
            confirm_label="Confirm: stop the run",
            danger=True,
        )

    def run(self, job: JobRun) -> None:
        ca = job.services.adapter("cloud_assistant")
        body = job.plan.body
        done = job.state.setdefault("stopped", [])
        job.acting("stopping")
        for invoke_id in body["invoke_ids"]:
            if invoke_id in done:
                continue
            try:
                ca.stop(invoke_id, region=body["region"])
            except ChatOpsError as exc:
                job.state.setdefault("errors", {})[invoke_id] = str(exc)
            else:
                done.append(invoke_id)
            job.save()

    def report(self, job: JobRun, seconds: float, failure: str | None = None) -> Report:
        body = job.plan.body
        stopped = job.state.get("stopped") or []
        errors = job.state.get("errors") or {}
        text = (
            f":octagonal_sign: Stop sent for {plural(len(stopped), 'invocation')} of run "
            f"`{body['invoke_ids'][0]}`; the run's own message reports how each instance ended."
        )
        lines = [text] + [f":x: `{i}`: {escape(e)}" for i, e in errors.items()]
        if failure:
            lines.insert(0, f":x: *{escape(failure)}*")
        outcome = "error" if failure or errors else "ok"
        return Report(
            lines[0] if not failure else f"{failure} — {text}", [blocks.section("\n".join(lines))], outcome
        )


KIND = capability.plan_kind(RunStopKind())
