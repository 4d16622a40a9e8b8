"""The Slack side of a PagerDuty event (runs on the worker): one effect per event, whatever the duplicates.

- `incident.triggered` posts the incident card in the mapped channel and remembers incident id →
  (channel, ts) in the store;
- every later event edits that card (newest state wins; events older than what the card shows only
  add their thread line) and adds a thread reply saying who did what.
The effect is claimed on the event id (a retried job or a duplicate that slipped past the endpoint does
nothing), and the card of one incident is edited under a lock, so two events of the same incident on two
workers cannot both post a card. An event that arrives before its incident's `triggered` is put back
on the queue a few times, then posts the card itself.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from bot import records
from bot.errors import ChatOpsError
from bot.queue import RetryJob, current_attempt
from bot.render import parse_time
from dedupe import ClaimStatus, dedupe_key
from handlers.pagerduty import messages
from handlers.pagerduty.common import (
    MESSAGE_TTL,
    CardRecord,
    OnBehalf,
    actor_key,
    channel_for,
    client,
    message_key,
    number_key,
    planned_key,
)
from handlers.pagerduty.events import WebhookEvent, normalize_incident
from handlers.pagerduty.planning import PlannedWindow

log = logging.getLogger(__name__)

EFFECT_NAMESPACE = "pd-effect"
WAIT_FOR_TRIGGER_ATTEMPTS = 4
WAIT_FOR_TRIGGER_DELAY = 2.0


class IncidentBusy(Exception):
    """Another worker holds this incident's card; the job is retried."""


def apply_event(services, payload: dict[str, Any]) -> str:
    """The Slack effect of one event, once. An update whose incident has no card yet waits for the
    card (`RetryJob`: the queue runs the job again shortly) a few times, then posts one itself."""
    attempt = current_attempt()
    event = WebhookEvent.from_job(payload)
    held_for = float(services.policy.pagerduty.effect_claim_seconds)
    effects = services.deduper(EFFECT_NAMESPACE, pending_ttl=held_for)
    key = dedupe_key("event", event.event_id)
    claim = effects.claim(key)
    if claim.status is not ClaimStatus.CLAIMED:
        services.metrics.dedupe_hits.labels("pagerduty-effect", claim.status.value).inc()
        if claim.status is ClaimStatus.BUSY:  # another worker is on it, or stopped on it: look again
            raise RetryJob("another worker holds this event's effect", delay=min(held_for, 30.0))
        return claim.status.value
    try:
        outcome = _apply(services, event, attempt)
    except BaseException:
        effects.release(key, str(claim.token))
        raise
    if outcome == "deferred":
        effects.release(key, str(claim.token))
        raise RetryJob("waiting for the incident's card", delay=WAIT_FOR_TRIGGER_DELAY)
    effects.confirm(key, str(claim.token))
    return outcome


def card_lock(services, incident_id: str):
    """One worker at a time edits an incident's card; a worker that stopped holding it gives it up
    after `pagerduty.effect_claim_seconds` (as it does the event's effect)."""
    held_for = float(services.policy.pagerduty.effect_claim_seconds)
    return services.store.lock(f"pagerduty-incident:{incident_id}", ttl=held_for, wait=min(15.0, held_for))


def _apply(services, event: WebhookEvent, attempt: int) -> str:
    incident_id = str(event.incident.get("id") or "")
    if not incident_id:
        log.warning("PagerDuty event without an incident id; ignored", extra={"event_id": event.event_id})
        return "ignored"
    store = services.store
    with card_lock(services, incident_id) as held:
        if not held:
            raise IncidentBusy(incident_id)
        raw = store.get(message_key(incident_id))
        # an unreadable card record is an error (the job is retried), never a reason to post a second card
        record = records.load(CardRecord, raw) if raw else None
        if record is None:
            if event.event_type != "incident.triggered" and attempt < WAIT_FOR_TRIGGER_ATTEMPTS:
                return "deferred"
            return _post_card(services, event)
        return _update_card(services, event, record)


