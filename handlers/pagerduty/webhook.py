"""`POST /pagerduty/webhook`: verify, deduplicate, enqueue, answer 202 — the Slack work runs on the worker.

Order of checks: size (413, web layer) → signature (401) → JSON (400) → per event: unknown type (ignored),
claim its dedupe keys (done → duplicate, 2xx), enqueue the Slack job, confirm the claim. The answer is 2xx
only once every handled event of the delivery is durably enqueued; PagerDuty retries anything else:
- the store or the queue is unreachable → 503 (never accept and drop);
- a concurrent duplicate still in flight elsewhere after a few milliseconds → 503 with Retry-After, so
  this copy is retried and finds the key done — and if the other copy failed, this one takes over.
A crash between enqueue and confirm leaves a pending claim that expires; the retry then enqueues again,
and the worker's own claim on the event id keeps the Slack effect single.
"""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass

from bot.queue import job
from bot.web import HttpRequest, HttpResponse, route
from dedupe import ClaimStatus
from handlers.pagerduty.claims import MultiKeyClaims
from handlers.pagerduty.events import BadDelivery, parse_delivery, signature_matches

log = logging.getLogger(__name__)

MAX_BODY = 256 * 1024
EFFECT_JOB = "pagerduty.webhook_effect"
NAMESPACE = "pd-webhook"


@dataclass
class _Endpoint:
    secrets: tuple[bytes, ...]
    claims: MultiKeyClaims
    counter: object


_STATE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _endpoint(services) -> _Endpoint:
    found = _STATE.get(services)
    if found is None:
        found = _Endpoint(
            secrets=tuple(s.get_secret_value().encode() for s in services.settings.PAGERDUTY_WEBHOOK_SECRETS),
            claims=MultiKeyClaims(services.store, NAMESPACE, pending_ttl=60.0),
            counter=services.metrics.counter(
                "chatops_pagerduty_webhook_events_total", "PagerDuty webhook events by outcome", ["outcome"]
            ),
        )
        _STATE[services] = found
    return found


@route("POST", "/pagerduty/webhook", max_body=MAX_BODY)
def pagerduty_webhook(services, req: HttpRequest) -> HttpResponse:
    ep = _endpoint(services)
    if not ep.secrets:
        log.warning("PagerDuty webhook refused: PAGERDUTY_WEBHOOK_SECRETS is not set")
        return HttpResponse.json(401, {"error": "webhook signing secrets are not configured"})
    if not signature_matches(req.body, req.headers.get("x-pagerduty-signature"), ep.secrets):
        return HttpResponse.json(401, {"error": "invalid signature"})
    try:
        events = parse_delivery(req.body, req.headers.get("x-webhook-id"))
    except BadDelivery as exc:
        return HttpResponse.json(400, {"error": str(exc)})
    accepted = duplicates = ignored = busy = 0
    for event in events:
        if not event.handled:
            ignored += 1
            continue
        claim = ep.claims.claim_or_wait(event.keys)
        if claim.status is ClaimStatus.DONE:
            duplicates += 1
            continue
        if claim.status is ClaimStatus.BUSY:
            busy += 1
            continue
        try:
            services.queue.enqueue(EFFECT_JOB, event=event.as_job())
        except Exception as exc:  # noqa: BLE001 - any queue failure means "not durable": let PagerDuty retry
            _release_quietly(ep.claims, event.keys, str(claim.token))
            log.warning("PagerDuty webhook not enqueued; answering 503", extra={"error": str(exc)})
            return HttpResponse.json(503, {"error": "queue unavailable, retry later"})
        ep.claims.confirm(event.keys, str(claim.token))
        accepted += 1
    for outcome, n in (
        ("accepted", accepted),
        ("duplicate", duplicates),
        ("ignored", ignored),
        ("busy", busy),
    ):
        if n:
            ep.counter.labels(outcome).inc(n)
    body = {"accepted": accepted, "duplicates": duplicates, "ignored": ignored}
    if busy:
        body["in_flight_elsewhere"] = busy
        resp = HttpResponse.json(503, body)
        resp.headers["retry-after"] = "1"
        return resp
    return HttpResponse.json(202, body)


def _release_quietly(claims: MultiKeyClaims, keys, token: str) -> None:
    try:
        claims.release(keys, token)
    except Exception:  # noqa: BLE001 - the pending claim expires on its own if the store is down too
        log.warning("could not release a webhook claim; it will expire")


@job(EFFECT_JOB, retries=5, retry_delay=3)
def webhook_effect(services, event: dict, attempt: int = 1) -> None:
    from handlers.pagerduty.effects import apply_event

    apply_event(services, event, attempt)
