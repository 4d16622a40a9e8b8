"""`/incident list|new|ack|resolve` and the Acknowledge / Resolve buttons of incident cards.

Reads answer at once (interactive client, short timeout). Writes are handed to the worker: the caller
gets "working on it" right away and the outcome through the response_url; the card itself is edited
when PagerDuty's webhook reports the change. Writes run as the PagerDuty user with the caller's Slack
e-mail, else as PAGERDUTY_FROM_EMAIL (and the thread reply says so).
"""

from __future__ import annotations

import logging
import uuid

from bot import blocks, records
from bot.authz import AuditRecord
from bot.commands import ActionRequest, CommandRequest, Reply
from bot.errors import ChatOpsError, Conflict, UserError
from bot.queue import current_attempt
from bot.registry import Capability
from bot.render import escape, plural
from handlers.pagerduty import messages, parsing
from handlers.pagerduty.common import ACTOR_TTL, OnBehalf, acting_as, actor_key, client, number_key
from handlers.pagerduty.events import normalize_incident

capability = Capability("handlers.pagerduty.incidents")

log = logging.getLogger(__name__)

UPDATE_JOB = "pagerduty.update_incident"
CREATE_JOB = "pagerduty.create_incident"
MAX_ATTEMPTS = 3
RETRY_DELAY = 5.0
_VERB = {"acknowledged": ("Acknowledging", "acknowledged"), "resolved": ("Resolving", "resolved")}


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
    incident_id = parsing.parse_incident_id(req.args, parsing.ACK_USAGE)
    return _request(req.services, incident_id, "acknowledged", req.actor.user_id, req.response_url, req.audit)


@capability.subcommand(
    "/incident",
    "resolve",
    permission="incident.resolve",
    usage=parsing.RESOLVE_USAGE,
    summary="Resolve an incident.",
)
def resolve_incident(req: CommandRequest) -> Reply:
    incident_id = parsing.parse_incident_id(req.args, parsing.RESOLVE_USAGE)
    return _request(req.services, incident_id, "resolved", req.actor.user_id, req.response_url, req.audit)


# buttons -------------------------------------------------------------------------------------------
@capability.action(messages.ACK_ACTION, permission="incident.ack", authorizes_targets=True)
def ack_button(req: ActionRequest) -> Reply:
    return _button(req, "incident.ack", "acknowledged")


@capability.action(messages.RESOLVE_ACTION, permission="incident.resolve", authorizes_targets=True)
def resolve_button(req: ActionRequest) -> Reply:
    return _button(req, "incident.resolve", "resolved")


def _button(req: ActionRequest, permission: str, status: str) -> Reply:
    incident_id = _button_incident(req.value)
    if incident_id is None:
        return Reply(":warning: This button does not name a PagerDuty incident; nothing was changed.")
    audit = req.authorize(permission, [incident_id], detail=f"button on incident {incident_id}")
    return _request(req.services, incident_id, status, req.actor.user_id, req.response_url, audit)


def _button_incident(value: str) -> str | None:
    """The incident id a card's button carries, checked as strictly as the slash command's argument
    (a button's value is input like any other); cards carry ids, never numbers."""
    if len(value) > 64:
        return None
    try:
        incident_id = parsing.parse_incident_id(value, "")
    except UserError:
        return None
    return None if incident_id.startswith("#") else incident_id


def _request(services, incident_id, status, user_id, response_url, audit: AuditRecord | None) -> Reply:
    client(services)
    services.queue.enqueue(
        UPDATE_JOB,
        incident_id=incident_id,
        status=status,
        user_id=user_id,
        response_url=response_url,
        audit=records.to_dict(audit) if audit else None,
    )
    return Reply(f":hourglass_flowing_sand: {_VERB[status][0]} `{incident_id}` in PagerDuty…")


