"""Background work on Huey (Redis when `REDIS_URL` is set, SQLite otherwise).

Capabilities declare jobs and periodic jobs on their `Capability` (bot.registry); nothing touches Huey
until a process builds its `TaskQueue` from its registry, which binds every job then:

    @capability.job("pagerduty.webhook_effect", retries=5, retry_delay=3)
    def webhook_effect(services, delivery: bytes) -> None: ...

    @capability.periodic("calendar.sync", minute="*")
    def sync_calendars(services) -> None: ...

    services.queue.enqueue("pagerduty.webhook_effect", delivery=b"...")
    services.queue.enqueue("calendar.sync")     # a periodic job, now: once more, even if this minute's ran

Job functions receive the process's `Services` first (given to the queue when a worker builds its
consumer). A job is durable once `enqueue` returns: it survives a web restart and is picked up by any
`chatops worker` on the same store; a worker killed while running it leaves it to another
(bot.queue_delivery), so every accepted job runs at least once.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huey import RedisHuey, crontab
from huey.consumer import Consumer

from bot.errors import ChatOpsError, new_correlation_id
from bot.queue_delivery import Heartbeat, ReliableRedisHuey, ReliableSqliteHuey
from bot.registry import JobSpec, Registry
from bot.store import QueuedJob

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass
class _Binding:
    """The services jobs run with: set when this process builds a consumer (only workers run jobs)."""

    services: Services | None = None


class TaskQueue:
    def __init__(self, redis_url: str | None, data_dir: Path, registry: Registry):
        if redis_url:
            self.huey = ReliableRedisHuey("chatops", url=redis_url, results=False, store_none=False)
        else:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            self.huey = ReliableSqliteHuey(
                "chatops", filename=str(Path(data_dir) / "queue.sqlite3"), results=False
            )
        self._binding = _Binding()
        self._tasks: dict[str, Any] = {}
        self._periodic: set[str] = set()
        for spec in registry.jobs.values():
            self._register(spec)

    def _register(self, spec: JobSpec) -> None:
        binding = self._binding

        def run(*args, **kwargs):
            services = binding.services
            started = time.monotonic()
            outcome = "error"
            attempt = int(kwargs.pop(ATTEMPT, 1))
            on_demand = bool(kwargs.pop(ON_DEMAND, False))
            current = _attempt.set(attempt)
            try:
                if spec.cron is not None:
                    outcome = _run_periodic_once(services, spec, on_demand=on_demand)
                    return None
                result = spec.fn(services, *args, **kwargs)
                outcome = "ok"
                return result
            except Exception as exc:
                if attempt > spec.retries or not should_retry(exc):
                    reference = new_correlation_id()
                    log.exception(
                        "job failed",
                        extra={"job": spec.name, "attempt": attempt, "correlation_id": reference},
                    )
                    report_given_up(services, spec.name, attempt, reference)
                    raise
                delay = retry_delay(spec, attempt, exc)
                self.enqueue(spec.name, *args, delay=delay, **{**kwargs, ATTEMPT: attempt + 1})
                outcome = "retry"
                log.warning(
                    "job will be tried again",
                    extra={"job": spec.name, "attempt": attempt, "delay": delay, "error": str(exc)},
                )
                return None
            finally:
                _attempt.reset(current)
                services.metrics.jobs.labels(spec.name, outcome).inc()
                level = logging.DEBUG if outcome in ("skipped", "overlap") else logging.INFO
                seconds = round(time.monotonic() - started, 3)
                log.log(
                    level, "job finished", extra={"job": spec.name, "outcome": outcome, "seconds": seconds}
                )

        run.__name__ = spec.name.replace(".", "_")
        if spec.cron is not None:
            task = self.huey.periodic_task(crontab(**spec.cron), name=spec.name)(run)
        else:
            task = self.huey.task(name=spec.name)(run)  # retries: ours, above (one mechanism)
        self._tasks[spec.name] = task
        if spec.cron is not None:
            self._periodic.add(spec.name)

    def enqueue(self, name: str, *args: Any, delay: float | None = None, **kwargs: Any) -> str:
        """Hand the job `name` to a worker. A periodic job enqueued here runs once more on demand (not
        in place of its scheduled runs), still never beside another run of itself."""
        task = self._tasks.get(name)
        if task is None:
            raise KeyError(f"unknown job {name!r}")
        if name in self._periodic:
            kwargs[ON_DEMAND] = True
        if delay:
            task.schedule(args, kwargs, delay=delay)
            return ""
        instance = task.s(*args, **kwargs)
        self.huey.enqueue(instance)
        return instance.id

    def durable_message(self, name: str, *args: Any, **kwargs: Any) -> QueuedJob | None:
        """The job serialized exactly as `enqueue` would store it, for a store that makes it durable
        in its own atomic step (`Store.admit_batch`, together with dedupe marks); opaque to the caller.
        None when the queue is not on Redis."""
        if not isinstance(self.huey, RedisHuey):
            return None
        task = self._tasks.get(name)
        if task is None:
            raise KeyError(f"unknown job {name!r}")
        instance = task.s(*args, id=_job_ids.next(), **kwargs)
        return QueuedJob("redis", self.huey.storage.queue_key, self.huey.serialize_task(instance))

    def pending(self) -> int:
        return self.huey.pending_count() + self.huey.scheduled_count()

    def live_workers(self, since: float) -> int:
        """How many workers have beaten their heartbeat since `since` (epoch seconds): consuming now."""
        return self.huey.storage.beating_since(since)

    def pending_requests(self) -> list[str]:
        """The names of the waiting jobs that someone asked for: every worker's scheduler enqueues the
        periodic jobs each minute, so those are left out."""
        waiting = list(self.huey.pending()) + list(self.huey.scheduled())
        return [
            task.name for task in waiting if task.name not in self._periodic or task.kwargs.get(ON_DEMAND)
        ]

    def consumer(self, services: Services, workers: int = 4) -> Consumer:
        """The consumer that runs this queue's jobs with `services` (the process's)."""
        self._binding.services = services
        # SQLite storage is polled: keep the idle poll short so a confirmed job starts at once
        # (Huey's default backs off to 10 s). Redis storage blocks on the list instead.
        return _ThreadFriendlyConsumer(
            self.huey,
            workers=workers,
            worker_type="thread",
            periodic=True,
            initial_delay=0.05,
            backoff=1.5,
            max_delay=0.5,
        )


ATTEMPT = "_attempt"  # the job keyword that carries the attempt number of a retry
ON_DEMAND = "_on_demand"  # the job keyword of a periodic job enqueued by hand
ON_DEMAND_WAIT = 10.0  # seconds an on-demand run waits for a scheduled run of the same job to finish
_attempt: contextvars.ContextVar[int] = contextvars.ContextVar("job_attempt", default=1)


class RetryJob(Exception):
    """Raised by a job that cannot finish yet (it waits for something else to happen first): it runs
    again after `delay` seconds (default: the job's retry delay), counted against its `retries`."""

    def __init__(self, reason: str, delay: float | None = None):
        super().__init__(reason)
        self.delay = delay


GIVEN_UP_EVERY = 600.0  # a job that keeps failing is reported at most this often


def report_given_up(services: Services, name: str, attempt: int, reference: str) -> None:
    """A job that failed for good after being accepted is said in the ops channel (at most once every
    GIVEN_UP_EVERY seconds per job name), so nothing accepted fails unseen."""
    try:
        if not services.store.set_nx(f"queue:given-up:{name}", reference, GIVEN_UP_EVERY):
            return
        events = getattr(services.policy, "events", None)
        channel = getattr(events, "ops_channel", None) or getattr(events, "default_channel", None)
        channel = channel or services.settings.SLACK_NOTIFY_CHANNEL
        if channel:
            services.slack.post(
                channel,
                f":x: A background job failed for good: `{name}` after {attempt} attempt(s) "
                f"(reference `{reference}` in the worker's log). Its work was not done.",
            )
    except Exception:  # noqa: BLE001 - reporting must never hide the failure it reports
        log.warning("could not report a failed job", extra={"job": name, "correlation_id": reference})


def current_attempt() -> int:
    """The attempt the running job is on: 1, then 2 for its first retry, …"""
    return _attempt.get()


def should_retry(exc: BaseException) -> bool:
    """A failure worth another attempt: not the caller's mistake, not an upstream refusal that would
    only repeat itself."""
    if isinstance(exc, RetryJob):
        return True
    if isinstance(exc, ChatOpsError):  # the adapters say which upstream failures may pass
        return exc.retryable
    return True  # a bug may be a race that passes; the job's own dedupe keeps a retry safe


def retry_delay(spec: JobSpec, attempt: int, exc: BaseException) -> float:
    """Seconds before attempt `attempt + 1`: what the job asked for, else the spec's delay doubled
    for each retry already made."""
    if isinstance(exc, RetryJob) and exc.delay is not None:
        return exc.delay
    return spec.retry_delay * 2 ** (attempt - 1)


class _JobIds:
    """Unique job ids without a syscall: a random per-process prefix and a counter. Huey's default,
    uuid4, reads the kernel's random source for every job, which releases the GIL: under load each
    webhook would queue behind the other threads once more just to get an id."""

    def __init__(self):
        self._renew()
        os.register_at_fork(after_in_child=self._renew)  # a forked child gets a prefix of its own

    def _renew(self) -> None:
        self._prefix = uuid.uuid4().hex
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}-{next(self._counter)}"


