"""One MNS queue's state, as the service keeps it: its attributes, and its messages in the three states
GetQueueAttributes counts — active (visible), inactive (received, invisible until NextVisibleTime) and
delayed (sent with a delay, not visible yet). A message older than the queue's MessageRetentionPeriod
is gone, received or not.

Time comes from the emulator's clock; all access happens under the emulator's condition lock.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import secrets
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from sandbox.mns_wire import ATTRIBUTE_DEFAULTS


@dataclass
class QueueMessage:
    message_id: str
    body: str  # stored verbatim (Base64 is the client's business)
    md5: str
    enqueue_ms: int
    priority: int = 8
    first_dequeue_ms: int = 0
    dequeue_count: int = 0
    visible_at: float = 0.0  # seconds on the emulator's clock
    handle: str | None = None  # the one valid receipt handle, while invisible after a receive
    deleted: bool = False


class MnsQueue:
    def __init__(self, name: str, now: float, attributes: dict[str, Any] | None = None):
        self.name = name
        self.attributes: dict[str, Any] = {**ATTRIBUTE_DEFAULTS, **(attributes or {})}
        self.attributes["CreateTime"] = self.attributes["LastModifyTime"] = int(now)
        self.messages: dict[str, QueueMessage] = {}
        self.ready: deque[str] = deque()
        self.timed: list[tuple[float, int, str]] = []  # (visible_at, seq, message_id): invisible ones
        self.arrivals: deque[tuple[float, str]] = deque()  # (enqueued at, message_id): for retention
        self.handles: dict[str, str] = {}  # receipt handle → message id
        self.deleted = 0
        self.expired = 0
        # Seconds a received message stays invisible; a float, so tests may use less than a second.
        self.visibility_timeout: float = float(self.attributes["VisibilityTimeout"])
        self._seq = itertools.count()

    # attributes --------------------------------------------------------------------------------
    def same_attributes(self, wanted: dict[str, Any]) -> bool:
        """CreateQueue on an existing queue: are the attributes asked for (defaults for the rest) its own?"""
        settable = {k: v for k, v in self.current_attributes().items() if k in ATTRIBUTE_DEFAULTS}
        return settable == {**ATTRIBUTE_DEFAULTS, **wanted}

    def set_attributes(self, changes: dict[str, Any], now: float) -> None:
        self.attributes.update(changes)
        if "VisibilityTimeout" in changes:
            self.visibility_timeout = float(changes["VisibilityTimeout"])
        self.attributes["LastModifyTime"] = int(now)

    def current_attributes(self) -> dict[str, Any]:
        return {**self.attributes, "VisibilityTimeout": max(1, round(self.visibility_timeout))}

    @property
    def polling_wait_seconds(self) -> int:
        return int(self.attributes["PollingWaitSeconds"])

    # time passing ------------------------------------------------------------------------------
    def promote(self, now: float) -> None:
        """Messages whose invisibility ended become visible; messages past retention are dropped."""
        self._expire(now)
        while self.timed and self.timed[0][0] <= now:
            visible_at, _, mid = heapq.heappop(self.timed)
            msg = self.messages.get(mid)
            if msg is None or msg.deleted or msg.visible_at != visible_at:
                continue  # stale heap entry (deleted, or visibility changed since)
            if msg.handle is not None:
                self.handles.pop(msg.handle, None)
                msg.handle = None
            self.ready.append(mid)

    def _expire(self, now: float) -> None:
        keep = self.attributes["MessageRetentionPeriod"]
        while self.arrivals and self.arrivals[0][0] + keep <= now:
            _, mid = self.arrivals.popleft()
            msg = self.messages.get(mid)
            if msg is not None and not msg.deleted:
                self._drop(msg)
                self.expired += 1

    def next_visible(self) -> float | None:
        return self.timed[0][0] if self.timed else None

    def hide(self, msg: QueueMessage, until: float) -> None:
        msg.visible_at = until
        heapq.heappush(self.timed, (until, next(self._seq), msg.message_id))

    # messages ----------------------------------------------------------------------------------
    def enqueue(self, body: str, delay: float, priority: int, now: float) -> QueueMessage:
        msg = QueueMessage(
            message_id=uuid.uuid4().hex.upper(),
            body=body,
            md5=hashlib.md5(body.encode()).hexdigest().upper(),
            enqueue_ms=int(now * 1000),
            priority=priority,
        )
        self.messages[msg.message_id] = msg
        self.arrivals.append((now, msg.message_id))
        if delay > 0:
            self.hide(msg, now + delay)
        else:
            msg.visible_at = now
            self.ready.append(msg.message_id)
        return msg

    def _visible(self, now: float):
        """The visible messages in delivery order; stale entries at the front are dropped on the way."""
        while self.ready and not self._is_visible(self.ready[0], now):
            self.ready.popleft()
        return (self.messages[mid] for mid in self.ready if self._is_visible(mid, now))

    def _is_visible(self, mid: str, now: float) -> bool:
        msg = self.messages.get(mid)
        return msg is not None and not msg.deleted and msg.visible_at <= now and msg.handle is None

    def peek(self, count: int, now: float) -> list[QueueMessage]:
        """The next visible messages, left exactly as they are (PeekMessage changes nothing)."""
        return list(itertools.islice(self._visible(now), count))

    def take(self, count: int, now: float) -> list[QueueMessage]:
        """Receive: each message taken gets a new handle, one more delivery, and is hidden."""
        got: list[QueueMessage] = []
        while self.ready and len(got) < count:
            mid = self.ready.popleft()
            if not self._is_visible(mid, now):
                continue
            msg = self.messages[mid]
            msg.dequeue_count += 1
            msg.first_dequeue_ms = msg.first_dequeue_ms or int(now * 1000)
            self.new_handle(msg)
            self.hide(msg, now + self.visibility_timeout)
            got.append(msg)
        return got

    def new_handle(self, msg: QueueMessage) -> str:
        self.handles.pop(msg.handle or "", None)
        msg.handle = f"{msg.message_id[:8]}-{msg.dequeue_count}-{secrets.token_hex(10)}"
        self.handles[msg.handle] = msg.message_id
        return msg.handle

    def live(self, handle: str, now: float) -> QueueMessage | None:
        """The message a receipt handle names, while that handle is still valid."""
        mid = self.handles.get(handle)
        msg = self.messages.get(mid) if mid else None
        if msg is None or msg.deleted or msg.handle != handle or msg.visible_at <= now:
            return None
        return msg

    def remove(self, msg: QueueMessage) -> None:
        self._drop(msg)
        self.deleted += 1

    def _drop(self, msg: QueueMessage) -> None:
        msg.deleted = True
        self.handles.pop(msg.handle or "", None)
        del self.messages[msg.message_id]

    def counts(self, now: float) -> dict[str, int]:
        """GetQueueAttributes' ActiveMessages, InactiveMessages and DelayMessages."""
        out = {"active": 0, "inactive": 0, "delayed": 0}
        for msg in self.messages.values():
            if msg.visible_at <= now:
                out["active"] += 1
            else:
                out["inactive" if msg.dequeue_count else "delayed"] += 1
        return out

    @property
    def depth(self) -> int:
        return len(self.messages)
