"""Alibaba MNS queue emulator: the XML queue API as aliyun-mns-sdk and its `mnscmd` speak it (protocols.md §5).

Messages: SendMessage / BatchSendMessage, ReceiveMessage / BatchReceiveMessage (long polling up to
30 s), PeekMessage / BatchPeekMessage (which change nothing), DeleteMessage / BatchDeleteMessage
(partial failures as <Errors>), ChangeMessageVisibility. Queues (sandbox/mns_admin.py): CreateQueue,
GetQueueAttributes, SetQueueAttributes, ListQueue, DeleteQueue. Requests are checked like the real
service: `Authorization: MNS AK:HMAC-SHA1`, `x-mns-version`, the Date within 15 minutes of the
emulator's clock. Received messages stay invisible for the queue's visibility timeout, their
DequeueCount grows with every delivery, every delivery hands out a new (URL-safe) receipt handle and
invalidates the old one; an empty receive answers 404 MessageNotExist. Bodies may be as long as the
queue's MaximumMessageSize (a batch's 64 KB together); messages older than its MessageRetentionPeriod
are gone.

Fed by the ECS emulator: `on_ecs_state_change` enqueues a CloudMonitor-shaped `Instance:StateChange`
event; `inject_interruption` / `inject_system_event` / `send_event` put other events on the queue
(builders and the console's `inject` in sandbox/mns_events.py).
"""

from __future__ import annotations

import email.utils
import secrets
import threading
from typing import Any

from bot.clock import SYSTEM_CLOCK, Clock
from sandbox import credentials
from sandbox.emulator import Emulator, EmulatorSpec, Request, Response, register_emulator
from sandbox.mns_admin import QueueAdmin
from sandbox.mns_events import EventFeed
from sandbox.mns_queue import MnsQueue, QueueMessage
from sandbox.mns_wire import (
    WireError,
    batch_delete_errors_xml,
    check_range,
    error_xml,
    local,
    messages_xml,
    parse_int,
    parse_xml,
    raw_query,
    root,
    verify_mns,
)

MAX_WAIT_SECONDS = 30
MAX_BATCH = 16
MAX_BATCH_BYTES = 65536  # BatchSendMessage: the bodies of one batch together, whatever the queue's maximum


