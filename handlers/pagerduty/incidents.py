"""`/incident list|new|ack|resolve` and the Acknowledge / Resolve buttons of incident cards.

Reads answer at once (interactive client, short timeout). Writes are handed to the worker: the caller
gets "working on it" right away and the outcome through the response_url; the card itself is edited
when PagerDuty's webhook reports the change (handlers/pagerduty/change_job.py). The other changes —
reassign, escalate, note, snooze, priority, urgency — and `/incident show` are in `incident_commands`
and `card_actions`.
"""

from __future__ import annotations

import logging
import uuid

from bot import blocks, records
from bot.commands import ActionRequest, CommandRequest, Reply
from bot.errors import ChatOpsError, Conflict, UserError
from bot.registry import Capability
from bot.render import escape, plural
from handlers.pagerduty import controls, messages, parsing
from handlers.pagerduty.change_job import (
    MAX_ATTEMPTS,
    RETRY_DELAY,
    change_incident,
    finish,
    request_change,
    will_retry,
)
from handlers.pagerduty.changes import Change
from handlers.pagerduty.common import acting_as, card_label, client
from handlers.pagerduty.events import normalize_incident

capability = Capability("handlers.pagerduty.incidents")

log = logging.getLogger(__name__)

UPDATE_JOB = "pagerduty.update_incident"  # acknowledge / resolve jobs of an earlier version
CREATE_JOB = "pagerduty.create_incident"


# commands ------------------------------------------------------------------------------------------
@capability.subcommand(
    "/incident",
    "list",
    permission="incident.list",
    usage=parsing.LIST_USAGE,
    summary="Incidents by status (default: open = triggered and acknowledged), newest first.",
)
def list_incidents(req: CommandRequest) -> Reply:
    label, statuses = parsing.parse_list(req.args)
    found = client(req.services, interactive=True).list_incidents(statuses, limit=21)
    shown = [normalize_incident(i) for i in found[:20]]
    if not shown:
        return Reply(f"No {label} incidents in PagerDuty.")
    more = " (newest 20 shown)" if len(found) > 20 else ""
    body = [
        blocks.section(f"*{label.capitalize()} incidents*{more}"),
        blocks.section("\n".join(messages.list_line(i) for i in shown)),
        blocks.context("`/incident ack ID` · `/incident resolve ID` · `/incident new TITLE`"),
    ]
    return Reply(plural(len(shown), f"{label} incident"), body)


@capability.subcommand(
    "/incident",
    "new",
    permission="incident.new",
    usage=parsing.NEW_USAGE,
    summary="Open an incident (on the bot's default PagerDuty service unless --service names one).",
)
def new_incident(req: CommandRequest) -> Reply:
    spec = parsing.parse_new(req.args)
    service_id = spec.service_id or req.services.settings.PAGERDUTY_SERVICE_ID
    if not service_id:
        raise UserError("No default PagerDuty service is configured; pass `--service SERVICE_ID`.")
    client(req.services)  # fail now, not on the worker, when PagerDuty is not configured
    req.services.queue.enqueue(
        CREATE_JOB,
        title=spec.title,
        service_id=service_id,
        urgency=spec.urgency,
        user_id=req.actor.user_id,
        response_url=req.response_url,
        incident_key=f"chatops-new-{uuid.uuid4().hex}",
        audit=records.to_dict(req.audit) if req.audit else None,
    )
    return Reply(
        f":hourglass_flowing_sand: Opening “{escape(spec.title)}” on service `{escape(service_id)}`…"
    )


@capability.subcommand(
    "/incident", "ack", permission="incident.ack", usage=parsing.ACK_USAGE, summary="Acknowledge an incident."
)
def ack_incident(req: CommandRequest) -> Reply:
    change = Change(kind="ack", incident=parsing.parse_incident_id(req.args, parsing.ACK_USAGE))
    return request_change(req.services, change, req.actor, req.response_url, req.audit)


@capability.subcommand(
    "/incident",
    "resolve",
    permission="incident.resolve",
    usage=parsing.RESOLVE_USAGE,
    summary="Resolve an incident.",
)
def resolve_incident(req: CommandRequest) -> Reply:
    change = Change(kind="resolve", incident=parsing.parse_incident_id(req.args, parsing.RESOLVE_USAGE))
    return request_change(req.services, change, req.actor, req.response_url, req.audit)


