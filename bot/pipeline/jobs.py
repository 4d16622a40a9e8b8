"""The durable job that runs a decided plan: one record, a lease, a heartbeat, resume when stale.

    job:<id>          the job: plan, status, the kind's per-step state, progress message, audit record
    lease job:<id>    held by the worker running it, renewed by its heartbeat
    jobs:active       sorted set: job id → last heartbeat (0 once finished)

`start_job` makes the job durable and enqueues `pipeline.run`. A worker that dies mid-job leaves a job
whose heartbeat stops; `pipeline.resume` (every minute) finds it once its lease has expired and decides,
in this one place, to run it again (the kind is told it is resuming) or, after MAX_ATTEMPTS, to report it
interrupted with what is known.

A kind may `park` its job (a runbook waiting for an approval): the attempt ends without a report, the job
leaves `jobs:active` (nothing is stale about waiting), and whatever it waits for calls `wake_job`. The
kind's `woken` is asked once the parked attempt has let go of its lease, so a wake that came while the
attempt still held it is not lost.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot import blocks, records
from bot.authz import AuditRecord
from bot.errors import ChatOpsError, new_correlation_id
from bot.pipeline.kinds import Report
from bot.pipeline.plans import Plan
from bot.pipeline.progress import ProgressMessage
from bot.registry import Capability
from bot.store.ops import Guard, Set, ZAdd

if TYPE_CHECKING:
    from bot.pipeline.kinds import PlanKind
    from bot.services import Services

capability = Capability("bot.pipeline.jobs")
log = logging.getLogger(__name__)

RUN_JOB = "pipeline.run"
JOB_TTL = 7 * 86400
ACTIVE = "jobs:active"
LEASE_TTL = 30.0
HEARTBEAT_SECONDS = 5.0
STALE_AFTER = 60.0
MAX_ATTEMPTS = 3
CLAIM_TTL = 7 * 86400


class JobRecord(BaseModel):
    """A job as saved after every step (mutable, unlike a `Record`; unknown keys ignored the same way)."""

    model_config = ConfigDict(extra="ignore")

    plan: Plan
    status: Literal["queued", "running", "waiting", "done", "failed"] = "queued"
    phase: str = ""  # the kind's own step name ("sending", "waiting", …)
    acting: bool = False  # an attempt got past the point where effects may be unknown after a crash
    state: dict[str, Any] = Field(default_factory=dict)  # the kind's per-step progress
    progress_channel: str | None = None
    progress_ts: str | None = None
    audit: dict[str, Any] | None = None
    confirmed_by: str | None = None
    approved_by: str | None = None  # the second person, where an approval rule applied
    attempts: int = 0
    error: str | None = None
    created_at: float = 0.0
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")


def _key(job_id: str) -> str:
    return f"job:{job_id}"


def save_job(store, record: JobRecord) -> None:
    store.set(_key(record.plan.id), records.dump(record), JOB_TTL)


def load_job(store, job_id: str) -> JobRecord | None:
    raw = store.get(_key(job_id))
    return records.load(JobRecord, raw) if raw else None


def mark_active(store, job_id: str, now: float) -> None:
    store.zadd(ACTIVE, job_id, now)


def mark_finished(store, job_id: str) -> None:
    store.zadd(ACTIVE, job_id, 0)
    store.zremove_below(ACTIVE, 1)


def stale_jobs(store, older_than: float, now: float) -> list[str]:
    """Active jobs whose last heartbeat is older than `older_than` seconds."""
    return store.zrange_by_score(ACTIVE, 1, now - older_than, limit=100)


def start_job(
    services: Services,
    plan: Plan,
    audit: AuditRecord | None,
    confirmed_by: str | None = None,
    approved_by: str | None = None,
    claim: tuple[str, str] | None = None,
) -> JobRecord | None:
    """Make the plan's job durable and hand it to a worker. The job exists once this returns.

    With `claim` (a key and a verdict such as "confirmed by <@U…>"), the job is created only if the key
    is still unset, in one transaction with setting it: a double click or a replayed payload starts
    nothing twice, and a crash cannot leave a claim without its job. None when the claim was lost."""
    now = services.clock.time()
    record = JobRecord(
        plan=plan,
        audit=records.to_dict(audit) if audit else None,
        confirmed_by=confirmed_by,
        approved_by=approved_by,
        created_at=now,
    )
    writes: list = [Set(_key(plan.id), records.dump(record), JOB_TTL), ZAdd(ACTIVE, plan.id, now)]
    guards: list[Guard] = []
    if claim is not None:
        key, verdict = claim
        writes.insert(0, Set(key, verdict, CLAIM_TTL))
        guards.append(Guard(key, None))
    if not services.store.commit(writes, guards):
        return None
    # Should the process stop right here, the job is active with no lease: `pipeline.resume` enqueues it.
    services.queue.enqueue(RUN_JOB, job_id=plan.id)
    return record


class JobRun:
    """One attempt at a job, as its kind sees it."""

    def __init__(self, services: Services, record: JobRecord, kind: PlanKind):
        self.services = services
        self.record = record
        self.kind = kind
        self.resuming = record.acting  # a previous attempt may have acted
        self.message = ProgressMessage(services, record, self.save)
        self.parked = False

    @property
    def plan(self) -> Plan:
        return self.record.plan

    @property
    def state(self) -> dict[str, Any]:
        return self.record.state

    def save(self) -> None:
        save_job(self.services.store, self.record)

    def acting(self, phase: str) -> None:
        """From here on a crash may leave effects whose outcome is unknown: a later attempt resumes."""
        self.record.phase, self.record.acting = phase, True
        self.save()

    def set_phase(self, phase: str) -> None:
        if self.record.phase != phase:
            self.record.phase = phase
            self.save()

    def progress(self, text: str, blocks: list[dict], force: bool = False) -> None:
        self.message.show(text, blocks, force)

    def park(self) -> None:
        """End this attempt without finishing the job (call it, then return from `run`): the job waits
        until `wake_job` runs it again. A park is not a lost worker: it does not count as an attempt."""
        self.parked = True

    # the runner -------------------------------------------------------------------------------------
    def execute(self) -> None:
        self.record.attempts += 1
        self.record.status = "running"
        self.save()
        started = self.services.clock.monotonic()
        self.kind.run(self)
        if self.parked:
            self.record.status = "waiting"
            self.record.attempts -= 1
            self.save()
            mark_finished(self.services.store, self.plan.id)
            return
        self.finish(self.services.clock.monotonic() - started)

    def finish(self, seconds: float, failure: str | None = None) -> None:
        try:
            report = self.kind.report(self, seconds, failure)
        except Exception:  # noqa: BLE001 - a job must end with a report, even when its kind cannot render one
            correlation_id = new_correlation_id()
            log.exception("job report failed", extra={"job": self.plan.id, "correlation_id": correlation_id})
            head = failure or f"Finished: {self.plan.summary}"
            text = f"{head} — the report could not be shown (reference {correlation_id})"
            report = Report(text, [blocks.section(f":warning: {text}")], outcome="error")
        self.record.status = "failed" if failure else "done"
        self.record.error = failure
        self.record.finished_at = self.services.clock.time()
        self.save()
        self.message.finish(report)
        if self.record.audit:
            self.services.authz.record_result(
                records.load(AuditRecord, self.record.audit),
                report.outcome,
                report.text[:300],
                approver=self.record.approved_by,
                request_ids=report.request_ids,
                seconds=round(seconds, 3),
            )
        mark_finished(self.services.store, self.plan.id)

    def fail(self, reason: str) -> None:
        """Report the job failed with what is known so far."""
        self.finish(0.0, failure=reason)


class _Heartbeat(threading.Thread):
    def __init__(self, services: Services, job_id: str, token: str):
        super().__init__(name=f"job-heartbeat-{job_id}", daemon=True)
        self.services, self.job_id, self.token = services, job_id, token
        self.done = threading.Event()

    def run(self) -> None:
        store = self.services.store
        while not self.done.wait(HEARTBEAT_SECONDS):
            try:
                mark_active(store, self.job_id, self.services.clock.time())
                if not store.renew_lease(_key(self.job_id), self.token, LEASE_TTL):
                    log.warning("job lost its lease", extra={"job": self.job_id})
            except ChatOpsError as exc:
                log.warning("job heartbeat failed", extra={"job": self.job_id, "error": str(exc)})


@capability.job(RUN_JOB)
def run_job(services: Services, job_id: str) -> None:
    record = load_job(services.store, job_id)
    if record is None or record.finished:
        mark_finished(services.store, job_id)
        return
    token = uuid.uuid4().hex
    if not services.store.acquire_lease(_key(job_id), token, LEASE_TTL):
        log.info("job already running elsewhere", extra={"job": job_id})
        return
    kind = services.registry.plan_kinds.get(record.plan.kind)
    if kind is None:  # a kind this version no longer has: say so instead of retrying forever
        log.error("job of an unknown plan kind", extra={"job": job_id, "kind": record.plan.kind})
        record.status, record.error = "failed", f"unknown plan kind {record.plan.kind!r}"
        save_job(services.store, record)
        mark_finished(services.store, job_id)
        services.store.release_lease(_key(job_id), token)
        return
    beat = _Heartbeat(services, job_id, token)
    beat.start()
    run = JobRun(services, record, kind)
    try:
        run.execute()
    except Exception as exc:  # noqa: BLE001 - the job is reported, never silently lost
        correlation_id = new_correlation_id()
        log.exception("job failed", extra={"job": job_id, "correlation_id": correlation_id})
        why = str(exc) if isinstance(exc, ChatOpsError) else f"an internal error (reference {correlation_id})"
        run.fail(f"The job stopped: {why}")
    finally:
        beat.done.set()
        services.store.release_lease(_key(job_id), token)
    if run.parked and kind.woken(run):
        wake_job(services, job_id)


def wake_job(services: Services, job_id: str) -> None:
    """Run a parked job again (its wait is over). Active first: should the queue lose the message, the
    resume sweep finds it."""
    mark_active(services.store, job_id, services.clock.time())
    services.queue.enqueue(RUN_JOB, job_id=job_id)


@capability.periodic("pipeline.resume", minute="*")
def resume_stale_jobs(services: Services) -> None:
    """Jobs whose worker stopped (no heartbeat for STALE_AFTER s, lease expired): run them again, or
    report them interrupted after MAX_ATTEMPTS."""
    for job_id in stale_jobs(services.store, STALE_AFTER, services.clock.time()):
        try:
            _resume_or_give_up(services, job_id)
        except ChatOpsError as exc:  # one job's trouble must not keep the others waiting
            log.warning("could not resume a job", extra={"job": job_id, "error": str(exc)})


def _resume_or_give_up(services: Services, job_id: str) -> None:
    """The one place that decides what becomes of a job whose worker stopped."""
    store = services.store
    if store.lease_holder(_key(job_id)) is not None:
        return
    record = load_job(store, job_id)
    if record is None or record.finished:
        mark_finished(store, job_id)
        return
    kind = services.registry.plan_kinds.get(record.plan.kind)
    if record.attempts >= MAX_ATTEMPTS and kind is not None:
        log.warning("job given up", extra={"job": job_id, "attempts": record.attempts})
        JobRun(services, record, kind).fail(
            f"The worker running this job stopped {record.attempts} times; giving up"
        )
        return
    log.warning("resuming a job whose worker stopped", extra={"job": job_id, "phase": record.phase})
    mark_active(store, job_id, services.clock.time())
    services.queue.enqueue(RUN_JOB, job_id=job_id)