_job_ids = _JobIds()


def _run_periodic_once(
    services: Services, spec: JobSpec, now: float | None = None, on_demand: bool = False
) -> str:
    """Every worker's scheduler enqueues periodic jobs; run each scheduled minute once across all of
    them, and never two runs of the same job at the same time. A run `on_demand` (enqueued by hand)
    is not one of the minute's: it runs even when the minute's did, after waiting a little for a
    run in progress. Returns the outcome label."""
    if not on_demand:
        # The scheduler's minute: Huey schedules on the real clock, whatever services.clock says.
        minute = int((now if now is not None else time.time()) // 60)
        if not services.store.set_nx(f"periodic:{spec.name}:{minute}", "1", ttl=180):
            return "skipped"
    wait = ON_DEMAND_WAIT if on_demand else 0.0
    with services.store.lock(f"periodic:{spec.name}", ttl=600, wait=wait) as held:
        if not held:
            return "overlap"
        spec.fn(services)
    return "ok"


class _ThreadFriendlyConsumer(Consumer):
    """Huey's consumer installs its own signal handlers in start(); our processes handle signals
    themselves (bot.worker) and the sandbox runs the consumer beside a console, so skip them. It beats
    the queue's heartbeat while it runs (bot.queue_delivery: what a stopped worker held is put back)."""

    def _set_signal_handlers(self):
        return None

    def start(self):
        self._heartbeat = Heartbeat(self.huey.storage)
        try:
            self._heartbeat.beat_once()  # recover first: a worker that died just before us held tasks
        except Exception as exc:  # noqa: BLE001 - the store may be away; the heartbeat tries again
            log.warning("queue heartbeat failed", extra={"error": str(exc)})
        self._heartbeat.start()
        return super().start()

    def stop(self, graceful=False):
        try:
            return super().stop(graceful=graceful)
        finally:
            beat = getattr(self, "_heartbeat", None)
            if beat is not None:
                beat.stop()
