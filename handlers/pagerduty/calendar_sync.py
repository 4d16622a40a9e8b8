"""Calendar → PagerDuty incidents, every minute on the worker (once per minute across workers).

For each calendar (CALENDAR_ICS_URLS, plus the policy's `calendars`, which also map a calendar to a
service, a channel, a lead time and resolve-at-end): fetch it conditionally (ETag / Last-Modified,
the validators and the last body kept in the store, so restarts and other workers reuse them), expand
the occurrences around now, plan (handlers/pagerduty/planning.py) and act. Every action is claimed in
the store before it acts and PagerDuty itself refuses a second open incident with the same
`incident_key`, so re-syncs, restarts and several workers never open two incidents for one occurrence.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import replace
from typing import Any

from bot import records
from bot.errors import ChatOpsError, Conflict
from bot.records import Record
from bot.registry import Capability
from dedupe import ClaimStatus, dedupe_key
from handlers.pagerduty.common import PLANNED_TTL, client, planned_key
from handlers.pagerduty.planning import (
    WATCH_AFTER_END,
    AddNote,
    CalendarConfig,
    Opened,
    OpenIncident,
    ResolveIncident,
    occurrence_summary,
    opened_state,
    plan,
)

capability = Capability("handlers.pagerduty.calendar_sync")

log = logging.getLogger(__name__)

CLAIM_NAMESPACE = "pd-calendar"
FEED_TTL = 2 * 86400
LOOKAHEAD = dt.timedelta(hours=1)


class FeedCache(Record):
    """A calendar's last body (base64) and its validators, for conditional fetches."""

    etag: str | None = None
    last_modified: str | None = None
    body: str | None = None


@capability.periodic("pagerduty.calendar_sync", minute="*")
def calendar_sync(services) -> None:
    sync_all(services)


def calendar_configs(services) -> list[CalendarConfig]:
    policy = services.policy
    default_service = services.settings.PAGERDUTY_SERVICE_ID
    configs: dict[str, CalendarConfig] = {}
    for url in services.settings.CALENDAR_ICS_URLS:
        configs[url] = CalendarConfig(
            url=url,
            service_id=default_service,
            lead=dt.timedelta(minutes=policy.pagerduty.calendar_lead_minutes),
            resolve_at_end=policy.pagerduty.calendar_resolve_at_end,
        )
    for cal in policy.calendars:
        configs[cal.url] = CalendarConfig(
            url=cal.url,
            service_id=cal.service_id or default_service,
            channel=cal.channel,
            lead=dt.timedelta(minutes=cal.lead_minutes),
            resolve_at_end=cal.resolve_at_end,
        )
    return list(configs.values())


