"""Making a requested change to a PagerDuty incident, on the worker (`pagerduty.change_incident`).

The request (a slash command, a card's button or menu, a modal) is authorized and audited where it is
made; this job reads the incident as it is now, refuses what PagerDuty would refuse or what is already
so (saying why), and acts as the PagerDuty user with the requester's Slack e-mail, else as
PAGERDUTY_FROM_EMAIL with a note on the incident naming the Slack user. Who asked is remembered until
the webhook that reports the change arrives (its thread line says so); a change PagerDuty sends no
webhook for (a snooze, an urgency change) is put on the card from PagerDuty's answer. The outcome goes
to the requester only (response_url, else an ephemeral message) and into the audit record.

A job that is run again (a retry after a failure, a worker that died) does not repeat a step it
already made: the steps done are kept per request. The change as settled is kept before it is sent, so
a run that finds it already so after an earlier run sent it takes it as made (that run may have died
between PagerDuty's answer and writing the step down); and a request whose requester has been told the
outcome is not told again.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from bot import records
from bot.authz import Actor, AuditRecord
from bot.commands import Reply
from bot.errors import ChatOpsError, UserError
from bot.queue import current_attempt
from bot.records import Record
from bot.registry import Capability
from bot.render import escape
from handlers.pagerduty import changes, lookups
from handlers.pagerduty.changes import Change
from handlers.pagerduty.common import ACTOR_TTL, ActingAs, OnBehalf, acting_as, actor_key, client
from handlers.pagerduty.effects import confirm_from_answer
from handlers.pagerduty.events import normalize_incident

capability = Capability("handlers.pagerduty.change_job")

log = logging.getLogger(__name__)

CHANGE_JOB = "pagerduty.change_incident"
MAX_ATTEMPTS = 3
RETRY_DELAY = 5.0
REQUEST_TTL = 86400


class Refused(UserError):
    """The change is not made: already so ("noop"), or PagerDuty would refuse it ("error")."""

    def __init__(self, result: str, text: str):
        super().__init__(text)
        self.result = result


class RequestSteps(Record):
    """What a request's job has done so far (under `_steps_key`)."""

    change: Change  # as settled on the first run (e.g. the escalation level it worked out)
    done: list[str] = []  # "change", "note", "card"; kept before "change" is sent (it may have been made)


def request_change(
    services,
    change: Change,
    actor: Actor,
    response_url: str | None,
    audit: AuditRecord | None,
    label: str = "",
) -> Reply:
    """Hand an authorized change to the worker; the caller reads that it is under way."""
    client(services)  # fail now, not on the worker, when PagerDuty is not configured
    services.queue.enqueue(
        CHANGE_JOB,
        change=records.to_dict(change),
        user_id=actor.user_id,
        channel=actor.channel_id,
        response_url=response_url,
        audit=records.to_dict(audit) if audit else None,
        request_id=uuid.uuid4().hex,
    )
    return Reply(change.pending(label or change.incident))


@capability.job(CHANGE_JOB, retries=MAX_ATTEMPTS - 1, retry_delay=RETRY_DELAY)
def change_incident(
    services,
    change: dict,
    user_id: str,
    request_id: str,
    channel: str | None = None,
    response_url: str | None = None,
    audit: dict | None = None,
    attempt: int | None = None,  # carried by jobs an earlier version put back on the queue
) -> None:
    wanted = records.load(Change, change)
    reply_to = (response_url, channel, user_id)
    told = f"{_steps_key(request_id)}:told"
    if services.store.get(told):  # an earlier run told the requester, then stopped before it ended
        return
    try:
        outcome = _make(services, wanted, user_id, request_id)
    except UserError as exc:  # refused, or something it names is not in PagerDuty
        result, outcome = getattr(exc, "result", "error"), exc.message
    except ChatOpsError as exc:
        if will_retry(exc):
            raise  # the queue runs the job again shortly
        result, outcome = "error", f":x: Could not change `{escape(wanted.incident)}`: {exc}"
    else:
        result = "ok"
    finish(services, reply_to, audit, result, outcome)
    services.store.set(told, "1", REQUEST_TTL)


def _steps_key(request_id: str) -> str:
    return f"pagerduty:request:{request_id}"


