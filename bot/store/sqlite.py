"""The embedded store for one node: one SQLite file, WAL mode, one connection per thread, immediate
transactions. Expiry follows the store's clock (`clock=`, the system clock by default), so tests can move
time forward with `bot.clock.ManualClock` instead of sleeping."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import bot.store.ops as o
from bot.clock import SYSTEM_CLOCK, Clock
from bot.errors import StoreUnavailable
from bot.store.base import DONE, PENDING, ClaimResult, ClaimStatus, Store, new_token

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, expires_at REAL);
CREATE TABLE IF NOT EXISTS hashes (key TEXT, field TEXT, value TEXT NOT NULL, PRIMARY KEY (key, field));
CREATE TABLE IF NOT EXISTS lists (id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS lists_key ON lists (key, id);
CREATE TABLE IF NOT EXISTS zsets (key TEXT, member TEXT, score REAL NOT NULL, PRIMARY KEY (key, member));
CREATE INDEX IF NOT EXISTS zsets_score ON zsets (key, score);
"""

_TABLES = ("kv", "hashes", "lists", "zsets")
_CHUNK = 500  # host parameters per IN (...) list, well under SQLite's limit


def _span(db: sqlite3.Connection, key: str, start: int, stop: int) -> tuple[int, int] | None:
    """Redis's list indexes as (offset, limit) from the newest item; None for an empty range. The
    length is read only when an index counts from the oldest end."""
    if start >= 0 and stop == -1:
        return start, -1  # LIMIT -1: to the end
    if start < 0 or stop < 0:
        length = db.execute("SELECT COUNT(*) FROM lists WHERE key = ?", (key,)).fetchone()[0]
        start = max(0, length + start) if start < 0 else start
        stop = length + stop if stop < 0 else stop
    if stop < start:
        return None
    return start, stop - start + 1


