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
from typing import Any, NamedTuple

import orjson

from bot import records
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
    # (non-ASCII entries cannot be a hex digest, and compare_digest refuses them)
    offered = [
        part[3:].strip().lower()
        for part in map(str.strip, header.split(","))
        if part[:3] == "v1=" and part.isascii()
    ]
    if not offered:
        return False
    matched = False
    for secret in secrets:
        expected = hmac.digest(secret, body, "sha256").hex()  # one-shot, in OpenSSL
        for candidate in offered:
            # no short-circuit: every pair is compared, so timing says nothing about which one matched
            matched |= hmac.compare_digest(expected, candidate)
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
        """The event as a job argument (JSON-ready data, through `bot.records`)."""
        return records.to_dict(self)

    @classmethod
    def from_job(cls, data: dict[str, Any]) -> WebhookEvent:
        return records.load(cls, data)


class DeliveryItem(NamedTuple):
    """What the endpoint needs of one event of a delivery to admit it: its dedupe keys and whether the
    bot handles its type. The worker reads the full event from the same body later (`event_at`)."""

    index: int  # position in the delivery (V3: always 0; V2: the message's index)
    keys: tuple[str, ...]
    handled: bool


def delivery_items(body: bytes, webhook_id: str | None = None) -> list[DeliveryItem]:
    """The events of a delivery, as little parsed as admitting them needs (the webhook's hot path).
    Raises BadDelivery for malformed bodies, exactly when `parse_delivery` does."""
    doc = _document(body)
    event = doc.get("event")
    if isinstance(event, dict):
        event_type = event.get("event_type")
        handled = isinstance(event_type, str) and event_type in HANDLED_EVENT_TYPES
        if handled:
            _check_shape(event, ("data", "agent"), "event")
        return [DeliveryItem(0, _v3_keys(event, webhook_id, body), handled)]
    messages = doc.get("messages")
    if isinstance(messages, list):
        items = []
        for index, message in enumerate(messages):
            message = _v2_message(message)
            handled = _v2_type(message) in HANDLED_EVENT_TYPES
            if handled:
                _check_shape(message, ("incident", "data"), f"messages[{index}]")
                data = message.get("data")
                if isinstance(data, dict):
                    _check_shape(data, ("incident",), f"messages[{index}].data")
                entries = message.get("log_entries")
                if entries is not None and not isinstance(entries, list):
                    raise BadDelivery(f"messages[{index}].log_entries must be a list")
            items.append(DeliveryItem(index, _v2_keys(message), handled))
        return items
    raise BadDelivery(_NEITHER)


def _check_shape(obj: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    """What the worker reads of an event must be objects where present: anything else could never be
    processed, so it is refused at once (400) instead of failing in the worker after a 202."""
    for name in fields:
        value = obj.get(name)
        if value is not None and not isinstance(value, dict):
            raise BadDelivery(f"{where}.{name} must be a JSON object")


def parse_delivery(body: bytes, webhook_id: str | None = None) -> list[WebhookEvent]:
    """All events of a delivery (V3: one; V2: one per message). Raises BadDelivery for malformed bodies."""
    doc = _document(body)
    if isinstance(doc.get("event"), dict):
        return [_v3_event(doc["event"], webhook_id, body)]
    if isinstance(doc.get("messages"), list):
        return [_v2_event(m) for m in doc["messages"]]
    raise BadDelivery(_NEITHER)


def event_at(body: bytes, webhook_id: str | None, index: int) -> WebhookEvent:
    """The full event of a delivery item (on the worker, from the body the endpoint admitted)."""
    return parse_delivery(body, webhook_id)[index]


_NEITHER = 'neither a V3 webhook ({"event": …}) nor a V2 one ({"messages": […]})'


def _document(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)  # strict RFC 8259 JSON, about 3x faster than the json module
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadDelivery("body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise BadDelivery("body must be a JSON object")
    return doc


def _summary(ref: Any) -> str | None:
    if isinstance(ref, dict):
        return ref.get("summary") or ref.get("name") or ref.get("email") or ref.get("id")
    return None


def _key(source: str, value: str) -> str:
    """`dedupe_key(source, value)`, with a fast path for the plain ids PagerDuty sends."""
    return f"{source}:{value}" if _PLAIN.match(value) else dedupe_key(source, value)


def _body_key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:32]


def _v3_id(event: dict[str, Any], body: bytes) -> str:
    return str(event.get("id") or "") or hashlib.sha256(body).hexdigest()[:32]


def _v3_keys(event: dict[str, Any], webhook_id: str | None, body: bytes) -> tuple[str, ...]:
    event_key = _key("ev", _v3_id(event, body))
    return (_key("wh", webhook_id), event_key) if webhook_id else (event_key,)


def _v3_event(event: dict[str, Any], webhook_id: str | None, body: bytes) -> WebhookEvent:
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
        keys=_v3_keys(event, webhook_id, body),
        event_id=_v3_id(event, body),
        event_type=str(event.get("event_type") or ""),
        occurred_at=str(event.get("occurred_at") or ""),
        agent=_summary(event.get("agent")),
        incident=incident,
        note=note,
    )