class MnsEmulator(EventFeed, QueueAdmin, Emulator):
    name = "mns"

    def __init__(
        self,
        port: int = 0,
        queues: tuple[str, ...] = (credentials.MNS_QUEUE,),
        access_key_id: str = credentials.ALIBABA_ACCESS_KEY_ID,
        access_key_secret: str = credentials.ALIBABA_ACCESS_KEY_SECRET,
        visibility_timeout: float = 30.0,
        stack: Any = None,
        clock: Clock = SYSTEM_CLOCK,
    ):
        super().__init__(port)
        self.secrets = {access_key_id: access_key_secret}
        self.stack = stack
        self.clock = clock
        self._cond = threading.Condition()
        self.queues: dict[str, MnsQueue] = {}
        for name in queues:
            self.queue(name).visibility_timeout = visibility_timeout
        self.default_queue = queues[0]
        # knobs
        self.record_calls = True  # the benchmark turns recording off
        self.latency = 0.0  # seconds added to every receive (slow networks, tests that need a long drain)
        self.first_receive_at: float | None = None  # time of the first message handed out
        self.waiting_receives = 0  # receives long-polling now (a benchmark waits for its consumers)
        self.last_delete_at: float | None = None
        self.fail_next: list[tuple[int, str]] = []  # (status, code) answered to the next requests
        self.event_encoding = "base64"  # how ECS-fed events are written: "base64" | "raw"
        self.event_shape = "a"  # "a" (ECS event notification) | "b" (CloudMonitor system event)
        self.stopped = False

    # Python-side API (tests, the console, the ECS emulator) -----------------------------------------
    def queue(self, name: str | None = None) -> MnsQueue:
        """The queue `name` (default: the first one), created with default attributes if missing."""
        with self._cond:
            name = name or self.default_queue
            if name not in self.queues:
                self.queues[name] = MnsQueue(name, self.clock.time())
            return self.queues[name]

    def set_visibility_timeout(self, seconds: float, queue: str | None = None) -> None:
        with self._cond:
            self.queue(queue).visibility_timeout = seconds

    def send(self, body: str, queue: str | None = None, delay: float = 0.0, priority: int = 8) -> str:
        return self.send_many([body], queue, delay, priority)[0]

    def send_many(
        self, bodies: list[str], queue: str | None = None, delay: float = 0.0, priority: int = 8
    ) -> list[str]:
        with self._cond:
            q, now = self.queue(queue), self.clock.time()
            ids = [q.enqueue(body, delay, priority, now).message_id for body in bodies]
            self._cond.notify_all()
            return ids

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

    # HTTP ------------------------------------------------------------------------------------------
    def handle(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/")
        if (
            not parts
            or parts[0] != "queues"
            or len(parts) > 3
            or (len(parts) == 3 and parts[2] != "messages")
        ):
            return self._error(req, "unknown", 404, "InvalidArgument", "Unknown resource.")
        if self.fail_next:
            status, code = self.fail_next.pop(0)
            return self._error(req, "injected", status, code, "Injected failure.")
        problem = self._check_auth(req)
        if problem is not None:
            return self._error(req, "auth", *problem)
        query = raw_query(req.raw_path)
        name, operation = self._route(req, parts, query)
        if operation is None:
            return self._error(req, name, 405, "InvalidArgument", "Unsupported operation.")
        try:
            return operation()
        except WireError as exc:
            return self._error(req, name, exc.status, exc.code, exc.message)

    def _route(self, req: Request, parts: list[str], query: dict[str, str]):
        """(operation name, a call answering it, or None when the method does not apply)."""
        if len(parts) == 1:
            return "ListQueue", (lambda: self._list_queues(req)) if req.method == "GET" else None
        if len(parts) == 2 and req.method == "PUT" and query.get("metaoverride", "").lower() == "true":
            table = {"PUT": ("SetQueueAttributes", self._set_queue_attributes)}
        elif len(parts) == 2:
            table = self.admin_operations()
        elif query.get("peekonly", "").lower() == "true":
            table = {"GET": ("BatchPeekMessage" if "numOfMessages" in query else "PeekMessage", self._peek)}
        else:
            table = {
                "POST": ("SendMessage", self._send),
                "GET": (
                    "BatchReceiveMessage" if "numOfMessages" in query else "ReceiveMessage",
                    self._receive,
                ),
                "DELETE": (
                    "DeleteMessage" if "ReceiptHandle" in query else "BatchDeleteMessage",
                    self._delete,
                ),
                "PUT": ("ChangeMessageVisibility", self._change_visibility),
            }
        name, fn = table.get(req.method, ("unknown", None))
        return name, None if fn is None else (lambda: fn(req, parts[1], query))

    def _existing(self, name: str) -> MnsQueue:
        with self._cond:
            queue = self.queues.get(name)
        if queue is None:
            raise WireError(404, "QueueNotExist", "The queue name you provided is not exist.")
        return queue

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
        if abs(self.clock.time() - sent) > 15 * 60:
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

    # messages --------------------------------------------------------------------------------------
    def _send(self, req: Request, name: str, query: dict[str, str]) -> Response:
        queue = self._existing(name)
        root_el = parse_xml(req.body)
        batch = local(root_el.tag) == "Messages"
        items = [c for c in root_el if local(c.tag) == "Message"] if batch else [root_el]
        if not items or len(items) > MAX_BATCH:
            raise WireError(400, "InvalidArgument", "1 to 16 messages per request.")
        limit = int(queue.attributes["MaximumMessageSize"])
        parsed = []
        for item in items:
            fields = {local(c.tag): (c.text or "") for c in item}
            body = fields.get("MessageBody", "")
            check_range("MessageBody", len(body.encode()), 1, limit)
            delay = fields.get("DelaySeconds")
            delay_s = parse_int("DelaySeconds", delay) if delay else int(queue.attributes["DelaySeconds"])
            priority = parse_int("Priority", fields["Priority"]) if fields.get("Priority") else 8
            parsed.append(
                (
                    body,
                    check_range("DelaySeconds", delay_s, 0, 604800),
                    check_range("Priority", priority, 1, 16),
                )
            )
        if sum(len(body.encode()) for body, _, _ in parsed) > MAX_BATCH_BYTES:
            raise WireError(
                400,
                "InvalidArgument",
                f"The messages of a batch must be at most {MAX_BATCH_BYTES} bytes together.",
            )
        with self._cond:
            now = self.clock.time()
            sent = [queue.enqueue(body, delay, priority, now) for body, delay, priority in parsed]
            self._cond.notify_all()
        entries = [
            f"<MessageId>{m.message_id}</MessageId><MessageBodyMD5>{m.md5}</MessageBodyMD5>" for m in sent
        ]
        if batch:
            return self._xml(
                req,
                "BatchSendMessage",
                201,
                root("Messages", "".join(f"<Message>{e}</Message>" for e in entries)),
            )
        return self._xml(req, "SendMessage", 201, root("Message", entries[0]))

    def _batch_size(self, query: dict[str, str]) -> int | None:
        if "numOfMessages" not in query:
            return None
        return check_range("numOfMessages", parse_int("numOfMessages", query["numOfMessages"]), 1, MAX_BATCH)

    def _receive(self, req: Request, name: str, query: dict[str, str]) -> Response:
        queue = self._existing(name)
        count = self._batch_size(query)
        op = "BatchReceiveMessage" if count is not None else "ReceiveMessage"
        if "waitseconds" in query:
            wait = check_range(
                "waitseconds", parse_int("waitseconds", query["waitseconds"]), 0, MAX_WAIT_SECONDS
            )
        else:
            wait = queue.polling_wait_seconds
        if self.latency:
            self.clock.sleep(self.latency)
        with self._cond:
            deadline = self.clock.time() + wait
            self.waiting_receives += 1
            try:
                while True:
                    now = self.clock.time()
                    queue.promote(now)
                    got = queue.take(count or 1, now)
                    if got or now >= deadline or self.stopped:
                        break
                    nxt = queue.next_visible()
                    self._cond.wait(max(0.001, min(deadline, nxt if nxt is not None else deadline) - now))
            finally:
                self.waiting_receives -= 1
            if got and self.first_receive_at is None:
                self.first_receive_at = now
        if not got:
            raise WireError(404, "MessageNotExist", "Message not exist.")
        return self._xml(req, op, 200, messages_xml(got, batch=count is not None))

    def _peek(self, req: Request, name: str, query: dict[str, str]) -> Response:
        queue = self._existing(name)
        count = self._batch_size(query)
        with self._cond:
            now = self.clock.time()
            queue.promote(now)
            got = queue.peek(count or 1, now)
        if not got:
            raise WireError(404, "MessageNotExist", "Message not exist.")
        op = "BatchPeekMessage" if count is not None else "PeekMessage"
        return self._xml(req, op, 200, messages_xml(got, batch=count is not None, received=False))

    def _remove(self, queue: MnsQueue, msg: QueueMessage) -> None:
        self.last_delete_at = self.clock.time()
        queue.remove(msg)

    def _delete(self, req: Request, name: str, query: dict[str, str]) -> Response:
        queue = self._existing(name)
        if "ReceiptHandle" in query:
            with self._cond:
                msg = queue.live(query["ReceiptHandle"], self.clock.time())
                if msg is None:
                    raise WireError(404, "MessageNotExist", "Message not exist.")
                self._remove(queue, msg)
            return self._empty(req, "DeleteMessage")
        handles = [c.text or "" for c in parse_xml(req.body) if local(c.tag) == "ReceiptHandle"]
        if not handles:
            raise WireError(400, "MissingReceiptHandle", "No ReceiptHandle.")
        if len(handles) > MAX_BATCH:
            raise WireError(400, "InvalidArgument", "At most 16 handles.")
        failed = []
        with self._cond:
            now = self.clock.time()
            for handle in handles:
                msg = queue.live(handle, now)
                if msg is None:
                    failed.append(handle)
                else:
                    self._remove(queue, msg)
        if not failed:
            return self._empty(req, "BatchDeleteMessage")
        return self._xml(req, "BatchDeleteMessage", 404, batch_delete_errors_xml(failed))

    def _change_visibility(self, req: Request, name: str, query: dict[str, str]) -> Response:
        queue = self._existing(name)
        if "ReceiptHandle" not in query:
            raise WireError(400, "MissingReceiptHandle", "ReceiptHandle is missing.")
        if "VisibilityTimeout" not in query:
            raise WireError(400, "MissingVisibilityTimeout", "VisibilityTimeout is missing.")
        try:
            seconds = int(query["VisibilityTimeout"])
        except ValueError:
            seconds = -1
        check_range("VisibilityTimeout", seconds, 0, 43200)
        with self._cond:
            now = self.clock.time()
            msg = queue.live(query["ReceiptHandle"], now)
            if msg is None:
                raise WireError(404, "MessageNotExist", "Message not exist.")
            handle = queue.new_handle(msg)
            queue.hide(msg, now + seconds)
            if seconds == 0:
                queue.promote(now)
                self._cond.notify_all()
            xml = root(
                "ChangeVisibility",
                f"<ReceiptHandle>{handle}</ReceiptHandle><NextVisibleTime>{int((now + seconds) * 1000)}</NextVisibleTime>",
            )
        return self._xml(req, "ChangeMessageVisibility", 200, xml)

    # responses -------------------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "text/xml;charset=utf-8", "x-mns-request-id": secrets.token_hex(12).upper()}

    def _xml(
        self, req: Request, name: str, status: int, xml: str, headers: dict[str, str] | None = None
    ) -> Response:
        if self.record_calls:
            self.record(name, req, status)
        return Response(status, xml.encode(), {**self._headers(), **(headers or {})})

    def _empty(self, req: Request, name: str, headers: dict[str, str] | None = None) -> Response:
        if self.record_calls:
            self.record(name, req, 204)
        return Response(204, b"", {**self._headers(), **(headers or {})})

    def _error(self, req: Request, name: str, status: int, code: str, message: str) -> Response:
        headers = self._headers()
        xml = error_xml(code, message, headers["x-mns-request-id"], self.base_url)
        if self.record_calls:
            self.record(name, req, status, code)
        return Response(status, xml.encode(), headers)

    def before_stop(self) -> None:
        with self._cond:
            self.stopped = True
            self._cond.notify_all()


register_emulator(
    EmulatorSpec(
        name="mns",
        factory=lambda stack: MnsEmulator(stack=stack),
        settings=lambda emu: {"MNS_ENDPOINT": emu.base_url, "MNS_QUEUE": emu.default_queue},
        order=20,
    )
)
