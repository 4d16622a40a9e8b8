"""The step kinds of a runbook: each drives the capability that already does the work, inside the run's
job (its lease, heartbeat and resume), keeping what it needs to resume in `StepRun.sub`, saved with the
job after every change.

    power     handlers.ecs.power.plan_power → handlers.ecs.power_job.execute_plan (intents, batches of
              100, instances already there skipped: a resumed step acts on none twice)
    run       handlers.ecs.run_plan.build_run_plan → handlers.ecs.run_job.CommandRun (ClientToken from
              the run id, the step, its try and the batch: a resumed step polls its invocations)
    wait      a duration (its end saved, so a resumed wait keeps it) or until a selector has a status
    approve   bot.pipeline.approvals.request_approval with the step's approvers and TTL; the run parks
    notify    services.slack.post, once (the message's ts saved)
    incident  handlers.pagerduty.incidents.open_incident, once per run and step (its incident key, the
              same for every try); later steps read its `id`, `number` and `url`
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot import blocks
from bot.access_policy import ApprovalRule
from bot.ecs_model import FAILED, InstanceResult
from bot.errors import UserError
from bot.intents import record_intents
from bot.pipeline.approvals import decision, request_approval
from bot.pipeline.kinds import Attachment
from bot.pipeline.plans import Origin, Plan
from bot.render import escape, plural
from bot.run_model import InstanceRun
from bot.selectors import parse_selector
from handlers.ecs.lookup import default_region, resolve
from handlers.ecs.plan import PowerPlan
from handlers.ecs.power import plan_power
from handlers.ecs.power_job import execute_plan
from handlers.ecs.power_render import report as power_report
from handlers.ecs.run_job import CommandRun, outputs, run_report, runs_of
from handlers.ecs.run_plan import RunPlan, RunRequest, build_run_plan, choose_type
from handlers.ecs.run_templates import render as render_template
from handlers.ecs.selectors import PowerOptions
from handlers.pagerduty.incidents import open_incident
from handlers.runbooks import machine
from handlers.runbooks.model import Runbook, Step

if TYPE_CHECKING:
    from bot.pipeline.jobs import JobRun

GATE_KIND = "ecs.runbook.approval"


@dataclass
class Outcome:
    """How a step ended: its status, a one-line summary, what later steps may read, its thread report."""

    status: str
    summary: str
    result: dict[str, Any] = field(default_factory=dict)
    report: list[dict] | None = None
    attachment: Attachment | None = None


@dataclass
class StepRun:
    job: JobRun
    book: Runbook
    index: int
    step: Step
    entry: dict  # the step's saved state (machine.step_state)
    values: dict[str, Any]  # what its templates may read
    show: Callable[[str], None]  # the step's live line in the run's message
    cancelled: Callable[[], bool]

    @property
    def services(self):
        return self.job.services

    @property
    def sub(self) -> dict:
        return self.entry.setdefault("sub", {})

    @property
    def name(self) -> str:
        return self.job.plan.body["name"]

    @property
    def run_id(self) -> str:
        return self.job.plan.id

    @property
    def origin(self) -> Origin:
        return Origin(kind="runbook", name=self.run_id, channel=self.job.plan.channel)

    def text(self, value: str) -> str:
        return machine.render(value, self.values)

    def save(self) -> None:
        self.job.save()

    def key(self, what: str) -> str:
        """Stable per run, step and try (≤ 40 characters)."""
        raw = f"{self.run_id}|{self.index}|{self.entry.get('tries', 1)}|{what}"
        return hashlib.sha256(raw.encode()).hexdigest()[:24]


# power ---------------------------------------------------------------------------------------------
def power(sr: StepRun) -> Outcome:
    services, step = sr.services, sr.step
    if "plan" not in sr.sub:
        selector = parse_selector(sr.text(step.selector or ""))
        found, _ = plan_power(services, step.power or "start", selector, PowerOptions(), sr.origin)
        sr.sub["plan"] = found.as_dict()
        sr.save()
    plan = PowerPlan.from_dict(sr.sub["plan"])
    if not plan.targets and not plan.already:
        return Outcome("failed", f"no instance matches `{plan.selector}`")
    started = services.clock.monotonic()

    def before_power(ids: list[str]) -> None:
        sr.sub.setdefault("sent_at", services.clock.time())
        sr.job.acting(f"step {sr.index}: sending")
        record_intents(
            services.store, ids, plan.action, source="runbook", actor=sr.run_id, at=services.clock.time()
        )

    def on_results(results: list[InstanceResult]) -> None:
        sr.sub["results"] = {r.instance_id: r.as_dict() for r in results}
        sr.save()
        sr.show(f"{plural(len(results), 'instance')} sent")

    def on_wait(reached: int | None, total: int) -> None:
        sr.show(f"waiting for {plan.target_status}: {reached or 0} of {total}")

    final = execute_plan(
        services.adapter("ecs"),
        plan,
        previous={i: InstanceResult.from_dict(r) for i, r in (sr.sub.get("results") or {}).items()},
        resume=bool(sr.sub.get("sent_at")),
        before_power=before_power,
        on_results=on_results,
        on_wait=on_wait,
        wait_timeout=float(sr.step.timeout_seconds or services.policy.ecs.wait_timeout_seconds),
        sent_at=sr.sub.get("sent_at"),
        wait=step.wait is not False,
    )
    sr.sub["results"] = {r.instance_id: r.as_dict() for r in final}
    failed = sum(1 for r in final if r.outcome == FAILED)
    text, body, listing = power_report(
        plan, final, services.clock.monotonic() - started, None, sr.origin.mention()
    )
    file = Attachment(f"runbook-{sr.run_id}-{sr.index}.txt", listing, text) if listing else None
    ok = len(final) - failed
    reached = plan.target_status if step.wait is not False else "sent (not waited for)"
    summary = f"{plan.action}: {ok} of {plural(len(final), 'instance')} {reached}"
    result = {"ok": ok, "failed": failed, "instances": [r.instance_id for r in final]}
    return Outcome("failed" if failed else "succeeded", summary, result, body, file)


# run -----------------------------------------------------------------------------------------------
class _StepHost:
    """A run step as `CommandRun` sees its host: the step's own state, the run's job to save it."""

    def __init__(self, sr: StepRun):
        self.sr = sr

    @property
    def state(self) -> dict:
        return self.sr.sub.setdefault("run", {})

    def save(self) -> None:
        self.sr.save()

    def acting(self, phase: str) -> None:
        self.sr.job.acting(f"step {self.sr.index}: {phase}")

    def set_phase(self, phase: str) -> None:
        self.sr.job.set_phase(f"step {self.sr.index}: {phase}")

    def progress(self, text: str, blocks: list[dict], force: bool = False) -> None:
        self.sr.show(text)


def _run_plan(sr: StepRun) -> RunPlan:
    services, step = sr.services, sr.step
    limits = services.policy.run
    if step.template:
        given = {k: sr.text(v) for k, v in step.params.items()}
        template = services.policy.run.templates[step.template]
        command, _ = render_template(step.template, template, given, "")
        kind, timeout = step.type or template.type, step.timeout_seconds or template.timeout_seconds
    else:
        command, kind = sr.text(step.run or ""), step.type
        timeout = step.timeout_seconds or limits.default_timeout_seconds
    selector = parse_selector(sr.text(step.selector or ""))
    instances = resolve(services, selector, None)
    region = default_region(services, selector)
    running = [i for i in instances if i.status == "Running"]
    kind = choose_type(kind, running or instances)
    agents = services.adapter("cloud_assistant").agents_running([i.instance_id for i in running], region)
    request = RunRequest(selector, command, step.template, {}, kind, timeout)
    now = services.clock.time()
    return build_run_plan(
        request,
        command,
        kind,
        timeout,
        instances,
        agents,
        plan_id=f"{sr.run_id}.{sr.index}.{sr.entry.get('tries', 1)}",
        region=region,
        requester=sr.origin.name,
        channel=sr.job.plan.channel,
        now=now,
        ttl_seconds=3600.0,
    )


def run(sr: StepRun) -> Outcome:
    services = sr.services
    if "plan" not in sr.sub:
        try:
            sr.sub["plan"] = _run_plan(sr).as_dict()
        except UserError as exc:
            return Outcome("failed", exc.message)
        sr.save()
    plan = RunPlan.from_dict(sr.sub["plan"])
    if not plan.targets:
        return Outcome("failed", f"no instance matching `{plan.selector}` can run it")
    started = services.clock.monotonic()
    attempt = CommandRun(services, _StepHost(sr), plan, stop_requested=sr.cancelled)
    attempt.send()
    attempt.poll()
    state = sr.sub["run"]
    shown = run_report(
        services, plan, state, services.clock.monotonic() - started, (None, sr.origin.mention(), None)
    )
    runs = runs_of(state)
    ok = sum(1 for i in plan.target_ids if runs.get(i, InstanceRun(i)).ok)
    found = outputs(services.store, plan.plan_id, len(plan.batches()))
    first = next((found[i] for i in plan.target_ids if i in found and runs.get(i, InstanceRun(i)).ok), "")
    result = {
        "ok": ok,
        "total": len(plan.target_ids),
        "output": machine.clip(first),
        "invoke_ids": [b["invoke_id"] for b in state.get("batches") or () if b.get("invoke_id")],
    }
    summary = f"{ok} of {plural(len(plan.target_ids), 'instance')} succeeded"
    if state.get("stopped"):
        return Outcome("cancelled", f"stopped: {summary}", result, shown.blocks, shown.attachment)
    status = "succeeded" if machine.success_met(sr.step.success, ok, len(plan.target_ids)) else "failed"
    return Outcome(status, f"{summary} (needed: {sr.step.success})", result, shown.blocks, shown.attachment)


# wait ----------------------------------------------------------------------------------------------
def wait(sr: StepRun) -> Outcome:
    services, step = sr.services, sr.step
    clock = services.clock
    seconds = step.wait_seconds
    if seconds is not None:
        until = sr.sub.setdefault("until", clock.time() + seconds)
        sr.save()
        while (left := until - clock.time()) > 0:
            if sr.cancelled():
                return Outcome("cancelled", "cancelled while waiting")
            clock.sleep(min(1.0, left))
        return Outcome("succeeded", f"waited {seconds} s")
    target = step.wait  # an Until
    selector = parse_selector(sr.text(target.selector))
    ids = [i.instance_id for i in resolve(services, selector, None)]
    if not ids:
        return Outcome("failed", f"no instance matches `{selector.text()}`")
    sr.show(f"waiting until {plural(len(ids), 'instance')} are {target.status}")
    statuses = services.adapter("ecs").wait_for_state(
        ids,
        target.status,
        region=default_region(services, selector),
        timeout=float(step.timeout_seconds or services.policy.ecs.wait_timeout_seconds),
    )
    reached = sum(1 for i in ids if statuses.get(i) == target.status)
    summary = f"{reached} of {plural(len(ids), 'instance')} {target.status}"
    return Outcome("succeeded" if reached == len(ids) else "failed", summary, {"ok": reached})


# approve -------------------------------------------------------------------------------------------
def gate_id(run_id: str, index: int) -> str:
    return f"{run_id}-gate-{index}"


def approve(sr: StepRun) -> Outcome | None:
    """None: the run parks until the request is decided (the decision wakes it)."""
    services, step, record = sr.services, sr.step, sr.job.record
    gate = gate_id(sr.run_id, sr.index)
    if not sr.sub.get("requested"):
        parent = sr.job.plan
        ask = sr.text(step.approve or "continue")
        requester = parent.origin if parent.origin.is_user else sr.origin
        plan = Plan(
            id=gate,
            kind=GATE_KIND,
            permission=parent.permission,
            origin=requester.model_copy(
                update={"channel": record.progress_channel or parent.channel, "thread_ts": record.progress_ts}
            ),
            summary=f"go on with runbook {sr.name} run {sr.run_id}: {ask}",
            created_at=services.clock.time(),
            expires_at=services.clock.time() + step.ttl_seconds,
            targets=parent.targets,
            body={"run_id": sr.run_id, "step": sr.index, "ask": ask},
        )
        rule = ApprovalRule(
            actions=(parent.permission,),
            approvers=step.approvers,
            channel=step.channel,
            ttl_seconds=step.ttl_seconds,
        )
        request_approval(services, plan, None, rules=[(f"runbook step {sr.step.label}", rule)])
        sr.sub.update(requested=True, gate=gate)
        sr.save()
    verdict = decision(services, gate)
    if verdict is None:
        sr.show(":raised_hand: waiting for approval")
        return None
    if verdict.startswith("approved"):
        return Outcome("succeeded", verdict, {"by": verdict.removeprefix("approved by ")})
    return Outcome("failed", verdict)


# notify --------------------------------------------------------------------------------------------
def notify(sr: StepRun) -> Outcome:
    channel = sr.step.channel or sr.job.plan.channel or sr.services.settings.SLACK_NOTIFY_CHANNEL
    if not channel:
        return Outcome("failed", "no channel to post to")
    if not sr.sub.get("ts"):
        text = escape(sr.text(sr.step.notify or ""))
        posted = sr.services.slack.post(channel, text, [blocks.section(text)])
        sr.sub["ts"] = posted.ts
        sr.save()
    return Outcome("succeeded", f"posted in <#{channel}>", {"channel": channel})


# incident ------------------------------------------------------------------------------------------
def incident(sr: StepRun) -> Outcome:
    services = sr.services
    service = sr.step.service or services.settings.PAGERDUTY_SERVICE_ID
    if not service:
        return Outcome("failed", "no PagerDuty service (set `service` or PAGERDUTY_SERVICE_ID)")
    title = sr.text(sr.step.incident or "")
    details = sr.text(sr.step.details) if sr.step.details else f"Opened by runbook run {sr.run_id}."
    requester = sr.job.plan.requester
    found = open_incident(services, title, service, incident_key(sr), sr.step.urgency, requester, details)
    number = found.get("number")
    label = f"#{number or found.get('id')}"
    result = {"id": found.get("id") or "", "number": number or "", "url": found.get("html_url") or ""}
    return Outcome("succeeded", f"opened {escape(label)} “{escape(title)}”", result)


def incident_key(sr: StepRun) -> str:
    """One per run and step, the same for every try: a try after one whose incident PagerDuty opened
    (its answer lost) takes that incident instead of opening a second."""
    raw = f"{sr.run_id}|{sr.index}|incident"
    return "chatops-runbook-" + hashlib.sha256(raw.encode()).hexdigest()[:24]


EXECUTORS: dict[str, Callable[[StepRun], Outcome | None]] = {
    "power": power,
    "run": run,
    "wait": wait,
    "approve": approve,
    "notify": notify,
    "incident": incident,
}