# Events after which a snooze no longer holds (PagerDuty cancels it on a status change or reassignment;
# not on `incident.acknowledged`, whose webhook may arrive after the snooze that followed it).
_ENDS_SNOOZE = frozenset(
    {
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reopened",
        "incident.reassigned",
        "incident.delegated",
        "incident.escalated",
    }
)


def _snapshot(services, event: WebhookEvent, previous: dict[str, Any] | None) -> dict[str, Any]:
    """The incident as the card should show it after this event."""
    incident = dict(previous or {})
    if event.event_type in _ENDS_SNOOZE:
        incident.pop("snoozed_until", None)
    if event.incident.get("partial"):
        for k in ("id", "html_url", "title"):
            if event.incident.get(k) and not incident.get(k):
                incident[k] = event.incident[k]
        if previous is None:
            incident.update(_fetch(services, incident["id"]))
    else:
        incident.update({k: v for k, v in event.incident.items() if v not in (None, "", [])})
        if event.incident.get("assignees") == [] and event.event_type in (
            "incident.reassigned",
            "incident.resolved",
        ):
            incident["assignees"] = incident["assignee_ids"] = []
        if event.event_type == "incident.priority_updated":  # also when the priority was removed
            incident["priority"] = event.incident.get("priority")
            incident["priority_id"] = event.incident.get("priority_id")
    status = messages.STATUS_FOR_EVENT.get(event.event_type)
    if status and event.incident.get("partial"):
        incident["status"] = status
    return incident


def _fetch(services, incident_id: str) -> dict[str, Any]:
    """Full incident data when the event carried only a reference (e.g. a note arriving first)."""
    try:
        return normalize_incident(client(services).get_incident(incident_id))
    except ChatOpsError as exc:
        log.warning(
            "could not fetch incident for its card", extra={"incident": incident_id, "error": str(exc)}
        )
        return {}


def _post_card(services, event: WebhookEvent) -> str:
    incident = _snapshot(services, event, None)
    planned = (
        records.load_or_none(PlannedWindow, services.store.get(planned_key(incident["incident_key"])))
        if incident.get("incident_key")
        else None
    )
    channel = channel_for(services, incident, planned)
    if not channel:
        log.warning(
            "no channel for PagerDuty incident (set SLACK_NOTIFY_CHANNEL or policy pagerduty.channels)",
            extra={"incident": incident.get("id")},
        )
        return "no-channel"
    latest = None
    if event.event_type != "incident.triggered":
        latest = messages.latest_line(event.event_type, event.agent, event.occurred_at, services.timezone)
    text, blocks = messages.incident_card(incident, services.timezone, planned, latest)
    posting = f"pagerduty:card-posting:{incident['id']}"
    # An attempt that stopped between posting and remembering the card left this mark: the card may
    # be in the channel already — take it over instead of posting a second one.
    found = _card_in_channel(services, channel, str(incident["id"])) if services.store.get(posting) else None
    if found:
        services.slack.update(channel, found, text, blocks)
        card_channel, card_ts = channel, found
    else:
        services.store.set(posting, "1", MESSAGE_TTL)
        posted = services.slack.post(channel, text, blocks)
        card_channel, card_ts = posted.channel, posted.ts
    record = CardRecord(
        channel=card_channel,
        ts=card_ts,
        incident=incident,
        planned=planned,
        latest=latest,
        occurred_at=event.occurred_at,
    )
    services.store.set(message_key(str(incident["id"])), records.dump(record), MESSAGE_TTL)
    services.store.delete(posting)
    if incident.get("number"):  # so `/incident ack 12` finds the incident the card shows as #12
        services.store.set(number_key(incident["number"]), str(incident["id"]), MESSAGE_TTL)
    if event.event_type != "incident.triggered":
        _thread_reply(services, event, record)
    return "posted"


