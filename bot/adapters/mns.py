"""Alibaba MNS queues through aliyun-mns-sdk (the maintained package providing the `mns` module).

The SDK keeps one keep-alive connection per client and is not thread-safe, so every consumer thread
asks for its own `MnsQueueClient` (`services.adapter("mns").queue()`). Bodies are read raw
(`set_encoding(False)`): the SDK's Base64 decoding would fail a whole batch on one raw-JSON body, so
decoding is the event parser's business. Empty receives (404 MessageNotExist) are an empty list;
every other failure is an UpstreamError("MNS", ...) with the service's request id.
"""

from __future__ import annotations

import html
import logging
import re
import socket
import threading
import time
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from mns.account import Account
from mns.auth import Credentials, CredentialsProvider
from mns.mns_exception import MNSClientNetworkException, MNSExceptionBase, MNSServerException
from mns.mns_http import MNSHTTPConnection, MNSHTTPSConnection
from mns.queue import Message

from bot.errors import ConfigError, UpstreamError
from bot.registry import Capability

capability = Capability("bot.adapters.mns")

log = logging.getLogger(__name__)

# Errors that mean "this handle no longer names a message we hold": deleted already, or redelivered.
STALE_HANDLE_CODES = frozenset({"MessageNotExist", "ReceiptHandleError"})
# MNS error codes that mean "the service had trouble", not "the request was wrong".
RETRYABLE_SERVER_CODES = frozenset(
    {
        "InternalError",
        "InternalServerError",
        "ServiceUnavailable",
        "ServerBusy",
        "QpsLimitExceeded",
        "Throttling",
    }
)


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    dequeue_count: int
    enqueue_time_ms: int
    first_dequeue_time_ms: int
    next_visible_time_ms: int


_MESSAGE = re.compile(r"<Message(?:\s[^>]*)?>(.*?)</Message>", re.S)


def _field(block: str, name: str) -> str:
    found = re.search(f"<{name}>(.*?)</{name}>", block, re.S)
    return html.unescape(found.group(1)) if found else ""


def _number(block: str, name: str) -> int:
    text = _field(block, name).strip()
    return int(text) if text.isdigit() else 0


def salvage(raw: str) -> list[QueueMessage]:
    """The messages of a receive answer the SDK refused to parse (RespDataDamaged: a body with characters
    XML does not allow, an empty body), read leniently so that the consumer can deliver the readable ones
    and quarantine the rest instead of the whole batch coming back forever."""
    out = []
    for block in _MESSAGE.findall(raw or ""):
        message_id, handle = _field(block, "MessageId").strip(), _field(block, "ReceiptHandle").strip()
        if message_id and handle:
            out.append(
                QueueMessage(
                    message_id=message_id,
                    receipt_handle=handle,
                    body=_field(block, "MessageBody"),
                    dequeue_count=_number(block, "DequeueCount"),
                    enqueue_time_ms=_number(block, "EnqueueTime"),
                    first_dequeue_time_ms=_number(block, "FirstDequeueTime"),
                    next_visible_time_ms=_number(block, "NextVisibleTime"),
                )
            )
    return out


@dataclass(frozen=True)
class QueueAttributes:
    """GetQueueAttributes: the queue's messages by state and its settings (times in epoch seconds)."""

    name: str
    active: int  # visible, waiting for a consumer
    inactive: int  # received, invisible until their visibility timeout ends
    delayed: int  # sent with a delay that has not ended
    visibility_timeout: int
    polling_wait_seconds: int
    maximum_message_size: int
    retention_seconds: int
    created_at: int
    modified_at: int


@dataclass(frozen=True)
class PeekedMessage:
    message_id: str
    enqueue_time_ms: int
    dequeue_count: int


def _peeked(raw: str) -> list[PeekedMessage]:
    """A peek answer the SDK refused to parse, read leniently (as `salvage` reads a receive)."""
    blocks = (b for b in _MESSAGE.findall(raw or "") if _field(b, "MessageId").strip())
    return [
        PeekedMessage(_field(b, "MessageId").strip(), _number(b, "EnqueueTime"), _number(b, "DequeueCount"))
        for b in blocks
    ]


def _text(body: bytes | str) -> str:
    return body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)


def _upstream(exc: MNSExceptionBase, what: str) -> UpstreamError:
    """Network failures and the service's own trouble (throttling, internal errors) are retryable;
    refusals (invalid argument, access denied, queue not found) are not."""
    code = getattr(exc, "type", None)
    message = getattr(exc, "message", None) or str(exc)
    request_id = getattr(exc, "req_id", None)
    retryable = isinstance(exc, MNSClientNetworkException) or (
        isinstance(exc, MNSServerException) and str(code or "") in RETRYABLE_SERVER_CODES
    )
    return UpstreamError("MNS", f"{what}: {message}", code=code, request_id=request_id, retryable=retryable)


