"""Claim / confirm / release of webhook deliveries over several dedupe keys at once.

A delivery item has up to two keys (`X-Webhook-Id` and `event.id`); it is a duplicate when any of them
is done, busy when any is claimed by someone else, and claimable only when none is set. On Redis the
check-and-claim of all keys is one Lua call and the confirm another (the endpoint's hot path); on the
embedded SQLite store it falls back to the generic `Deduper`. The values are the Deduper's own
(`done` / `pending:<token>`), so both views of a key agree.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import redis

from bot.errors import StoreUnavailable
from bot.store import PREFIX, RedisStore, Store
from dedupe import ClaimResult, ClaimStatus, Deduper

_CLAIM = """
local busy = false
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v == 'done' then return 2 end
  if v then busy = true end
end
if busy then return 1 end
for i = 1, #KEYS do redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2]) end
return 0
"""
_CONFIRM = """
local n = 0
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v == ARGV[1] or not v then redis.call('SET', KEYS[i], 'done', 'PX', ARGV[2]); n = n + 1 end
end
return n
"""
_RELEASE = """
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]); n = n + 1 end
end
return n
"""
_STATUS = """
local busy = false
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v == 'done' then return 2 end
  if v then busy = true end
end
if busy then return 1 end
return 0
"""

_BY_CODE = {0: ClaimStatus.CLAIMED, 1: ClaimStatus.BUSY, 2: ClaimStatus.DONE}


class MultiKeyClaims:
    def __init__(
        self, store: Store, namespace: str, pending_ttl: float = 60.0, done_ttl: float = 7 * 86400.0
    ):
        self.store = store
        self.namespace = namespace
        self.pending_ttl = pending_ttl
        self.done_ttl = done_ttl
        self.deduper = Deduper(store, namespace, pending_ttl=pending_ttl, done_ttl=done_ttl)
        self._redis = store if isinstance(store, RedisStore) else None
        if self._redis is not None:
            client = self._redis.client
            self._claim = client.register_script(_CLAIM)
            self._confirm = client.register_script(_CONFIRM)
            self._release = client.register_script(_RELEASE)
            self._status = client.register_script(_STATUS)

    def _full(self, keys: Sequence[str]) -> list[str]:
        return [f"{PREFIX}{self.namespace}:{k}" for k in keys]

    def _run(self, script, keys: Sequence[str], *args):
        try:
            return script(keys=self._full(keys), args=list(args))
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis unreachable: {exc}") from exc

    # The protocol --------------------------------------------------------------------------------
    def claim(self, keys: Sequence[str]) -> ClaimResult:
        token = uuid.uuid4().hex
        if self._redis is not None:
            code = self._run(self._claim, keys, "pending:" + token, int(self.pending_ttl * 1000))
            status = _BY_CODE[int(code)]
            return ClaimResult(status, token if status is ClaimStatus.CLAIMED else None)
        return self._claim_generic(keys)

    def confirm(self, keys: Sequence[str], token: str) -> None:
        if self._redis is not None:
            self._run(self._confirm, keys, "pending:" + token, int(self.done_ttl * 1000))
            return
        for key in keys:
            if not self.deduper.confirm(key, token) and self.store.get(f"{self.namespace}:{key}") is None:
                self.store.set(f"{self.namespace}:{key}", "done", self.done_ttl)

    def release(self, keys: Sequence[str], token: str) -> None:
        if self._redis is not None:
            self._run(self._release, keys, "pending:" + token)
            return
        for key in keys:
            self.deduper.release(key, token)

    def status(self, keys: Sequence[str]) -> ClaimStatus | None:
        """DONE, BUSY, or None when no key is set (claimable)."""
        if self._redis is not None:
            code = int(self._run(self._status, keys))
            return None if code == 0 else _BY_CODE[code]
        values = [self.store.get(f"{self.namespace}:{k}") for k in keys]
        if "done" in values:
            return ClaimStatus.DONE
        return ClaimStatus.BUSY if any(values) else None

    def claim_or_wait(
        self, keys: Sequence[str], waits: Sequence[float] = (0.002, 0.004, 0.008)
    ) -> ClaimResult:
        """Claim; when a concurrent duplicate holds the keys, give it a few milliseconds to finish
        (most in-flight duplicates confirm within one or two Redis round trips), then report BUSY."""
        result = self.claim(keys)
        for pause in waits:
            if result.status is not ClaimStatus.BUSY:
                return result
            time.sleep(pause)
            state = self.status(keys)
            if state is ClaimStatus.DONE:
                return ClaimResult(ClaimStatus.DONE)
            if state is None:  # the other holder released (it failed): try to take over
                result = self.claim(keys)
        return result

    def _claim_generic(self, keys: Sequence[str]) -> ClaimResult:
        if self.status(keys) is ClaimStatus.DONE:
            return ClaimResult(ClaimStatus.DONE)
        token = uuid.uuid4().hex
        taken: list[str] = []
        for key in keys:
            result = self.deduper.claim(key)
            if result.status is ClaimStatus.CLAIMED:
                # re-key this claim onto the shared token so confirm/release treat all keys alike
                self.store.compare_and_set(
                    f"{self.namespace}:{key}",
                    "pending:" + str(result.token),
                    "pending:" + token,
                    self.pending_ttl,
                )
                taken.append(key)
                continue
            for other in taken:
                self.deduper.release(other, token)
            return ClaimResult(result.status)
        return ClaimResult(ClaimStatus.CLAIMED, token)
