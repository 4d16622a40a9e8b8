"""When an unexpected `Stopped` may be answered with a start — pure.

Never when the stop was asked of this bot (a person's /ecs stop, a schedule), never when it was expected
(a system maintenance event, a preemptible instance being reclaimed), never for stale events, and at most
`max_per_hour` restarts per instance. "ignore" means the rule does not apply (nothing is reported);
"skip" is reported with its reason; "restart" carries a short detail for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot import records
from bot.intents import Intent
from handlers.events.routing import selector_matches
from handlers.events.stored import MaintenanceMarker


@dataclass(frozen=True)
class RestartDecision:
    action: str  # "restart" | "skip" | "ignore"
    reason: str

    @property
    def restart(self) -> bool:
        return self.action == "restart"


def _intent_reason(intent: Intent) -> str:
    if intent.source == "command":
        who = f"<@{intent.actor}>" if intent.actor else "someone"
        return f"stopped on purpose by {who} through this bot (/ecs {intent.action})"
    if intent.source == "schedule":
        return f"stopped on purpose by the schedule {intent.actor or ''}".rstrip()
    return f"stopped on purpose ({intent.source} {intent.action})"


def decide_restart(
    *,
    enabled: bool,
    state: str | None,
    tags: dict[str, str] | None,
    selector: dict[str, str],
    intent: Intent | None,
    maintenance: MaintenanceMarker | dict[str, Any] | None,
    interrupted: bool,
    event_age_seconds: float | None,
    max_event_age_seconds: float,
    restarts_last_hour: int,
    max_per_hour: int,
    current_status: str | None = None,
) -> RestartDecision:
    if not enabled or state != "Stopped":
        return RestartDecision("ignore", "not an unexpected stop")
    if tags is None:
        return RestartDecision("ignore", "instance tags unknown")
    if not selector_matches(selector, tags):
        return RestartDecision("ignore", "instance not selected for auto-restart")
    if intent is not None and intent.action in ("stop", "reboot"):
        return RestartDecision("skip", _intent_reason(intent))
    if maintenance:
        if not isinstance(maintenance, MaintenanceMarker):
            maintenance = records.load(MaintenanceMarker, maintenance)
        what = maintenance.event or "system maintenance"
        status = maintenance.status or "scheduled"
        return RestartDecision("skip", f"expected stop: {what} ({status})")
    if interrupted:
        return RestartDecision("skip", "the preemptible instance is being reclaimed")
    if event_age_seconds is not None and event_age_seconds > max_event_age_seconds:
        return RestartDecision("skip", f"the stop happened {int(event_age_seconds // 60)} minutes ago")
    if restarts_last_hour >= max_per_hour:
        return RestartDecision(
            "skip", f"already restarted {restarts_last_hour}× in the last hour (limit {max_per_hour})"
        )
    if current_status is not None and current_status != "Stopped":
        return RestartDecision("skip", f"it is {current_status} now")
    return RestartDecision("restart", f"restart {restarts_last_hour + 1} of at most {max_per_hour} per hour")
