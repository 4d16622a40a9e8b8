"""`/incident show|reassign|escalate|note|snooze|priority|urgency`.

`show` reads at once (the interactive client, within Slack's few seconds: parts PagerDuty is too slow
to give in time are named as not shown). The changes name their targets now — a person, a policy, a
priority that is not in PagerDuty is refused here, before anything happens — are authorized with the
incident as their target (audited), and are made by the worker (`change_job`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.commands import CommandRequest, Reply
from bot.errors import ChatOpsError
from bot.registry import Capability
from handlers.pagerduty import changes, lookups, parsing
from handlers.pagerduty.change_job import request_change
from handlers.pagerduty.changes import Change
from handlers.pagerduty.common import client
from handlers.pagerduty.details import IncidentDetails, detail_reply
from handlers.pagerduty.events import normalize_incident

capability = Capability("handlers.pagerduty.incident_commands")
capability.read_permissions("incident.show")

SHOW_BUDGET = 2.0  # seconds of PagerDuty reads `/incident show` spends before it answers with what it has
TIMELINE = 10


def read_details(services, ref: str) -> IncidentDetails:
    """The incident, its newest log entries, its notes and its escalation level, as far as PagerDuty
    answers within SHOW_BUDGET (UserError when there is no such incident)."""
    started = time.monotonic()
    pd = client(services, interactive=True)
    details = IncidentDetails(lookups.get_incident(services, pd, ref))
    incident_id = str(details.incident["id"])
    policy_id = normalize_incident(details.incident).get("escalation_policy_id")

    def level() -> None:
        if policy_id:
            oncalls = pd.oncalls(escalation_policy_ids=[policy_id])
            details.level = changes.current_level(details.incident, oncalls)
            details.levels = len(pd.get_escalation_policy(policy_id).get("escalation_rules") or [])

    parts = {
        "the timeline": lambda: setattr(details, "log", pd.incident_log(incident_id, limit=TIMELINE)),
        "the notes": lambda: setattr(details, "notes", pd.incident_notes(incident_id)),
        "the escalation level": level,
    }
    for name, read in parts.items():
        if time.monotonic() - started > SHOW_BUDGET:
            details.missing.append(f"{name} (PagerDuty answered slowly; ask again)")
            continue
        try:
            read()
        except ChatOpsError as exc:
            details.missing.append(f"{name} ({exc})")
    return details


@capability.subcommand(
    "/incident",
    "show",
    permission="incident.show",
    usage=parsing.SHOW_USAGE,
    summary="An incident's details, its last 10 log entries and its notes, with its buttons.",
)
def show_incident(req: CommandRequest) -> Reply:
    ref = parsing.parse_incident_id(req.args, parsing.SHOW_USAGE)
    text, body = detail_reply(read_details(req.services, ref), req.viewer_zone())
    return Reply(text, body)


# the changes: each parses its arguments and names its targets (a Change), then `_ask` ---------------
def _reassign(args: str, services) -> Change:
    wanted = parsing.parse_reassign(args)
    if wanted.policy:
        policy = lookups.policy_named(services, wanted.who)
        return Change(
            kind="delegate", incident=wanted.incident, target_id=policy["id"], target_name=policy["name"]
        )
    user = lookups.user_named(services, wanted.who)
    return Change(kind="reassign", incident=wanted.incident, target_id=user["id"], target_name=user["name"])


def _escalate(args: str, services) -> Change:
    incident, level = parsing.parse_escalate(args)
    return Change(kind="escalate", incident=incident, level=level)


def _note(args: str, services) -> Change:
    incident, text = parsing.parse_note(args)
    return Change(kind="note", incident=incident, text=text)


def _snooze(args: str, services) -> Change:
    incident, seconds = parsing.parse_snooze(args)
    return Change(kind="snooze", incident=incident, seconds=seconds)


def _priority(args: str, services) -> Change:
    incident, name = parsing.parse_priority(args)
    priority = lookups.priority_named(services, name)
    return Change(kind="priority", incident=incident, target_id=priority["id"], target_name=priority["name"])


def _urgency(args: str, services) -> Change:
    incident, urgency = parsing.parse_urgency(args)
    return Change(kind="urgency", incident=incident, urgency=urgency)


CHANGE_COMMANDS: tuple[tuple[str, str, str, str, Callable[[str, Any], Change]], ...] = (
    (
        "reassign",
        "incident.reassign",
        parsing.REASSIGN_USAGE,
        "Reassign an incident to a person (by Slack mention, e-mail or name) or to an escalation policy.",
        _reassign,
    ),
    (
        "escalate",
        "incident.escalate",
        parsing.ESCALATE_USAGE,
        "Escalate an incident to the next level of its escalation policy (or to LEVEL).",
        _escalate,
    ),
    (
        "note",
        "incident.note",
        parsing.NOTE_USAGE,
        "Add a note to an incident (shown in its card's thread too).",
        _note,
    ),
    (
        "snooze",
        "incident.snooze",
        parsing.SNOOZE_USAGE,
        "Snooze an acknowledged incident for 1, 4 or 24 hours (it triggers again after).",
        _snooze,
    ),
    (
        "priority",
        "incident.priority",
        parsing.PRIORITY_USAGE,
        "Set an incident's priority (one of the PagerDuty account's).",
        _priority,
    ),
    (
        "urgency",
        "incident.urgency",
        parsing.URGENCY_USAGE,
        "Set an incident's urgency (high or low).",
        _urgency,
    ),
)


def _ask(build: Callable[[str, Any], Change]) -> Callable[[CommandRequest], Reply]:
    """The sub-command of a change: its targets named, authorized with the incident, handed to the worker."""

    def handle(req: CommandRequest) -> Reply:
        change = build(req.args, req.services)
        detail = f"{req.command} {req.name} {req.args}"[:300]
        audit = req.authorize(change.spec.permission, [change.incident], detail=detail)
        return request_change(req.services, change, req.actor, req.response_url, audit)

    return handle


for _name, _permission, _usage, _summary, _build in CHANGE_COMMANDS:
    capability.subcommand(
        "/incident", _name, permission=_permission, usage=_usage, summary=_summary, authorizes_targets=True
    )(_ask(_build))
