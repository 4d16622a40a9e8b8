"""Shared plumbing of the PagerDuty capability: the client, store keys, channel routing, acting-as."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot import records
from bot.errors import ConfigError, UserError
from bot.records import Record
from handlers.pagerduty.changes import incident_label
from handlers.pagerduty.planning import PlannedWindow

if TYPE_CHECKING:
    from bot.adapters.pagerduty import PagerDuty
    from bot.services import Services

log = logging.getLogger(__name__)

MESSAGE_TTL = 30 * 86400  # incident id → its Slack message
PLANNED_TTL = 30 * 86400  # incident_key → the calendar window it came from
ACTOR_TTL = 15 * 60  # who pressed a button, until the webhook that reports it arrives
USER_CACHE_TTL = 600


def message_key(incident_id: str) -> str:
    return f"pagerduty:message:{incident_id}"


def number_key(number: int | str) -> str:
    """The incident number a card shows (#12) → its incident id."""
    return f"pagerduty:number:{number}"


def planned_key(incident_key: str) -> str:
    return f"pagerduty:planned:{incident_key}"


def actor_key(incident_id: str, what: str) -> str:
    """Who asked for a change from Slack; `what` is the V3 event that will report it, without its
    `incident.` prefix (`acknowledged`, `reassigned` …)."""
    return f"pagerduty:actor:{incident_id}:{what}"


class CardRecord(Record):
    """An incident's one Slack message (under `message_key`) and the state it shows."""

    channel: str
    ts: str
    incident: dict[str, Any]  # the flat snapshot (events.normalize_incident)
    planned: PlannedWindow | None = None
    latest: str | None = None  # the "Latest: …" line
    occurred_at: str | None = None  # of the newest event the card shows


class OnBehalf(Record):
    """Who pressed a button (under `actor_key`), until the webhook that reports the change arrives."""

    user: str
    fallback: bool = False  # no PagerDuty user has their Slack e-mail: the bot's From address was used
    email: str = ""


def card_label(services: Services, incident_id: str) -> str:
    """How the incident's card names it (`#12`), else its id."""
    card = records.load_or_none(CardRecord, services.store.get(message_key(incident_id)))
    return incident_label(card.incident) if card else incident_id


def client(services: Services, interactive: bool = False) -> PagerDuty:
    try:
        return services.adapter("pagerduty-interactive" if interactive else "pagerduty")
    except ConfigError as exc:
        log.warning("PagerDuty is not configured", extra={"error": str(exc)})
        raise UserError("PagerDuty is not set up on this bot yet: ask an admin to connect it.") from None


def channel_for(services: Services, incident: dict[str, Any], planned: PlannedWindow | None) -> str | None:
    """Calendar mapping first, then the per-service mapping, then the defaults."""
    policy = services.policy.pagerduty
    if planned and planned.channel:
        return planned.channel
    service_id = incident.get("service_id")
    if service_id and service_id in policy.channels:
        return policy.channels[service_id]
    return policy.default_channel or services.settings.SLACK_NOTIFY_CHANNEL or None


@dataclass(frozen=True)
class ActingAs:
    email: str
    fallback: bool  # True: the Slack user has no PagerDuty account; the bot's From address is used


def acting_as(services: Services, slack_user_id: str) -> ActingAs:
    """The PagerDuty user whose e-mail matches the Slack user's, else PAGERDUTY_FROM_EMAIL."""
    fallback = services.settings.PAGERDUTY_FROM_EMAIL or ""
    if not fallback:
        log.warning("PAGERDUTY_FROM_EMAIL is not set: PagerDuty changes from Slack are refused")
        raise UserError(
            "PagerDuty is not set up on this bot yet: ask an admin to give it the e-mail of a PagerDuty "
            "user to act as."
        )
    cache = f"pagerduty:user-for:{slack_user_id}"
    cached = services.store.get(cache)
    if cached is not None:
        return ActingAs(cached, False) if cached else ActingAs(fallback, True)
    email = services.slack.user_email(slack_user_id)
    found = client(services).find_user_by_email(email) if email else None
    resolved = str(found.get("email")) if found else ""
    services.store.set(cache, resolved, USER_CACHE_TTL)
    return ActingAs(resolved, False) if resolved else ActingAs(fallback, True)
