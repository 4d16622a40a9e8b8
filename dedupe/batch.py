"""Batched claim → (effects + confirm) on the store, so one worker can handle thousands of events a second.

Keys and semantics are exactly those of `dedupe.Deduper` (namespace:key → "pending:<token>" / "done"), so
the two interoperate. On Redis a batch costs a handful of round trips: claims are one pipeline, and
`commit` is one Lua script that, per event, checks the claim is still ours, applies the event's
effects and marks it done — atomically, so an effect (say, an outbox entry) exists if and only if the
event is confirmed: a crash can neither lose nor repeat it. On SQLite (one node) the same operations
run through the Store API, one event at a time.

Effects are small ops on store keys (all values strings):
  ("ZADD", key, score, member)        ("ZREMBELOW", key, score)      ("QPUSH", key, payload)
  ("HSET", key, field, value)         ("HSETNEWER", key, field, time, value)   ("HDEL", key, field)
  ("SET", key, value, ttl_seconds)    ("DEL", key)                   ("LPUSHTRIM", key, value, max_len)
  ("EXPIRE", key, seconds)
QPUSH appends to a FIFO kept in a sorted set: member "<seq:015d>|payload", score seq (see `fifo_*`).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import redis

from bot.errors import StoreUnavailable
from bot.store import PREFIX, Store
from dedupe import ClaimResult, ClaimStatus, Deduper

SEQ_KEY = "events:seq"
Op = tuple[str, ...]

_COMMIT = """
local prefix = ARGV[1]
local done_ttl = tonumber(ARGV[2])
local batch = cjson.decode(ARGV[3])
local results = {}
for i, ev in ipairs(batch) do
  local ok = 1
  if ev.c ~= '' and redis.call('GET', prefix .. ev.c) ~= ('pending:' .. ev.t) then ok = 0 end
  if ok == 1 then
    for _, op in ipairs(ev.o) do
      local cmd, key = op[1], prefix .. op[2]
      if cmd == 'ZADD' then redis.call('ZADD', key, op[3], op[4])
      elseif cmd == 'ZREMBELOW' then redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. op[3])
      elseif cmd == 'QPUSH' then
        local seq = redis.call('INCR', prefix .. 'events:seq')
        redis.call('ZADD', key, seq, string.format('%015d', seq) .. '|' .. op[3])
      elseif cmd == 'HSET' then redis.call('HSET', key, op[3], op[4])
      elseif cmd == 'HSETNEWER' then
        local cur = redis.call('HGET', key, op[3])
        local curt = nil
        if cur then curt = tonumber(string.match(cur, '^([^|]*)')) end
        if (not curt) or curt <= tonumber(op[4]) then redis.call('HSET', key, op[3], op[4] .. '|' .. op[5]) end
      elseif cmd == 'HDEL' then redis.call('HDEL', key, op[3])
      elseif cmd == 'SET' then redis.call('SET', key, op[3], 'PX', math.max(1, math.floor(tonumber(op[4]) * 1000)))
      elseif cmd == 'DEL' then redis.call('DEL', key)
      elseif cmd == 'LPUSHTRIM' then
        redis.call('LPUSH', key, op[3])
        redis.call('LTRIM', key, 0, tonumber(op[4]) - 1)
      elseif cmd == 'EXPIRE' then redis.call('EXPIRE', key, op[3])
      else return redis.error_reply('unknown op ' .. tostring(cmd)) end
    end
    if ev.c ~= '' then redis.call('SET', prefix .. ev.c, 'done', 'PX', done_ttl) end
  end
  results[i] = ok
