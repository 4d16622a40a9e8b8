"""The claim / confirm / release protocol on top of the store's atomic primitives."""

from __future__ import annotations

from bot.store import DONE as _DONE
from bot.store import PENDING as _PENDING
from bot.store import ClaimResult, ClaimStatus, Store

__all__ = ["ClaimResult", "ClaimStatus", "Deduper"]


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
        full = self._key(key)
        return self.store.claim_many([full], self.pending_ttl)[full]

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
