"""The `ecs.run` plan kind: a confirmed Cloud Assistant run as a durable job.

send      RunCommand per batch of ≤ 100 instances, each with a ClientToken derived from the plan and
          the batch; the InvokeId is saved at once. A worker that dies and resumes polls the saved
          invocations; one that died between sending and saving sends the same request again and
          ECS answers with the same InvokeId, so the command never runs twice.
poll      one DescribeInvocations per unfinished batch per look; the looks start 0.2 s apart and
          settle at 1 s (never 2ⁿ), plus one when the same command finished last time
          (bot.run_looks), until every instance is final or the timeout plus GRACE passes.
results   once a batch is final, its output (DescribeInvocationResults, 50 a page) is kept in the
          store beside the job; an instance ECS never reported on is "NoResult", not a failed run.
report    counts per status, failures first, successes grouped by identical output, and a file with
          every instance's full output.

run:invoke:<InvokeId>        → the plan id (for `/ecs run status|stop INVOKE_ID`)
run:output:<plan id>:<n>     batch n's outputs (JSON id → text)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Protocol

from bot.errors import ChatOpsError, UserError
from bot.pipeline.jobs import JOB_TTL, JobRecord, JobRun, load_job
from bot.pipeline.kinds import Attachment, PlanKind, Preview, Report
from bot.pipeline.plans import Plan
from bot.policy import Policy
from bot.registry import Capability
from bot.render import escape
from bot.run_looks import LookSchedule, command_key
from bot.run_model import NO_RESULT, InstanceRun
from handlers.ecs.run_plan import RUN_USAGE, RunPlan
from handlers.ecs.run_render import preview, progress, report

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.ecs.run_job")
log = logging.getLogger(__name__)

POLL_FIRST, POLL_FACTOR, POLL_CAP = 0.2, 1.5, 1.0
LEARN_SLICE = 0.1  # seconds: how soon a sleeping run sees what the runs beside it learnt
GRACE = 30.0  # how long past the command's timeout to wait for ECS's last word


def run_plan(plan: Plan) -> RunPlan:
    return RunPlan.from_dict(plan.body)


def invoke_key(invoke_id: str) -> str:
    return f"run:invoke:{invoke_id}"


def output_key(plan_id: str, batch: int) -> str:
    return f"run:output:{plan_id}:{batch}"


def runs_of(state: dict) -> dict[str, InstanceRun]:
    return {i: InstanceRun.from_dict(r) for i, r in (state.get("runs") or {}).items()}


def invoke_ids(state: dict) -> list[str]:
    return [b["invoke_id"] for b in state.get("batches") or () if b.get("invoke_id")]


def outputs(store, plan_id: str, batches: int) -> dict[str, str]:
    found: dict[str, str] = {}
    for n in range(batches):
        found.update(store.get_json(output_key(plan_id, n)) or {})
    return found


def find_run(services: Services, ident: str) -> JobRecord:
    """A run's job by any of its InvokeIds (or its plan id)."""
    if not ident:
        raise UserError("Name the run by its InvokeId (`t-…`, shown in its progress message).", RUN_USAGE)
    plan_id = services.store.get(invoke_key(ident)) or ident
    record = load_job(services.store, plan_id)
    if record is None and "." in plan_id:  # a runbook's run step: `<run id>.<step>.<try>`
        owner = load_job(services.store, plan_id.split(".", 1)[0])
        if owner is not None and owner.plan.kind != RunKind.name:
            run_id = escape(owner.plan.id)
            raise UserError(
                f"`{escape(ident)}` is a step of runbook run `{run_id}`: `/ecs runbook status {run_id}` "
                f"shows it and `/ecs runbook cancel {run_id}` stops it.",
                RUN_USAGE,
            )
    if record is None or record.plan.kind != RunKind.name:
        raise UserError(
            f"No run `{escape(ident)}` is known here (runs are kept for 7 days; the id is the `t-…` in the "
            "run's progress message).",
            RUN_USAGE,
        )
    return record


class RunHost(Protocol):
    """Where a run keeps its state and shows its progress: the `ecs.run` job itself (a `JobRun`), or a
    runbook's `run` step inside its run's job."""

    @property
    def state(self) -> dict[str, Any]: ...

    def save(self) -> None: ...

    def acting(self, phase: str) -> None: ...

    def set_phase(self, phase: str) -> None: ...

    def progress(self, text: str, blocks: list[dict], force: bool = False) -> None: ...