def _make(services, wanted: Change, user_id: str, request_id: str) -> str:
    """Make the change (the steps not made yet); the text for the requester. UserError: refused."""
    pd = client(services)
    key = _steps_key(request_id)
    steps = records.load_or_none(RequestSteps, services.store.get(key))
    current = lookups.get_incident(services, pd, wanted.incident)
    snapshot = normalize_incident(current)
    incident_id = str(current["id"])
    label = changes.incident_label(snapshot)
    if steps is None:
        change = _settle(pd, wanted, current, snapshot)
        refused = changes.refusal(change, snapshot)
        if refused:
            raise Refused(*refused)
        steps = RequestSteps(change=change.model_copy(update={"incident": incident_id}))
        services.store.set(key, records.dump(steps), REQUEST_TTL)  # before the change is sent
    elif "change" not in steps.done and _already_made(steps.change, current, snapshot):
        steps = _mark(services, key, steps, "change")  # an earlier run sent it, then stopped
    change = steps.change
    who = acting_as(services, user_id)
    slack_name = (services.slack.user_name(user_id) or user_id) if who.fallback else ""
    on_behalf = OnBehalf(user=user_id, fallback=who.fallback, email=who.email)
    if change.spec.confirmed_by:
        what = change.spec.confirmed_by.removeprefix("incident.")
        services.store.set(actor_key(incident_id, what), records.dump(on_behalf), ACTOR_TTL)
    answer: dict[str, Any] = current
    if "change" not in steps.done:
        answer = _perform(pd, change, incident_id, who, slack_name) or current
        steps = _mark(services, key, steps, "change")
    if who.fallback and change.kind != "note" and "note" not in steps.done:
        pd.add_note(incident_id, changes.fallback_note(change, slack_name), from_email=who.email)
        steps = _mark(services, key, steps, "note")
    if change.spec.confirmed_by is None and "card" not in steps.done:
        _confirm_on_card(services, pd, change, answer, who, on_behalf)
        _mark(services, key, steps, "card")
    account = f" as {who.email}" + (
        " (you have no PagerDuty user with your Slack e-mail)" if who.fallback else ""
    )
    return f":white_check_mark: {label} {change.outcome()} in PagerDuty{account}."


def _already_made(change: Change, current: dict[str, Any], snapshot: dict[str, Any]) -> bool:
    """Whether the incident already is as the change (sent by an earlier run of the request) makes it.
    A note or a snooze cannot be told from the incident's state: those are sent again."""
    if change.kind in ("note", "snooze"):
        return False
    if change.kind == "escalate":
        return current.get("escalation_level") == change.level
    refused = changes.refusal(change, snapshot)
    return refused is not None and refused[0] == "noop"


def _settle(pd, change: Change, current: dict[str, Any], snapshot: dict[str, Any]) -> Change:
    """The change with what it depends on worked out now: an escalation's level."""
    if change.kind != "escalate" or snapshot.get("status") == "resolved":
        return change
    label = changes.incident_label(snapshot)
    policy_id = snapshot.get("escalation_policy_id")
    if not policy_id:
        raise Refused("error", f":x: {label} has no escalation policy to escalate along.")
    policy = pd.get_escalation_policy(policy_id)
    levels = len(policy.get("escalation_rules") or [])
    level = changes.current_level(current, pd.oncalls(escalation_policy_ids=[policy_id]))
    target = change.level or (level + 1 if level else None)
    if target is None:
        raise Refused(
            "error",
            f":x: Which level of {escape(policy.get('name') or policy_id)} {label} is at cannot be told (its "
            f"assignee is not on call in it); give the level: `/incident escalate {label} 2`.",
        )
    refused = changes.escalation_refusal(label, str(policy.get("name") or policy_id), level, target, levels)
    if refused:
        raise Refused(*refused)
    return change.model_copy(update={"level": target})


def _perform(pd, change: Change, incident_id: str, who: ActingAs, slack_name: str) -> dict[str, Any] | None:
    if change.kind == "snooze":
        return pd.snooze_incident(incident_id, int(change.seconds or 0), from_email=who.email)
    if change.kind == "note":
        text = change.text or ""
        if who.fallback:
            text = changes.attributed_note(text, slack_name)
        pd.add_note(incident_id, text[: changes.NOTE_MAX_CHARS], from_email=who.email)
        return None
    return pd.change_incident(incident_id, changes.put_fields(change), from_email=who.email)


def _confirm_on_card(services, pd, change: Change, answer: dict[str, Any], who: ActingAs, on_behalf) -> None:
    user = pd.find_user_by_email(who.email)
    agent = str(user.get("name") or user.get("summary")) if user else who.email
    shown: dict[str, Any] = {}
    if change.kind == "snooze":
        until = [a.get("at") for a in answer.get("pending_actions") or [] if a.get("type") == "unacknowledge"]
        shown["snoozed_until"] = until[0] if until else None
        what = f"snoozed the incident for {changes.snooze_label(int(change.seconds or 0))}"
    else:
        what = f"changed the urgency to {change.urgency}"
    confirm_from_answer(services, answer, what, agent, on_behalf, **shown)


def _mark(services, key: str, steps: RequestSteps, step: str) -> RequestSteps:
    steps = steps.model_copy(update={"done": [*steps.done, step]})
    services.store.set(key, records.dump(steps), REQUEST_TTL)
    return steps


def will_retry(exc: ChatOpsError) -> bool:
    """The queue tries the job again (its `retries`) when the failure may pass and attempts remain;
    otherwise the job reports the failure itself."""
    return exc.retryable and current_attempt() < MAX_ATTEMPTS


def finish(
    services, reply_to: tuple[str | None, str | None, str], audit: dict | None, result: str, text: str
) -> None:
    """Record the outcome in the audit record and tell the requester (response_url, else ephemeral)."""
    response_url, channel, user_id = reply_to
    if audit:
        try:
            services.authz.record_result(records.load(AuditRecord, audit), result, text[:300])
        except ChatOpsError as exc:
            log.warning("could not record the audit result", extra={"error": str(exc)})
    try:
        if response_url:
            services.slack.respond(response_url, {"text": text, "response_type": "ephemeral"})
        elif channel:
            services.slack.post_ephemeral(channel, user_id, text)
    except ChatOpsError as exc:
        log.warning("could not tell the requester the outcome", extra={"error": str(exc)})
