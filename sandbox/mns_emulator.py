"""Alibaba MNS queue emulator: the XML queue API as aliyun-mns-sdk speaks it (protocols.md §5).

Operations: SendMessage / BatchSendMessage, ReceiveMessage / BatchReceiveMessage (long polling up to
30 s), DeleteMessage / BatchDeleteMessage (partial failures as <Errors>), ChangeMessageVisibility.
Requests are checked like the real service: `Authorization: MNS AK:HMAC-SHA1`, `x-mns-version`, the
Date within 15 minutes. Received messages stay invisible for the queue's visibility timeout, their
DequeueCount grows with every delivery, every delivery hands out a new (URL-safe) receipt handle and
invalidates the old one; an empty receive answers 404 MessageNotExist.

Fed by the ECS emulator: `on_ecs_state_change` enqueues a CloudMonitor-shaped `Instance:StateChange`
event; `inject_interruption` / `inject_system_event` / `send_event` put other events on the queue.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import heapq
import hmac
import itertools
import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote
from xml.etree import ElementTree
from xml.sax.saxutils import escape

from sandbox import credentials
from sandbox.console_commands import console_command
from sandbox.emulator import Emulator, EmulatorSpec, Request, Response, register_emulator

NS = "http://mns.aliyuncs.com/doc/v1/"
ACCOUNT_UID = "1234567890123456"
MAX_WAIT_SECONDS = 30
MAX_BATCH = 16
_UTC8 = dt.timezone(dt.timedelta(hours=8))


@dataclass
class _Message:
    message_id: str
    body: str  # stored verbatim (Base64 is the client's business)
    md5: str
    enqueue_ms: int
    priority: int = 8
    first_dequeue_ms: int = 0
    dequeue_count: int = 0
    visible_at: float = 0.0  # wall-clock seconds
    handle: str | None = None  # the one valid receipt handle, while invisible after a receive
    deleted: bool = False


class MnsQueue:
    """One queue's state. All access happens under the emulator's condition lock."""

    def __init__(self, name: str, visibility_timeout: float = 30.0, polling_wait_seconds: int = 0):
        self.name = name
        self.visibility_timeout = visibility_timeout
        self.polling_wait_seconds = polling_wait_seconds
        self.messages: dict[str, _Message] = {}
        self.ready: deque[str] = deque()
        self.timed: list[tuple[float, int, str]] = []  # (visible_at, seq, message_id): invisible ones
        self.handles: dict[str, str] = {}  # receipt handle → message id
        self.deleted = 0
        self._seq = itertools.count()

    def promote(self, now: float) -> None:
        while self.timed and self.timed[0][0] <= now:
            visible_at, _, mid = heapq.heappop(self.timed)
            msg = self.messages.get(mid)
            if msg is None or msg.deleted or msg.visible_at != visible_at:
                continue  # stale heap entry (deleted, or visibility changed since)
            if msg.handle is not None:
                self.handles.pop(msg.handle, None)
                msg.handle = None
            self.ready.append(mid)

    def next_visible(self) -> float | None:
        return self.timed[0][0] if self.timed else None

    def hide(self, msg: _Message, until: float) -> None:
        msg.visible_at = until
        heapq.heappush(self.timed, (until, next(self._seq), msg.message_id))

    @property
    def depth(self) -> int:
        return len(self.messages)


class MnsEmulator(Emulator):
    name = "mns"

    def __init__(
        self,
        port: int = 0,
        queues: tuple[str, ...] = (credentials.MNS_QUEUE,),
        access_key_id: str = credentials.ALIBABA_ACCESS_KEY_ID,
        access_key_secret: str = credentials.ALIBABA_ACCESS_KEY_SECRET,
        visibility_timeout: float = 30.0,
        stack: Any = None,
    ):
        super().__init__(port)
        self.secrets = {access_key_id: access_key_secret}
        self.stack = stack
        self._cond = threading.Condition()
        self.queues: dict[str, MnsQueue] = {q: MnsQueue(q, visibility_timeout) for q in queues}
        self.default_queue = queues[0]
        # knobs
        self.record_calls = True  # the benchmark turns recording off
        self.latency = 0.0  # seconds added to every receive (slow networks, tests that need a long drain)
        self.first_receive_at: float | None = None  # wall time of the first message handed out
        self.last_delete_at: float | None = None
        self.fail_next: list[tuple[int, str]] = []  # (status, code) answered to the next requests
        self.event_encoding = "base64"  # how ECS-fed events are written: "base64" | "raw"
        self.event_shape = "a"  # "a" (ECS event notification) | "b" (CloudMonitor system event)
        self.stopped = False

    # Python-side API (tests, the console, the ECS emulator) -----------------------------------------
    def queue(self, name: str | None = None) -> MnsQueue:
        with self._cond:
            name = name or self.default_queue
            if name not in self.queues:
                self.queues[name] = MnsQueue(name)
            return self.queues[name]

    def set_visibility_timeout(self, seconds: float, queue: str | None = None) -> None:
        with self._cond:
            self.queue(queue).visibility_timeout = seconds

    def send(self, body: str, queue: str | None = None, delay: float = 0.0, priority: int = 8) -> str:
        with self._cond:
            q = self.queue(queue)
            msg = self._enqueue(q, body, delay, priority)
            self._cond.notify_all()
            return msg.message_id

    def send_many(self, bodies: list[str], queue: str | None = None) -> list[str]:
        with self._cond:
            q = self.queue(queue)
            ids = [self._enqueue(q, body, 0.0, 8).message_id for body in bodies]
            self._cond.notify_all()
            return ids

    def send_event(self, event: dict[str, Any], encoding: str | None = None, queue: str | None = None) -> str:
        return self.send(encode_body(event, encoding or self.event_encoding), queue)

    def depth(self, queue: str | None = None) -> int:
        with self._cond:
            return self.queue(queue).depth

    def deleted_count(self, queue: str | None = None) -> int:
        with self._cond:
            return self.queue(queue).deleted

    def message_info(self, message_id: str, queue: str | None = None) -> dict[str, Any] | None:
        with self._cond:
            msg = self.queue(queue).messages.get(message_id)
            if msg is None:
                return None
            return {"dequeue_count": msg.dequeue_count, "visible_at": msg.visible_at, "body": msg.body}

    def on_ecs_state_change(self, instance: dict[str, Any], old: str | None, new: str | None) -> None:
        """ECS emulator hook: CloudMonitor publishes an Instance:StateChange event for every transition."""
        state = new if new not in (None, "Released", "Deleted") else "Deleted"
        self.send_event(state_change_event(instance, state, shape=self.event_shape))

    def inject_interruption(self, instance_id: str) -> str:
        """A preemptible-instance interruption (action delete), as sent ~5 minutes before release."""
        return self.send_event(interruption_event(self._instance(instance_id)), encoding="base64")

    def inject_system_event(
        self,
        instance_id: str,
        event: str = "SystemMaintenance.Reboot",
        status: str = "Scheduled",
        not_before: float | None = None,
    ) -> str:
        when = not_before if not_before is not None else time.time() + 3 * 86400
        return self.send_event(system_event(self._instance(instance_id), event, status, when))

    def _instance(self, instance_id: str) -> dict[str, Any]:
        ecs = getattr(self.stack, "emulators", {}).get("ecs") if self.stack is not None else None
        found = getattr(ecs, "instances", {}).get(instance_id) if ecs is not None else None
        if found:
            return dict(found)
        return {"InstanceId": instance_id, "RegionId": credentials.REGION_ID, "InstanceName": instance_id}

    # HTTP ------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        if len(parts) < 2 or parts[0] != "queues":
            return self._error(req, "unknown", 404, "InvalidArgument", "Unknown resource.")
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return self._error(req, "injected", status, code, "Injected failure.")
        problem = self._check_auth(req)
        if problem is not None:
            return self._error(req, "auth", *problem)
        queue = self.queues.get(parts[1])
        if queue is None:
            return self._error(
                req, "queue", 404, "QueueNotExist", "The queue name you provided is not exist."
            )
        query = _raw_query(req.raw_path)
        if len(parts) == 3 and parts[2] == "messages":
            if req.method == "POST":
                return self._send(req, queue)
            if req.method == "GET":
                return self._receive(req, queue, query)
            if req.method == "DELETE":
                return self._delete(req, queue, query)
            if req.method == "PUT":
                return self._change_visibility(req, queue, query)
        return self._error(req, "unknown", 405, "InvalidArgument", "Unsupported operation.")

    def _check_auth(self, req: Request) -> tuple[int, str, str] | None:
        h = req.headers
        if h.get("x-mns-version") != "2015-06-06":
            return 400, "InvalidArgument", "x-mns-version must be 2015-06-06."
        date = h.get("x-mns-date") or h.get("date")
        if not date:
            return 400, "MissingDateHeader", "The Date header is missing."
        try:
            sent = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return 400, "InvalidDateHeader", "The Date header is invalid."
        if abs(time.time() - sent) > 15 * 60:
            return 400, "TimeExpired", "The request time is more than 15 minutes away from the server time."
        scheme, _, cred = h.get("authorization", "").partition(" ")
        ak, _, _sig = cred.partition(":")
        if scheme != "MNS" or not ak:
            return 400, "InvalidAuthorizationHeader", "The Authorization header is invalid."
        if ak not in self.secrets:
            return 403, "InvalidAccessKeyId", "The access key id you provided does not exist."
        if not verify_mns(req.method, req.raw_path, h, req.body, self.secrets):
            return 403, "SignatureDoesNotMatch", "The request signature does not match."
        return None

    def _send(self, req: Request, queue: MnsQueue) -> Response:
        try:
            root = ElementTree.fromstring(req.body)
        except ElementTree.ParseError:
            return self._error(req, "SendMessage", 400, "MalformedXML", "The XML you provided is malformed.")
        batch = _local(root.tag) == "Messages"
        items = [c for c in root if _local(c.tag) == "Message"] if batch else [root]
        if not items or len(items) > MAX_BATCH:
            return self._error(req, "SendMessage", 400, "InvalidArgument", "1 to 16 messages per request.")
        parsed = []
        for item in items:
            fields = {_local(c.tag): (c.text or "") for c in item}
            body = fields.get("MessageBody", "")
            if not body or len(body.encode()) > 65536:
                return self._error(req, "SendMessage", 400, "InvalidArgument", "The message body is invalid.")
            try:
                delay = float(fields.get("DelaySeconds") or 0)
                priority = int(fields.get("Priority") or 8)
            except ValueError:
                return self._error(
                    req, "SendMessage", 400, "InvalidArgument", "Invalid DelaySeconds/Priority."
                )
            parsed.append((body, delay, priority))
        with self._cond:
            sent = [self._enqueue(queue, body, delay, priority) for body, delay, priority in parsed]
            self._cond.notify_all()
        entries = "".join(
            f"<Message><MessageId>{m.message_id}</MessageId><MessageBodyMD5>{m.md5}</MessageBodyMD5></Message>"
            for m in sent
        )
        xml = (
            f'<Messages xmlns="{NS}">{entries}</Messages>'
            if batch
            else entries.replace("<Message>", f'<Message xmlns="{NS}">', 1)
        )
        return self._xml(req, "BatchSendMessage" if batch else "SendMessage", 201, xml)

    def _receive(self, req: Request, queue: MnsQueue, query: dict[str, str]) -> Response:
        try:
            count = int(query.get("numOfMessages", "0") or 0)
            wait = int(query["waitseconds"]) if "waitseconds" in query else queue.polling_wait_seconds
        except ValueError:
            return self._error(req, "ReceiveMessage", 400, "InvalidArgument", "Invalid parameter.")
        batch = "numOfMessages" in query
        name = "BatchReceiveMessage" if batch else "ReceiveMessage"
        if (batch and not 1 <= count <= MAX_BATCH) or not 0 <= wait <= MAX_WAIT_SECONDS:
            return self._error(req, name, 400, "InvalidArgument", "numOfMessages 1-16, waitseconds 0-30.")
        if self.latency:
            time.sleep(self.latency)
        deadline = time.time() + wait
        with self._cond:
            while True:
                now = time.time()
                queue.promote(now)
                got = self._take(queue, count if batch else 1, now)
                if got or now >= deadline or self.stopped:
                    break
                nxt = queue.next_visible()
                self._cond.wait(max(0.001, min(deadline, nxt if nxt is not None else deadline) - now))
        if not got:
            return self._error(req, name, 404, "MessageNotExist", "Message not exist.")
        body = "".join(_message_xml(m) for m in got)
        if batch:
            return self._xml(req, name, 200, f'<Messages xmlns="{NS}">{body}</Messages>')
        return self._xml(req, name, 200, body.replace("<Message>", f'<Message xmlns="{NS}">', 1))

    def _take(self, queue: MnsQueue, count: int, now: float) -> list[_Message]:
        got: list[_Message] = []
        while queue.ready and len(got) < count:
            msg = queue.messages.get(queue.ready.popleft())
            if msg is None or msg.deleted or msg.visible_at > now:
                continue
            msg.dequeue_count += 1
            msg.first_dequeue_ms = msg.first_dequeue_ms or int(now * 1000)
            msg.handle = f"{msg.message_id[:8]}-{msg.dequeue_count}-{secrets.token_hex(10)}"
            queue.handles[msg.handle] = msg.message_id
            queue.hide(msg, now + queue.visibility_timeout)
            got.append(msg)
        if got and self.first_receive_at is None:
            self.first_receive_at = now
        return got

    def _live(self, queue: MnsQueue, handle: str) -> _Message | None:
        mid = queue.handles.get(handle)
        msg = queue.messages.get(mid) if mid else None
        if msg is None or msg.deleted or msg.handle != handle or msg.visible_at <= time.time():
            return None
        return msg

    def _remove(self, queue: MnsQueue, msg: _Message) -> None:
        self.last_delete_at = time.time()
        msg.deleted = True
        queue.handles.pop(msg.handle or "", None)
        del queue.messages[msg.message_id]
        queue.deleted += 1

    def _delete(self, req: Request, queue: MnsQueue, query: dict[str, str]) -> Response:
        if "ReceiptHandle" in query:
            with self._cond:
                msg = self._live(queue, query["ReceiptHandle"])
                if msg is None:
                    return self._error(req, "DeleteMessage", 404, "MessageNotExist", "Message not exist.")
                self._remove(queue, msg)
            return self._empty(req, "DeleteMessage")
        try:
            root = ElementTree.fromstring(req.body)
        except ElementTree.ParseError:
            return self._error(req, "BatchDeleteMessage", 400, "MalformedXML", "The XML is malformed.")
        handles = [c.text or "" for c in root if _local(c.tag) == "ReceiptHandle"]
        if not handles:
            return self._error(req, "BatchDeleteMessage", 400, "MissingReceiptHandle", "No ReceiptHandle.")
        if len(handles) > MAX_BATCH:
            return self._error(req, "BatchDeleteMessage", 400, "InvalidArgument", "At most 16 handles.")
        failed = []
        with self._cond:
            for handle in handles:
                msg = self._live(queue, handle)
                if msg is None:
                    failed.append(handle)
                else:
                    self._remove(queue, msg)
        if not failed:
            return self._empty(req, "BatchDeleteMessage")
        errors = "".join(
            f"<Error><ErrorCode>MessageNotExist</ErrorCode><ErrorMessage>Message not exist.</ErrorMessage>"
            f"<ReceiptHandle>{escape(h)}</ReceiptHandle></Error>"
            for h in failed
        )
        return self._xml(req, "BatchDeleteMessage", 404, f'<Errors xmlns="{NS}">{errors}</Errors>')

    def _change_visibility(self, req: Request, queue: MnsQueue, query: dict[str, str]) -> Response:
        name = "ChangeMessageVisibility"
        if "ReceiptHandle" not in query:
            return self._error(req, name, 400, "MissingReceiptHandle", "ReceiptHandle is missing.")
        if "VisibilityTimeout" not in query:
            return self._error(req, name, 400, "MissingVisibilityTimeout", "VisibilityTimeout is missing.")
        try:
            seconds = int(query["VisibilityTimeout"])
        except ValueError:
            seconds = -1
        if not 0 <= seconds <= 43200:
            return self._error(req, name, 400, "InvalidArgument", "VisibilityTimeout must be 0-43200.")
        with self._cond:
            msg = self._live(queue, query["ReceiptHandle"])
            if msg is None:
                return self._error(req, name, 404, "MessageNotExist", "Message not exist.")
            queue.handles.pop(msg.handle or "", None)
            msg.handle = f"{msg.message_id[:8]}-{msg.dequeue_count}-{secrets.token_hex(10)}"
            queue.handles[msg.handle] = msg.message_id
            queue.hide(msg, time.time() + seconds)
            if seconds == 0:
                queue.promote(time.time() + 0.0001)
                self._cond.notify_all()
            xml = (
                f'<ChangeVisibility xmlns="{NS}"><ReceiptHandle>{msg.handle}</ReceiptHandle>'
                f"<NextVisibleTime>{int(msg.visible_at * 1000)}</NextVisibleTime></ChangeVisibility>"
            )
        return self._xml(req, name, 200, xml)

    # helpers ---------------------------------------------------------------------------------------
    def _enqueue(self, queue: MnsQueue, body: str, delay: float, priority: int) -> _Message:
        now = time.time()
        msg = _Message(
            message_id=uuid.uuid4().hex.upper(),
            body=body,
            md5=hashlib.md5(body.encode()).hexdigest().upper(),
            enqueue_ms=int(now * 1000),
            priority=priority,
        )
        queue.messages[msg.message_id] = msg
        if delay > 0:
            queue.hide(msg, now + delay)
        else:
            msg.visible_at = now
            queue.ready.append(msg.message_id)
        return msg

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "text/xml;charset=utf-8", "x-mns-request-id": secrets.token_hex(12).upper()}

    def _xml(self, req: Request, name: str, status: int, xml: str) -> Response:
        if self.record_calls:
            self.record(name, req, status)
        return Response(status, ('<?xml version="1.0" encoding="UTF-8"?>' + xml).encode(), self._headers())

    def _empty(self, req: Request, name: str) -> Response:
        if self.record_calls:
            self.record(name, req, 204)
        return Response(204, b"", self._headers())

    def _error(self, req: Request, name: str, status: int, code: str, message: str) -> Response:
        headers = self._headers()
        xml = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error xmlns="{NS}"><Code>{code}</Code>'
            f"<Message>{escape(message)}</Message><RequestId>{headers['x-mns-request-id']}</RequestId>"
            f"<HostId>{self.base_url}</HostId></Error>"
        )
        if self.record_calls:
            self.record(name, req, status, code)
        return Response(status, xml.encode(), headers)

    def before_stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _raw_query(raw_path: str) -> dict[str, str]:
    """The query as sent: '+' stays '+' (the SDK does not URL-encode receipt handles)."""
    _, _, query = raw_path.partition("?")
    out: dict[str, str] = {}
    for pair in query.split("&"):
        if pair:
            key, _, value = pair.partition("=")
            out[unquote(key)] = unquote(value)
    return out


def _message_xml(m: _Message) -> str:
    return (
        f"<Message><MessageId>{m.message_id}</MessageId><ReceiptHandle>{m.handle}</ReceiptHandle>"
        f"<MessageBodyMD5>{m.md5}</MessageBodyMD5><MessageBody>{escape(m.body)}</MessageBody>"
        f"<EnqueueTime>{m.enqueue_ms}</EnqueueTime><NextVisibleTime>{int(m.visible_at * 1000)}</NextVisibleTime>"
        f"<FirstDequeueTime>{m.first_dequeue_ms}</FirstDequeueTime><DequeueCount>{m.dequeue_count}</DequeueCount>"
        f"<Priority>{m.priority}</Priority></Message>"
    )


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


# CloudMonitor-shaped events ------------------------------------------------------------------------


def encode_body(event: dict[str, Any], encoding: str = "base64") -> str:
    text = json.dumps(event, separators=(",", ":"), ensure_ascii=False)
    return base64.b64encode(text.encode()).decode() if encoding == "base64" else text


def _arn(region: str, instance_id: str) -> str:
    return f"acs:ecs:{region}:{ACCOUNT_UID}:instance/{instance_id}"


def _compact_now(when: float | None = None) -> str:
    """ECS notification time format, UTC+8: 20181226T220114.058+0800."""
    local = dt.datetime.fromtimestamp(when if when is not None else time.time(), _UTC8)
    return local.strftime("%Y%m%dT%H%M%S.") + f"{local.microsecond // 1000:03d}+0800"


def state_change_event(
    instance: dict[str, Any],
    state: str,
    shape: str = "a",
    when: float | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    iid = instance["InstanceId"]
    region = instance.get("RegionId") or credentials.REGION_ID
    if shape == "b":
        return {
            "product": "ECS",
            "resourceId": _arn(region, iid),
            "level": "INFO",
            "instanceName": instance.get("InstanceName") or iid,
            "regionId": region,
            "groupId": "0",
            "name": "Instance:StateChange",
            "eventType": "StatusNotification",
            "time": int((when if when is not None else time.time()) * 1000),
            "content": {"instanceId": iid, "state": state},
            "status": "Normal",
        }
    return {
        "id": event_id or str(uuid.uuid4()).upper(),
        "eventTime": _compact_now(when),
        "level": "INFO",
        "name": "Instance:StateChange",
        "product": "ECS",
        "regionId": region,
        "resourceId": _arn(region, iid),
        "userId": ACCOUNT_UID,
        "ver": "1.0",
        "content": {"resourceId": iid, "resourceType": "ALIYUN::ECS::Instance", "state": state},
    }


def interruption_event(instance: dict[str, Any]) -> dict[str, Any]:
    iid = instance["InstanceId"]
    region = instance.get("RegionId") or credentials.REGION_ID
    return {
        "product": "ECS",
        "resourceId": _arn(region, iid),
        "level": "WARN",
        "instanceName": instance.get("InstanceName") or iid,
        "regionId": region,
        "groupId": "0",
        "name": "Instance:PreemptibleInstanceInterruption",
        "time": int(time.time() * 1000),
        "content": {"instanceId": iid, "action": "delete"},
        "status": "Normal",
    }


def system_event(instance: dict[str, Any], event: str, status: str, not_before: float) -> dict[str, Any]:
    iid = instance["InstanceId"]
    region = instance.get("RegionId") or credentials.REGION_ID
    nb = dt.datetime.fromtimestamp(not_before, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "id": str(uuid.uuid4()).upper(),
        "eventTime": _compact_now(),
        "level": "CRITICAL",
        "name": f"Instance:{event}:{status}",
        "product": "ECS",
        "regionId": region,
        "resourceId": _arn(region, iid),
        "userId": ACCOUNT_UID,
        "ver": "1.0",
        "content": {
            "eventId": "e-" + secrets.token_hex(8),
            "publishTime": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "notBefore": nb,
            "instanceId": iid,
            "eventType": event,
            "eventStatus": status,
        },
    }


register_emulator(
    EmulatorSpec(
        name="mns",
        factory=lambda stack: MnsEmulator(stack=stack),
        settings=lambda emu: {"MNS_ENDPOINT": emu.base_url, "MNS_QUEUE": emu.default_queue},
        order=20,
    )
)


# Console: `inject …` puts events on the sandbox's MNS queue ------------------------------------------

INJECT_USAGE = (
    "inject interruption|maintenance|crash INSTANCE  /  inject poison [TEXT]  /  inject event JSON\n"
    "                            ECS events onto the MNS queue (crash = the instance stops unexpectedly)"
)


def _find_instance(console, ref: str) -> str | None:
    ecs = console.bot.stack.emulators.get("ecs")
    instances = getattr(ecs, "instances", {}) if ecs is not None else {}
    if ref in instances:
        return ref
    for iid, inst in instances.items():
        if inst.get("InstanceName") == ref:
            return iid
    return ref if ref.startswith("i-") else None


@console_command("inject", INJECT_USAGE)
def _inject(console, rest: str) -> bool:
    emu = console.bot.stack.emulators.get("mns")
    if emu is None:
        return console._bad("the MNS emulator is not running")
    kind, _, arg = rest.partition(" ")
    kind, arg = kind.lower(), arg.strip()
    console._expect_from = len(console.shown_text)
    if kind == "event":
        try:
            event = json.loads(arg)
        except ValueError:
            return console._bad('usage: inject event {"name": "Instance:StateChange", ...}')
        emu.send_event(event)
        console.say("(event put on the MNS queue)")
        return True
    if kind == "poison":
        emu.send(arg or "this is not an ECS event")
        console.say("(an unreadable message was put on the MNS queue)")
        return True
    if kind not in ("interruption", "maintenance", "crash") or not arg:
        return console._bad("usage: " + INJECT_USAGE)
    iid = _find_instance(console, arg.split()[0])
    if iid is None:
        return console._bad(f"no instance {arg!r} (give an id or a name)")
    if kind == "crash":
        ecs = console.bot.stack.emulators.get("ecs")
        if ecs is None or iid not in ecs.instances:
            return console._bad(f"no ECS instance {iid}")
        ecs.set_status(iid, "Stopped")  # the ECS emulator publishes the state change to MNS
        console.say(f"({iid} stopped unexpectedly)")
    elif kind == "interruption":
        emu.inject_interruption(iid)
        console.say(f"(preemptible interruption of {iid} put on the MNS queue)")
    else:
        emu.inject_system_event(iid)
        console.say(f"(SystemMaintenance.Reboot:Scheduled for {iid} put on the MNS queue)")
    return True