class MnsQueueClient:
    """One queue, one connection. Not thread-safe (except `interrupt`)."""

    def __init__(
        self,
        endpoint: str,
        queue_name: str,
        access_key_id: str = "",
        access_key_secret: str = "",
        credentials_provider: CredentialsProvider | None = None,
        timeout: float = 45.0,
    ):
        self.endpoint = endpoint
        self.queue_name = queue_name
        self.timeout = timeout
        self._account = Account(
            endpoint, access_key_id, access_key_secret, credentials_provider=credentials_provider
        )
        self._set_timeout(timeout)
        self._queue = self._account.get_queue(queue_name)
        self._queue.set_encoding(False)
        self._guard = threading.Lock()
        self._receiving = False
        self._interrupted = False

    def _set_timeout(self, timeout: float) -> None:
        """Every call gets a socket timeout, and the connection can be interrupted from another thread."""
        http = self._account.mns_client.http
        http.conn.close()
        if http.is_https:
            http.conn = _InterruptibleTLS(http.host)
            http.conn.timeout = timeout  # http.client honours .timeout when connecting
        else:
            http.conn = _Interruptible(http.host, connection_timeout=timeout)

    # receiving ---------------------------------------------------------------------------------------
    def receive(self, max_messages: int = 16, wait_seconds: int = 10) -> list[QueueMessage]:
        """Batch receive with long polling (0-30 s). An empty queue gives []."""
        if not 1 <= max_messages <= 16 or not 0 <= wait_seconds <= 30:
            raise ValueError("max_messages must be 1-16 and wait_seconds 0-30")
        with self._guard:
            if self._interrupted:
                return []
            self._receiving = True
        try:
            messages = self._queue.batch_receive_message(max_messages, wait_seconds)
        except MNSServerException as exc:
            if exc.type == "MessageNotExist":
                return []
            raise _upstream(exc, "receive failed") from exc
        except MNSClientNetworkException as exc:
            salvaged = salvage(getattr(exc, "message", "")) if exc.type == "RespDataDamaged" else []
            if salvaged:
                log.warning(
                    "a received batch was damaged; read it leniently", extra={"messages": len(salvaged)}
                )
                return salvaged
            if self._interrupted:
                return []
            raise _upstream(exc, "receive failed") from exc
        except MNSExceptionBase as exc:
            if self._interrupted:
                return []
            raise _upstream(exc, "receive failed") from exc
        finally:
            with self._guard:
                self._receiving = False
        return [
            QueueMessage(
                message_id=m.message_id,
                receipt_handle=m.receipt_handle,
                body=_text(m.message_body),
                dequeue_count=int(m.dequeue_count),
                enqueue_time_ms=int(m.enqueue_time),
                first_dequeue_time_ms=int(m.first_dequeue_time),
                next_visible_time_ms=int(m.next_visible_time),
            )
            for m in messages
        ]

    def interrupt(self, grace: float = 0.5) -> None:
        """From another thread: no new receive starts; one in progress gets `grace` seconds to return
        (with messages waiting it returns at once), then its long poll is cut short."""
        with self._guard:
            self._interrupted = True
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._guard:
                if not self._receiving:
                    return
            time.sleep(0.01)
        with self._guard:
            if not self._receiving:
                return
            conn = self._account.mns_client.http.conn
            conn.interrupted = True  # the SDK's reconnect-and-retry must not start a new poll
            sock = getattr(conn, "sock", None)
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    # reading without consuming -----------------------------------------------------------------------
    def attributes(self) -> QueueAttributes:
        try:
            with (
                warnings.catch_warnings()
            ):  # the SDK marks the message counts deprecated; MNS still sends them
                warnings.simplefilter("ignore", DeprecationWarning)
                meta = self._queue.get_attributes()
                counts = (int(meta.active_messages), int(meta.inactive_messages), int(meta.delay_messages))
        except MNSExceptionBase as exc:
            raise _upstream(exc, "reading the queue's attributes failed") from exc
        return QueueAttributes(
            meta.queue_name or self.queue_name,
            *counts,
            visibility_timeout=int(meta.visibility_timeout),
            polling_wait_seconds=int(meta.polling_wait_seconds),
            maximum_message_size=int(meta.maximum_message_size),
            retention_seconds=int(meta.message_retention_period),
            created_at=int(meta.create_time),
            modified_at=int(meta.last_modify_time),
        )

    def peek(self, max_messages: int = 16) -> list[PeekedMessage]:
        """BatchPeekMessage: up to `max_messages` waiting messages, left exactly as they are."""
        if not 1 <= max_messages <= 16:
            raise ValueError("max_messages must be 1-16")
        try:
            found = self._queue.batch_peek_message(max_messages)
        except MNSServerException as exc:
            if exc.type == "MessageNotExist":
                return []
            raise _upstream(exc, "peek failed") from exc
        except MNSClientNetworkException as exc:
            peeked = _peeked(getattr(exc, "message", "")) if exc.type == "RespDataDamaged" else []
            if peeked:  # a body the SDK's XML parser refuses: its time and count are readable all the same
                return peeked
            raise _upstream(exc, "peek failed") from exc
        except MNSExceptionBase as exc:
            raise _upstream(exc, "peek failed") from exc
        return [PeekedMessage(m.message_id, int(m.enqueue_time), int(m.dequeue_count)) for m in found]

    # deleting ---------------------------------------------------------------------------------------
    def delete(self, handles: Iterable[str]) -> list[str]:
        """Batch delete (16 per call). Returns the handles that were stale (the message was redelivered
        or is gone already); any other failure raises UpstreamError."""
        handles = list(handles)
        stale: list[str] = []
        for start in range(0, len(handles), 16):
            chunk = handles[start : start + 16]
            try:
                self._queue.batch_delete_message(chunk)
            except MNSServerException as exc:
                subs = getattr(exc, "sub_errors", None) or []
                if not subs and exc.type in STALE_HANDLE_CODES:
                    stale.extend(chunk)
                    continue
                if not subs:
                    raise _upstream(exc, "delete failed") from exc
                for sub in subs:
                    if sub.get("ErrorCode") not in STALE_HANDLE_CODES:
                        raise _upstream(exc, f"delete failed: {sub.get('ErrorCode')}") from exc
                    stale.append(sub.get("ReceiptHandle", ""))
            except MNSExceptionBase as exc:
                raise _upstream(exc, "delete failed") from exc
        return stale

    def change_visibility(self, handle: str, seconds: int) -> str | None:
        """Make a received message visible again after `seconds` (0 = now). None when the handle is stale."""
        try:
            result = self._queue.change_message_visibility(handle, seconds)
        except MNSServerException as exc:
            if exc.type in STALE_HANDLE_CODES:
                return None
            raise _upstream(exc, "change visibility failed") from exc
        except MNSExceptionBase as exc:
            raise _upstream(exc, "change visibility failed") from exc
        return result.receipt_handle

    # sending (tests, tools) -------------------------------------------------------------------------
    def send(self, body: str, delay_seconds: int = 0) -> str:
        try:
            result = self._queue.send_message(Message(body, delay_seconds=delay_seconds))
        except MNSExceptionBase as exc:
            raise _upstream(exc, "send failed") from exc
        return result.message_id

    def close(self) -> None:
        try:
            self._account.mns_client.http.conn.close()
        except OSError:
            pass


