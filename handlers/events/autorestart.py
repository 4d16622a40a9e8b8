"""Auto-restart of instances that stopped unexpectedly (the decision is `restart_policy`; this acts).

Every restart and every skip is reported. The restart is recorded (rate cap) and announced as an
intent with source "auto-restart" before ECS is asked to start the instance; one worker at a time
decides for an instance (a short store lock)."""

from __future__ import annotations

import logging
import time

from bot import records
from bot.ecs_model import InstanceInfo
from bot.errors import ChatOpsError
from bot.intents import intent_for, record_intents
from handlers.events import keys
from handlers.events.envelope import EcsEvent
from handlers.events.restart_policy import RestartDecision, decide_restart
from handlers.events.routing import selector_matches
from handlers.events.stored import MaintenanceMarker

log = logging.getLogger(__name__)


def _decide(services, event: EcsEvent, facts: InstanceInfo | None, now: float, status: str | None):
    policy = services.policy.auto_restart
    store = services.store
    iid = event.instance_id or ""
    if not (policy.enabled and iid and event.state == "Stopped" and facts is not None):
        return RestartDecision("ignore", "not an unexpected stop of a known instance")
    if not selector_matches(dict(policy.tags), facts.tags):  # before reading the store: most stops end here
        return RestartDecision("ignore", "instance not selected for auto-restart")
    age = now - event.time.timestamp() if event.time else None
    return decide_restart(
        enabled=policy.enabled and bool(iid),
        state=event.state,
        tags=facts.tags if facts else None,
        selector=dict(policy.tags),
        intent=intent_for(store, iid) if iid else None,
        maintenance=records.load_or_none(MaintenanceMarker, store.get(keys.maintenance(iid)))
        if iid
        else None,
        interrupted=store.get(keys.interrupted(iid)) is not None if iid else False,
        event_age_seconds=age,
        max_event_age_seconds=services.policy.events.max_event_age_seconds,
        restarts_last_hour=len(store.zrange_by_score(keys.restarts(iid), now - 3600, now + 60)),
        max_per_hour=policy.max_per_hour,
        current_status=status,
    )


def handle_stop(services, event: EcsEvent, facts: InstanceInfo | None) -> tuple[RestartDecision, bool]:
    """Decide and act for one `Stopped` event. Returns (decision, restarted)."""
    now = time.time()
    decision = _decide(services, event, facts, now, None)
    if not decision.restart:
        return decision, False
    iid = event.instance_id or ""
    region = event.region or (facts.region if facts else None)
    store = services.store
    with store.lock(f"events:auto-restart:{iid}", ttl=30.0, wait=5.0) as mine:
        if not mine:
            return RestartDecision("skip", "another worker is deciding for this instance"), False
        try:
            ecs = services.adapter("ecs")
            found = ecs.describe_instances(region=region, instance_ids=[iid])
        except ChatOpsError as exc:
            return RestartDecision("skip", f"could not read its current status: {exc}"), False
        status = found[0].status if found else "released"
        decision = _decide(services, event, facts, now, status)
        if not decision.restart:
            return decision, False
        store.zadd(keys.restarts(iid), f"{now:.3f}:{event.event_id}", now)
        store.zremove_below(keys.restarts(iid), now - 7200)
        record_intents(store, [iid], "start", "auto-restart", None, at=services.clock.time())
        try:
            (result,) = ecs.power("start", [iid], region=region)
        except ChatOpsError as exc:
            log.warning("auto-restart failed", extra={"instance": iid, "error": str(exc)})
            return RestartDecision("skip", f"the start request failed: {exc}"), False
        if not result.ok:
            why = " ".join(x for x in (result.code, result.message) if x) or result.outcome
            return RestartDecision("skip", f"ECS refused the start: {why}"), False
        log.info("auto-restarted instance", extra={"instance": iid, "event": event.event_id})
        return decision, True
