"""At-least-once delivery for every job on Huey (which acknowledges nothing: a task a worker has taken is
gone from the queue, so a worker killed mid-task, or one whose retry cannot be enqueued, loses it).

- Taking a task moves it, in one atomic step, from the queue into the taking worker's processing list.
- It leaves that list only once its outcome is durable: done, failed for good (and reported), its
  retry enqueued, or — taken before its time (a delayed retry goes through the queue) — written to the
  schedule (`acknowledge`, on those Huey signals). A task whose acknowledgement could not be written
  stays held.
- Every worker beats a heartbeat every HEARTBEAT seconds; any worker puts the held tasks of one whose
  heartbeat is older than DEAD_AFTER (30 s; `CHATOPS_QUEUE_DEAD_AFTER`) back on the queue (`recover`),
  at start and with every beat. A worker that stops cleanly marks itself gone at once.
- A scheduled task (a retry with a delay) moves from the schedule to the queue in one atomic step.

Effects stay single because every job is idempotent: webhook effects claim their event id, plans are
single-use and run as durable job records, periodic jobs hold locks.

    Redis   huey.processing.<queue>.<worker>   list: the raw tasks a worker holds
            huey.workers.<queue>               zset: worker → last heartbeat (epoch seconds)
    SQLite  tables `processing` and `workers` beside Huey's own, in the queue's file
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

from huey import RedisHuey, SqliteHuey
from huey.signals import (
    SIGNAL_CANCELED,
    SIGNAL_COMPLETE,
    SIGNAL_ERROR,
    SIGNAL_EXPIRED,
    SIGNAL_REVOKED,
    SIGNAL_SCHEDULED,
)
from huey.storage import RedisStorage, SqliteStorage

log = logging.getLogger(__name__)

HEARTBEAT = 5.0
DEAD_AFTER = float(os.environ.get("CHATOPS_QUEUE_DEAD_AFTER", "30"))  # seconds without a heartbeat
# The signals after which the task taken is done with: finished, or written to the schedule (a task
# taken before its time, a delayed retry, is put there by Huey and comes back as a new delivery).
FINAL_SIGNALS = (
    SIGNAL_COMPLETE,
    SIGNAL_ERROR,
    SIGNAL_CANCELED,
    SIGNAL_EXPIRED,
    SIGNAL_REVOKED,
    SIGNAL_SCHEDULED,
)

# Due scheduled tasks onto the queue, atomically (Huey's own read pops them for its scheduler thread to
# enqueue afterwards: a scheduler stopped in between loses them).
_MOVE_DUE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, data in ipairs(due) do
  redis.call('LPUSH', KEYS[2], data)
  redis.call('ZREM', KEYS[1], data)
end
return #due
"""


