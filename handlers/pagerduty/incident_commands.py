"""`/incident show|reassign|escalate|note|snooze|priority|urgency`.

`show` reads at once (the interactive client, within Slack's few seconds: parts PagerDuty is too slow
to give in time are named as not shown). The changes name their targets now — a person, a policy, a
priority that is not in PagerDuty is refused here, before anything happens — are authorized with the
incident as their target (audited), and are made by the worker (`change_job`).
"""

from __future__ import annotations

import time

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


def _ask(req: CommandRequest, change: Change) -> Reply:
    detail = f"{req.command} {req.name} {req.args}"[:300]
    audit = req.authorize(change.spec.permission, [change.incident], detail=detail)
    return request_change(req.services, change, req.actor, req.response_url, audit)


@capability.subcommand(
    "/incident",
    "reassign",
    permission="incident.reassign",
    usage=parsing.REASSIGN_USAGE,
    summary="Reassign an incident to a person (by Slack mention, e-mail or name) or to an escalation policy.",
    authorizes_targets=True,
)
def reassign_incident(req: CommandRequest) -> Reply:
    wanted = parsing.parse_reassign(req.args)
    if wanted.policy:
        policy = lookups.policy_named(req.services, wanted.who)
        change = Change(
            kind="delegate", incident=wanted.incident, target_id=policy["id"], target_name=policy["name"]
        )
    else:
        user = lookups.user_named(req.services, wanted.who)
        change = Change(
            kind="reassign", incident=wanted.incident, target_id=user["id"], target_name=user["name"]
        )
    return _ask(req, change)


@capability.subcommand(
    "/incident",
    "escalate",
    permission="incident.escalate",
    usage=parsing.ESCALATE_USAGE,
    summary="Escalate an incident to the next level of its escalation policy (or to LEVEL).",
    authorizes_targets=True,
)
def escalate_incident(req: CommandRequest) -> Reply:
    incident, level = parsing.parse_escalate(req.args)
    return _ask(req, Change(kind="escalate", incident=incident, level=level))


@capability.subcommand(
    "/incident",
    "note",
    permission="incident.note",
    usage=parsing.NOTE_USAGE,
    summary="Add a note to an incident (it also shows in the card's thread).",
    authorizes_targets=True,
)
def note_incident(req: CommandRequest) -> Reply:
    incident, text = parsing.parse_note(req.args)
    return _ask(req, Change(kind="note", incident=incident, text=text))


@capability.subcommand(
    "/incident",
    "snooze",
    permission="incident.snooze",
    usage=parsing.SNOOZE_USAGE,
    summary="Snooze an acknowledged incident for 1, 4 or 24 hours (it triggers again after).",
    authorizes_targets=True,
)
def snooze_incident(req: CommandRequest) -> Reply:
    incident, seconds = parsing.parse_snooze(req.args)
    return _ask(req, Change(kind="snooze", incident=incident, seconds=seconds))


@capability.subcommand(
    "/incident",
    "priority",
    permission="incident.priority",
    usage=parsing.PRIORITY_USAGE,
    summary="Set an incident's priority (one of the PagerDuty account's).",
    authorizes_targets=True,
)
def prioritise_incident(req: CommandRequest) -> Reply:
    incident, name = parsing.parse_priority(req.args)
    priority = lookups.priority_named(req.services, name)
    return _ask(
        req,
        Change(kind="priority", incident=incident, target_id=priority["id"], target_name=priority["name"]),
    )


@capability.subcommand(
    "/incident",
    "urgency",
    permission="incident.urgency",
    usage=parsing.URGENCY_USAGE,
    summary="Set an incident's urgency (high or low).",
    authorizes_targets=True,
)
def set_incident_urgency(req: CommandRequest) -> Reply:
    incident, urgency = parsing.parse_urgency(req.args)
    return _ask(req, Change(kind="urgency", incident=incident, urgency=urgency))
