"""Where power plans and power jobs live in the store.

    ecs:plan:<id>         the previewed plan (expires with the confirmation TTL)
    ecs:plan:<id>:used    who confirmed or cancelled it (set once: a double click or a replayed payload loses)
    ecs:job:<id>          the job: plan, status, per-instance results, progress message, audit record
    ecs:job:<id>:lease    held by the worker running it, renewed by its heartbeat
    ecs:jobs:active       sorted set: job id → last heartbeat (0 once finished)

A job whose heartbeat stopped and whose lease expired belongs to a crashed worker; the periodic
`ecs.power.resume` picks it up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bot.store import Store
from handlers.ecs.plan import PowerPlan

JOB_TTL = 7 * 86400
ACTIVE = "ecs:jobs:active"
LEASE_TTL = 30.0


def _plan_key(plan_id: str) -> str:
    return f"ecs:plan:{plan_id}"


def save_plan(store: Store, plan: PowerPlan) -> None:
    ttl = max(1.0, plan.expires_at - time.time())
    store.set_json(_plan_key(plan.plan_id), plan.as_dict(), ttl)


def load_plan(store: Store, plan_id: str, now: float | None = None) -> PowerPlan | None:
    if not plan_id or len(plan_id) > 64:
        return None
    data = store.get_json(_plan_key(plan_id))
    if not data:
        return None
    plan = PowerPlan.from_dict(data)
    if plan.expires_at <= (now if now is not None else time.time()):
        return None
    return plan


def claim_plan(store: Store, plan: PowerPlan, verdict: str) -> str | None:
    """Mark the plan used ("confirmed by U…" / "cancelled by U…"). Returns None when this call won,
    otherwise the earlier verdict."""
    key = _plan_key(plan.plan_id) + ":used"
    if store.set_nx(key, verdict, JOB_TTL):
        return None
    return store.get(key) or "used"


def discard_plan(store: Store, plan_id: str) -> None:
    store.delete(_plan_key(plan_id))


@dataclass
class JobState:
    plan: PowerPlan
    status: str = "queued"  # queued | running | sending | waiting | done | failed
    results: dict[str, dict] = field(default_factory=dict)  # instance id → InstanceResult.as_dict()
    progress_channel: str | None = None
    progress_ts: str | None = None
    audit: dict[str, Any] | None = None
    confirmed_by: str | None = None
    attempts: int = 0
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def as_dict(self) -> dict:
        return {
            "plan": self.plan.as_dict(),
            "status": self.status,
            "results": self.results,
            "progress_channel": self.progress_channel,
            "progress_ts": self.progress_ts,
            "audit": self.audit,
            "confirmed_by": self.confirmed_by,
            "attempts": self.attempts,
            "error": self.error,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }

    @classmethod
    def from_dict(cls, data: dict) -> JobState:
        fields = dict(data)
        fields["plan"] = PowerPlan.from_dict(data["plan"])
        return cls(**fields)


def _job_key(plan_id: str) -> str:
    return f"ecs:job:{plan_id}"


def save_job(store: Store, job: JobState) -> None:
    store.set_json(_job_key(job.plan.plan_id), job.as_dict(), JOB_TTL)


def load_job(store: Store, plan_id: str) -> JobState | None:
    data = store.get_json(_job_key(plan_id))
    return JobState.from_dict(data) if data else None


def heartbeat(store: Store, plan_id: str, now: float | None = None) -> None:
    store.zadd(ACTIVE, plan_id, now if now is not None else time.time())


def mark_finished(store: Store, plan_id: str) -> None:
    store.zadd(ACTIVE, plan_id, 0)
    store.zremove_below(ACTIVE, 1)


def stale_jobs(store: Store, older_than: float, now: float | None = None) -> list[str]:
    """Active jobs whose last heartbeat is older than `older_than` seconds."""
    now = now if now is not None else time.time()
    return store.zrange_by_score(ACTIVE, 1, now - older_than, limit=100)


def take_lease(store: Store, plan_id: str, token: str) -> bool:
    return store.set_nx(_job_key(plan_id) + ":lease", token, LEASE_TTL)


def renew_lease(store: Store, plan_id: str, token: str) -> bool:
    return store.compare_and_set(_job_key(plan_id) + ":lease", token, token, LEASE_TTL)


def lease_held(store: Store, plan_id: str) -> bool:
    return store.get(_job_key(plan_id) + ":lease") is not None


def release_lease(store: Store, plan_id: str, token: str) -> None:
    store.compare_and_delete(_job_key(plan_id) + ":lease", token)
