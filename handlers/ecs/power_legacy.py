"""Power jobs accepted before power actions ran on the change pipeline: taken over, not lost.

Earlier versions kept a confirmed power job under `ecs:job:<id>` (with its lease at `ecs:job:<id>:lease`)
and listed it in the sorted set `ecs:jobs:active`. A job still listed there after an upgrade is moved
into the pipeline's job record (results, progress message, audit record and attempts kept) and run by
`pipeline.run`, which resumes it as it would any job whose worker stopped. The periodic job keeps the
name the earlier versions scheduled (`ecs.power.resume`), so it is the same minute tick.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot.pipeline.jobs import RUN_JOB, JobRecord, load_job, mark_active, save_job
from bot.pipeline.plans import Origin
from bot.registry import Capability
from handlers.ecs.plan import PowerPlan
from handlers.ecs.power import as_plan

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.ecs.power_legacy")
log = logging.getLogger(__name__)

LEGACY_ACTIVE = "ecs:jobs:active"
LEGACY_STALE_AFTER = 60.0
_ACTING = ("sending", "waiting")  # the statuses after which an earlier attempt may have acted


def adopt(services: Services, job_id: str) -> bool:
    """Move one legacy job into the pipeline; True when it was (or had already been) adopted."""
    store = services.store
    key = f"ecs:job:{job_id}"
    if store.get(key + ":lease") is not None:
        return False  # an older worker still runs it
    data = store.get_json(key)
    if not data or data.get("status") in ("done", "failed") or load_job(store, job_id) is not None:
        store.delete(key)
        return True
    power = PowerPlan.from_dict(data["plan"])
    origin = Origin(kind="user", name=power.requester, channel=power.channel)
    record = JobRecord(
        plan=as_plan(power, origin),
        status="running" if data.get("attempts") else "queued",
        phase=data.get("status") or "",
        acting=data.get("status") in _ACTING,
        state={"results": data.get("results") or {}},
        progress_channel=data.get("progress_channel"),
        progress_ts=data.get("progress_ts"),
        audit=data.get("audit"),
        confirmed_by=data.get("confirmed_by"),
        attempts=int(data.get("attempts") or 0),
        created_at=float(data.get("created_at") or services.clock.time()),
    )
    save_job(store, record)
    mark_active(store, job_id, services.clock.time())
    services.queue.enqueue(RUN_JOB, job_id=job_id)
    store.delete(key)
    log.warning("took over a power job of an earlier version", extra={"job": job_id})
    return True


@capability.periodic("ecs.power.resume", minute="*")
def adopt_legacy_power_jobs(services: Services) -> None:
    store = services.store
    now = services.clock.time()
    for job_id in store.zrange_by_score(LEGACY_ACTIVE, 1, now - LEGACY_STALE_AFTER, limit=100):
        if adopt(services, job_id):
            store.zadd(LEGACY_ACTIVE, job_id, 0)
    store.zremove_below(LEGACY_ACTIVE, 1)
