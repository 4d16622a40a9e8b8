"""The controls of an incident card (and of `/incident show`), pure: Acknowledge / Resolve / Add note
buttons, a Snooze menu while the incident is acknowledged, and an overflow menu for the rest
(Reassign…, Escalate while high urgency, Priority…, the other urgency, Details). Every control carries
the incident id in its value; the overflow's options carry `WHAT:ID`."""

from __future__ import annotations

from typing import Any

from bot import blocks
from handlers.pagerduty.changes import SNOOZE_CHOICES, snooze_label

ACK_ACTION = "pagerduty.acknowledge"
RESOLVE_ACTION = "pagerduty.resolve"
NOTE_ACTION = "pagerduty.note"
SNOOZE_ACTION = "pagerduty.snooze"
MORE_ACTION = "pagerduty.more"

# overflow options: what → its label (a card shows one of the two urgencies: the one it does not have)
MORE = {
    "reassign": "Reassign…",
    "escalate": "Escalate to the next level",
    "priority": "Set priority…",
    "urgency-high": "Make it high urgency",
    "urgency-low": "Make it low urgency",
    "show": "Details and timeline",
}


def more_value(what: str, incident_id: str) -> str:
    return f"{what}:{incident_id}"


def parse_more(value: str) -> tuple[str, str] | None:
    """(what, incident id) from an overflow option's value; None when it is not one of ours."""
    what, sep, incident_id = value.partition(":")
    return (what, incident_id) if sep and what in MORE and incident_id else None


def snooze_value(incident_id: str, choice: str) -> str:
    return f"{choice}:{incident_id}"


def parse_snooze(value: str) -> tuple[int, str] | None:
    """(seconds, incident id) from a Snooze menu option's value."""
    choice, sep, incident_id = value.partition(":")
    return (SNOOZE_CHOICES[choice], incident_id) if sep and choice in SNOOZE_CHOICES and incident_id else None


def incident_controls(incident: dict[str, Any]) -> dict[str, Any] | None:
    """The actions block for an open incident (None once it is resolved)."""
    status = str(incident.get("status") or "triggered")
    incident_id = str(incident.get("id") or "")
    if status not in ("triggered", "acknowledged") or not incident_id:
        return None
    elements = []
    if status == "triggered":
        elements.append(blocks.button("Acknowledge", ACK_ACTION, incident_id, "primary"))
    elements.append(blocks.button("Resolve", RESOLVE_ACTION, incident_id, "danger"))
    elements.append(blocks.button("Add note", NOTE_ACTION, incident_id))
    if status == "acknowledged":
        choices = [
            blocks.option(f"Snooze {snooze_label(seconds)}", snooze_value(incident_id, choice))
            for choice, seconds in SNOOZE_CHOICES.items()
        ]
        elements.append(blocks.select("Snooze…", SNOOZE_ACTION, choices))
    low = incident.get("urgency") == "low"
    hidden = {"urgency-low", "escalate"} if low else {"urgency-high"}  # PagerDuty escalates high urgency only
    options = [
        blocks.option(label, more_value(what, incident_id))
        for what, label in MORE.items()
        if what not in hidden
    ]
    elements.append(blocks.overflow(MORE_ACTION, options))
    return blocks.actions(*elements, block_id=f"pagerduty:{incident_id}")
