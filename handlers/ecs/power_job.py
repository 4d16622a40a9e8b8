"""The `ecs.power` plan kind: what a confirmed power action does, how it shows progress and reports.

    execute_plan()  the ECS work (pure orchestration over the adapter): record intents, power the targets
                    (batches of 100, SuccessFirst, already-there skipped), wait for the target state, settle
    PowerKind       the pipeline's kind around it: per-instance results saved after every batch, the
                    progress line, the final report (bot.pipeline runs the durable job: lease, heartbeat,
                    resume, attempt cap, the message, the audit result)

When a worker dies mid-job the pipeline runs it again with `resuming` set: start / stop are resumed
(instances already acted on are found in or on their way to the target state and are not acted on
twice); a reboot whose outcome was not recorded is reported as interrupted rather than sent twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot import blocks
from bot.ecs_model import ACCEPTED, ALREADY_THERE, FAILED, InstanceResult, settle
from bot.intents import record_intents
from bot.pipeline.jobs import JobRun
from bot.pipeline.kinds import Attachment, PlanKind, Preview, Report
from bot.pipeline.plans import Plan
from bot.policy import Policy
from bot.registry import Capability
from handlers.ecs.plan import VERBS, PowerPlan
from handlers.ecs.power_render import preview, progress, report

capability = Capability("handlers.ecs.power_job")

FRESH_SECONDS = 15.0  # a plan read this recently (a schedule's, a quick confirm) is sent as read


def execute_plan(
    adapter,
    plan: PowerPlan,
    previous: dict[str, InstanceResult] | None = None,
    resume: bool = False,
    before_power: Callable[[list[str]], None] | None = None,
    on_results: Callable[[list[InstanceResult]], None] | None = None,
    on_wait: Callable[[int | None, int], None] | None = None,
    wait_timeout: float | None = None,
    sent_at: float | None = None,
    fresh: bool = False,
    wait: bool = True,
) -> list[InstanceResult]:
    """Power the plan's targets and wait for the target state; one settled result per instance
    (targets, then those already there at preview). `sent_at`: when a resumed job's first attempt
    began sending (epoch seconds). `fresh`: the plan's statuses were read moments ago, so the batches
    are sent without reading them again (ECS still refuses, per instance, one that changed since).
    `wait`: False leaves what ECS accepted as accepted, without waiting for the target state."""
    results: dict[str, InstanceResult] = dict(previous or {})
    pending = [i for i in plan.target_ids if i not in results]
    if resume and plan.action == "reboot":
        results.update(_unrecorded_reboots(adapter, plan, pending, sent_at))
        pending = []
    if pending:
        if before_power is not None:
            before_power(pending)

        def batch_done(batch_results: list[InstanceResult]) -> None:
            if resume:  # a target found there already was most likely sent by the attempt that died
                batch_results = [_ours_before(r) for r in batch_results]
            results.update((r.instance_id, r) for r in batch_results)
            if on_results is not None:
                on_results(list(results.values()))

        adapter.power(
            plan.action,
            pending,
            region=plan.region,
            force=plan.options.force,
            stopped_mode=plan.options.stopped_mode,
            skip_in_target=resume or not fresh,
            on_progress=batch_done,
        )
    combined = [results[i] for i in plan.target_ids]
    combined += [
        InstanceResult(i.instance_id, ALREADY_THERE, "", "", i.status, i.status) for i in plan.already
    ]
    if not wait:
        return combined
    waiting = [r.instance_id for r in combined if r.outcome in (ACCEPTED, ALREADY_THERE)]
    statuses = adapter.wait_for_state(
        waiting,
        plan.target_status,
        region=plan.region,
        tags=plan.tags or None,
        timeout=wait_timeout,
        on_progress=on_wait,
    )
    return settle(combined, statuses, plan.target_status)


def power_plan(plan: Plan) -> PowerPlan:
    return PowerPlan.from_dict(plan.body)


def _results(run: JobRun) -> dict[str, InstanceResult]:
    return {i: InstanceResult.from_dict(r) for i, r in (run.state.get("results") or {}).items()}


def _unrecorded_reboots(adapter, plan: PowerPlan, ids: list[str], sent_at: float | None) -> dict:
    """A reboot the attempt that died may have sent: never sent again. An instance that ECS shows
    running with a start time at or after the minute the reboot was sent was rebooted; the rest are
    reported interrupted."""
    if not ids:
        return {}
    since = time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(sent_at)) if sent_at else None
    found = {i.instance_id: i for i in adapter.describe_instances(region=plan.region, instance_ids=ids)}
    out = {}
    for iid in ids:
        info = found.get(iid)
        if since and info and info.status == "Running" and info.start_time and info.start_time >= since:
            out[iid] = InstanceResult(
                iid, ACCEPTED, "200", "rebooted: ECS shows it started again after the reboot was sent"
            )
        else:
            out[iid] = InstanceResult(
                iid,
                FAILED,
                "Interrupted",
                "the worker stopped before ECS confirmed this reboot; not sent again to avoid rebooting twice",
            )
    return out


def _ours_before(result: InstanceResult) -> InstanceResult:
    """On a resumed job, a target that is already in (or on its way to) the target state was running at
    preview and was sent by the attempt that died before recording it: it counts as this job's."""
    if result.outcome != ALREADY_THERE:
        return result
    return InstanceResult(
        result.instance_id,
        ACCEPTED,
        "200",
        "sent by this job before its worker stopped",
        result.previous_status,
        result.current_status,
    )


