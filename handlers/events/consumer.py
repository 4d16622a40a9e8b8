"""The MNS consumer of ECS events (a `chatops worker` loop): batch receive with long polling → process
→ batch delete what was handled. Any number of workers may consume the same queue.

On shutdown (SIGTERM) a long poll in progress is cut short, the batch being processed is finished and
deleted, and a batch that arrived after the stop was asked for is handed back at once
(ChangeMessageVisibility 0). Receive failures back off (bounded); a delete failure only means the
message comes back and is recognised as done.
"""

from __future__ import annotations

import logging
import threading

from bot.errors import ChatOpsError, StoreUnavailable
from bot.registry import Capability
from handlers.events.processing import Processor

capability = Capability("handlers.events.consumer")

log = logging.getLogger(__name__)


def mns_configured(services) -> bool:
    return bool(services.settings.MNS_ENDPOINT and services.settings.MNS_QUEUE)


class Consumer:
    def __init__(self, services):
        self.services = services
        self.policy = services.policy.events
        self.processor = Processor(services)
        metrics = services.metrics
        self.m_batches = metrics.counter("chatops_mns_batches_total", "MNS receive batches", ["outcome"])
        self.m_deleted = metrics.counter("chatops_mns_deleted_total", "MNS messages deleted", [])

    def run(self, stop: threading.Event) -> None:
        client = self.services.adapter("mns").queue()
        watcher = threading.Thread(target=_interrupt_on_stop, args=(stop, client), daemon=True)
        watcher.start()
        log.info("MNS consumer started", extra={"queue": client.queue_name})
        delay = 1.0
        try:
            while not stop.is_set():
                try:
                    messages = client.receive(self.policy.batch_size, self.policy.wait_seconds)
                except ChatOpsError as exc:
                    self.m_batches.labels("receive-error").inc()
                    # a refusal (access denied, no such queue) needs a person; the loop keeps trying
                    report = log.warning if exc.retryable else log.error
                    report("MNS receive failed", extra={"error": str(exc), "retry_in": delay})
                    stop.wait(delay)
                    delay = min(delay * 2, 30.0)
                    continue
                delay = 1.0
                if not messages:
                    continue
                if stop.is_set():
                    self._hand_back(client, messages)
                    break
                self.handle(client, messages)
        finally:
            client.close()
            log.info("MNS consumer stopped")

    def handle(self, client, messages) -> None:
        try:
            result = self.processor.process(messages)
        except StoreUnavailable as exc:
            # nothing was confirmed: the messages come back after their visibility timeout
            self.m_batches.labels("store-unavailable").inc()
            log.warning("store unavailable; batch left on the queue", extra={"error": str(exc)})
            return
        except Exception:  # noqa: BLE001 - a bug: the batch stays on the queue (and is quarantined after
            # repeated deliveries); the loop keeps going
            self.m_batches.labels("error").inc()
            log.exception("batch failed; left on the queue")
            return
        self.m_batches.labels("ok").inc()
        if result.busy:  # duplicates in flight in another consumer: delete them once confirmed there
            done = self.processor.settle_busy(result.busy)
            result.delete.extend(handle for handle, key in result.busy if key in done)
            for handle, key in result.busy:
                if key not in done:  # come back when that consumer's claim has surely ended
                    self._later(client, handle, self.policy.claim_seconds)
        if result.delete:
            try:
                stale = client.delete(result.delete)
            except ChatOpsError as exc:
                log.warning("MNS delete failed; those events come back as done", extra={"error": str(exc)})
                return
            self.m_deleted.inc(len(result.delete) - len(stale))

    @staticmethod
    def _later(client, handle: str, seconds: int) -> None:
        try:
            client.change_visibility(handle, seconds)
        except ChatOpsError as exc:
            log.info("could not postpone a message", extra={"error": str(exc)})

    @staticmethod
    def _hand_back(client, messages) -> None:
        for m in messages:
            try:
                client.change_visibility(m.receipt_handle, 0)
            except ChatOpsError as exc:
                log.info(
                    "could not hand a message back; it returns after its visibility timeout",
                    extra={"error": str(exc)},
                )


def _interrupt_on_stop(stop: threading.Event, client) -> None:
    stop.wait()
    client.interrupt()


@capability.background("mns-events", enabled=mns_configured)
def consume(services, stop: threading.Event) -> None:
    """`events.consumers` threads, each with its own MNS connection: one receives while another processes."""
    consumer = Consumer(services)
    extra = [
        threading.Thread(target=consumer.run, args=(stop,), name=f"mns-events-{n}", daemon=True)
        for n in range(1, services.policy.events.consumers)
    ]
    for t in extra:
        t.start()
    try:
        consumer.run(stop)
    finally:
        for t in extra:
            t.join(30)
