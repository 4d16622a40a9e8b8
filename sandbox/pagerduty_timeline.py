"""What one incident change leaves behind in the PagerDuty emulator: a log entry in the incident's
timeline (GET /incidents/{id}/log_entries) and, for the changes V3 webhooks announce, the V3 event and
its legacy V2 twin.

V3 has an event type for triggers, acknowledgements, un-acknowledgements, resolves, reopenings,
reassignments to a user (`incident.reassigned`), to another escalation policy (`incident.delegated`),
escalations, priority changes and notes (`incident.annotated`); none for snoozes or urgency changes,
which appear in the log only.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

from sandbox.pagerduty_world import ref

# V3 event type → the log entry type PagerDuty records for it.
LOG_TYPE = {
    "incident.triggered": "trigger_log_entry",
    "incident.acknowledged": "acknowledge_log_entry",
    "incident.unacknowledged": "unacknowledge_log_entry",
    "incident.resolved": "resolve_log_entry",
    "incident.reopened": "trigger_log_entry",
    "incident.reassigned": "assign_log_entry",
    "incident.delegated": "delegate_log_entry",
    "incident.escalated": "escalate_log_entry",
    "incident.annotated": "annotate_log_entry",
    "incident.priority_updated": "priority_change_log_entry",
}

# V3 event type → the legacy V2 message type.
V2_EVENT = {
    "incident.triggered": "incident.trigger",
    "incident.acknowledged": "incident.acknowledge",
    "incident.unacknowledged": "incident.unacknowledge",
    "incident.resolved": "incident.resolve",
    "incident.reassigned": "incident.assign",
    "incident.escalated": "incident.escalate",
    "incident.delegated": "incident.delegate",
    "incident.annotated": "incident.annotate",
}


def occurred_stamp(when: dt.datetime) -> str:
    """ISO 8601 with milliseconds, as webhooks carry `occurred_at`."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def log_entry(
    kind: str,
    inc: dict[str, Any],
    agent: dict[str, Any] | None,
    summary: str,
    at: str,
    channel: dict[str, Any] | None = None,
) -> dict[str, Any]:
    entry_id = "R" + secrets.token_hex(6).upper()
    return {
        "id": entry_id,
        "type": kind,
        "summary": summary,
        "self": f"https://api.pagerduty.test/log_entries/{entry_id}",
        "html_url": f"https://sandbox.pagerduty.test/incidents/{inc['id']}/log_entries/{entry_id}",
        "created_at": at,
        "agent": ref("user", agent, "users") if agent else None,
        "channel": channel or {"type": "api" if agent else "auto"},
        "incident": ref("incident", {"id": inc["id"], "summary": inc["title"]}, "incidents"),
    }


def note_data(inc: dict[str, Any], note: dict[str, Any]) -> dict[str, Any]:
    """`event.data` of `incident.annotated` (type incident_note)."""
    return {
        "id": note["id"],
        "type": "incident_note",
        "content": note["content"],
        "trimmed": False,
        "incident": ref("incident", {"id": inc["id"], "summary": inc["title"]}, "incidents"),
    }


def v3_event(event_type: str, data: dict[str, Any], agent: dict[str, Any] | None, at: str) -> dict[str, Any]:
    return {
        "id": "01" + secrets.token_hex(12).upper(),
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": at,
        "agent": ref("user", agent, "users") if agent else None,
        "client": {"name": "PagerDuty"} if agent else None,
        "data": data,
    }


def v2_message(
    event_type: str, rest: dict[str, Any], entry: dict[str, Any], note: dict[str, Any] | None, at: str
) -> dict[str, Any]:
    legacy_entry = dict(entry)
    if note is not None:
        legacy_entry["channel"] = {"type": "note", "summary": note["content"]}
    return {
        "id": str(uuid.uuid4()),
        "event": V2_EVENT.get(event_type, "incident." + event_type.split(".")[-1]),
        "created_on": at,
        "incident": {**rest, "service": {**rest["service"], "name": rest["service"]["summary"]}},
        "webhook": {"type": "webhook_reference"},
        "log_entries": [legacy_entry],
    }
