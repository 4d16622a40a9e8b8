"""Background work on Huey (Redis when `REDIS_URL` is set, SQLite otherwise).

Capabilities declare jobs and periodic jobs at import time with plain decorators; nothing touches Huey
until a process builds its `TaskQueue` from settings:

    @job("ecs.power", retries=2, retry_delay=5)
    def run_power_action(services, plan_id: str) -> None: ...

    @periodic("calendar.sync", minute="*")
    def sync_calendars(services) -> None: ...

    services.queue.enqueue("ecs.power", plan_id="...")

Job functions receive the process's `Services` first. A job is durable once `enqueue` returns: it
survives a web restart and is picked up by any `chatops worker` on the same store.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from huey import RedisHuey, SqliteHuey, crontab
from huey.consumer import Consumer

from bot.store import QueuedJob

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobSpec:
    name: str
    fn: Callable[..., Any]
    retries: int = 0
    retry_delay: int = 0
    cron: dict[str, str] | None = None  # set for periodic jobs (crontab fields)


_JOBS: dict[str, JobSpec] = {}


def job(name: str, retries: int = 0, retry_delay: int = 0):
    def register(fn):
        _JOBS[name] = JobSpec(name, fn, retries, retry_delay)
        return fn

    return register


def periodic(name: str, **cron: str):
    """A job the worker's scheduler enqueues on a crontab (`minute="*/5"`, `hour="9"` …)."""

    def register(fn):
        _JOBS[name] = JobSpec(name, fn, cron=cron or {"minute": "*"})
        return fn

    return register


def registered_jobs() -> dict[str, JobSpec]:
    return dict(_JOBS)


@dataclass
class _Binding:
    services: Services | None = None
    ready: threading.Event = field(default_factory=threading.Event)


class TaskQueue:
    def __init__(self, redis_url: str | None, data_dir: Path, services: Services):
        if redis_url:
            self.huey = RedisHuey("chatops", url=redis_url, results=False, store_none=False)
        else:
            Path(data_dir).mkdir(parents=True, exist_ok=True)
            self.huey = SqliteHuey("chatops", filename=str(Path(data_dir) / "queue.sqlite3"), results=False)
        self._binding = _Binding(services=services)
        self._tasks: dict[str, Any] = {}
        for spec in _JOBS.values():
            self._register(spec)

    def _register(self, spec: JobSpec) -> None:
        binding = self._binding

        def run(*args, **kwargs):
            services = binding.services
            started = time.monotonic()
            outcome = "error"
            try:
                if spec.cron is not None:
                    outcome = _run_periodic_once(services, spec)
                    return None
                result = spec.fn(services, *args, **kwargs)
                outcome = "ok"
                return result
            except Exception:
                log.exception("job failed", extra={"job": spec.name})
                raise
            finally:
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
            task = self.huey.task(name=spec.name, retries=spec.retries, retry_delay=spec.retry_delay)(run)
        self._tasks[spec.name] = task

    def enqueue(self, name: str, *args: Any, delay: float | None = None, **kwargs: Any) -> str:
        task = self._tasks.get(name)
        if task is None:
            raise KeyError(f"unknown job {name!r}")
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

    def consumer(self, workers: int = 4) -> Consumer:
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


def _run_periodic_once(services: Services, spec: JobSpec, now: float | None = None) -> str:
    """Every worker's scheduler enqueues periodic jobs; run each scheduled minute once across all of
    them, and never two runs of the same job at the same time. Returns the outcome label."""
    minute = int((now if now is not None else time.time()) // 60)
    if not services.store.set_nx(f"periodic:{spec.name}:{minute}", "1", ttl=180):
        return "skipped"
    with services.store.lock(f"periodic:{spec.name}", ttl=600) as held:
        if not held:
            return "overlap"
        spec.fn(services)
    return "ok"


class _ThreadFriendlyConsumer(Consumer):
    """Huey's consumer installs its own signal handlers in start(); our processes handle signals
    themselves (bot.worker) and the sandbox runs the consumer beside a console, so skip them."""

    def _set_signal_handlers(self):
        return None