def _card_in_channel(services, channel: str, incident_id: str) -> str | None:
    """The ts of this incident's card among the channel's latest messages (its controls carry the
    incident's id), if an earlier attempt posted it."""
    wanted = f"pagerduty:{incident_id}"
    try:
        for m in services.slack.recent_messages(channel, limit=1000):
            if any(isinstance(b, dict) and b.get("block_id") == wanted for b in m.get("blocks") or []):
                return str(m.get("ts"))
    except ChatOpsError as exc:
        log.warning("could not look for an earlier card", extra={"incident": incident_id, "error": str(exc)})
    return None


def _update_card(services, event: WebhookEvent, record: CardRecord) -> str:
    newer = _is_newer(event.occurred_at, record.occurred_at)
    snooze_ended = event.event_type == "incident.unacknowledged" and bool(
        record.incident.get("snoozed_until")
    )
    if event.event_type == "incident.triggered" and not newer:
        return "already-posted"
    if newer:
        latest = record.latest
        if event.event_type != "incident.triggered":
            latest = messages.latest_line(event.event_type, event.agent, event.occurred_at, services.timezone)
        record = record.model_copy(
            update={
                "incident": _snapshot(services, event, record.incident),
                "occurred_at": event.occurred_at,
                "latest": latest,
            }
        )
        text, blocks = messages.incident_card(
            record.incident, services.timezone, record.planned, record.latest
        )
        services.slack.update(record.channel, record.ts, text, blocks)
        services.store.set(message_key(str(record.incident["id"])), records.dump(record), MESSAGE_TTL)
    if event.event_type != "incident.triggered":
        _thread_reply(services, event, record, snooze_ended)
    return "updated"


def _thread_reply(services, event: WebhookEvent, record: CardRecord, snooze_ended: bool = False) -> None:
    on_behalf = _take_on_behalf(services, str(record.incident.get("id")), event.event_type)
    text = messages.activity_text(
        event.event_type, event.agent, record.incident, event.note, on_behalf, snooze_ended=snooze_ended
    )
    services.slack.post(record.channel, text, thread_ts=record.ts)


def _take_on_behalf(services, incident_id: str, event_type: str) -> OnBehalf | None:
    """Who asked for the change this event reports, from Slack (remembered by the change job); the
    record is used once, so a later change made in PagerDuty itself is not put down to them."""
    key = actor_key(incident_id, event_type.removeprefix("incident."))
    found = records.load_or_none(OnBehalf, services.store.get(key))
    if found is not None:
        services.store.delete(key)
    return found


def confirm_from_answer(
    services, incident: dict[str, Any], what: str, agent: str | None, on_behalf: OnBehalf | None, **shown: Any
) -> bool:
    """A change PagerDuty sends no webhook for (a snooze, an urgency change), confirmed from its answer:
    the card shows `incident` (PagerDuty's answer) and `shown` (e.g. snoozed_until), and its thread says
    who did `what`. The card keeps the time of the newest webhook it shows. False when the incident has
    no card here."""
    incident_id = str(incident.get("id") or "")
    store = services.store
    with card_lock(services, incident_id) as held:
        if not held:
            raise IncidentBusy(incident_id)
        record = records.load_or_none(CardRecord, store.get(message_key(incident_id)))
        if record is None:
            return False
        answer = {k: v for k, v in normalize_incident(incident).items() if v not in (None, "")}
        now = dt.datetime.fromtimestamp(services.clock.time(), dt.UTC)
        latest = messages.latest_line("", agent, now.isoformat(), services.timezone, what=what)
        record = record.model_copy(
            update={"incident": {**record.incident, **answer, **shown}, "latest": latest}
        )
        text, blocks = messages.incident_card(
            record.incident, services.timezone, record.planned, record.latest
        )
        services.slack.update(record.channel, record.ts, text, blocks)
        store.set(message_key(incident_id), records.dump(record), MESSAGE_TTL)
        reply = messages.activity_text("", agent, record.incident, on_behalf=on_behalf, what=what)
        services.slack.post(record.channel, reply, thread_ts=record.ts)
    return True


def _is_newer(occurred_at: str | None, than: str | None) -> bool:
    new, old = parse_time(occurred_at), parse_time(than)
    if new is None or old is None:
        return True
    return new >= old