class ReliableRedisStorage(RedisStorage):
    def __init__(self, *args, worker_id: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.worker_id = worker_id or uuid.uuid4().hex
        self.workers_key = f"huey.workers.{self.name}"
        self._move_due = self.conn.register_script(_MOVE_DUE)

    def processing_key(self, worker_id: str) -> str:
        return f"huey.processing.{self.name}.{worker_id}"

    def dequeue(self):
        mine = self.processing_key(self.worker_id)
        if self.blocking:
            return self.conn.brpoplpush(self.queue_key, mine, timeout=self.read_timeout)
        return self.conn.rpoplpush(self.queue_key, mine)

    def acknowledge(self, data: bytes) -> None:
        self.conn.lrem(self.processing_key(self.worker_id), 1, data)

    def read_schedule(self, ts):
        self._move_due(keys=[self.schedule_key, self.queue_key], args=[self.convert_ts(ts)])
        return []

    def beat(self, now: float) -> None:
        self.conn.zadd(self.workers_key, {self.worker_id: now})

    def leave(self) -> None:
        """A worker that stops says so: whatever it still holds is recovered at the next beat anywhere."""
        self.conn.zadd(self.workers_key, {self.worker_id: 0})

    def beating_since(self, since: float) -> int:
        """How many workers have beaten since `since` (epoch seconds)."""
        return int(self.conn.zcount(self.workers_key, since, "+inf"))

    def recover(self, now: float) -> int:
        """Put the tasks held by workers whose heartbeat stopped back on the queue; how many."""
        moved = 0
        for raw in self.conn.zrangebyscore(self.workers_key, "-inf", now - DEAD_AFTER):
            worker = raw.decode() if isinstance(raw, bytes) else str(raw)
            if worker == self.worker_id:
                continue
            held = self.processing_key(worker)
            while self.conn.rpoplpush(held, self.queue_key) is not None:
                moved += 1
            self.conn.zrem(self.workers_key, worker)
        return moved

    def held(self) -> int:
        return sum(self.conn.llen(k) for k in self.conn.scan_iter(f"huey.processing.{self.name}.*"))


class ReliableSqliteStorage(SqliteStorage):
    table_processing = (
        "create table if not exists processing (id integer not null primary key, queue text not null, "
        "worker text not null, data blob not null, taken_at real not null)"
    )
    table_workers = (
        "create table if not exists workers (queue text not null, worker text not null, beat real not null, "
        "primary key (queue, worker))"
    )
    ddl = [*SqliteStorage.ddl, table_processing, table_workers]

    def __init__(self, *args, worker_id: str | None = None, **kwargs):
        self.worker_id = worker_id or uuid.uuid4().hex
        super().__init__(*args, **kwargs)

    def dequeue(self):
        if not self.sql("select 1 from task where queue = ? limit 1", (self.name,), results=True):
            return None
        with self.db(commit=True) as curs:
            curs.execute(
                "select id, data from task where queue = ? order by priority desc, id limit 1", (self.name,)
            )
            row = curs.fetchone()
            if row is None:
                return None
            curs.execute("delete from task where id = ?", (row[0],))
            if curs.rowcount != 1:
                return None
            curs.execute(
                "insert into processing (queue, worker, data, taken_at) values (?, ?, ?, ?)",
                (self.name, self.worker_id, row[1], time.time()),
            )
            return row[1]

    def acknowledge(self, data: bytes) -> None:
        self.sql(
            "delete from processing where id = (select id from processing where queue = ? and worker = ? "
            "and data = ? limit 1)",
            (self.name, self.worker_id, self.to_blob(data)),
            commit=True,
        )

    def read_schedule(self, ts):
        with self.db(commit=True) as curs:
            curs.execute(
                "select id, data from schedule where queue = ? and timestamp <= ?",
                (self.name, ts.timestamp()),
            )
            for sid, data in curs.fetchall():
                curs.execute("insert into task (queue, data, priority) values (?, ?, 0)", (self.name, data))
                curs.execute("delete from schedule where id = ?", (sid,))
        return []

    def beat(self, now: float) -> None:
        self.sql(
            "insert or replace into workers (queue, worker, beat) values (?, ?, ?)",
            (self.name, self.worker_id, now),
            commit=True,
        )

    def leave(self) -> None:
        self.beat(0.0)

    def beating_since(self, since: float) -> int:
        """How many workers have beaten since `since` (epoch seconds)."""
        rows = self.sql(
            "select count(*) from workers where queue = ? and beat >= ?", (self.name, since), results=True
        )
        return int(rows[0][0])

    def recover(self, now: float) -> int:
        moved = 0
        with self.db(commit=True) as curs:
            curs.execute(
                "select worker from workers where queue = ? and beat < ? and worker != ?",
                (self.name, now - DEAD_AFTER, self.worker_id),
            )
            for (worker,) in curs.fetchall():
                curs.execute(
                    "insert into task (queue, data, priority) select queue, data, 0 from processing "
                    "where queue = ? and worker = ? order by id",
                    (self.name, worker),
                )
                moved += curs.rowcount
                curs.execute("delete from processing where queue = ? and worker = ?", (self.name, worker))
                curs.execute("delete from workers where queue = ? and worker = ?", (self.name, worker))
        return moved

    def held(self) -> int:
        return self.sql("select count(*) from processing where queue = ?", (self.name,), results=True)[0][0]


class _Holding:
    """What a worker's Huey remembers of the tasks it took: task id → the raw task, to acknowledge."""

    def _init_holding(self) -> None:
        self._taken: dict[str, bytes] = {}
        self._taken_lock = threading.Lock()
        self.signal(*FINAL_SIGNALS)(self._on_final)

    def dequeue(self):
        data = self.storage.dequeue()
        if data is None:
            return None
        try:
            task = self.deserialize_task(data)
        except Exception:  # noqa: BLE001 - a task no version of the bot can read is dropped, loudly
            log.exception("dropping a task that cannot be read")
            self.storage.acknowledge(data)
            return None
        with self._taken_lock:
            self._taken[task.id] = data
        return task

    def _on_final(self, signal, task, *args, **kwargs) -> None:
        with self._taken_lock:
            data = self._taken.pop(task.id, None)
        if data is None:
            return
        try:
            self.storage.acknowledge(data)
        except Exception as exc:  # noqa: BLE001 - unacknowledged, it is run again after recovery
            log.warning(
                "could not acknowledge a task; it stays held", extra={"job": task.name, "error": str(exc)}
            )


class ReliableRedisHuey(_Holding, RedisHuey):
    storage_class = ReliableRedisStorage

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_holding()


class ReliableSqliteHuey(_Holding, SqliteHuey):
    storage_class = ReliableSqliteStorage

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_holding()


class Heartbeat(threading.Thread):
    """A consuming worker's heartbeat; each beat also recovers what dead workers held."""

    def __init__(self, storage):
        super().__init__(name="queue-heartbeat", daemon=True)
        self.storage = storage
        self.done = threading.Event()

    def beat_once(self) -> None:
        now = time.time()
        self.storage.beat(now)
        moved = self.storage.recover(now)
        if moved:
            log.warning("put back tasks a stopped worker held", extra={"tasks": moved})

    def run(self) -> None:
        while True:
            try:
                self.beat_once()
            except Exception as exc:  # noqa: BLE001 - the store may be away for a while: beat again later
                log.warning("queue heartbeat failed", extra={"error": str(exc)})
            if self.done.wait(HEARTBEAT):
                return

    def stop(self) -> None:
        self.done.set()
        try:
            self.storage.leave()
        except Exception:  # noqa: BLE001 - leaving is a courtesy; the heartbeat's age says the same
            log.debug("could not leave the worker list")