end
return results
"""


@dataclass
class Commit:
    """Apply `ops` and confirm `key` — only if the claim `token` still holds (key None: unconditional)."""

    key: str | None
    token: str | None
    ops: list[Op] = field(default_factory=list)


class EventStore:
    def __init__(self, store: Store, namespace: str, claim_ttl: float, done_ttl: float = 7 * 86400):
        self.store = store
        self.namespace = namespace
        self.deduper = Deduper(store, namespace, pending_ttl=claim_ttl, done_ttl=done_ttl)
        self.claim_ttl = claim_ttl
        self.done_ttl = done_ttl
        self._redis = getattr(store, "client", None) if store.backend == "redis" else None
        self._commit = self._redis.register_script(_COMMIT) if self._redis is not None else None

    def full_key(self, key: str) -> str:
        return self._full(key)

    def _full(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    # claims -----------------------------------------------------------------------------------------
    def claim_many(self, keys: Sequence[str]) -> dict[str, ClaimResult]:
        if self._redis is None:
            return {k: self.deduper.claim(k) for k in dict.fromkeys(keys)}
        keys = list(dict.fromkeys(keys))
        tokens = {k: uuid.uuid4().hex for k in keys}
        ttl_ms = max(1, int(self.claim_ttl * 1000))
        pipe = self._redis.pipeline(transaction=False)
        for k in keys:
            pipe.set(PREFIX + self._full(k), "pending:" + tokens[k], nx=True, px=ttl_ms)
        results: dict[str, ClaimResult] = {}
        lost = []
        for k, ok in zip(keys, _execute(pipe), strict=True):
            if ok:
                results[k] = ClaimResult(ClaimStatus.CLAIMED, tokens[k])
            else:
                lost.append(k)
        if lost:
            pipe = self._redis.pipeline(transaction=False)
            for k in lost:
                pipe.get(PREFIX + self._full(k))
            for k, current in zip(lost, _execute(pipe), strict=True):
                # None: the claim expired in between; a later delivery will claim it
                done = current == "done"
                results[k] = ClaimResult(ClaimStatus.DONE if done else ClaimStatus.BUSY)
        return results

    def release_many(self, claims: Iterable[tuple[str, str]]) -> None:
        for key, token in claims:
            self.deduper.release(key, token)

    # effects + confirm -------------------------------------------------------------------------------
    def commit(self, commits: Sequence[Commit]) -> list[bool]:
        """True per commit whose effects were applied (and key confirmed); False: the claim was lost."""
        if not commits:
            return []
        if self._commit is not None:
            payload = [
                {"c": self._full(c.key) if c.key else "", "t": c.token or "", "o": [list(op) for op in c.ops]}
                for c in commits
            ]
            args = [PREFIX, str(int(self.done_ttl * 1000)), json.dumps(payload, separators=(",", ":"))]
            try:
                out = self._commit(keys=[], args=args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                raise StoreUnavailable(f"Redis unreachable: {exc}") from exc
            return [bool(x) for x in out]
        applied = []
        for c in commits:
            if c.key is not None:
                full = self._full(c.key)
                if self.store.get(full) != "pending:" + (c.token or ""):
                    applied.append(False)
                    continue
            for op in c.ops:
                apply_op(self.store, op)
            if c.key is not None and c.token is not None:
                self.deduper.confirm(c.key, c.token)
            applied.append(True)
        return applied

    # reads ------------------------------------------------------------------------------------------
    def hget_many(self, key: str, fields: Sequence[str]) -> list[str | None]:
        if not fields:
            return []
        if self._redis is not None:
            return list(
                _execute(self._redis.pipeline(transaction=False).hmget(PREFIX + key, list(fields)))[0]
            )
        return [self.store.hget(key, f) for f in fields]

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        if self._redis is not None:
            return list(_execute(self._redis.pipeline(transaction=False).mget([PREFIX + k for k in keys]))[0])
        return [self.store.get(k) for k in keys]


def _execute(pipe) -> list:
    try:
        return pipe.execute()
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"Redis unreachable: {exc}") from exc


def apply_op(store: Store, op: Op) -> None:
    """One effect through the Store API (the SQLite path, and single effects outside a batch)."""
    cmd, key, *args = op
    if cmd == "ZADD":
        store.zadd(key, args[1], float(args[0]))
    elif cmd == "ZREMBELOW":
        store.zremove_below(key, float(args[0]))
    elif cmd == "QPUSH":
        seq = store.incr(SEQ_KEY)
        store.zadd(key, f"{seq:015d}|{args[0]}", float(seq))
    elif cmd == "HSET":
        store.hset(key, args[0], args[1])
    elif cmd == "HSETNEWER":
        current = store.hget(key, args[0])
        try:
            current_time = float(current.split("|", 1)[0]) if current else None
        except ValueError:
            current_time = None
        if current_time is None or current_time <= float(args[1]):
            store.hset(key, args[0], f"{args[1]}|{args[2]}")
    elif cmd == "HDEL":
        store.hdel(key, args[0])
    elif cmd == "SET":
        store.set(key, args[0], float(args[1]))
    elif cmd == "DEL":
        store.delete(key)
    elif cmd == "LPUSHTRIM":
        store.list_push(key, args[0], int(args[1]))
    elif cmd == "EXPIRE":
        pass  # the Store API has no EXPIRE; retention trims these keys instead
    else:
        raise ValueError(f"unknown op {cmd!r}")


# A FIFO on a sorted set (works with the Store API on both backends) ----------------------------------


def fifo_peek(store: Store, key: str, limit: int) -> list[tuple[int, str]]:
    """The oldest `limit` entries as (seq, payload)."""
    out = []
    for member in store.zrange_by_score(key, float("-inf"), float("inf"), limit=limit):
        seq, _, payload = member.partition("|")
        out.append((int(seq), payload))
    return out


def fifo_drop_through(store: Store, key: str, seq: int) -> None:
    """Remove every entry up to and including `seq`."""
    store.zremove_below(key, seq + 0.5)


def fifo_push(store: Store, key: str, payload: str) -> None:
    apply_op(store, ("QPUSH", key, payload))
