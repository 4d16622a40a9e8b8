"""The `ecs.power` job: run a confirmed plan, show progress in one Slack message, end with a report.

    execute_plan()  the ECS work (pure orchestration over the adapter): record intents, power the targets
                    (batches of 100, SuccessFirst, already-there skipped), wait for the target state, settle
    PowerRun        the job around it: a lease and a heartbeat, results saved after every batch, the
                    progress message edited as it goes and replaced by the final report, the audit result

A worker that dies mid-job leaves a job whose heartbeat stops; `ecs.power.resume` (every minute) finds it
once its lease has expired and runs it again. Start / stop are resumed (instances already acted on are
found in or on their way to the target state and are not acted on twice); a reboot whose outcome was not
recorded is reported as interrupted rather than sent twice. After `MAX_ATTEMPTS` the job is reported failed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot import blocks
from bot.authz import AuditRecord
from bot.ecs_model import ACCEPTED, ALREADY_THERE, FAILED, InstanceResult, settle
from bot.errors import ChatOpsError, new_correlation_id
from bot.intents import record_intents
from bot.queue import job, periodic
from handlers.ecs.plan import VERBS, PowerPlan
from handlers.ecs.plan_store import (
    JobState,
    heartbeat,
    lease_held,
    load_job,
    mark_finished,
    release_lease,
    renew_lease,
    save_job,
    stale_jobs,
    take_lease,
)
from handlers.ecs.power_render import progress, report

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 60.0
MAX_ATTEMPTS = 3
PROGRESS_EVERY = 1.0


def execute_plan(
    adapter,
    plan: PowerPlan,
    previous: dict[str, InstanceResult] | None = None,
    resume: bool = False,
    before_power: Callable[[list[str]], None] | None = None,
    on_results: Callable[[list[InstanceResult]], None] | None = None,
    on_wait: Callable[[int | None, int], None] | None = None,
    wait_timeout: float | None = None,
) -> list[InstanceResult]:
    """Power the plan's targets and wait for the target state; one settled result per instance
    (targets, then those already there at preview)."""
    results: dict[str, InstanceResult] = dict(previous or {})
    pending = [i for i in plan.target_ids if i not in results]
    if resume and plan.action == "reboot":
        for iid in pending:
            results[iid] = InstanceResult(
                iid,
                FAILED,
                "Interrupted",
                "the worker stopped before ECS confirmed this reboot; not sent again to avoid rebooting twice",
            )
        pending = []
    if pending:
        if before_power is not None:
            before_power(pending)

        def batch_done(batch_results: list[InstanceResult]) -> None:
            results.update((r.instance_id, r) for r in batch_results)
            if on_results is not None:
                on_results(list(results.values()))

        adapter.power(
            plan.action,
            pending,
            region=plan.region,
            force=plan.options.force,
            stopped_mode=plan.options.stopped_mode,
            on_progress=batch_done,
        )
    combined = [results[i] for i in plan.target_ids]
    combined += [
        InstanceResult(i.instance_id, ALREADY_THERE, "", "", i.status, i.status) for i in plan.already
    ]
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


class _Heartbeat(threading.Thread):
    def __init__(self, services: Services, plan_id: str, token: str):
        super().__init__(name=f"ecs-power-heartbeat-{plan_id}", daemon=True)
        self.services, self.plan_id, self.token = services, plan_id, token
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_SECONDS):
            try:
                heartbeat(self.services.store, self.plan_id)
                if not renew_lease(self.services.store, self.plan_id, self.token):
                    log.warning("power job lost its lease", extra={"plan": self.plan_id})
            except ChatOpsError as exc:
                log.warning("power job heartbeat failed", extra={"plan": self.plan_id, "error": str(exc)})


class PowerRun:
    def __init__(self, services: Services, job_state: JobState):
        self.services = services
        self.job = job_state
        self.plan = job_state.plan
        self._last_update = 0.0
        self._last_text = ""
        self._phase = ""

    # Slack -----------------------------------------------------------------------------------------
    def _channel(self) -> str:
        return self.plan.channel or self.services.settings.SLACK_NOTIFY_CHANNEL

    def _show(self, text: str, blocks: list[dict], force: bool = False) -> None:
        now = time.monotonic()
        if not force and (now - self._last_update < PROGRESS_EVERY or text == self._last_text):
            return
        self._last_update, self._last_text = now, text
        slack = self.services.slack
        try:
            if self.job.progress_ts:
                slack.update(self.job.progress_channel, self.job.progress_ts, text, blocks)
                return
        except ChatOpsError as exc:
            log.warning("could not edit power progress", extra={"plan": self.plan.plan_id, "error": str(exc)})
            if not force:
                return
        # No message yet, or it can no longer be edited: post one (in the notify channel if need be).
        channels = dict.fromkeys(
            c for c in (self._channel(), self.services.settings.SLACK_NOTIFY_CHANNEL) if c
        )
        for channel in channels:
            try:
                posted = slack.post(channel, text, blocks)
            except ChatOpsError as exc:
                log.warning("could not post power progress", extra={"channel": channel, "error": str(exc)})
                continue
            self.job.progress_channel, self.job.progress_ts = posted.channel, posted.ts
            save_job(self.services.store, self.job)
            return

    def _progress(self, phase: str, reached: int | None = None, waiting: int = 0) -> None:
        results = [InstanceResult.from_dict(r) for r in self.job.results.values()]
        text, blocks = progress(self.plan, results, phase, reached, self.job.confirmed_by, waiting)
        self._show(text, blocks, force=phase != self._phase)
        self._phase = phase

    # callbacks --------------------------------------------------------------------------------------
    def _on_results(self, results: list[InstanceResult]) -> None:
        self.job.results = {r.instance_id: r.as_dict() for r in results}
        save_job(self.services.store, self.job)
        self._progress("sending")

    def _on_wait(self, reached: int | None, total: int) -> None:
        if self.job.status != "waiting":
            self.job.status = "waiting"
            save_job(self.services.store, self.job)
        self._progress("waiting", reached, total)

    def _before_power(self, ids: list[str]) -> None:
        self.job.status = "sending"  # from here on, a crash may leave calls whose outcome is unknown
        save_job(self.services.store, self.job)
        record_intents(
            self.services.store, ids, self.plan.action, source="command", actor=self.plan.requester
        )

    # the run ----------------------------------------------------------------------------------------
    def run(self) -> None:
        resume = self.job.status in ("sending", "waiting")
        self.job.attempts += 1
        self.job.status = "running"
        save_job(self.services.store, self.job)
        self._progress("resuming" if resume else "queued")
        started = time.monotonic()
        previous = {i: InstanceResult.from_dict(r) for i, r in self.job.results.items()}
        final = execute_plan(
            self.services.adapter("ecs"),
            self.plan,
            previous=previous,
            resume=resume,
            before_power=self._before_power,
            on_results=self._on_results,
            on_wait=self._on_wait,
            wait_timeout=float(self.services.policy.ecs.wait_timeout_seconds),
        )
        self.finish(final, time.monotonic() - started)

    def finish(self, final: list[InstanceResult], seconds: float, failed_reason: str | None = None) -> None:
        self.job.results = {r.instance_id: r.as_dict() for r in final}
        self.job.status = "failed" if failed_reason else "done"
        self.job.error = failed_reason
        self.job.finished_at = time.time()
        save_job(self.services.store, self.job)
        text, body, attachment = report(self.plan, final, seconds, self.job.confirmed_by)
        if failed_reason:
            text = f"{failed_reason} — {text}"
            body = [blocks.section(f":x: *{failed_reason}*"), *body]
        self._show(text, body, force=True)
        if attachment:
            try:
                self.services.slack.upload_text(
                    self.job.progress_channel or self._channel(),
                    f"ecs-{self.plan.action}-{self.plan.plan_id}.txt",
                    attachment,
                    title=f"/ecs {self.plan.action} {self.plan.selector}: per-instance report",
                )
            except ChatOpsError as exc:
                log.warning("could not attach the power report", extra={"error": str(exc)})
        failures = sum(1 for r in final if r.outcome == FAILED)
        if self.job.audit:
            outcome = "error" if failed_reason else ("ok" if not failures else f"{failures} failed")
            self.services.authz.record_result(AuditRecord(**self.job.audit), outcome, text[:300])
        mark_finished(self.services.store, self.plan.plan_id)

    def fail(self, reason: str) -> None:
        """Report the job as failed with what is known so far (results recorded before the failure)."""
        known = [InstanceResult.from_dict(r) for r in self.job.results.values()]
        recorded = {r.instance_id for r in known}
        unknown = [
            InstanceResult(i, FAILED, "Unknown", "outcome unknown: the job stopped first")
            for i in self.plan.target_ids
            if i not in recorded
        ]
        self.finish(known + unknown, 0.0, failed_reason=reason)


@job("ecs.power")
def run_power_job(services: Services, plan_id: str) -> None:
    job_state = load_job(services.store, plan_id)
    if job_state is None or job_state.status in ("done", "failed"):
        mark_finished(services.store, plan_id)
        return
    token = uuid.uuid4().hex
    if not take_lease(services.store, plan_id, token):
        log.info("power job already running elsewhere", extra={"plan": plan_id})
        return
    beat = _Heartbeat(services, plan_id, token)
    beat.start()
    runner = PowerRun(services, job_state)
    try:
        runner.run()
    except Exception as exc:  # noqa: BLE001 - the job is reported, never silently lost
        correlation_id = new_correlation_id()
        log.exception("power job failed", extra={"plan": plan_id, "correlation_id": correlation_id})
        verb = VERBS[job_state.plan.action][0]
        why = str(exc) if isinstance(exc, ChatOpsError) else f"an internal error (reference {correlation_id})"
        runner.fail(f"The {verb} job stopped: {why}")
    finally:
        beat.done.set()
        release_lease(services.store, plan_id, token)


@periodic("ecs.power.resume", minute="*")
def resume_stale_power_jobs(services: Services) -> None:
    """Jobs whose worker stopped (no heartbeat for STALE_AFTER s, lease expired): run them again, or
    report them failed after MAX_ATTEMPTS."""
    for plan_id in stale_jobs(services.store, STALE_AFTER):
        if lease_held(services.store, plan_id):
            continue
        job_state = load_job(services.store, plan_id)
        if job_state is None or job_state.status in ("done", "failed"):
            mark_finished(services.store, plan_id)
            continue
        if job_state.attempts >= MAX_ATTEMPTS:
            log.warning("power job given up", extra={"plan": plan_id, "attempts": job_state.attempts})
            PowerRun(services, job_state).fail(
                f"The worker running this job stopped {job_state.attempts} times; giving up"
            )
            continue
        log.warning(
            "resuming a power job whose worker stopped", extra={"plan": plan_id, "status": job_state.status}
        )
        heartbeat(services.store, plan_id)
        services.queue.enqueue("ecs.power", plan_id=plan_id)