class CommandRun:
    """One attempt at a run: sending, polling, keeping results, showing progress. `stop_requested`, when
    given, is asked at every look: once it says yes, the unfinished invocations are stopped
    (StopInvocation) and the run ends with what ECS reports for them."""

    def __init__(
        self,
        services: Services,
        job: RunHost,
        plan: RunPlan,
        stop_requested: Callable[[], bool] | None = None,
    ):
        self.job, self.plan = job, plan
        self.services = services
        self.stop_requested = stop_requested
        self.ca = self.services.adapter("cloud_assistant")
        self.clock = self.services.clock
        state = job.state
        self.batches = state.setdefault(
            "batches", [{"ids": ids, "invoke_id": None, "done": False} for ids in plan.batches()]
        )
        self.runs = runs_of(state)
        self.names = {i.instance_id: i.name or i.instance_id for i in plan.targets}
        state.setdefault("sent_at", self.clock.time())
        # a resumed attempt keeps the first one's deadline
        left = plan.timeout + GRACE - max(0.0, self.clock.time() - state["sent_at"])
        self.deadline = self.clock.monotonic() + max(left, POLL_CAP)
        self.began = self.clock.monotonic() - max(0.0, self.clock.time() - state["sent_at"])
        self._saved: tuple | None = None  # what the last save wrote

    def save(self, if_changed: bool = False) -> None:
        """Keep the runs and batches in the job's record; `if_changed`: only when a look changed them
        (most looks of a long command see it still running, and a record is rewritten whole)."""
        runs = {i: r.as_dict() for i, r in self.runs.items()}
        snapshot = (runs, [dict(b) for b in self.batches])
        if if_changed and snapshot == self._saved:
            return
        self.job.state["runs"] = runs
        self.job.save()
        self._saved = snapshot

    def show(self, phase: str, force: bool = False) -> None:
        text, body = progress(
            self.plan,
            self.runs,
            invoke_ids(self.job.state),
            self.clock.monotonic() - self.began,
            phase,
            self.names,
        )
        self.job.progress(text, body, force=force)

    def send(self) -> None:
        for n, batch in enumerate(self.batches):
            if batch["invoke_id"] or batch["done"]:
                continue
            self.job.acting("sending")
            try:
                batch["invoke_id"] = self.ca.run_command(
                    batch["ids"],
                    self.plan.api_type,
                    self.plan.command,
                    self.plan.client_token(n),
                    timeout=self.plan.timeout,
                    region=self.plan.region,
                    username=self.plan.username,
                    working_dir=self.plan.working_dir,
                    name=f"chatops-{self.plan.plan_id}",
                )
            except ChatOpsError as exc:  # this batch never started: its instances say why
                code = getattr(exc, "code", None) or "Error"
                for iid in batch["ids"]:
                    self.runs[iid] = InstanceRun(iid, "Error", error_code=code, error_info=str(exc))
                batch["done"] = True
            else:
                self.services.store.set(invoke_key(batch["invoke_id"]), self.plan.plan_id, JOB_TTL)
            self.save()
            self.show("sending")

    def poll(self) -> None:
        plan = self.plan
        key = command_key(plan.region or "", plan.api_type, plan.command)
        looks = LookSchedule(POLL_FIRST, POLL_FACTOR, POLL_CAP, self.ca.finish_times.expected(key))
        while any(not b["done"] for b in self.batches):
            if self.clock.monotonic() >= self.deadline:
                break
            looks.expect(self.ca.finish_times.expected(key))
            looks.pause(self.clock.monotonic() - self.began)
            self._sleep_until_due(looks, key)
            looked_at = self.clock.monotonic() - self.began
            if (
                self.stop_requested is not None
                and not self.job.state.get("stopped")
                and self.stop_requested()
            ):
                self.stop()
            pending = [(n, b) for n, b in enumerate(self.batches) if not b["done"]]
            if len(pending) == 1:
                self._look(*pending[0])
            else:  # the batches side by side: a look costs one call's time, whatever their number
                with ThreadPoolExecutor(
                    max_workers=min(8, len(pending)), thread_name_prefix="run-look"
                ) as pool:
                    list(pool.map(lambda nb: self._look(*nb), pending))
            self.job.set_phase("running")
            self.save(if_changed=True)
            self.show("running")
            if any(not b["done"] for b in self.batches):
                looks.saw_running(looked_at)
                self.ca.finish_times.saw_running(key, looked_at)
            elif not self.job.state.get("stopped"):
                self.ca.finish_times.learn(key, looks.running_at, looked_at)
        for n, batch in enumerate(self.batches):
            if not batch["done"]:  # past the deadline: what ECS has, and no result for the rest
                self._collect(n, batch)
                for iid in batch["ids"]:
                    if not self.runs.get(iid, InstanceRun(iid)).finished:
                        self.runs[iid] = InstanceRun(iid, NO_RESULT, error_code=NO_RESULT)
                batch["done"] = True
        self.save()

    def _sleep_until_due(self, looks: LookSchedule, key: str) -> None:
        """Sleep until the next look (never past the deadline), in slices: what the runs of the same
        command learn meanwhile can bring the look forward."""
        while looks.due is not None:
            now = self.clock.monotonic()
            left = min(looks.due - (now - self.began), self.deadline - now)
            if left <= 0:
                return
            self.clock.sleep(min(left, LEARN_SLICE))
            looks.expect(self.ca.finish_times.expected(key))

    def stop(self) -> None:
        """StopInvocation on every unfinished batch (once per run: the flag is saved)."""
        for batch in self.batches:
            if batch["invoke_id"] and not batch["done"]:
                try:
                    self.ca.stop(batch["invoke_id"], region=self.plan.region)
                except ChatOpsError as exc:
                    log.warning(
                        "could not stop an invocation",
                        extra={"invoke_id": batch["invoke_id"], "error": str(exc)},
                    )
        self.job.state["stopped"] = True
        self.save()

    def _look(self, n: int, batch: dict) -> None:
        try:
            state = self.ca.invocation(
                batch["invoke_id"], region=self.plan.region, instances=len(batch["ids"])
            )
        except ChatOpsError as exc:  # retried already; the next look tries again
            log.warning(
                "could not read an invocation", extra={"invoke_id": batch["invoke_id"], "error": str(exc)}
            )
            return
        if state is None:
            return
        for r in state.instances:
            if r.instance_id in self.names:
                self.runs[r.instance_id] = r
        if all(self.runs.get(i, InstanceRun(i)).finished for i in batch["ids"]):
            self._collect(n, batch)

    def _collect(self, n: int, batch: dict) -> None:
        try:
            results = (
                self.ca.results(batch["invoke_id"], region=self.plan.region, instances=len(batch["ids"]))
                if batch["invoke_id"]
                else {}
            )
        except ChatOpsError as exc:
            log.warning(
                "could not read a run's output", extra={"invoke_id": batch["invoke_id"], "error": str(exc)}
            )
            return
        kept = {}
        for iid, r in results.items():
            if iid in self.names:
                kept[iid] = r.output or ""
                self.runs[iid] = r
        self.services.store.set_json(output_key(self.plan.plan_id, n), kept, JOB_TTL)
        batch["done"] = True


