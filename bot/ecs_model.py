"""ECS as the bot sees it, free of any vendor SDK: what an instance looks like, what a power action did to
one instance, and the state rules of power actions (which statuses an action acts on, which mean
"already there", which are in flight). Handlers, planners and other capabilities import this module;
only `bot/adapters/ecs.py` (and `ecs_support.py`) talk to the SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Annotated, Any

from pydantic import BeforeValidator

from bot import records

STATUSES = ("Pending", "Running", "Starting", "Stopping", "Stopped")
ACTIONS = ("start", "stop", "reboot")
# StopInstances StoppedMode, by the names people type.
STOPPED_MODES = {"keep-charging": "KeepCharging", "stop-charging": "StopCharging"}

# The status each action ends in.
TARGET_STATUS = {"start": "Running", "stop": "Stopped", "reboot": "Running"}
# The statuses an action is sent for.
ACTS_ON = {"start": frozenset({"Stopped"}), "stop": frozenset({"Running"}), "reboot": frozenset({"Running"})}
# The statuses that mean "already there, or on the way there": skipped, then verified.
ALREADY = {
    "start": frozenset({"Running", "Starting", "Pending"}),
    "stop": frozenset({"Stopped", "Stopping"}),
    "reboot": frozenset(),
}
# The statuses an instance passes through on its way to the target (what a waiter polls for).
IN_FLIGHT = {"Stopped": ("Stopping",), "Running": ("Starting", "Pending", "Stopping")}

# Outcomes of InstanceResult.
ACCEPTED = "accepted"  # ECS took the request; the instance is on its way
ALREADY_THERE = "already"  # nothing sent: it already was in (or on its way to) the target state
DONE = "done"  # verified in the target state after the action
FAILED = "failed"  # ECS refused, the wait timed out, or the instance ended elsewhere
DRY_RUN_OK = "dry-run-ok"  # DryRun: ECS's checks passed


def normalize_status(value: str) -> str:
    """`running` → `Running`; raises ValueError for anything that is not an ECS status."""
    for status in STATUSES:
        if status.lower() == value.strip().lower():
            return status
    raise ValueError(f"{value!r} is not an ECS status ({', '.join(s.lower() for s in STATUSES)})")


def classify(action: str, status: str) -> str:
    """What a power action does with an instance in `status`: "act", "already" or "busy"."""
    if status in ACTS_ON[action]:
        return "act"
    if status in ALREADY[action]:
        return "already"
    return "busy"


def _text(value: Any) -> Any:
    return "" if value is None else value


def _tags(value: Any) -> Any:
    return {} if value is None else value


# Fields that older records (the events code's former InstanceFacts) stored as null when unknown.
Text = Annotated[str, BeforeValidator(_text)]
Tags = Annotated[dict[str, str], BeforeValidator(_tags)]


@dataclass(frozen=True)
class InstanceInfo:
    """An instance as ECS described it, or as the bot remembers it after it was released (then only
    some fields may be known: "" means unknown). The one instance model of the bot; persisted with
    `bot.records` (`as_dict` / `from_dict` are the same through plain dicts)."""

    instance_id: str
    name: Text = ""
    status: Text = ""
    instance_type: Text = ""
    private_ip: Text = ""
    tags: Tags = field(default_factory=dict, hash=False, compare=True)
    region: Text = ""
    zone: Text = ""
    spot_strategy: Text = "NoSpot"
    os_type: Text = ""
    start_time: Text = ""  # when it last started, as ECS says it (UTC, to the minute: 2026-12-01T10:04Z)

    def as_dict(self) -> dict:
        return {
            "instance_id": self.instance_id,
            "name": self.name,
            "status": self.status,
            "instance_type": self.instance_type,
            "private_ip": self.private_ip,
            "tags": dict(self.tags),
            "region": self.region,
            "zone": self.zone,
            "spot_strategy": self.spot_strategy,
            "os_type": self.os_type,
            "start_time": self.start_time,
        }

    @classmethod
    def from_dict(cls, data: dict) -> InstanceInfo:
        """Unknown keys are ignored; null fields (older records) read as unknown ("")."""
        return records.load(cls, data)


@dataclass(frozen=True)
class InstanceResult:
    instance_id: str
    outcome: str  # ACCEPTED | ALREADY_THERE | DONE | FAILED | DRY_RUN_OK
    code: str = ""  # ECS error code for FAILED (e.g. OperationDenied.NoStock), "200" when accepted
    message: str = ""
    previous_status: str = ""
    current_status: str = ""
    request_id: str = ""  # of the ECS call that reported it (the audit trail keeps these)

    @property
    def ok(self) -> bool:
        return self.outcome != FAILED

    def as_dict(self) -> dict:
        return records.to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> InstanceResult:
        return records.load(cls, data)


def settle(
    results: list[InstanceResult], statuses: dict[str, str | None], target: str
) -> list[InstanceResult]:
    """Combine what ECS said to the power call with the states the wait saw: ACCEPTED becomes DONE when
    the instance reached `target`; ACCEPTED / ALREADY_THERE that ended elsewhere, are still in flight
    (the wait timed out) or disappeared become FAILED with a reason. Results not waited on are kept."""
    out = []
    for r in results:
        if r.outcome not in (ACCEPTED, ALREADY_THERE) or r.instance_id not in statuses:
            out.append(r)
            continue
        status = statuses[r.instance_id]
        if status == target:
            out.append(
                replace(r, outcome=DONE if r.outcome == ACCEPTED else ALREADY_THERE, current_status=status)
            )
        elif status is None:
            out.append(
                replace(
                    r,
                    outcome=FAILED,
                    code="InvalidInstanceId.NotFound",
                    message="it disappeared during the run (released?)",
                    current_status="",
                )
            )
        elif status in IN_FLIGHT[target]:
            out.append(
                replace(
                    r,
                    outcome=FAILED,
                    code="WaitTimeout",
                    message=f"still {status} when the wait ended",
                    current_status=status,
                )
            )
        else:
            was = (
                "it was already there before; someone changed it since"
                if r.outcome == ALREADY_THERE
                else f"it did not reach {target}"
            )
            out.append(
                replace(
                    r,
                    outcome=FAILED,
                    code="UnexpectedStatus",
                    message=f"now {status}: {was}",
                    current_status=status,
                )
            )
    return out


class LookupDeadline(Exception):
    """A lookup did not finish before the caller's deadline (the caller hands it to the task queue)."""
