"""`POST /pagerduty/webhook`: verify, deduplicate, enqueue, answer 202 — the Slack work runs on the worker.

Order of checks: size (413, web layer) → signature (401) → JSON (400) → per event: unknown type (ignored),
admit it (dedupe/admit.py: dedupe on X-Webhook-Id and event.id, enqueue the Slack job, mark
done — one atomic Lua call on Redis). The answer is 2xx only once every handled event of the delivery is
durably enqueued (or was before); PagerDuty retries anything else:
- the store or the queue is unreachable → 503 (never accept and drop);
- (embedded store only) a concurrent duplicate still in flight elsewhere after a few milliseconds → 503
  with Retry-After, so this copy is retried and finds the key done — or takes over if the other failed.
The worker's own claim on the event id keeps the Slack effect single even if a job runs twice.
"""

from __future__ import annotations

import functools
import json
import logging
import weakref
from dataclasses import dataclass
from typing import Any

from bot.registry import Capability
from bot.web import HttpRequest, HttpResponse
from dedupe.admit import DeliveryGate, QueueUnavailable
from handlers.pagerduty.effects import apply_event
from handlers.pagerduty.events import BadDelivery, delivery_items, event_at, signature_matches

capability = Capability("handlers.pagerduty.webhook")

EFFECT_JOB = "pagerduty.webhook_effect"  # the Slack effect of one admitted event (effects.apply_event)

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
NAMESPACE = "pd-webhook"


@dataclass
class _Endpoint:
    secrets: tuple[bytes, ...]
    gate: DeliveryGate
    counters: dict[str, Any]  # outcome → its labelled counter


_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _endpoint(services) -> _Endpoint:
    found = _STATE.get(services)
    if found is None:
        found = _Endpoint(
            secrets=tuple(s.get_secret_value().encode() for s in services.settings.PAGERDUTY_WEBHOOK_SECRETS),
            gate=DeliveryGate(services.store, services.queue, NAMESPACE),
            counters=_outcome_counters(services.metrics),
        )
        _STATE[services] = found
    return found


_OUTCOMES = ("accepted", "duplicate", "ignored", "busy")


def _outcome_counters(metrics) -> dict[str, Any]:
    counter = metrics.counter(
        "chatops_pagerduty_webhook_events_total", "PagerDuty webhook events by outcome", ["outcome"]
    )
    return {outcome: counter.labels(outcome) for outcome in _OUTCOMES}


@functools.lru_cache(maxsize=64)
def _accepted_body(accepted: int, duplicates: int, ignored: int) -> bytes:
    return json.dumps({"accepted": accepted, "duplicates": duplicates, "ignored": ignored}).encode()


@capability.route("POST", "/pagerduty/webhook", max_body=MAX_BODY)
def pagerduty_webhook(services, req: HttpRequest) -> HttpResponse:
    ep = _endpoint(services)
    if not ep.secrets:
        log.warning("PagerDuty webhook refused: PAGERDUTY_WEBHOOK_SECRETS is not set")
        return HttpResponse.json(401, {"error": "webhook signing secrets are not configured"})
    if not signature_matches(req.body, req.headers.get("x-pagerduty-signature"), ep.secrets):
        return HttpResponse.json(401, {"error": "invalid signature"})
    webhook_id = req.headers.get("x-webhook-id")
    try:
        items = delivery_items(req.body, webhook_id)
    except BadDelivery as exc:
        return HttpResponse.json(400, {"error": str(exc)})
    outcomes = dict.fromkeys(_OUTCOMES, 0)
    for item in items:
        if not item.handled:
            outcomes["ignored"] += 1
            continue
        try:
            # the job carries the body as received; the worker parses the full event from it
            admission = ep.gate.admit(
                item.keys, EFFECT_JOB, delivery=req.body, webhook_id=webhook_id, index=item.index
            )
        except QueueUnavailable as exc:
            log.warning("PagerDuty webhook not enqueued; answering 503", extra={"error": str(exc)})
            return HttpResponse.json(503, {"error": "queue unavailable, retry later"})
        outcomes[admission.value] += 1
    for outcome, n in outcomes.items():
        if n:
            ep.counters[outcome].inc(n)
    if outcomes["busy"]:
        body = {
            "accepted": outcomes["accepted"],
            "duplicates": outcomes["duplicate"],
            "ignored": outcomes["ignored"],
            "in_flight_elsewhere": outcomes["busy"],
        }
        resp = HttpResponse.json(503, body)
        resp.headers["retry-after"] = "1"
        return resp
    return HttpResponse(202, _accepted_body(outcomes["accepted"], outcomes["duplicate"], outcomes["ignored"]))


@capability.job(EFFECT_JOB, retries=5, retry_delay=3)
def webhook_effect(
    services,
    delivery: bytes | None = None,
    webhook_id: str | None = None,
    index: int = 0,
    event: dict | None = None,
    attempt: int | None = None,  # carried by jobs an earlier version put back on the queue
) -> None:
    """The Slack effect of one admitted event, from its delivery body (or, in jobs an earlier version
    put back to wait for the incident's card, from the parsed event)."""
    if event is None:
        event = event_at(delivery or b"", webhook_id, index).as_job()
    apply_event(services, event)