class _PowerProgress:
    """The power job's side of one attempt: results saved after every batch, the progress line
    (forced when the phase changes, else at most about once a second)."""

    def __init__(self, run: JobRun, plan: PowerPlan):
        self.run, self.plan = run, plan
        self._phase = ""

    def show(self, phase: str, reached: int | None = None, waiting: int = 0) -> None:
        results = list(_results(self.run).values())
        record = self.run.record
        text, body = progress(
            self.plan, results, phase, reached, record.confirmed_by, waiting, record.approved_by
        )
        self.run.progress(text, body, force=phase != self._phase)
        self._phase = phase

    def before_power(self, ids: list[str]) -> None:
        self.run.state.setdefault("sent_at", self.run.services.clock.time())
        self.run.acting("sending")  # from here on, a crash may leave calls whose outcome is unknown
        origin = self.run.plan.origin
        source = "command" if origin.is_user else origin.kind
        services = self.run.services
        record_intents(
            services.store, ids, self.plan.action, source=source, actor=origin.name, at=services.clock.time()
        )

    def on_results(self, results: list[InstanceResult]) -> None:
        self.run.state["results"] = {r.instance_id: r.as_dict() for r in results}
        self.run.save()
        self.show("sending")

    def on_wait(self, reached: int | None, total: int) -> None:
        self.run.set_phase("waiting")
        self.show("waiting", reached, total)


class PowerKind(PlanKind):
    name = "ecs.power"

    def preview(self, plan: Plan, policy: Policy) -> Preview:
        return preview(power_plan(plan), policy.ecs.key_tags)

    def confirmed_text(self, plan: Plan, by: str) -> str:
        power = power_plan(plan)
        gerund = VERBS[power.action][1].lower()
        return (
            f":white_check_mark: Confirmed by <@{by}>: {gerund} {len(power.targets)} instance(s) "
            f"matching `{power.selector}`. Progress is posted in this channel."
        )

    def run(self, run: JobRun) -> None:
        plan = power_plan(run.plan)
        shown = _PowerProgress(run, plan)
        shown.show("resuming" if run.resuming else "queued")
        final = execute_plan(
            run.services.adapter("ecs"),
            plan,
            previous=_results(run),
            resume=run.resuming,
            before_power=shown.before_power,
            on_results=shown.on_results,
            on_wait=shown.on_wait,
            wait_timeout=float(run.services.policy.ecs.wait_timeout_seconds),
            sent_at=run.state.get("sent_at"),
            fresh=run.services.clock.time() - plan.created_at <= FRESH_SECONDS,
        )
        run.state["results"] = {r.instance_id: r.as_dict() for r in final}

    def report(self, run: JobRun, seconds: float, failure: str | None = None) -> Report:
        plan = power_plan(run.plan)
        final = list(_results(run).values())
        if failure:  # what is known so far; the rest is unknown
            recorded = {r.instance_id for r in final}
            final += [
                InstanceResult(i, FAILED, "Unknown", "outcome unknown: the job stopped first")
                for i in plan.target_ids
                if i not in recorded
            ]
            run.state["results"] = {r.instance_id: r.as_dict() for r in final}
        requested_by = run.plan.origin.mention()
        text, body, attachment = report(
            plan, final, seconds, run.record.confirmed_by, requested_by, run.record.approved_by
        )
        if failure:
            text = f"{failure} — {text}"
            body = [blocks.section(f":x: *{failure}*"), *body]
        failures = sum(1 for r in final if r.outcome == FAILED)
        outcome = "error" if failure else ("ok" if not failures else f"{failures} failed")
        file = None
        if attachment:
            file = Attachment(
                f"ecs-{plan.action}-{plan.plan_id}.txt",
                attachment,
                f"/ecs {plan.action} {plan.selector}: per-instance report",
            )
        request_ids = tuple(sorted({r.request_id for r in final if r.request_id}))
        return Report(text, body, outcome, file, request_ids)


KIND = capability.plan_kind(PowerKind())