def _v2_message(message: Any) -> dict[str, Any]:
    if not isinstance(message, dict):
        raise BadDelivery("every V2 message must be a JSON object")
    return message


def _v2_id(message: dict[str, Any]) -> str:
    return str(message.get("id") or "") or _body_key(message)


def _v2_keys(message: dict[str, Any]) -> tuple[str, ...]:
    return (_key("v2", _v2_id(message)),)


def _v2_type(message: dict[str, Any]) -> str:
    """The V3 name of a V2 message's type ("" when the bot does not handle it)."""
    return V2_EVENT_TYPES.get(str(message.get("event") or message.get("type") or ""), "")


def _v2_event(message: Any) -> WebhookEvent:
    message = _v2_message(message)
    incident_raw = message.get("incident")
    if not isinstance(incident_raw, dict):
        data = message.get("data") if isinstance(message.get("data"), dict) else {}
        incident_raw = data.get("incident") if isinstance(data.get("incident"), dict) else {}  # V1 shape
    listed = message.get("log_entries")
    entries = [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    first = entries[0] if entries else {}
    event_type = _v2_type(message)
    note = None
    if event_type == "incident.annotated":
        channel = first.get("channel") if isinstance(first.get("channel"), dict) else {}
        note = str(channel.get("content") or channel.get("summary") or first.get("summary") or "")
    return WebhookEvent(
        keys=_v2_keys(message),
        event_id="v2:" + _v2_id(message),
        event_type=event_type,
        occurred_at=str(message.get("created_on") or ""),
        agent=_summary(first.get("agent")),
        incident=normalize_incident(incident_raw) if incident_raw else {},
        note=note,
        version="v2",
    )


def normalize_incident(data: dict[str, Any]) -> dict[str, Any]:
    """A flat snapshot of a V3 incident or a V2 incident object (the fields the Slack message shows)."""
    people = [a for a in data.get("assignees") or [] if isinstance(a, dict)]
    if not people:
        people = [
            a["assignee"]
            for a in data.get("assignments") or []
            if isinstance(a, dict) and isinstance(a.get("assignee"), dict)
        ]
    assignees = [_summary(a) for a in people]
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
        "assignee_ids": [str(a["id"]) for a in people if a.get("id")],
        "incident_key": data.get("incident_key"),
        "created_at": data.get("created_at"),
        "priority": _summary(data.get("priority")),
        "priority_id": _ref_id(data.get("priority")),
        "escalation_policy": _summary(data.get("escalation_policy")),
        "escalation_policy_id": _ref_id(data.get("escalation_policy")),
    }


def _ref_id(ref: Any) -> str | None:
    return str(ref["id"]) if isinstance(ref, dict) and ref.get("id") else None
