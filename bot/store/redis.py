"""The Redis store: any number of replicas on one server. Every key carries `PREFIX`; TTLs are the
server's own (PX), so they do not follow an injected clock."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

import bot.store.lua as lua
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import StoreUnavailable
from bot.store.base import PENDING, ClaimResult, ClaimStatus, QueuedJob, Store, new_token
from bot.store.ops import Transaction, check

PREFIX = "chatops:"

_BY_CODE = (ClaimStatus.CLAIMED, ClaimStatus.BUSY, ClaimStatus.DONE)  # the scripts' codes 0, 1, 2


def _ms(ttl: float | None) -> int:
    return max(1, int(ttl * 1000)) if ttl else 0


class RedisStore(Store):
    backend = "redis"
    atomic_admit = True

    def __init__(self, url: str, timeout: float = 2.0, clock: Clock = SYSTEM_CLOCK):
        self.url = url
        self.clock = clock  # for waits (`lock`); expiry is Redis's
        self.client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        self._cas = self.client.register_script(lua.CAS)
        self._cad = self.client.register_script(lua.CAD)
        self._incr = self.client.register_script(lua.INCR)
        self._zadd_within = self.client.register_script(lua.ZADD_WITHIN)
        self._claim = self.client.register_script(lua.CLAIM_MANY)
        self._commit = self.client.register_script(lua.COMMIT_MANY)
        self._runners: list = []  # script runners' own connections, closed with the store
        self._admit = self.script_runner(lua.ADMIT_BATCH)

    def _k(self, key: str) -> str:
        return PREFIX + key

    def script_runner(self, source: str):
        """A Lua script for a hot path, run on connections of its own (bot/store/redis_scripts.py)."""
        from bot.store.redis_scripts import ScriptRunner

        runner = ScriptRunner(self.client, source)
        self._runners.append(runner)
        return runner

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise StoreUnavailable(f"Redis unreachable: {exc}") from exc

    def ping(self) -> bool:
        try:
            return bool(self.client.ping())
        except (redis.ConnectionError, redis.TimeoutError):
            return False

    def get(self, key):
        return self._call(self.client.get, self._k(key))

    def set(self, key, value, ttl=None):
        self._call(self.client.set, self._k(key), value, px=_ms(ttl) or None)

    def delete(self, key):
        self._call(self.client.delete, self._k(key))

    def set_nx(self, key, value, ttl=None):
        return bool(self._call(self.client.set, self._k(key), value, nx=True, px=_ms(ttl) or None))

    def compare_and_set(self, key, expected, value, ttl=None):
        return bool(self._call(self._cas, keys=[self._k(key)], args=[expected, value, _ms(ttl)]))

    def compare_and_delete(self, key, expected):
        return bool(self._call(self._cad, keys=[self._k(key)], args=[expected]))

    def incr(self, key, amount=1, ttl=None):
        return int(self._call(self._incr, keys=[self._k(key)], args=[amount, _ms(ttl)]))

    def hset(self, key, field, value):
        self._call(self.client.hset, self._k(key), field, value)

    def hget(self, key, field):
        return self._call(self.client.hget, self._k(key), field)

    def hgetall(self, key):
        return self._call(self.client.hgetall, self._k(key))

    def hdel(self, key, field):
        self._call(self.client.hdel, self._k(key), field)

    def list_push(self, key, value, max_len=None):
        pipe = self.client.pipeline()
        pipe.lpush(self._k(key), value)
        if max_len:
            pipe.ltrim(self._k(key), 0, max_len - 1)
        self._call(pipe.execute)

    def list_range(self, key, start=0, stop=-1):
        return self._call(self.client.lrange, self._k(key), start, stop)

    def list_trim(self, key, start, stop):
        self._call(self.client.ltrim, self._k(key), start, stop)

    def zadd(self, key, member, score):
        self._call(self.client.zadd, self._k(key), {member: score})

    def zadd_within(self, key, member, score, limit, low):
        return bool(self._call(self._zadd_within, keys=[self._k(key)], args=[member, score, limit, low]))

    def zrange_by_score(self, key, low, high, limit=None):
        kwargs = {"start": 0, "num": limit} if limit else {}
        return self._call(self.client.zrangebyscore, self._k(key), low, high, **kwargs)

    def zremove_below(self, key, score):
        return int(self._call(self.client.zremrangebyscore, self._k(key), "-inf", f"({score}"))

    # batched reads: one command each ----------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        return list(self._call(self.client.mget, [PREFIX + k for k in keys]))

    def hget_many(self, key: str, fields: Sequence[str]) -> list[str | None]:
        if not fields:
            return []
        return list(self._call(self.client.hmget, self._k(key), list(fields)))

    # batched claims: one script ----------------------------------------------------------------------
    def claim_many(self, keys: Sequence[str], ttl: float, token: str | None = None) -> dict[str, ClaimResult]:
        unique = list(dict.fromkeys(keys))
        if not unique:
            return {}
        tokens = [token] * len(unique) if token else [new_token() for _ in unique]
        codes = self._call(
            self._claim,
            keys=[PREFIX + k for k in unique],
            args=[_ms(ttl), *(PENDING + t for t in tokens)],
        )
        out: dict[str, ClaimResult] = {}
        for key, mine, code in zip(unique, tokens, codes, strict=True):
            out[key] = ClaimResult(ClaimStatus.CLAIMED, mine) if code == 0 else ClaimResult(_BY_CODE[code])
        return out

    # atomic commits: one script ----------------------------------------------------------------------
    def commit_many(self, transactions: Sequence[Transaction]) -> list[bool]:
        if not transactions:
            return []
        payload: list[Any] = []
        for tx in transactions:
            check(tx)
            payload.append([[[g.key, g.value] for g in tx.guards], [op.wire() for op in tx.ops]])
        args = [PREFIX, json.dumps(payload, separators=(",", ":"))]
        return [bool(x) for x in self._call(self._commit, keys=[], args=args)]

    # admit: dedupe keys + the queue's LPUSH + done marks, one script on connections of its own --------
    def admit_batch(
        self, items: Sequence[tuple[Sequence[str], QueuedJob]], done_ttl: float
    ) -> list[ClaimStatus]:
        """One script call per queue (in practice one) for the whole batch."""
        if len(items) == 1:  # the common case alone, without grouping
            item_keys, job = items[0]
            keys = [job.target, *(PREFIX + k for k in item_keys)]
            code = self._admit(keys, [int(done_ttl * 1000), len(item_keys), job.data])[0]
            return [_BY_CODE[code]]
        codes: list[ClaimStatus] = [ClaimStatus.CLAIMED] * len(items)
        by_queue: dict[str, list[int]] = {}
        for i, (_, job) in enumerate(items):
            by_queue.setdefault(job.target, []).append(i)
        ttl_ms = int(done_ttl * 1000)
        for target, indexes in by_queue.items():
            keys = [target]
            args: list[Any] = [ttl_ms]
            for i in indexes:
                item_keys, job = items[i]
                keys += [PREFIX + k for k in item_keys]
                args += (len(item_keys), job.data)
            for i, code in zip(indexes, self._admit(keys, args), strict=True):
                codes[i] = _BY_CODE[code]
        return codes

    def close(self):
        for runner in self._runners:
            runner.close()
        self.client.close()
