"""The claim / confirm / release protocol on top of the store's atomic primitives."""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass

from bot.store import Store

_DONE = "done"
_PENDING = "pending:"


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


class Deduper:
    """`pending_ttl` bounds how long a crashed claimer blocks others; `done_ttl` how long a key is remembered."""

    def __init__(
        self, store: Store, namespace: str = "dedupe", pending_ttl: float = 60.0, done_ttl: float = 7 * 86400
    ):
        self.store = store
        self.namespace = namespace
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def claim(self, key: str) -> ClaimResult:
        token = uuid.uuid4().hex
        full = self._key(key)
        for _ in range(3):  # the key may expire between SET NX and GET; bounded retry
            if self.store.set_nx(full, _PENDING + token, self.pending_ttl):
                return ClaimResult(ClaimStatus.CLAIMED, token)
            current = self.store.get(full)
            if current == _DONE:
                return ClaimResult(ClaimStatus.DONE)
            if current is not None:
                return ClaimResult(ClaimStatus.BUSY)
        return ClaimResult(ClaimStatus.BUSY)

    def confirm(self, key: str, token: str) -> bool:
        """Mark done. False when the claim had expired (another claimer may have acted too)."""
        return self.store.compare_and_set(self._key(key), _PENDING + token, _DONE, self.done_ttl)

    def release(self, key: str, token: str) -> bool:
        """Give the key back so a retry can claim it. False when the claim was no longer ours."""
        return self.store.compare_and_delete(self._key(key), _PENDING + token)

    def extend(self, key: str, token: str) -> bool:
        """Keep a long-running claim alive."""
        value = _PENDING + token
        return self.store.compare_and_set(self._key(key), value, value, self.pending_ttl)

    def is_done(self, key: str) -> bool:
        return self.store.get(self._key(key)) == _DONE
