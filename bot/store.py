"""The store: Redis (any number of replicas) or embedded SQLite (one node), behind one small interface.

Values are strings; callers use `get_json` / `set_json` for structures. Every operation that another
replica could race is atomic on both backends (`set_nx`, `compare_and_set`, `compare_and_delete`,
`incr`). Connection failures raise `StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

from bot.errors import StoreUnavailable

PREFIX = "chatops:"


class Store(ABC):
    """Key-value, hash, list and sorted-set operations with TTLs (seconds)."""

    backend: str = "abstract"

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
    def list_range(self, key: str, start: int = 0, stop: int = -1) -> list[str]: ...

    @abstractmethod
    def zadd(self, key: str, member: str, score: float) -> None: ...

    @abstractmethod
    def zrange_by_score(self, key: str, low: float, high: float, limit: int | None = None) -> list[str]: ...

    @abstractmethod
    def zremove_below(self, key: str, score: float) -> int:
        """Remove members scored below `score` (retention). Returns how many were removed."""

    @abstractmethod
    def close(self) -> None: ...

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
        deadline = time.monotonic() + wait
        got = self.set_nx(key, token, ttl)
        while not got and time.monotonic() < deadline:
            time.sleep(0.05)
            got = self.set_nx(key, token, ttl)
        try:
            yield got
        finally:
            if got:
                self.compare_and_delete(key, token)


# Redis ---------------------------------------------------------------------------------------------

_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  if tonumber(ARGV[3]) > 0 then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  else redis.call('SET', KEYS[1], ARGV[2]) end
  return 1
end
return 0
"""
_CAD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if v == tonumber(ARGV[1]) and tonumber(ARGV[2]) > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return v
"""


def _ms(ttl: float | None) -> int:
    return max(1, int(ttl * 1000)) if ttl else 0


class RedisStore(Store):
    backend = "redis"

    def __init__(self, url: str, timeout: float = 2.0):
        self.url = url
        self.client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            health_check_interval=30,
        )
        self._cas = self.client.register_script(_CAS)
        self._cad = self.client.register_script(_CAD)
        self._incr = self.client.register_script(_INCR)
        self._runners: list = []  # script runners' own connections, closed with the store

    def _k(self, key: str) -> str:
        return PREFIX + key

    def script_runner(self, source: str):
        """A Lua script for a hot path, run on connections of its own (bot/redis_scripts.py)."""
        from bot.redis_scripts import ScriptRunner

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

    def zadd(self, key, member, score):
        self._call(self.client.zadd, self._k(key), {member: score})

    def zrange_by_score(self, key, low, high, limit=None):
        kwargs = {"start": 0, "num": limit} if limit else {}
        return self._call(self.client.zrangebyscore, self._k(key), low, high, **kwargs)

    def zremove_below(self, key, score):
        return int(self._call(self.client.zremrangebyscore, self._k(key), "-inf", f"({score}"))

    def close(self):
        for runner in self._runners:
            runner.close()
        self.client.close()


# SQLite --------------------------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS hashes (key TEXT, field TEXT, value TEXT NOT NULL, PRIMARY KEY (key, field));
CREATE TABLE IF NOT EXISTS lists (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lists_key ON lists (key, id);
CREATE TABLE IF NOT EXISTS zsets (key TEXT, member TEXT, score REAL NOT NULL, PRIMARY KEY (key, member));
CREATE INDEX IF NOT EXISTS zsets_score ON zsets (key, score);
"""


