"""The MNS queue API's wire format (protocols.md §5): request signatures, raw queries, the XML of
messages, queues and errors, and the queue attributes a CreateQueue / SetQueueAttributes body carries.

Pure functions; sandbox/mns_emulator.py routes requests and sandbox/mns_queue.py keeps the state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

NS = "http://mns.aliyuncs.com/doc/v1/"
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

# Queue attributes a client may set: (lowest, highest) as the CreateQueue reference documents them.
ATTRIBUTE_LIMITS: dict[str, tuple[int, int]] = {
    "DelaySeconds": (0, 604800),
    "MaximumMessageSize": (1024, 65536),
    "MessageRetentionPeriod": (60, 604800),
    "VisibilityTimeout": (1, 43200),
    "PollingWaitSeconds": (0, 30),
}
ATTRIBUTE_DEFAULTS: dict[str, Any] = {
    "DelaySeconds": 0,
    "MaximumMessageSize": 65536,
    "MessageRetentionPeriod": 345600,
    "VisibilityTimeout": 30,
    "PollingWaitSeconds": 0,
    "LoggingEnabled": False,
}
_UNITS = {"MaximumMessageSize": "bytes"}


class WireError(ValueError):
    """A request the service refuses: (status, code, message)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_xml(body: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError:
        raise WireError(400, "MalformedXML", "The XML you provided is malformed.") from None


def check_range(name: str, value: int, low: int, high: int) -> int:
    if not low <= value <= high:
        unit = _UNITS.get(name, "seconds")
        raise WireError(
            400, "InvalidArgument", f"The value of {name} must be between {low} and {high} {unit}."
        )
    return value


def parse_int(name: str, text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise WireError(400, "InvalidArgument", f"The value of {name} is not an integer.") from None


def parse_queue_attributes(body: bytes) -> dict[str, Any]:
    """The attributes a `<Queue>` body sets (an empty body sets none); unknown elements are ignored."""
    if not body.strip():
        return {}
    root = parse_xml(body)
    out: dict[str, Any] = {}
    for child in root:
        name, text = local(child.tag), (child.text or "").strip()
        if name in ATTRIBUTE_LIMITS:
            out[name] = check_range(name, parse_int(name, text), *ATTRIBUTE_LIMITS[name])
        elif name == "LoggingEnabled":
            if text.lower() not in ("true", "false"):
                raise WireError(400, "InvalidArgument", "The value of LoggingEnabled must be True or False.")
            out[name] = text.lower() == "true"
    return out


def raw_query(raw_path: str) -> dict[str, str]:
    """The query as sent: '+' stays '+' (the SDK does not URL-encode receipt handles)."""
    _, _, query = raw_path.partition("?")
    out: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            out[unquote(key)] = unquote(value)
    return out


def verify_mns(method: str, raw_uri: str, headers: dict[str, str], body: bytes, keys: dict[str, str]) -> bool:
    """`Authorization: MNS <AccessKeyId>:<base64 HMAC-SHA1>` exactly as the MNS SDK computes it."""
    h = {k.lower(): v for k, v in headers.items()}
    _, _, cred = h.get("authorization", "").partition(" ")
    ak, _, sig = cred.partition(":")
    if ak not in keys:
        return False
    if body and h.get("content-md5") != base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode():
        return False
    mns_headers = "".join(f"{k}:{h[k]}\n" for k in sorted(h) if k.startswith("x-mns-"))
    sts = (
        f"{method}\n{h.get('content-md5', '')}\n{h.get('content-type', '')}\n{h.get('date', '')}\n"
        f"{mns_headers}{raw_uri}"
    )
    expect = base64.b64encode(hmac.new(keys[ak].encode(), sts.encode(), hashlib.sha1).digest()).decode()
    return hmac.compare_digest(expect, sig)


# Responses -----------------------------------------------------------------------------------------


def elements(fields: Iterable[tuple[str, Any]]) -> str:
    return "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in fields)


def root(tag: str, inner: str) -> str:
    """A response document: the declaration, then `tag` in the MNS namespace around `inner`."""
    return f'{XML_DECLARATION}<{tag} xmlns="{NS}">{inner}</{tag}>'


def message_fields(m: Any, received: bool) -> list[tuple[str, Any]]:
    """What ReceiveMessage (`received`) or PeekMessage tells of a message: a peek has no receipt
    handle and no next visible time."""
    fields: list[tuple[str, Any]] = [("MessageId", m.message_id)]
    if received:
        fields.append(("ReceiptHandle", m.handle))
    fields += [("MessageBodyMD5", m.md5), ("MessageBody", m.body), ("EnqueueTime", m.enqueue_ms)]
    if received:
        fields.append(("NextVisibleTime", int(m.visible_at * 1000)))
    fields += [
        ("FirstDequeueTime", m.first_dequeue_ms),
        ("DequeueCount", m.dequeue_count),
        ("Priority", m.priority),
    ]
    return fields


def messages_xml(messages: list[Any], batch: bool, received: bool = True) -> str:
    if batch:
        inner = "".join(f"<Message>{elements(message_fields(m, received))}</Message>" for m in messages)
        return root("Messages", inner)
    return root("Message", elements(message_fields(messages[0], received)))


def queue_fields(
    name: str, attributes: Mapping[str, Any], counts: Mapping[str, int]
) -> list[tuple[str, Any]]:
    """GetQueueAttributes: every element aliyun-mns-sdk requires (times in epoch seconds)."""
    return [
        ("QueueName", name),
        ("CreateTime", attributes["CreateTime"]),
        ("LastModifyTime", attributes["LastModifyTime"]),
        *((k, attributes[k]) for k in ATTRIBUTE_LIMITS),
        ("ActiveMessages", counts["active"]),
        ("InactiveMessages", counts["inactive"]),
        ("DelayMessages", counts["delayed"]),
        ("LoggingEnabled", "True" if attributes["LoggingEnabled"] else "False"),
    ]


def error_xml(code: str, message: str, request_id: str, host_id: str) -> str:
    """All four elements: without one of them the SDK reports RespDataDamaged instead of the error."""
    return root(
        "Error",
        elements([("Code", code), ("Message", message), ("RequestId", request_id), ("HostId", host_id)]),
    )


def batch_delete_errors_xml(handles: list[str]) -> str:
    inner = "".join(
        f"<Error>{elements([('ErrorCode', 'MessageNotExist'), ('ErrorMessage', 'Message not exist.'), ('ReceiptHandle', h)])}</Error>"
        for h in handles
    )
    return root("Errors", inner)
