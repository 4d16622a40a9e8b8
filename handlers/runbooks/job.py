"""The `ecs.runbook` plan kind: a runbook run as one durable job of the pipeline.

The run's record is the job's state (handlers.runbooks.machine), saved after every step transition: a
worker that dies leaves the job to `pipeline.resume`, and the next attempt goes on from the step it was
in (each step kind resumes without acting twice: handlers.runbooks.steps). An `approve` step parks the
job; the decision wakes it (`ecs.runbook.approval`, the gate's own plan kind). `cancel` is a flag the
running step and the loop look at: the current step stops (StopInvocation for a run), then its
`on_failure` steps run.

    runbook:cancel:<run id>      who cancelled it
    runbook:active:<name>        sorted set: run id → started (for `concurrency`)
    runbook:runs:<name>          sorted set: run id → created (`show` lists the last 10)
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from bot import blocks
from bot.errors import ChatOpsError
from bot.pipeline.approvals import decision
from bot.pipeline.jobs import JOB_TTL, JobRun, load_job, wake_job
from bot.pipeline.kinds import PlanKind, Preview, Report
from bot.pipeline.plans import Plan
from bot.policy import Policy
from bot.registry import Capability
from handlers.runbooks import machine
from handlers.runbooks import render as look
from handlers.runbooks.model import Runbook
from handlers.runbooks.steps import EXECUTORS, GATE_KIND, Outcome, StepRun, gate_id

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.runbooks.job")
log = logging.getLogger(__name__)

RUN_KIND = "ecs.runbook"
RUNS_KEPT = 50


def cancel_key(run_id: str) -> str:
    return f"runbook:cancel:{run_id}"


def active_key(name: str) -> str:
    return f"runbook:active:{name}"


def runs_key(name: str) -> str:
    return f"runbook:runs:{name}"


def book_of(plan: Plan) -> Runbook:
    return Runbook.model_validate(plan.body["book"])


def running_runs(services: Services, name: str, but: str = "") -> list[str]:
    """Runs of the runbook that have not finished (entries of finished or vanished jobs are dropped)."""
    found = []
    for run_id in services.store.zrange_by_score(active_key(name), 1, float("inf"), limit=200):
        record = load_job(services.store, run_id)
        if record is None or record.finished:
            services.store.zadd(active_key(name), run_id, 0)
        elif run_id != but:
            found.append(run_id)
    services.store.zremove_below(active_key(name), 1)
    return found


class _ThreadReports:
    """Each step's report goes to the run's thread while the next step starts: one post at a time, in
    step order, and the attempt waits for the last one before it ends or parks. A step whose report was
    not posted when its worker died says `reported: false`; the next attempt posts its summary."""

    def __init__(self, attempt: _Attempt):
        self.attempt = attempt
        self.pending: threading.Thread | None = None

    def post(self, i: int, outcome: Outcome, entry: dict) -> None:
        self.wait()
        entry["reported"] = False  # the key exists before the post: saves may serialize it meanwhile

        def post() -> None:
            self.attempt._thread(i, outcome)
            entry["reported"] = True

        self.pending = threading.Thread(target=post, name=f"runbook-report-{i}", daemon=True)
        self.pending.start()

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.join()
            self.pending = None


class _Attempt:
    """One attempt at a run: the loop over its steps."""

    def __init__(self, job: JobRun):
        self.job = job
        self.services = job.services
        self.plan = job.plan
        self.name = self.plan.body["name"]
        self.book = book_of(self.plan)
        self.state = job.state
        self.live = ""
        self.reports = _ThreadReports(self)

    def cancelled(self) -> bool:
        return bool(self.services.store.get(cancel_key(self.plan.id)))

    def show(self, live: str | None = None, force: bool = False) -> None:
        if live is not None:
            self.live = live
        now = self.services.clock.time()
        text, body = look.run_message(
            self.name,
            self.plan.id,
            self.book,
            self.state,
            now,
            self.plan.origin.mention(),
            self.live,
            values=machine.context(self.book, self.state),
        )
        self.job.progress(text, body, force=force)

    def begin(self) -> bool:
        """The first attempt's set-up; False when the runbook's concurrency refuses the run."""
        if "queue" in self.state:
            return True
        services = self.services
        now = services.clock.time()
        store, active, limit = services.store, active_key(self.name), self.book.concurrency
        if not store.zadd_within(active, self.plan.id, now, limit, 1):
            # full: the set may still hold runs that ended without leaving it; one run at a time prunes
            with store.lock(f"runbook:start:{self.name}", ttl=30, wait=10) as held:
                if not held:
                    raise ChatOpsError("another run of this runbook is starting; try again")
                running_runs(services, self.name, but=self.plan.id)
                admitted = store.zadd_within(active, self.plan.id, now, limit, 1)
            others = [] if admitted else running_runs(services, self.name, but=self.plan.id)
            if not admitted and not others:  # they all ended meanwhile
                admitted = store.zadd_within(active, self.plan.id, now, limit, 1)
            if not admitted:
                self.state.update(
                    refused=others[0] if others else "-", queue=[], steps={}, run_id=self.plan.id
                )
                self.job.save()
                return False
        services.store.zadd(runs_key(self.name), self.plan.id, now)
        services.store.zremove_below(runs_key(self.name), now - JOB_TTL)
        self.state.update(machine.start_state(self.book, self.plan.id, self.name, self.plan.body["params"]))
        self.job.save()
        return True

    def loop(self) -> None:
        try:
            self._steps()
        finally:
            self.reports.wait()
            self.job.save()

    def _steps(self) -> None:
        clock = self.services.clock
        steps = self.book.all_steps()
        self.show(force=True)
        self._unreported()
        while (i := machine.current(self.state)) is not None:
            entry = machine.step_state(self.state, i)
            if self.cancelled() and not self.state.get("cancelled_at"):
                self.state["cancelled_at"] = clock.time()
                machine.cancel(self.book, self.state, clock.time())
                self.job.save()
                continue
            step = steps[i]
            if entry["status"] == "pending":
                if not machine.should_run(self.book, self.state, step):
                    self._finish(i, Outcome("skipped", f"`when` {step.when.step} did not hold"))
                    continue
                entry.update(status="running", started_at=clock.time(), tries=1, sub={})
                self.job.save()
            if entry["status"] == "waiting" and self.state.get("cancelled_at"):
                self._finish(i, Outcome("cancelled", "cancelled while waiting for approval"))
                continue
            self.live = ""
            self.show(force=True)
            outcome = self._execute(i, entry)
            if outcome is None:  # parked: the decision (or a cancel) wakes the run
                entry["status"] = "waiting"
                self.job.save()
                self.show(force=True)
                self.job.park()
                return
            if outcome.status == "failed" and entry["tries"] < step.retry.attempts and not self.cancelled():
                self._pause(machine.backoff(step.retry.backoff_seconds, entry["tries"]))
                entry.update(
                    tries=entry["tries"] + 1,
                    sub={},
                    summary=f"try {entry['tries']} failed: {outcome.summary}",
                )
                self.job.save()
                continue
            self._finish(i, outcome)

    def _execute(self, i: int, entry: dict) -> Outcome | None:
        step = self.book.all_steps()[i]
        values = machine.context(self.book, self.state)
        sr = StepRun(
            self.job, self.book, i, step, entry, values, lambda line: self.show(line), self.cancelled
        )
        try:
            return EXECUTORS[step.kind](sr)
        except machine.RenderError as exc:
            return Outcome("failed", f"could not render the step: {exc}")
        except ChatOpsError as exc:
            return Outcome("failed", str(exc))

    def _pause(self, seconds: float) -> None:
        clock = self.services.clock
        until = clock.monotonic() + seconds
        while (left := until - clock.monotonic()) > 0 and not self.cancelled():
            clock.sleep(min(1.0, left))

    def _finish(self, i: int, outcome: Outcome) -> None:
        step = self.book.all_steps()[i]
        entry = machine.step_state(self.state, i)
        if outcome.status != "skipped" and step.kind != "approve" and not entry.get("reported"):
            self.reports.post(i, outcome, entry)
        machine.finish_step(
            self.book,
            self.state,
            i,
            outcome.status,
            outcome.summary,
            outcome.result,
            self.services.clock.time(),
        )
        self.job.save()  # the next step's start (or the run's report) shows it

    def _unreported(self) -> None:
        """Steps that ended in an attempt that stopped before their report was posted: their summary."""
        for key, entry in sorted(self.state.get("steps", {}).items(), key=lambda kv: int(kv[0])):
            if entry.get("reported") is False and entry.get("finished_at"):
                self.reports.post(int(key), Outcome(entry["status"], entry.get("summary", "")), entry)

    def _thread(self, i: int, outcome: Outcome) -> None:
        record, slack = self.job.record, self.services.slack
        if not record.progress_ts or not record.progress_channel:
            return
        n = i + 1
        text, body = look.step_report(
            n, self.book.all_steps()[i], outcome.status, outcome.summary, outcome.report
        )
        try:
            slack.post(record.progress_channel, text, blocks.limit_blocks(body), thread_ts=record.progress_ts)
            if outcome.attachment is not None:
                slack.upload_text(
                    record.progress_channel,
                    outcome.attachment.filename,
                    outcome.attachment.content,
                    title=outcome.attachment.title,
                    thread_ts=record.progress_ts,
                )
        except ChatOpsError as exc:
            log.warning("could not post a step's report", extra={"run": self.plan.id, "error": str(exc)})


class RunbookKind(PlanKind):
    name = RUN_KIND

    def preview(self, plan: Plan, policy: Policy) -> Preview:
        body = plan.body
        text, shown = look.preview(
            body["name"], book_of(plan), body["params"], body.get("lines") or (), len(plan.targets)
        )
        return Preview(text, shown, confirm_label=f"Run {body['name']}", danger=True)

    def confirmed_text(self, plan: Plan, by: str) -> str:
        return (
            f":white_check_mark: Confirmed by <@{by}>: runbook `{plan.body['name']}` run `{plan.id}` starts. "
            "Its progress is posted in this channel."
        )

    def run(self, job: JobRun) -> None:
        attempt = _Attempt(job)
        if attempt.begin():
            attempt.loop()

    def woken(self, job: JobRun) -> bool:
        state = job.state
        i = state["queue"][0] if state.get("queue") else None
        if i is None:
            return False
        if job.services.store.get(cancel_key(job.plan.id)):
            return True
        return decision(job.services, gate_id(job.plan.id, i)) is not None

    def report(self, job: JobRun, seconds: float, failure: str | None = None) -> Report:
        plan, state, services = job.plan, job.state, job.services
        name = plan.body["name"]
        services.store.zadd(active_key(name), plan.id, 0)
        services.store.zremove_below(active_key(name), 1)
        if state.get("refused"):
            other = state["refused"]
            text = (
                f":no_entry: Runbook `{name}` run `{plan.id}` was refused: run `{other}` is still running and "
                f"the runbook allows {book_of(plan).concurrency} at a time (`/ecs runbook status {other}`)."
            )
            link = _link(services, other)
            body = [blocks.section(text + (f" {link}" if link else ""))]
            return Report(text, body, outcome="refused")
        book = book_of(plan)
        if "queue" not in state:
            state.update(machine.start_state(book, plan.id, name, plan.body["params"]))
        result = "failed" if failure else machine.outcome(state)
        text, body = look.run_message(
            name,
            plan.id,
            book,
            state,
            services.clock.time(),
            plan.origin.mention(),
            outcome=result,
            seconds=seconds,
            values=machine.context(book, state),
        )
        if failure:
            text = f"{failure} — {text}"
            body.insert(0, blocks.section(f":x: *{failure}*"))
        return Report(text, body, outcome="ok" if result == "succeeded" else result)


def _link(services: Services, run_id: str) -> str:
    record = load_job(services.store, run_id)
    if record is None or not record.progress_ts or not record.progress_channel:
        return ""
    ts = record.progress_ts.replace(".", "")
    return f"<https://slack.com/archives/{record.progress_channel}/p{ts}|the running one>"


class GateKind(PlanKind):
    """The approval a runbook's `approve` step asks for: its job only wakes the run (the approval's
    message says who decided; this job's report goes in the run's thread)."""

    name = GATE_KIND

    def preview(self, plan: Plan, policy: Policy) -> Preview:
        text = f"*Runbook run `{plan.body['run_id']}`* waits for approval: {plan.body.get('ask', '')}"
        return Preview(text, [blocks.section(text)])

    def run(self, job: JobRun) -> None:
        wake_job(job.services, job.plan.body["run_id"])

    def closed(self, services: Services, plan: Plan, result: str) -> None:
        wake_job(services, plan.body["run_id"])

    def report(self, job: JobRun, seconds: float, failure: str | None = None) -> Report:
        by = job.record.approved_by
        text = f":white_check_mark: Approved by <@{by}>: run `{job.plan.body['run_id']}` goes on."
        if failure:
            text = f"{failure} — the run was not woken"
        return Report(text, [blocks.section(text)], outcome="error" if failure else "ok")


KIND = capability.plan_kind(RunbookKind())
capability.plan_kind(GateKind())
