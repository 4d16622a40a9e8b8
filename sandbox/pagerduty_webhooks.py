"""The PagerDuty emulator's outbound side: signed V3 webhooks (or legacy V2 batches) POSTed to the bot,
at least once, with knobs to make "at least once" hurt.

Knobs (attributes, change them at any time):
- `duplicates`: extra sequential copies of every delivery (same X-Webhook-Id), as a retry storm would send;
- `concurrent_duplicates`: extra copies sent at the same moment from other threads;
- `max_attempts` / `retry_delay`: retries of a copy that got a non-2xx answer or no answer (doubling delay);
- `legacy_v2`: send `{"messages": [...]}` batches instead, grouping changes made within `v2_batch_window`;
- `secrets`: the signing secrets (several: one `v1=` entry each, as during a rotation);
- `enabled`: False holds deliveries back (they queue until re-enabled).
Deliveries wait in the queue until the bot's URL is known (`target()` returns None until then).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def sign(body: bytes, secrets: list[str]) -> str:
    """`X-PagerDuty-Signature`: one `v1=<hex HMAC-SHA256 of the raw body>` entry per active secret."""
    return ",".join("v1=" + hmac.new(s.encode(), body, hashlib.sha256).hexdigest() for s in secrets)


@dataclass
class Attempt:
    webhook_id: str
    copy: int  # 0 = the original, 1.. = duplicates
    attempt: int
    status: int | None  # None: no answer
    at: float = field(default_factory=time.time)


@dataclass
class _Item:
    v3: dict[str, Any]
    v2: dict[str, Any]


class WebhookSender:
    def __init__(self, target: Callable[[], str | None], secrets: list[str], subscription: str = "PSUBSBX"):
        self.target = target
        self.secrets = list(secrets)
        self.subscription = subscription
        self.duplicates = 0
        self.concurrent_duplicates = 0
        self.max_attempts = 6
        self.retry_delay = 0.2
        self.legacy_v2 = False
        self.v2_batch_window = 0.2
        self.enabled = True
        self.timeout = 5.0
        self.attempts: list[Attempt] = []
        self.delivered: list[dict[str, Any]] = []  # one per delivery: {"webhook_id", "body", "status"}
        self._queue: deque[_Item] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="pagerduty-webhooks", daemon=True)
        self._thread.start()

    # producer side -------------------------------------------------------------------------------
    def emit(self, v3_event: dict[str, Any], v2_message: dict[str, Any]) -> None:
        with self._cond:
            self._queue.append(_Item(v3_event, v2_message))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + (1 if self._busy else 0)

    def drain(self, timeout: float = 20.0) -> bool:
        """Wait until every queued change has been delivered (or given up on)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pending() == 0:
                return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(5)

    # delivery side -------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and not (self._queue and self.enabled and self.target()):
                    self._cond.wait(0.05)
                if self._stop:
                    return
                self._busy = True
            try:
                if self.legacy_v2:
                    time.sleep(self.v2_batch_window)  # let quick successive changes share a delivery
                    with self._cond:
                        batch = list(self._queue)
                        self._queue.clear()
                    body = json.dumps({"messages": [i.v2 for i in batch]}).encode()
                    self._deliver(body, version="V2.0")
                else:
                    with self._cond:
                        item = self._queue.popleft()
                    self._deliver(json.dumps({"event": item.v3}).encode(), version="V3.0")
            finally:
                with self._cond:
                    self._busy = False

    def _deliver(self, body: bytes, version: str) -> None:
        webhook_id = str(uuid.uuid4())
        copies = [
            threading.Thread(target=self._send_copy, args=(webhook_id, body, version, n), daemon=True)
            for n in range(1, 1 + self.concurrent_duplicates)
        ]
        for t in copies:
            t.start()
        status = self._send_copy(webhook_id, body, version, 0)
        for t in copies:
            t.join(self.timeout * self.max_attempts)
        for n in range(self.duplicates):
            self._send_copy(webhook_id, body, version, 1 + self.concurrent_duplicates + n)
        self.delivered.append({"webhook_id": webhook_id, "body": body, "status": status, "version": version})

    def headers(self, webhook_id: str, body: bytes, version: str = "V3.0") -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": f"PagerDuty-Webhook/{version}",
            "X-PagerDuty-Signature": sign(body, self.secrets),
            "X-Webhook-Id": webhook_id,
            "X-Webhook-Subscription": self.subscription,
        }

    def _send_copy(self, webhook_id: str, body: bytes, version: str, copy: int) -> int | None:
        delay = self.retry_delay
        status: int | None = None
        for attempt in range(1, self.max_attempts + 1):
            url = self.target()
            status = None
            if url:
                req = urllib.request.Request(
                    url.rstrip("/") + "/pagerduty/webhook",
                    data=body,
                    method="POST",
                    headers=self.headers(webhook_id, body, version),
                )
                try:
                    with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                        status = resp.status
                except urllib.error.HTTPError as exc:
                    status = exc.code
                except (urllib.error.URLError, OSError):
                    status = None
            self.attempts.append(Attempt(webhook_id, copy, attempt, status))
            # PagerDuty retries no answer, 5xx and 429; any other 4xx is dropped for good
            if status is not None and (200 <= status < 300 or (400 <= status < 500 and status != 429)):
                return status
            time.sleep(delay)
            delay *= 2
        return status
