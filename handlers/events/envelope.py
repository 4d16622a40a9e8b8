"""Parse one MNS message body into an `EcsEvent` — pure, tolerant, never raises anything but EnvelopeError.

CloudMonitor delivers ECS events in (at least) two envelope shapes (protocols.md §6):

  (a) ECS event notification: {"id", "eventTime": "20181226T220114.058+0800", "level", "name",
      "product", "regionId", "resourceId": "acs:ecs:<region>:<uid>:instance/<id>", "content": {...}}
  (b) CloudMonitor system event: {"product", "resourceId", "level", "instanceName", "regionId",
      "name", "content": {"instanceId", "action"}, "status", optionally "time" (epoch ms)}

and the body may be Base64 of the JSON (what the MNS SDK's default encoding expects) or the raw JSON.
The event id is `id` when present, otherwise a hash of the decoded event (stable across redeliveries).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

MAX_BODY = 256 * 1024


class EnvelopeError(ValueError):
    """The body is not an ECS event we can read; `reason` says why (shown in the quarantine report)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EcsEvent:
    event_id: str
    name: str  # "Instance:StateChange", "Instance:PreemptibleInstanceInterruption", ...
    instance_id: str | None
    region: str | None
    time: dt.datetime | None  # aware (UTC); None when the envelope carries no time
    level: str | None = None
    state: str | None = None  # new state of Instance:StateChange
    action: str | None = None  # "delete" for a preemptible interruption
    instance_name: str | None = None
    event_status: str | None = None  # system events: Scheduled, Executing, Executed, Canceled, ...
    not_before: dt.datetime | None = None
    system_event_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_state_change(self) -> bool:
        return self.name == "Instance:StateChange" and bool(self.state)

    @property
    def is_interruption(self) -> bool:
        return self.name == "Instance:PreemptibleInstanceInterruption"

    @property
    def is_system_event(self) -> bool:
        """O&M events named <Resource>:<Event>:<Status>, e.g. Instance:SystemMaintenance.Reboot:Scheduled."""
        return self.name.count(":") >= 2 or self.event_status is not None

    @property
    def kind(self) -> str:
        if self.is_state_change:
            return "state"
        if self.is_interruption:
            return "interruption"
        if self.is_system_event:
            return "system"
        return "other"


def decode_body(body: str | bytes) -> dict[str, Any]:
    """Base64 or raw JSON → the event object. Raises EnvelopeError."""
    if isinstance(body, bytes):
        if len(body) > MAX_BODY:
            raise EnvelopeError(f"body too large ({len(body)} bytes)")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise EnvelopeError("body is not UTF-8") from None
    else:
        text = body
    if len(text) > MAX_BODY:
        raise EnvelopeError(f"body too large ({len(text)} characters)")
    text = text.strip().lstrip("\ufeff")
    if not text:
        raise EnvelopeError("empty body")
    if text[0] in '{"[':
        obj = _json(text)
    else:
        obj = _json(_unbase64(text))
    if isinstance(obj, str):  # JSON-encoded JSON (seen from hand-written producers)
        obj = _json(obj.strip())
    if not isinstance(obj, dict):
        raise EnvelopeError(f"body is JSON {type(obj).__name__}, not an object")
    return obj


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        raise EnvelopeError("body is neither JSON nor Base64 of JSON") from None


_B64 = re.compile(r"^[A-Za-z0-9+/_\-\s]+={0,2}\s*$")


def _unbase64(text: str) -> str:
    if not _B64.match(text):
        raise EnvelopeError("body is neither JSON nor Base64 of JSON")
    compact = "".join(text.split())
    compact += "=" * (-len(compact) % 4)
    try:
        raw = base64.b64decode(compact.replace("-", "+").replace("_", "/"), validate=True)
        return raw.decode("utf-8").strip().lstrip("\ufeff")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise EnvelopeError("body is neither JSON nor Base64 of JSON") from None


def parse_event(body: str | bytes) -> EcsEvent:
    """The whole path: body → EcsEvent. Raises EnvelopeError."""
    return event_from_dict(decode_body(body))


def event_from_dict(obj: dict[str, Any]) -> EcsEvent:
    name = obj.get("name") or obj.get("eventName")
    if not isinstance(name, str) or not name.strip():
        raise EnvelopeError("no event name")
    content = obj.get("content")
    if isinstance(content, str):
        try:
            content = json.loads(content)
        except ValueError:
            content = {}
    if not isinstance(content, dict):
        content = {}
    arn = obj.get("resourceId") if isinstance(obj.get("resourceId"), str) else ""
    instance_id = _first_str(content, "resourceId", "instanceId", "InstanceId") or _arn_instance(arn)
    if instance_id and "instance/" in instance_id:  # an ARN where a bare id was expected
        instance_id = _arn_instance(instance_id)
    region = _first_str(obj, "regionId", "region") or _arn_region(arn)
    time = parse_time(obj.get("eventTime")) or parse_time(obj.get("time")) or parse_time(obj.get("timestamp"))
    raw_id = obj.get("id")
    event_id = raw_id.strip() if isinstance(raw_id, str) and raw_id.strip() else _hash_id(obj)
    status = _first_str(content, "eventStatus", "EventStatus")
    if status is None and name.count(":") >= 2:
        status = name.rsplit(":", 1)[1]
    return EcsEvent(
        event_id=event_id[:128],
        name=name.strip()[:200],
        instance_id=instance_id[:64] if instance_id else None,
        region=region[:64] if region else None,
        time=time,
        level=_first_str(obj, "level"),
        state=_first_str(content, "state", "State"),
        action=_first_str(content, "action", "Action"),
        instance_name=_first_str(obj, "instanceName") or _first_str(content, "instanceName"),
        event_status=status,
        not_before=parse_time(content.get("notBefore") or content.get("NotBefore")),
        system_event_id=_first_str(content, "eventId", "EventId"),
        raw=obj,
    )


def _first_str(obj: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = obj.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _arn_instance(arn: str) -> str | None:
    _, sep, tail = arn.rpartition("instance/")
    if not sep:
        return None
    return tail.strip() or None


def _arn_region(arn: str) -> str | None:
    parts = arn.split(":")
    if len(parts) < 5 or parts[0] != "acs":
        return None
    return parts[2].strip() or None


def _hash_id(obj: dict[str, Any]) -> str:
    canonical = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return "h-" + hashlib.sha256(canonical.encode()).hexdigest()[:32]


def parse_time(value: Any) -> dt.datetime | None:
    """`20181226T220114.058+0800`, ISO-8601, or epoch (ms or s) → aware UTC datetime; None if unreadable."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.strip().isdigit()):
        try:
            number = float(value)
        except ValueError:
            return None
        if number > 1e11:  # epoch milliseconds
            number /= 1000.0
        if not 0 < number < 32503680000:  # before year 3000
            return None
        return dt.datetime.fromtimestamp(number, dt.UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:  # the compact form (CloudMonitor's) as well as the extended one
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        return None
    return parsed.astimezone(dt.UTC)


def compact_time(when: dt.datetime) -> str:
    """The ECS notification format: 20181226T220114.058+0800 (UTC+8, as CloudMonitor writes it)."""
    local = when.astimezone(dt.timezone(dt.timedelta(hours=8)))
    return local.strftime("%Y%m%dT%H%M%S.") + f"{local.microsecond // 1000:03d}+0800"
