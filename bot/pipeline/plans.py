"""Plans: what a change will do, decided before anything changes, saved until a gate decides it.

    plan:<id>         the previewed plan (expires with the confirmation TTL)
    plan:<id>:used    who confirmed or cancelled it (set once: a double click or a replayed payload loses)

A plan is generic: its kind (`ecs.power`, …) names the `PlanKind` that previews, runs and reports it,
and `body` holds what only that kind understands (for a power action: the instance lists and options).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from bot import records
from bot.authz import Target
from bot.records import Record
from bot.store import Store

USED_TTL = 7 * 86400
MAX_ID = 64


class Origin(Record):
    """Who or what asked for a change: a Slack user, a schedule, a runbook run, an event."""

    kind: Literal["user", "schedule", "runbook", "event"] = "user"
    name: str  # the user id, schedule name, runbook run id or event id
    channel: str | None = None
    thread_ts: str | None = None  # the job's messages go in this thread of `channel` (a schedule's day)

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

    def mention(self) -> str:
        """How a message names it: `<@U…>` for a person, `schedule office-hours` otherwise."""
        return f"<@{self.name}>" if self.is_user else f"{self.kind} `{self.name}`"

    def audit_label(self) -> str | None:
        """None for a person (the audit record's `who` says it), else e.g. `schedule office-hours`."""
        return None if self.is_user else f"{self.kind} {self.name}"


class PlanTarget(Record):
    """A target as it was resolved: what scopes and approval rules look at when the plan is decided."""

    id: str
    tags: dict[str, str] = Field(default_factory=dict)
    name: str = ""
    region: str = ""

    def as_target(self) -> Target:
        return Target(self.id, dict(self.tags), self.name, self.region)


class Plan(Record):
    """A previewed change. `targets` are what authorization and approval rules see; `body` is the kind's."""

    id: str
    kind: str
    permission: str  # what deciding it needs, e.g. `ecs.stop`
    origin: Origin
    summary: str  # one line: "stop 12 instance(s) matching tag:env=dev in cn-hangzhou"
    created_at: float
    expires_at: float
    targets: tuple[PlanTarget, ...] = ()
    body: dict[str, Any] = Field(default_factory=dict)

    @property
    def requester(self) -> str | None:
        """The Slack user who asked, when a person did."""
        return self.origin.name if self.origin.is_user else None

    @property
    def channel(self) -> str | None:
        return self.origin.channel

    @property
    def target_ids(self) -> list[str]:
        return [t.id for t in self.targets]

    def authz_targets(self) -> list[Target]:
        return [t.as_target() for t in self.targets]


def targets_of(items: Any) -> tuple[PlanTarget, ...]:
    """Plan targets from anything with `instance_id` and `tags` (e.g. InstanceInfo)."""
    return tuple(
        PlanTarget(
            id=i.instance_id,
            tags=dict(i.tags or {}),
            name=getattr(i, "name", "") or "",
            region=getattr(i, "region", "") or "",
        )
        for i in items
    )


def _key(plan_id: str) -> str:
    return f"plan:{plan_id}"


def save_plan(store: Store, plan: Plan, now: float) -> None:
    store.set(_key(plan.id), records.dump(plan), max(1.0, plan.expires_at - now))


def load_plan(store: Store, plan_id: str, now: float) -> Plan | None:
    """The plan, unless it is unknown, malformed or expired."""
    if not plan_id or len(plan_id) > MAX_ID:
        return None
    raw = store.get(_key(plan_id))
    if not raw:
        return None
    plan = records.load_or_none(Plan, raw)
    if plan is None:
        return None
    return plan if plan.expires_at > now else None


def used_key(plan_id: str) -> str:
    """Set once when the plan is decided: confirmed, cancelled or sent for approval."""
    return _key(plan_id) + ":used"


def claim_plan(store: Store, plan: Plan, verdict: str) -> str | None:
    """Mark the plan used ("confirmed by <@U…>" / "cancelled by <@U…>"). None when this call won,
    otherwise the earlier verdict."""
    key = used_key(plan.id)
    if store.set_nx(key, verdict, USED_TTL):
        return None
    return store.get(key) or "used"


def discard_plan(store: Store, plan_id: str) -> None:
    store.delete(_key(plan_id))