# buttons -------------------------------------------------------------------------------------------
@capability.action(controls.ACK_ACTION, permission="incident.ack", authorizes_targets=True)
def ack_button(req: ActionRequest) -> Reply:
    return _button(req, "ack")


@capability.action(controls.RESOLVE_ACTION, permission="incident.resolve", authorizes_targets=True)
def resolve_button(req: ActionRequest) -> Reply:
    return _button(req, "resolve")


def _button(req: ActionRequest, kind: str) -> Reply:
    incident_id = button_incident(req.value)
    if incident_id is None:
        return Reply(":warning: This button does not name a PagerDuty incident; nothing was changed.")
    change = Change(kind=kind, incident=incident_id)
    audit = req.authorize(change.spec.permission, [incident_id], detail=f"button on incident {incident_id}")
    label = card_label(req.services, incident_id)
    return request_change(req.services, change, req.actor, req.response_url, audit, label)


def button_incident(value: str) -> str | None:
    """The incident id a card's control carries, checked as strictly as the slash command's argument
    (a button's value is input like any other); cards carry ids, never numbers."""
    if len(value) > 64:
        return None
    try:
        incident_id = parsing.parse_incident_id(value, "")
    except UserError:
        return None
    return None if incident_id.startswith("#") else incident_id


# jobs ------------------------------------------------------------------------------------------------
@capability.job(UPDATE_JOB, retries=MAX_ATTEMPTS - 1, retry_delay=RETRY_DELAY)
def update_incident(
    services,
    incident_id: str,
    status: str,
    user_id: str,
    response_url: str | None = None,
    audit: dict | None = None,
    attempt: int | None = None,
) -> None:
    """Acknowledge / resolve jobs an earlier version put on the queue: made as a change request."""
    change = Change(kind="ack" if status == "acknowledged" else "resolve", incident=incident_id)
    change_incident(
        services,
        records.to_dict(change),
        user_id,
        request_id=uuid.uuid4().hex,
        response_url=response_url,
        audit=audit,
    )


def open_incident(
    services,
    title: str,
    service_id: str,
    incident_key: str,
    urgency: str | None,
    user_id: str | None,
    details: str | None = None,
) -> dict:
    """Open an incident once per `incident_key` (a retry takes the one it opened) and return it,
    normalized. `user_id`: the Slack user it is opened for (None: the bot's own PagerDuty user)."""
    pd = client(services)
    email = acting_as(services, user_id).email if user_id else services.settings.PAGERDUTY_FROM_EMAIL
    try:
        created = pd.create_incident(
            title,
            service_id,
            incident_key=incident_key,
            urgency=urgency,
            from_email=email,
            details=details or f"Opened from Slack by <@{user_id}>.",
        )
    except Conflict:  # a retry of a request that did reach PagerDuty: take the incident
        created = pd.find_incident_by_key(incident_key) or {}
    return normalize_incident(created)


@capability.job(CREATE_JOB, retries=MAX_ATTEMPTS - 1, retry_delay=RETRY_DELAY)
def create_incident(
    services,
    title: str,
    service_id: str,
    user_id: str,
    incident_key: str,
    urgency: str | None = None,
    response_url: str | None = None,
    audit: dict | None = None,
    attempt: int | None = None,  # carried by jobs an earlier version put back on the queue
) -> None:
    try:
        inc = open_incident(services, title, service_id, incident_key, urgency, user_id)
    except ChatOpsError as exc:
        if will_retry(exc):
            raise  # the queue runs the job again shortly
        finish(
            services, (response_url, None, user_id), audit, "error", f":x: Could not open the incident: {exc}"
        )
        return
    link = (
        f"<{inc['html_url']}|{messages.incident_label(inc)}>"
        if inc.get("html_url")
        else messages.incident_label(inc)
    )
    finish(
        services,
        (response_url, None, user_id),
        audit,
        "ok",
        f":white_check_mark: Opened {link} “{escape(inc.get('title'))}” (`{inc.get('id')}`); its card follows in the channel.",
    )