class _Interruptible(MNSHTTPConnection):
    interrupted = False

    def request(self, *args, **kwargs):
        if self.interrupted:
            raise ConnectionAbortedError("interrupted")
        return super().request(*args, **kwargs)


class _InterruptibleTLS(MNSHTTPSConnection):
    interrupted = False

    def request(self, *args, **kwargs):
        if self.interrupted:
            raise ConnectionAbortedError("interrupted")
        return super().request(*args, **kwargs)


class _DefaultChainProvider(CredentialsProvider):
    """The Alibaba Cloud default credential chain (RAM role, STS, profile) for the MNS SDK."""

    def __init__(self):
        from alibabacloud_credentials.client import Client

        self._client = Client()

    def get_credentials(self):
        c = self._client.get_credential()
        return Credentials(c.get_access_key_id(), c.get_access_key_secret(), c.get_security_token() or "")


class MnsAdapter:
    def __init__(self, settings):
        self.settings = settings

    def queue(self, name: str | None = None, timeout: float = 45.0) -> MnsQueueClient:
        endpoint = self.settings.MNS_ENDPOINT
        queue = name or self.settings.MNS_QUEUE
        if not endpoint or not queue:
            raise ConfigError("invalid setting MNS_ENDPOINT / MNS_QUEUE: both are needed to read ECS events")
        ak = self.settings.secret("ALIBABA_CLOUD_ACCESS_KEY_ID")
        secret = self.settings.secret("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        provider = None if ak and secret else _DefaultChainProvider()
        return MnsQueueClient(endpoint, queue, ak, secret, credentials_provider=provider, timeout=timeout)


@capability.adapter("mns")
def build(services) -> MnsAdapter:
    return MnsAdapter(services.settings)