class RunKind(PlanKind):
    name = "ecs.run"

    def preview(self, plan: Plan, policy: Policy) -> Preview:
        return preview(run_plan(plan))

    def confirmed_text(self, plan: Plan, by: str) -> str:
        run = run_plan(plan)
        return (
            f":white_check_mark: Confirmed by <@{by}>: running on {len(run.targets)} instance(s) matching "
            f"`{run.selector}`. Progress is posted in this channel."
        )

    def run(self, job: JobRun) -> None:
        attempt = CommandRun(job.services, job, run_plan(job.plan))
        attempt.show("resuming" if job.resuming else "sending", force=True)
        attempt.send()
        attempt.poll()

    def report(self, job: JobRun, seconds: float, failure: str | None = None) -> Report:
        record = job.record
        return run_report(
            job.services,
            run_plan(job.plan),
            job.state,
            seconds,
            (record.confirmed_by, job.plan.origin.mention(), record.approved_by),
            failure,
        )


def run_report(
    services: Services,
    plan: RunPlan,
    state: dict,
    seconds: float,
    people: tuple[str | None, str, str | None],
    failure: str | None = None,
) -> Report:
    """A run's final report from its state: counts, failures, grouped outputs and the file with every
    output. `people`: who confirmed, who (or what) asked, who approved."""
    runs = runs_of(state)
    found = outputs(services.store, plan.plan_id, len(plan.batches()))
    for iid, text in found.items():
        if iid in runs:
            runs[iid] = InstanceRun(**{**runs[iid].as_dict(), "output": text})
    if failure:
        for iid in plan.target_ids:
            if not runs.get(iid, InstanceRun(iid)).finished:
                runs[iid] = InstanceRun(iid, NO_RESULT, error_code=NO_RESULT)
    elapsed = services.clock.time() - state.get("sent_at", services.clock.time())
    text, body, file = report(plan, runs, invoke_ids(state), max(seconds, elapsed), *people)
    failed = sum(1 for i in plan.target_ids if not runs.get(i, InstanceRun(i)).ok)
    outcome = "error" if failure else ("ok" if not failed else f"{failed} failed")
    if failure:
        text = f"{failure} — {text}"
    attachment = Attachment(
        f"ecs-run-{plan.plan_id}.txt", file, f"/ecs run {plan.selector}: every instance's output"
    )
    return Report(text, body, outcome, attachment, tuple(invoke_ids(state)))


KIND = capability.plan_kind(RunKind())
