"""Admitting a delivery item (e.g. a webhook) exactly once: dedupe over several keys, then enqueue its job.

A delivery item has up to two keys (`X-Webhook-Id` and `event.id`): it is a duplicate when any of them
is done, and it is admitted by enqueueing its job and marking every key done.

- When the store can make the queue's job durable itself (`store.admits(job)`: store and queue on one
  Redis) this is one `store.admit_batch` call: check the keys, enqueue the job, mark the keys done —
  atomically, so there is no window in which a crash could leave the job enqueued but not marked, or
  marked but not enqueued, and concurrent duplicates on any number of replicas are serialised by the
  store itself. Items admitted at the same moment by the threads of one process share the call (group
  commit, `GroupCommit`): under load one round trip serves several requests, and alone a request still
  costs exactly one.
- Otherwise (embedded SQLite store or queue) it is claim → enqueue → confirm with the Deduper's
  pending / done values; a concurrent duplicate still pending elsewhere after a few milliseconds is
  reported BUSY (the endpoint answers 503 so the sender retries, and takes over if the other failed).
"""

from __future__ import annotations

import _thread
import enum
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from bot.errors import StoreUnavailable
from bot.store import DONE, PENDING, Guard, Set, Store, Transaction
from dedupe import ClaimResult, ClaimStatus, Deduper


class Admission(enum.Enum):
    ACCEPTED = "accepted"  # the job is durably enqueued and the keys are done
    DUPLICATE = "duplicate"  # an earlier copy was admitted
    BUSY = "busy"  # an earlier copy is still being admitted elsewhere


_ADMISSION = {
    ClaimStatus.CLAIMED: Admission.ACCEPTED,
    ClaimStatus.BUSY: Admission.BUSY,
    ClaimStatus.DONE: Admission.DUPLICATE,
}


class QueueUnavailable(Exception):
    """The job could not be enqueued (nothing was admitted)."""


class DeliveryGate:
    def __init__(
        self,
        store: Store,
        queue: Any,
        namespace: str,
        pending_ttl: float = 60.0,
        done_ttl: float = 7 * 86400.0,
    ):
        self.store = store
        self.queue = queue
        self.namespace = namespace
        self.done_ttl = done_ttl
        self._key_prefix = f"{namespace}:"
        self.claims = MultiKeyClaims(store, namespace, pending_ttl, done_ttl)
        self._batch = None
        if store.atomic_admit:
            self._batch = GroupCommit(lambda items: store.admit_batch(items, done_ttl))

    def admit(self, keys: Sequence[str], job: str, **kwargs: Any) -> Admission:
        message = self.queue.durable_message(job, **kwargs) if self._batch is not None else None
        if message is not None and self.store.admits(message):
            return _ADMISSION[self._batch.submit((tuple(map(self._key_prefix.__add__, keys)), message))]
        return self._admit_generic(keys, lambda: self.queue.enqueue(job, **kwargs))

    def _admit_generic(self, keys: Sequence[str], enqueue: Callable[[], Any]) -> Admission:
        claim = self.claims.claim_or_wait(keys)
        if claim.status is ClaimStatus.DONE:
            return Admission.DUPLICATE
        if claim.status is ClaimStatus.BUSY:
            return Admission.BUSY
        try:
            enqueue()
        except Exception as exc:  # noqa: BLE001 - any queue failure means "not durable"
            try:
                self.claims.release(keys, str(claim.token))
            except StoreUnavailable:
                pass  # the pending claim expires on its own
            raise QueueUnavailable(str(exc)) from exc
        self.claims.confirm(keys, str(claim.token))
        return Admission.ACCEPTED


class GroupCommit:
    """Leader / follower batching of calls made at the same moment by several threads.

    The first thread to arrive runs `run_batch` for everything queued so far (itself included), and
    keeps doing so until its own item is done; then it hands the lead to the oldest waiting thread.
    Waiting threads sleep until their result is in. A failure of a batch is raised in every caller
    of that batch."""

    def __init__(
        self, run_batch: Callable[[list[Any]], list[Any]], max_batch: int = 64, timeout: float = 10.0
    ):
        self._run_batch = run_batch
        self._max = max_batch
        self._timeout = timeout
        self._lock = threading.Lock()
        self._waiting: list[_Slot] = []
        self._leading = False

    def submit(self, item: Any) -> Any:
        slot = _Slot(item)
        with self._lock:
            self._waiting.append(slot)
            lead = not self._leading
            self._leading = True
        if not lead:
            if not slot.ready.wait(self._timeout):
                with self._lock:
                    if slot in self._waiting:  # never picked up: leave cleanly
                        self._waiting.remove(slot)
                        raise StoreUnavailable("timed out waiting for a batched Redis call")
                if not slot.ready.wait(self._timeout):  # in flight, or just handed the lead
                    raise StoreUnavailable("timed out waiting for a batched Redis call")
            if not slot.lead:
                return slot.outcome()
        self._lead(slot)
        return slot.outcome()

    def _lead(self, mine: _Slot) -> None:
        while not mine.finished:
            with self._lock:
                batch = self._waiting[: self._max]
                del self._waiting[: self._max]
            if not batch:
                break
            try:
                results = self._run_batch([s.item for s in batch])
            except BaseException as exc:  # noqa: BLE001 - every caller of the batch sees the failure
                for s in batch:
                    s.finish(error=exc)
            else:
                for s, result in zip(batch, results, strict=True):
                    s.finish(result=result)
        with self._lock:
            if self._waiting:
                successor = self._waiting[0]
                successor.lead = True
                successor.ready.set()
            else:
                self._leading = False


