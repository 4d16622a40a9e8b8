"""Changes Slack users make to PagerDuty incidents, pure: what each kind needs (permission), how PagerDuty
reports it (the V3 webhook that confirms it, if any), when it is refused given the incident as it is
now, the PUT body it becomes, and how it reads.

Kinds: `ack`, `resolve`, `reassign` (to a user), `delegate` (to another escalation policy), `escalate`
(to a level), `note`, `snooze`, `priority`, `urgency`. PagerDuty has no V3 webhook for snoozes and
urgency changes: those are confirmed from PagerDuty's answer instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.records import Record
from bot.render import escape, plural

NOTE_MAX_CHARS = 25_000  # PagerDuty's limit on a note's content
SNOOZE_CHOICES = {"1h": 3600, "4h": 4 * 3600, "24h": 24 * 3600}
URGENCIES = ("high", "low")


@dataclass(frozen=True)
class Kind:
    permission: str
    confirmed_by: str | None  # the V3 event type that reports the change; None: PagerDuty sends none
    verb: str  # "Acknowledging" … (what the caller reads while it happens)


KINDS: dict[str, Kind] = {
    "ack": Kind("incident.ack", "incident.acknowledged", "Acknowledging"),
    "resolve": Kind("incident.resolve", "incident.resolved", "Resolving"),
    "reassign": Kind("incident.reassign", "incident.reassigned", "Reassigning"),
    "delegate": Kind("incident.reassign", "incident.delegated", "Reassigning"),
    "escalate": Kind("incident.escalate", "incident.escalated", "Escalating"),
    "note": Kind("incident.note", "incident.annotated", "Adding a note to"),
    "snooze": Kind("incident.snooze", None, "Snoozing"),
    "priority": Kind("incident.priority", "incident.priority_updated", "Setting the priority of"),
    "urgency": Kind("incident.urgency", None, "Setting the urgency of"),
}


class Change(Record):
    """One requested change (a job argument). `target_*` name the user, escalation policy or priority
    (resolved to PagerDuty ids when it was requested); `level` an escalation level (None: the next)."""

    kind: str
    incident: str  # an incident id, or "#12" (the number its card shows)
    target_id: str | None = None
    target_name: str | None = None
    level: int | None = None
    seconds: int | None = None
    text: str | None = None
    urgency: str | None = None

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    def outcome(self) -> str:
        """What the change did, for the one who asked: `acknowledged`, `reassigned to Bob` …"""
        return {
            "ack": "acknowledged",
            "resolve": "resolved",
            "reassign": f"reassigned to {escape(self.target_name)}",
            "delegate": f"reassigned to the escalation policy {escape(self.target_name)}",
            "escalate": f"escalated to level {self.level}",
            "note": "given your note",
            "snooze": f"snoozed for {snooze_label(self.seconds or 0)}",
            "priority": f"set to priority {escape(self.target_name)}",
            "urgency": f"set to {self.urgency} urgency",
        }[self.kind]

    def pending(self, label: str) -> str:
        """`Reassigning #3 to Bob Operator…` while the worker does it."""
        what = {
            "reassign": f" to {escape(self.target_name)}",
            "delegate": f" to the escalation policy {escape(self.target_name)}",
            "escalate": f" to level {self.level}" if self.level else " to the next level",
            "snooze": f" for {snooze_label(self.seconds or 0)}",
            "priority": f" to {escape(self.target_name)}",
            "urgency": f" to {self.urgency}",
        }.get(self.kind, "")
        return f":hourglass_flowing_sand: {self.spec.verb} `{escape(label)}`{what} in PagerDuty…"


def incident_label(incident: dict[str, Any]) -> str:
    """`#12` (the number PagerDuty shows), else the incident id."""
    number = incident.get("number")
    return f"#{number}" if number else str(incident.get("id") or "?")


def snooze_label(seconds: int) -> str:
    hours = seconds / 3600
    return plural(int(hours), "hour") if hours == int(hours) else f"{seconds // 60} minutes"


def refusal(change: Change, incident: dict[str, Any]) -> tuple[str, str] | None:
    """Why the change is not made to the incident as it is now: (audit result, text), or None.
    "noop" when it is already so, "error" when PagerDuty would refuse it."""
    label = incident_label(incident)
    status = incident.get("status")
    if status == "resolved" and change.kind != "note":
        return "noop", f":information_source: {label} is already resolved."
    if change.kind == "ack" and status == "acknowledged":
        return "noop", f":information_source: {label} is already acknowledged."
    if change.kind == "escalate" and incident.get("urgency") == "low":
        return "error", (
            f":x: {label} is low urgency; PagerDuty escalates only high-urgency incidents. Make it high "
            "urgency first, or reassign it. Nothing was changed."
        )
    if change.kind == "snooze" and status != "acknowledged":
        return "error", (
            f":x: {label} is {status or 'not acknowledged'}; PagerDuty snoozes only acknowledged "
            "incidents. Acknowledge it first, then snooze it. Nothing was changed."
        )
    same = {
        "reassign": incident.get("assignee_ids") == [change.target_id],
        "delegate": incident.get("escalation_policy_id") == change.target_id,
        "priority": incident.get("priority_id") == change.target_id,
        "urgency": incident.get("urgency") == change.urgency,
    }.get(change.kind, False)
    if same:
        return "noop", f":information_source: {label} is already {change.outcome()}."
    return None


def escalation_refusal(
    label: str, policy: str, current: int | None, wanted: int, levels: int
) -> tuple[str, str] | None:
    """Why escalating to level `wanted` is not done: (audit result, text), or None."""
    if levels < 1:
        return "error", f":x: The escalation policy {escape(policy)} of {label} has no levels to escalate to."
    if wanted > levels:
        at = f"at level {current} of {escape(policy)}, which" if current else f"on {escape(policy)}, which"
        return "error", (
            f":x: {label} is {at} has {plural(levels, 'level')}: there is no level {wanted} to escalate "
            "to. Reassign it instead. Nothing was changed."
        )
    if wanted < 1:
        return "error", f":x: Escalation levels start at 1 (asked: {wanted}). Nothing was changed."
    if current == wanted:
        return "noop", f":information_source: {label} is already at level {wanted} of {escape(policy)}."
    return None


def put_fields(change: Change) -> dict[str, Any]:
    """The PUT /incidents/{id} fields of a change made with that call."""
    if change.kind in ("ack", "resolve"):
        return {"status": "acknowledged" if change.kind == "ack" else "resolved"}
    if change.kind == "reassign":
        return {"assignments": [{"assignee": {"id": change.target_id, "type": "user_reference"}}]}
    if change.kind == "delegate":
        return {"escalation_policy": {"id": change.target_id, "type": "escalation_policy_reference"}}
    if change.kind == "escalate":
        return {"escalation_level": change.level}
    if change.kind == "priority":
        return {"priority": {"id": change.target_id, "type": "priority_reference"}}
    if change.kind == "urgency":
        return {"urgency": change.urgency}
    raise ValueError(f"{change.kind} is not made with PUT /incidents/{{id}}")


def attributed_note(text: str, slack_name: str) -> str:
    """A note written from Slack by someone without a PagerDuty user: it says who wrote it."""
    return f"{text}\n\n— {slack_name}, from Slack"


def fallback_note(change: Change, slack_name: str) -> str:
    """The note that names the Slack user when the bot's own PagerDuty user made the change."""
    return f"The incident was {change.outcome()} from Slack by {slack_name}, who has no PagerDuty user."


def current_level(incident: dict[str, Any], oncalls: list[dict[str, Any]]) -> int | None:
    """The escalation level an incident is at: PagerDuty's own field when the answer carries one, else
    the lowest level of its policy at which one of its assignees is on call (None: not known)."""
    level = incident.get("escalation_level")
    if isinstance(level, int) and not isinstance(level, bool) and level > 0:
        return level
    assignees = {
        str((a.get("assignee") or {}).get("id"))
        for a in incident.get("assignments") or []
        if isinstance(a, dict) and isinstance(a.get("assignee"), dict)
    }
    levels = [
        int(o["escalation_level"])
        for o in oncalls
        if str((o.get("user") or {}).get("id")) in assignees and isinstance(o.get("escalation_level"), int)
    ]
    return min(levels) if levels else None
