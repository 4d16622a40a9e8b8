"""The Store interface: strings, hashes, lists and sorted sets with TTLs (seconds), plus the batched and
atomic operations that hot paths need, the same on every backend.

Values are strings; callers use `get_json` / `set_json` for structures. Every operation that another
replica could race is atomic on both backends (`set_nx`, `compare_and_set`, `compare_and_delete`,
`incr`, `claim_many`, `commit_many`, `admit_batch`). Connection failures raise `StoreUnavailable`.

Claims (the idempotency protocol of dedupe/): a key holds "pending:<token>" while someone works on it
(with a TTL, so a crashed claimer does not block others forever) and "done" once the work is durable.
"""

from __future__ import annotations

import contextlib
import enum
import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from bot.clock import SYSTEM_CLOCK, Clock
from bot.store.ops import Guard, Op, Transaction

PENDING = "pending:"
DONE = "done"


class ClaimStatus(enum.Enum):
    CLAIMED = "claimed"  # this caller owns the key until it confirms, releases, or the pending TTL ends
    DONE = "done"  # confirmed earlier: the effect is durable, skip
    BUSY = "busy"  # claimed by someone else and not yet confirmed


@dataclass(frozen=True)
class ClaimResult:
    status: ClaimStatus
    token: str | None = None

    @property
    def claimed(self) -> bool:
        return self.status is ClaimStatus.CLAIMED


class QueuedJob(NamedTuple):  # a tuple: built on the webhook's hot path
    """A job serialized by the task queue, opaque to everyone else: a store whose `admits(job)` is true
    can make it durable inside its own atomic step (`admit_batch`). `backend` names the store backend
    that shares the queue's storage, `target` where the job goes there, `data` the job itself."""

    backend: str
    target: str
    data: bytes