class SQLiteStore(Store):
    backend = "sqlite"

    def __init__(self, path: str | Path, clock: Clock = SYSTEM_CLOCK):
        self.path = str(path)
        self.clock = clock
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
            # WAL persists in the file: set it once. Asking again while another connection is opening
            # can fail at once with "database is locked" (the pragma does not wait for the busy timeout).
            for attempt in range(50):
                try:
                    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                        conn.execute("PRAGMA journal_mode=WAL")
                    break
                except sqlite3.OperationalError:
                    if attempt == 49:
                        raise
                    time.sleep(0.02 * (attempt + 1))
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

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read-only snapshot (a deferred transaction: it takes no write lock)."""
        try:
            db = self._conn()
            db.execute("BEGIN")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
        try:
            yield db
        finally:
            db.execute("COMMIT")

    # the primitives, inside a transaction ----------------------------------------------------------
    def _live(self, db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value, expires_at FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        if row[1] is not None and row[1] <= self.clock.time():
            db.execute("DELETE FROM kv WHERE key = ?", (key,))
            return None
        return row[0]

    def _put(self, db: sqlite3.Connection, key: str, value: str, ttl: float | None) -> None:
        expires = self.clock.time() + ttl if ttl else None
        db.execute(
            "INSERT OR REPLACE INTO kv (key, value, expires_at) VALUES (?, ?, ?)", (key, value, expires)
        )

    @staticmethod
    def _delete(db: sqlite3.Connection, key: str) -> None:
        for table in _TABLES:
            db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))  # noqa: S608 - fixed table names

    def _incr(self, db: sqlite3.Connection, key: str, amount: int, ttl: float | None) -> int:
        current = self._live(db, key)
        if current is None:
            self._put(db, key, str(amount), ttl)
            return amount
        value = int(current) + amount
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (str(value), key))
        return value

    @staticmethod
    def _hset(db: sqlite3.Connection, key: str, field: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO hashes (key, field, value) VALUES (?, ?, ?)", (key, field, value))

    @staticmethod
    def _hget(db: sqlite3.Connection, key: str, field: str) -> str | None:
        row = db.execute("SELECT value FROM hashes WHERE key = ? AND field = ?", (key, field)).fetchone()
        return row[0] if row else None

    @staticmethod
    def _list_push(db: sqlite3.Connection, key: str, value: str, max_len: int | None) -> None:
        db.execute("INSERT INTO lists (key, value) VALUES (?, ?)", (key, value))
        if max_len:
            db.execute(
                "DELETE FROM lists WHERE key = ? AND id NOT IN "
                "(SELECT id FROM lists WHERE key = ? ORDER BY id DESC LIMIT ?)",
                (key, key, max_len),
            )

    @staticmethod
    def _zadd(db: sqlite3.Connection, key: str, member: str, score: float) -> None:
        db.execute("INSERT OR REPLACE INTO zsets (key, member, score) VALUES (?, ?, ?)", (key, member, score))

    @staticmethod
    def _zremove_below(db: sqlite3.Connection, key: str, score: float) -> int:
        return db.execute("DELETE FROM zsets WHERE key = ? AND score < ?", (key, score)).rowcount

    # the interface ---------------------------------------------------------------------------------
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
            self._delete(db, key)

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
            return self._incr(db, key, amount, ttl)

    def hset(self, key, field, value):
        with self._tx() as db:
            self._hset(db, key, field, value)

    def hget(self, key, field):
        return self._hget(self._conn(), key, field)

    def hgetall(self, key):
        rows = self._conn().execute("SELECT field, value FROM hashes WHERE key = ?", (key,)).fetchall()
        return dict(rows)

    def hdel(self, key, field):
        with self._tx() as db:
            db.execute("DELETE FROM hashes WHERE key = ? AND field = ?", (key, field))

    def list_push(self, key, value, max_len=None):
        with self._tx() as db:
            self._list_push(db, key, value, max_len)

    def list_range(self, key, start=0, stop=-1):
        with self._read() as db:
            span = _span(db, key, start, stop)
            if span is None:
                return []
            rows = db.execute(
                "SELECT value FROM lists WHERE key = ? ORDER BY id DESC LIMIT ? OFFSET ?",
                (key, span[1], span[0]),
            ).fetchall()
        return [r[0] for r in rows]

    def list_trim(self, key, start, stop):
        with self._tx() as db:
            span = _span(db, key, start, stop)
            if span is None:
                db.execute("DELETE FROM lists WHERE key = ?", (key,))
                return
            db.execute(
                "DELETE FROM lists WHERE key = ? AND id NOT IN "
                "(SELECT id FROM lists WHERE key = ? ORDER BY id DESC LIMIT ? OFFSET ?)",
                (key, key, span[1], span[0]),
            )

    def zadd(self, key, member, score):
        with self._tx() as db:
            self._zadd(db, key, member, score)

    def zadd_within(self, key, member, score, limit, low):
        with self._tx() as db:
            if db.execute("SELECT 1 FROM zsets WHERE key = ? AND member = ?", (key, member)).fetchone():
                return True
            (held,) = db.execute(
                "SELECT COUNT(*) FROM zsets WHERE key = ? AND score >= ?", (key, low)
            ).fetchone()
            if held >= limit:
                return False
            self._zadd(db, key, member, score)
            return True

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
            return self._zremove_below(db, key, score)

    # batched reads: one snapshot ----------------------------------------------------------------
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        if not keys:
            return []
        found: dict[str, str] = {}
        now = self.clock.time()
        with self._read() as db:
            unique = list(dict.fromkeys(keys))
            for i in range(0, len(unique), _CHUNK):
                part = unique[i : i + _CHUNK]
                marks = ",".join("?" * len(part))
                sql = f"SELECT key, value, expires_at FROM kv WHERE key IN ({marks})"  # noqa: S608
                for key, value, expires in db.execute(sql, part):
                    if expires is None or expires > now:
                        found[key] = value
        return [found.get(k) for k in keys]

    def hget_many(self, key: str, fields: Sequence[str]) -> list[str | None]:
        if not fields:
            return []
        found: dict[str, str] = {}
        with self._read() as db:
            unique = list(dict.fromkeys(fields))
            for i in range(0, len(unique), _CHUNK):
                part = unique[i : i + _CHUNK]
                marks = ",".join("?" * len(part))
                sql = f"SELECT field, value FROM hashes WHERE key = ? AND field IN ({marks})"  # noqa: S608
                found.update(db.execute(sql, (key, *part)).fetchall())
        return [found.get(f) for f in fields]

    # batched claims: one transaction ---------------------------------------------------------------
    def claim_many(self, keys: Sequence[str], ttl: float, token: str | None = None) -> dict[str, ClaimResult]:
        out: dict[str, ClaimResult] = {}
        with self._tx() as db:
            for key in dict.fromkeys(keys):
                current = self._live(db, key)
                if current is None:
                    mine = token or new_token()
                    self._put(db, key, PENDING + mine, ttl)
                    out[key] = ClaimResult(ClaimStatus.CLAIMED, mine)
                else:
                    out[key] = ClaimResult(ClaimStatus.DONE if current == DONE else ClaimStatus.BUSY)
        return out

    # atomic commits: one transaction ---------------------------------------------------------------
    def commit_many(self, transactions: Sequence[o.Transaction]) -> list[bool]:
        results: list[bool] = []
        with self._tx() as db:
            for tx in transactions:
                o.check(tx)
                if not all(self._live(db, g.key) == g.value for g in tx.guards):
                    results.append(False)
                    continue
                for op in tx.ops:  # an operation that fails rolls the whole call back
                    self._apply(db, op)
                results.append(True)
        return results

    def _apply(self, db: sqlite3.Connection, op: o.Op) -> None:
        if isinstance(op, o.Set):
            self._put(db, op.key, op.value, op.ttl)
        elif isinstance(op, o.Delete):
            self._delete(db, op.key)
        elif isinstance(op, o.Incr):
            self._incr(db, op.key, op.amount, op.ttl)
        elif isinstance(op, o.Expire):
            db.execute("UPDATE kv SET expires_at = ? WHERE key = ?", (self.clock.time() + op.ttl, op.key))
        elif isinstance(op, o.HSet):
            self._hset(db, op.key, op.field, op.value)
        elif isinstance(op, o.HDel):
            db.execute("DELETE FROM hashes WHERE key = ? AND field = ?", (op.key, op.field))
        elif isinstance(op, o.HSetIfNewer):
            current = self._hget(db, op.key, op.field)
            try:
                current_at = float(current.split("|", 1)[0]) if current else None
            except ValueError:
                current_at = None
            if current_at is None or current_at <= op.at:
                self._hset(db, op.key, op.field, f"{float(op.at)!r}|{op.value}")
        elif isinstance(op, o.ListPush):
            self._list_push(db, op.key, op.value, op.max_len)
        elif isinstance(op, o.ZAdd):
            self._zadd(db, op.key, op.member, float(op.score))
        elif isinstance(op, o.ZRemBelow):
            self._zremove_below(db, op.key, float(op.score))
        elif isinstance(op, o.ZAddSequenced):
            seq = self._incr(db, op.counter, 1, None)
            self._zadd(db, op.key, f"{seq:015d}|{op.value}", float(seq))
        else:  # pragma: no cover - check() refused it already
            raise TypeError(f"not a store operation: {op!r}")

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