class _Slot:
    """One caller's item; `ready` is a bare lock held until the result is in (cheaper than an Event)."""

    __slots__ = ("item", "ready", "lead", "finished", "result", "error")

    def __init__(self, item: Any):
        self.item = item
        self.ready = _Gate()
        self.lead = False
        self.finished = False
        self.result: Any = None
        self.error: BaseException | None = None

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error, self.finished = result, error, True
        self.ready.set()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


class _Gate:
    """A one-shot event on a raw lock: `wait` blocks until `set` (idempotent) or the timeout."""

    __slots__ = ("_lock", "_set")

    def __init__(self):
        self._lock = _thread.allocate_lock()
        self._lock.acquire()
        self._set = False

    def set(self) -> None:
        if not self._set:
            self._set = True
            self._lock.release()

    def wait(self, timeout: float) -> bool:
        if self._set:
            return True
        if self._lock.acquire(timeout=timeout):
            self._lock.release()  # let any later wait() pass too
            return True
        return self._set


class MultiKeyClaims:
    """Claim / confirm / release of several Deduper keys as one (any done → DONE, any pending → BUSY)."""

    def __init__(
        self, store: Store, namespace: str, pending_ttl: float = 60.0, done_ttl: float = 7 * 86400.0
    ):
        self.store = store
        self.namespace = namespace
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl
        self.deduper = Deduper(store, namespace, pending_ttl=pending_ttl, done_ttl=done_ttl)

    def _full(self, keys: Sequence[str]) -> list[str]:
        return [f"{self.namespace}:{k}" for k in keys]

    def status(self, keys: Sequence[str]) -> ClaimStatus | None:
        """DONE, BUSY, or None when no key is set (claimable)."""
        values = self.store.get_many(self._full(keys))
        if DONE in values:
            return ClaimStatus.DONE
        return ClaimStatus.BUSY if any(values) else None

    def claim(self, keys: Sequence[str]) -> ClaimResult:
        """Every key under one token, or none of them."""
        if self.status(keys) is ClaimStatus.DONE:
            return ClaimResult(ClaimStatus.DONE)
        token = uuid.uuid4().hex
        results = self.store.claim_many(self._full(keys), self.pending_ttl, token=token)
        lost = [r.status for r in results.values() if not r.claimed]
        if not lost:
            return ClaimResult(ClaimStatus.CLAIMED, token)
        self.release(keys, token)
        return ClaimResult(ClaimStatus.DONE if ClaimStatus.DONE in lost else ClaimStatus.BUSY)

    def claim_or_wait(
        self, keys: Sequence[str], waits: Sequence[float] = (0.002, 0.004, 0.008)
    ) -> ClaimResult:
        """Claim; when a concurrent duplicate holds the keys, give it a few milliseconds to finish."""
        result = self.claim(keys)
        for pause in waits:
            if result.status is not ClaimStatus.BUSY:
                return result
            time.sleep(pause)
            state = self.status(keys)
            if state is ClaimStatus.DONE:
                return ClaimResult(ClaimStatus.DONE)
            if state is None:  # the other holder released (it failed): take over
                result = self.claim(keys)
        return result

    def confirm(self, keys: Sequence[str], token: str) -> None:
        """Mark every key done that is still ours or no longer set (an expired claim of ours): one commit."""
        transactions = []
        for full in self._full(keys):
            done = [Set(full, DONE, self.done_ttl)]
            transactions.append(Transaction(done, [Guard(full, PENDING + token)]))
            transactions.append(Transaction(done, [Guard(full, None)]))  # fails once the first applied
        self.store.commit_many(transactions)

    def release(self, keys: Sequence[str], token: str) -> None:
        for key in keys:
            self.deduper.release(key, token)