class Store(ABC):
    """Key-value, hash, list and sorted-set operations with TTLs (seconds)."""

    backend: str = "abstract"
    clock: Clock = SYSTEM_CLOCK

    @abstractmethod
    def ping(self) -> bool: ...

    @abstractmethod
    def get(self, key: str) -> str | None: ...

    @abstractmethod
    def set(self, key: str, value: str, ttl: float | None = None) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None: ...

    @abstractmethod
    def set_nx(self, key: str, value: str, ttl: float | None = None) -> bool:
        """Set only if absent (or expired). True when this call set it."""

    @abstractmethod
    def compare_and_set(self, key: str, expected: str, value: str, ttl: float | None = None) -> bool: ...

    @abstractmethod
    def compare_and_delete(self, key: str, expected: str) -> bool: ...

    @abstractmethod
    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add to a counter; the TTL is set when the counter is created."""

    @abstractmethod
    def hset(self, key: str, field: str, value: str) -> None: ...

    @abstractmethod
    def hget(self, key: str, field: str) -> str | None: ...

    @abstractmethod
    def hgetall(self, key: str) -> dict[str, str]: ...

    @abstractmethod
    def hdel(self, key: str, field: str) -> None: ...

    @abstractmethod
    def list_push(self, key: str, value: str, max_len: int | None = None) -> None:
        """Prepend (newest first), keeping at most `max_len` items."""

    @abstractmethod
    def list_range(self, key: str, start: int = 0, stop: int = -1) -> list[str]:
        """The items from index `start` to `stop` inclusive, newest first (Redis LRANGE): a negative
        index counts from the oldest end (-1 is the oldest); out-of-range indexes are clamped."""

    @abstractmethod
    def list_trim(self, key: str, start: int, stop: int) -> None:
        """Keep only the items from `start` to `stop` inclusive (Redis LTRIM, indexes as in
        `list_range`); an empty range deletes the list. Trimming with negative indexes (`0, -(n + 1)`
        drops the `n` oldest) is safe against concurrent `list_push`, which adds at the other end."""

    @abstractmethod
    def zadd(self, key: str, member: str, score: float) -> None: ...

    @abstractmethod
    def zadd_within(self, key: str, member: str, score: float, limit: int, low: float) -> bool:
        """Add `member` unless the set already holds `limit` members scored at least `low`, atomically
        (a member already in the set counts as added). Whether it is in."""

    @abstractmethod
    def zrange_by_score(self, key: str, low: float, high: float, limit: int | None = None) -> list[str]: ...

    @abstractmethod
    def zremove_below(self, key: str, score: float) -> int:
        """Remove members scored below `score` (retention). Returns how many were removed."""

    @abstractmethod
    def close(self) -> None: ...

    # Batched reads: one round trip ------------------------------------------------------------------
    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """The string at each key (None when absent or expired), in order."""

    @abstractmethod
    def hget_many(self, key: str, fields: Sequence[str]) -> list[str | None]:
        """Each field of the hash `key` (None when absent), in order."""

    # Batched claims ---------------------------------------------------------------------------------
    @abstractmethod
    def claim_many(self, keys: Sequence[str], ttl: float, token: str | None = None) -> dict[str, ClaimResult]:
        """Claim every key at once: CLAIMED (the key now holds "pending:<token>" for `ttl` seconds; a
        fresh token per key, or `token` for all of them), DONE (it holds "done") or BUSY (someone
        else's claim). Atomic per key; a key given twice is claimed once."""

    # Atomic commits of typed operations ---------------------------------------------------------------
    @abstractmethod
    def commit_many(self, transactions: Sequence[Transaction]) -> list[bool]:
        """Apply each transaction all-or-nothing, in order, in one round trip: True when its guards held
        and its operations were applied, False when a guard failed and nothing of it was applied."""

    def commit(self, ops: Sequence[Op], guards: Sequence[Guard] = ()) -> bool:
        return self.commit_many([Transaction(list(ops), list(guards))])[0]

    # Admitting a queued job together with its dedupe keys -------------------------------------------
    atomic_admit: bool = False  # True: `admit_batch` works for jobs of a queue on this store's backend

    def admits(self, job: QueuedJob | None) -> bool:
        """True when `admit_batch` can make `job` durable atomically with the keys (the queue shares
        this store's storage). Otherwise callers claim, enqueue and confirm in steps."""
        return self.atomic_admit and job is not None and job.backend == self.backend

    def admit_batch(
        self, items: Sequence[tuple[Sequence[str], QueuedJob]], done_ttl: float
    ) -> list[ClaimStatus]:
        """Per item (its dedupe keys, its job), atomically: DONE when a key is done, BUSY when one is
        pending (claimed elsewhere), otherwise enqueue the job, mark every key done for `done_ttl`
        seconds and answer CLAIMED. Only for jobs this store `admits`."""
        raise NotImplementedError(f"the {self.backend} store cannot admit queued jobs atomically")

    # Helpers built on the primitives ---------------------------------------------------------------
    def get_json(self, key: str) -> Any:
        raw = self.get(key)
        return None if raw is None else json.loads(raw)

    def set_json(self, key: str, value: Any, ttl: float | None = None) -> None:
        self.set(key, json.dumps(value, separators=(",", ":"), default=str), ttl)

    # Leases: a key held by one owner (a token) for a while, renewed by its heartbeat ----------------
    def acquire_lease(self, name: str, token: str, ttl: float) -> bool:
        """Take the lease `name` for `token` unless someone holds it. True when this call took it."""
        return self.set_nx(f"lease:{name}", token, ttl)

    def renew_lease(self, name: str, token: str, ttl: float) -> bool:
        """Extend the lease if `token` still holds it. False: it was lost (expired, or taken by another)."""
        return self.compare_and_set(f"lease:{name}", token, token, ttl)

    def release_lease(self, name: str, token: str) -> bool:
        return self.compare_and_delete(f"lease:{name}", token)

    def lease_holder(self, name: str) -> str | None:
        return self.get(f"lease:{name}")

    @contextlib.contextmanager
    def lock(self, name: str, ttl: float = 60.0, wait: float = 0.0) -> Iterator[bool]:
        """Yield True when this process holds the lock `name` (released on exit), False otherwise."""
        token = uuid.uuid4().hex
        key = f"lock:{name}"
        deadline = self.clock.monotonic() + wait
        got = self.set_nx(key, token, ttl)
        while not got and self.clock.monotonic() < deadline:
            self.clock.sleep(0.05)
            got = self.set_nx(key, token, ttl)
        try:
            yield got
        finally:
            if got:
                self.compare_and_delete(key, token)


def new_token() -> str:
    return uuid.uuid4().hex
