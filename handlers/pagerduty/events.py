"""PagerDuty webhook deliveries, pure: signature check and parsing of V3 and legacy V2 bodies.

V3: one event per delivery, `{"event": {...}}`, deduplicated on `X-Webhook-Id` and `event.id`.
V2: `{"messages": [...]}`, possibly several per delivery, deduplicated per message id. Both are
normalised into `WebhookEvent`s carrying a V3 event type and a flat incident snapshot.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dedupe import dedupe_key

_PLAIN = re.compile(r"^[A-Za-z0-9._@+-]{1,80}$")

# Incident events the bot turns into Slack effects; anything else is acknowledged and ignored.
HANDLED_EVENT_TYPES = frozenset(
    {
        "incident.triggered",
        "incident.acknowledged",
        "incident.unacknowledged",
        "incident.resolved",
        "incident.reassigned",
        "incident.escalated",
        "incident.delegated",
        "incident.annotated",
        "incident.priority_updated",
        "incident.reopened",
    }
)

V2_EVENT_TYPES = {
    "incident.trigger": "incident.triggered",
    "incident.acknowledge": "incident.acknowledged",
    "incident.unacknowledge": "incident.unacknowledged",
    "incident.resolve": "incident.resolved",
    "incident.assign": "incident.reassigned",
    "incident.escalate": "incident.escalated",
    "incident.delegate": "incident.delegated",
    "incident.annotate": "incident.annotated",
}


class BadDelivery(ValueError):
    """The body is signed but is not a PagerDuty webhook (answered 400)."""


def signature_matches(body: bytes, header: str | None, secrets: Sequence[bytes]) -> bool:
    """True when any `v1=<hex>` entry of `X-PagerDuty-Signature` is the HMAC-SHA256 of `body` under any
    secret (several during rotation). Entries of other versions are ignored; comparison is constant-time."""
    if not header or not secrets:
        return False
    offered = [part[3:].strip() for part in header.split(",") if part.strip().startswith("v1=")]
    if not offered:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        for candidate in offered:
            # no short-circuit: every pair is compared, so timing says nothing about which one matched
            matched |= hmac.compare_digest(expected, candidate.lower())
    return matched


def sign(body: bytes, secrets: Sequence[str]) -> str:
    """The header value PagerDuty sends: one `v1=` entry per active secret, comma-separated."""
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


@dataclass(frozen=True)
class WebhookEvent:
    """One incident change, whatever the webhook version that carried it."""

    keys: tuple[str, ...]  # dedupe keys of this delivery item (any one already done → duplicate)
    event_id: str  # identity of the change itself (the Slack effect is deduplicated on it)
    event_type: str  # V3 naming, e.g. incident.acknowledged
    occurred_at: str
    agent: str | None  # who did it (None: PagerDuty automation)
    incident: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    version: str = "v3"

    @property
    def handled(self) -> bool:
        return self.event_type in HANDLED_EVENT_TYPES

    def as_job(self) -> dict[str, Any]:
        return {
            "keys": list(self.keys),
            "event_id": self.event_id,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at,
            "agent": self.agent,
            "incident": self.incident,
            "note": self.note,
            "version": self.version,
        }

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> WebhookEvent:
        data = dict(data)
        data["keys"] = tuple(data.get("keys") or ())
        return cls(**data)


def parse_delivery(body: bytes, webhook_id: str | None = None) -> list[WebhookEvent]:
    """All events of a delivery (V3: one; V2: one per message). Raises BadDelivery for malformed bodies."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDelivery("body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BadDelivery("body must be a JSON object")
    if isinstance(doc.get("event"), dict):
        return [_v3_event(doc["event"], webhook_id, body)]
    if isinstance(doc.get("messages"), list):
        return [_v2_event(m) for m in doc["messages"]]
    raise BadDelivery('neither a V3 webhook ({"event": …}) nor a V2 one ({"messages": […]})')