# jobs ------------------------------------------------------------------------------------------------
@capability.job(UPDATE_JOB, retries=MAX_ATTEMPTS - 1, retry_delay=RETRY_DELAY)
def update_incident(
    services,
    incident_id: str,
    status: str,
    user_id: str,
    response_url: str | None = None,
    audit: dict | None = None,
    attempt: int | None = None,  # carried by jobs an earlier version put back on the queue
) -> None:
    verb = _VERB[status][1]
    try:
        pd = client(services)
        if incident_id.startswith("#"):  # the number a card shows
            found = _by_number(services, pd, incident_id[1:])
            if found is None:
                _finish(
                    services,
                    response_url,
                    audit,
                    "error",
                    f":x: No open incident {incident_id} is known here; give its id (`Q1ABC23DEF`, "
                    "from `/incident list`) or the number on its card.",
                )
                return
            incident_id = found
        current = pd.get_incident(incident_id)
        label = messages.incident_label(normalize_incident(current))
        if current.get("status") == "resolved":
            _finish(
                services, response_url, audit, "noop", f":information_source: {label} is already resolved."
            )
            return
        if current.get("status") == status:
            _finish(services, response_url, audit, "noop", f":information_source: {label} is already {verb}.")
            return
        who = acting_as(services, user_id)
        services.store.set(
            actor_key(incident_id, status),
            records.dump(OnBehalf(user=user_id, fallback=who.fallback, email=who.email)),
            ACTOR_TTL,
        )
        pd.update_incident(incident_id, status, from_email=who.email)
    except ChatOpsError as exc:
        if _will_retry(exc):
            raise  # the queue runs the job again shortly
        _finish(services, response_url, audit, "error", f":x: Could not mark `{incident_id}` {verb}: {exc}")
        return
    note = f" as {who.email}" + (
        " (you have no PagerDuty user with your Slack e-mail)" if who.fallback else ""
    )
    _finish(services, response_url, audit, "ok", f":white_check_mark: {label} {verb} in PagerDuty{note}.")


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
        pd = client(services)
        who = acting_as(services, user_id)
        try:
            created = pd.create_incident(
                title,
                service_id,
                incident_key=incident_key,
                urgency=urgency,
                from_email=who.email,
                details=f"Opened from Slack by <@{user_id}>.",
            )
        except Conflict:  # a retry of a request that did reach PagerDuty: take the incident
            created = pd.find_incident_by_key(incident_key) or {}
    except ChatOpsError as exc:
        if _will_retry(exc):
            raise  # the queue runs the job again shortly
        _finish(services, response_url, audit, "error", f":x: Could not open the incident: {exc}")
        return
    inc = normalize_incident(created)
    link = (
        f"<{inc['html_url']}|{messages.incident_label(inc)}>"
        if inc.get("html_url")
        else messages.incident_label(inc)
    )
    _finish(
        services,
        response_url,
        audit,
        "ok",
        f":white_check_mark: Opened {link} “{escape(inc.get('title'))}” (`{inc.get('id')}`); its card follows in the channel.",
    )


def _by_number(services, pd, number: str) -> str | None:
    """The id of the incident whose card shows #number: remembered when its card was posted, else
    found among the open incidents."""
    known = services.store.get(number_key(number))
    if known:
        return known
    for incident in pd.list_incidents(statuses=["triggered", "acknowledged"], limit=100):
        if str(incident.get("incident_number") or incident.get("number") or "") == number:
            return str(incident["id"])
    return None


def _will_retry(exc: ChatOpsError) -> bool:
    """The queue tries the job again (its `retries`) when the failure may pass and attempts remain;
    otherwise the job reports the failure itself."""
    return exc.retryable and current_attempt() < MAX_ATTEMPTS


def _finish(services, response_url: str | None, audit: dict | None, result: str, text: str) -> None:
    if audit:
        try:
            services.authz.record_result(records.load(AuditRecord, audit), result, text[:300])
        except ChatOpsError as exc:
            log.warning("could not record the audit result", extra={"error": str(exc)})
    if response_url:
        try:
            services.slack.respond(response_url, {"text": text, "response_type": "ephemeral"})
        except ChatOpsError as exc:
            log.warning("could not answer through the response_url", extra={"error": str(exc)})