def sync_all(services, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or dt.datetime.now(dt.UTC)
    totals: dict[str, Any] = {"opened": 0, "notes": 0, "resolved": 0, "errors": []}
    for config in calendar_configs(services):
        try:
            result = sync_calendar(services, config, now)
        except ChatOpsError as exc:
            log.warning("calendar sync failed", extra={"calendar": config.name, "error": str(exc)})
            totals["errors"].append(f"{config.name}: {exc}")
            continue
        for k in ("opened", "notes", "resolved"):
            totals[k] += result[k]
        totals["errors"].extend(result["errors"])
    return totals


def _feed(services, config: CalendarConfig) -> bytes:
    """The calendar body, fetched conditionally against the validators kept in the store."""
    feeds = services.adapter("calendar")
    key = f"pagerduty:calendar:feed:{config.key}"
    cached = records.load_or_none(FeedCache, services.store.get(key)) or FeedCache()
    body = base64.b64decode(cached.body) if cached.body else None
    result = feeds.fetch(
        config.url,
        etag=cached.etag if body is not None else None,
        last_modified=cached.last_modified if body is not None else None,
    )
    if result.not_modified and body is not None:
        return body
    assert result.body is not None
    fresh = FeedCache(
        etag=result.etag, last_modified=result.last_modified, body=base64.b64encode(result.body).decode()
    )
    services.store.set(key, records.dump(fresh), FEED_TTL)
    return result.body


def sync_calendar(services, config: CalendarConfig, now: dt.datetime) -> dict[str, Any]:
    body = _feed(services, config)
    tz = services.timezone
    occurrences = services.adapter("calendar").occurrences(
        config.url, body, now - WATCH_AFTER_END - dt.timedelta(days=1), now + config.lead + LOOKAHEAD, tz
    )
    state_key = f"pagerduty:calendar:opened:{config.key}"
    opened: dict[str, Opened] = {}
    for identity, raw in services.store.hgetall(state_key).items():
        state = Opened.from_json(raw)
        if state.end_time + WATCH_AFTER_END * 2 < now:
            services.store.hdel(state_key, identity)  # retention
            continue
        opened[identity] = state
    result: dict[str, Any] = {"opened": 0, "notes": 0, "resolved": 0, "errors": []}
    for act in plan(occurrences, opened, config, now, tz):
        try:
            if isinstance(act, OpenIncident):
                result["opened"] += _open(services, config, act, state_key)
            elif isinstance(act, AddNote):
                result["notes"] += _note(services, config, act, state_key)
            elif isinstance(act, ResolveIncident):
                result["resolved"] += _resolve(services, config, act, state_key)
        except ChatOpsError as exc:  # one failed action must not stop the others; the next sync retries it
            log.warning("calendar action failed", extra={"calendar": config.name, "error": str(exc)})
            result["errors"].append(str(exc))
    return result


def _claimed(services, key: str, act) -> int:
    """Run `act()` under a claim on `key`; 1 when it ran, 0 when done (or in flight) elsewhere."""
    claims = services.deduper(CLAIM_NAMESPACE, pending_ttl=120.0, done_ttl=45 * 86400)
    claim = claims.claim(key)
    if claim.status is not ClaimStatus.CLAIMED:
        return 0
    try:
        act()
    except BaseException:
        claims.release(key, str(claim.token))
        raise
    claims.confirm(key, str(claim.token))
    return 1


def _open(services, config: CalendarConfig, act: OpenIncident, state_key: str) -> int:
    occ = act.occurrence
    if not config.service_id:
        raise ChatOpsError(
            f"no PagerDuty service for calendar {config.name} (set PAGERDUTY_SERVICE_ID or calendars[].service_id)"
        )

    def run() -> None:
        pd = client(services)
        # remembered before the POST: the incident.triggered webhook may arrive before POST returns
        services.store.set(
            planned_key(act.incident_key), records.dump(occurrence_summary(occ, config)), PLANNED_TTL
        )
        try:
            incident = pd.create_incident(
                act.title, config.service_id, details=act.details, incident_key=act.incident_key
            )
        except Conflict:  # opened by an earlier try that did reach PagerDuty: take that incident
            incident = pd.find_incident_by_key(act.incident_key)
            if incident is None:
                raise
        state = opened_state(occ, str(incident["id"]), act.incident_key)
        services.store.hset(state_key, occ.identity, state.to_json())
        log.info(
            "planned work became an incident",
            extra={"calendar": config.name, "uid": occ.uid, "incident": incident["id"]},
        )

    return _claimed(services, dedupe_key("open", config.key, occ.identity), run)


def _note(services, config: CalendarConfig, act: AddNote, state_key: str) -> int:
    def run() -> None:
        client(services).add_note(act.opened.incident_id, act.text)
        services.store.hset(state_key, act.updated.identity, act.updated.to_json())

    done = _claimed(services, dedupe_key("note", config.key, act.opened.identity, act.claim), run)
    if not done:  # this very change was noted before (edited back and forth): just remember it
        services.store.hset(state_key, act.updated.identity, act.updated.to_json())
    return done


def _resolve(services, config: CalendarConfig, act: ResolveIncident, state_key: str) -> int:
    state = act.opened

    def run() -> None:
        pd = client(services)
        if pd.get_incident(state.incident_id).get("status") != "resolved":
            pd.add_note(
                state.incident_id, "The planned window ended; resolved by the calendar sync (policy)."
            )
            pd.update_incident(state.incident_id, "resolved")
        services.store.hset(state_key, state.identity, replace(state, resolved=True).to_json())

    return _claimed(services, dedupe_key("resolve", config.key, state.identity), run)