def _summary(ref: Any) -> str | None:
    if isinstance(ref, dict):
        return ref.get("summary") or ref.get("name") or ref.get("email") or ref.get("id")
    return None


def _key(source: str, value: str) -> str:
    """`dedupe_key(source, value)`, with a fast path for the plain ids PagerDuty sends."""
    return f"{source}:{value}" if _PLAIN.match(value) else dedupe_key(source, value)


def _body_key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def _v3_event(event: dict[str, Any], webhook_id: str | None, body: bytes) -> WebhookEvent:
    event_id = str(event.get("id") or "") or hashlib.sha256(body).hexdigest()[:32]
    keys = [_key("ev", event_id)]
    if webhook_id:
        keys.insert(0, _key("wh", webhook_id))
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    note = None
    if data.get("type") == "incident_note":
        note = str(data.get("content") or "")
        ref = data.get("incident") if isinstance(data.get("incident"), dict) else {}
        incident = {"id": ref.get("id"), "html_url": ref.get("html_url"), "partial": True}
        if ref.get("summary"):
            incident["title"] = ref["summary"]
    elif data.get("type") in ("incident", None) and data.get("id"):
        incident = normalize_incident(data)
    else:
        ref = data.get("incident") if isinstance(data.get("incident"), dict) else {}
        incident = {"id": ref.get("id"), "html_url": ref.get("html_url"), "partial": True}
    return WebhookEvent(
        keys=tuple(keys),
        event_id=event_id,
        event_type=str(event.get("event_type") or ""),
        occurred_at=str(event.get("occurred_at") or ""),
        agent=_summary(event.get("agent")),
        incident=incident,
        note=note,
    )


def _v2_event(message: Any) -> WebhookEvent:
    if not isinstance(message, dict):
        raise BadDelivery("every V2 message must be a JSON object")
    message_id = str(message.get("id") or "") or _body_key(message)
    incident_raw = message.get("incident")
    if not isinstance(incident_raw, dict):
        incident_raw = (message.get("data") or {}).get("incident") or {}  # V1 shape
    entries = [e for e in message.get("log_entries") or [] if isinstance(e, dict)]
    first = entries[0] if entries else {}
    event_type = V2_EVENT_TYPES.get(str(message.get("event") or message.get("type") or ""), "")
    note = None
    if event_type == "incident.annotated":
        channel = first.get("channel") if isinstance(first.get("channel"), dict) else {}
        note = str(channel.get("content") or channel.get("summary") or first.get("summary") or "")
    return WebhookEvent(
        keys=(_key("v2", message_id),),
        event_id="v2:" + message_id,
        event_type=event_type,
        occurred_at=str(message.get("created_on") or ""),
        agent=_summary(first.get("agent")),
        incident=normalize_incident(incident_raw) if incident_raw else {},
        note=note,
        version="v2",
    )


def normalize_incident(data: dict[str, Any]) -> dict[str, Any]:
    """A flat snapshot of a V3 incident or a V2 incident object (the fields the Slack message shows)."""
    assignees = [_summary(a) for a in data.get("assignees") or [] if isinstance(a, dict)]
    if not assignees:
        assignees = [
            _summary(a.get("assignee"))
            for a in data.get("assignments") or []
            if isinstance(a, dict) and isinstance(a.get("assignee"), dict)
        ]
    service = data.get("service") if isinstance(data.get("service"), dict) else {}
    return {
        "id": data.get("id"),
        "number": data.get("number") or data.get("incident_number"),
        "title": data.get("title") or data.get("summary") or "",
        "status": data.get("status") or "",
        "urgency": data.get("urgency") or "",
        "html_url": data.get("html_url") or "",
        "service_id": service.get("id"),
        "service": _summary(service) or "",
        "assignees": [a for a in assignees if a],
        "incident_key": data.get("incident_key"),
        "created_at": data.get("created_at"),
        "priority": _summary(data.get("priority")),
        "escalation_policy": _summary(data.get("escalation_policy")),
    }