class SQLiteStore(Store):
    """Embedded store for one node: one file, WAL mode, one connection per thread, immediate transactions."""

    backend = "sqlite"

    def __init__(self, path: str | Path):
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        try:
            self._conn().executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._conn()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        else:
            db.execute("COMMIT")

    @staticmethod
    def _live(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] is not None and row[1] <= time.time():
            db.execute("DELETE FROM kv WHERE key = ?", (key,))
            return None
        return row[0]

    @staticmethod
    def _put(db: sqlite3.Connection, key: str, value: str, ttl: float | None) -> None:
        expires = time.time() + ttl if ttl else None
        db.execute(
            "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)", (key, value, expires)
        )

    def ping(self) -> bool:
        try:
            self._conn().execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def get(self, key):
        with self._tx() as db:
            return self._live(db, key)

    def set(self, key, value, ttl=None):
        with self._tx() as db:
            self._put(db, key, value, ttl)

    def delete(self, key):
        """Like Redis DEL: whatever type the key holds."""
        with self._tx() as db:
            for table in ("kv", "hashes", "lists", "zsets"):
                db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))  # noqa: S608 - fixed table names

    def set_nx(self, key, value, ttl=None):
        with self._tx() as db:
            if self._live(db, key) is not None:
                return False
            self._put(db, key, value, ttl)
            return True

    def compare_and_set(self, key, expected, value, ttl=None):
        with self._tx() as db:
            if self._live(db, key) != expected:
                return False
            self._put(db, key, value, ttl)
            return True

    def compare_and_delete(self, key, expected):
        with self._tx() as db:
            if self._live(db, key) != expected:
                return False
            db.execute("DELETE FROM kv WHERE key = ?", (key,))
            return True

    def incr(self, key, amount=1, ttl=None):
        with self._tx() as db:
            current = self._live(db, key)
            if current is None:
                self._put(db, key, str(amount), ttl)
                return amount
            value = int(current) + amount
            db.execute("UPDATE kv SET value = ? WHERE key = ?", (str(value), key))
            return value

    def hset(self, key, field, value):
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO hashes (key, field, value) VALUES (?, ?, ?)", (key, field, value)
            )

    def hget(self, key, field):
        row = (
            self._conn()
            .execute("SELECT value FROM hashes WHERE key = ? AND field = ?", (key, field))
            .fetchone()
        )
        return row[0] if row else None

    def hgetall(self, key):
        rows = self._conn().execute("SELECT field, value FROM hashes WHERE key = ?", (key,)).fetchall()
        return dict(rows)

    def hdel(self, key, field):
        with self._tx() as db:
            db.execute("DELETE FROM hashes WHERE key = ? AND field = ?", (key, field))

    def list_push(self, key, value, max_len=None):
        with self._tx() as db:
            db.execute("INSERT INTO lists (key, value) VALUES (?, ?)", (key, value))
            if max_len:
                db.execute(
                    "DELETE FROM lists WHERE key = ? AND id NOT IN "
                    "(SELECT id FROM lists WHERE key = ? ORDER BY id DESC LIMIT ?)",
                    (key, key, max_len),
                )

    def list_range(self, key, start=0, stop=-1):
        limit = -1 if stop < 0 else stop - start + 1
        rows = (
            self._conn()
            .execute(
                "SELECT value FROM lists WHERE key = ? ORDER BY id DESC LIMIT ? OFFSET ?", (key, limit, start)
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def zadd(self, key, member, score):
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO zsets (key, member, score) VALUES (?, ?, ?)", (key, member, score)
            )

    def zrange_by_score(self, key, low, high, limit=None):
        rows = (
            self._conn()
            .execute(
                "SELECT member FROM zsets WHERE key = ? AND score >= ? AND score <= ? ORDER BY score, member LIMIT ?",
                (key, low, high, limit or -1),
            )
            .fetchall()
        )
        return [r[0] for r in rows]

    def zremove_below(self, key, score):
        with self._tx() as db:
            return db.execute("DELETE FROM zsets WHERE key = ? AND score < ?", (key, score)).rowcount

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def open_store(redis_url: str | None, data_dir: str | Path) -> Store:
    """Redis when a URL is given, otherwise SQLite under `data_dir`."""
    if redis_url:
        return RedisStore(redis_url)
    return SQLiteStore(Path(data_dir) / "store.sqlite3")
