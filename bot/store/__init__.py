"""The store: Redis (any number of replicas) or embedded SQLite (one node), behind one interface.

- `base.py`: the `Store` interface (primitives, batched reads and claims, atomic commits of typed
  operations, atomic admit of a queued job, leases and locks) and the claim protocol's values;
- `ops.py`: the typed operations and guards of `Store.commit` / `Store.commit_many`;
- `redis.py` (Lua scripts in `lua.py`, hot-path script calls in `redis_scripts.py`) and `sqlite.py`.

Nothing outside bot/store and bot/queue touches a Redis client, the key prefix or a backend class's
internals: everything else calls `Store` methods.
"""

from __future__ import annotations

from pathlib import Path

from bot.clock import SYSTEM_CLOCK, Clock
from bot.store.base import DONE, PENDING, ClaimResult, ClaimStatus, QueuedJob, Store
from bot.store.ops import (
    Delete,
    Expire,
    Guard,
    HDel,
    HSet,
    HSetIfNewer,
    Incr,
    ListPush,
    Op,
    Set,
    Transaction,
    ZAdd,
    ZAddSequenced,
    ZRemBelow,
)
from bot.store.redis import PREFIX, RedisStore
from bot.store.sqlite import SQLiteStore


def open_store(redis_url: str | None, data_dir: str | Path, clock: Clock = SYSTEM_CLOCK) -> Store:
    """Redis when a URL is given, otherwise SQLite under `data_dir`."""
    if redis_url:
        return RedisStore(redis_url, clock=clock)
    return SQLiteStore(Path(data_dir) / "store.sqlite3", clock=clock)


__all__ = [
    "DONE",
    "PENDING",
    "PREFIX",
    "ClaimResult",
    "ClaimStatus",
    "Delete",
    "Expire",
    "Guard",
    "HDel",
    "HSet",
    "HSetIfNewer",
    "Incr",
    "ListPush",
    "Op",
    "QueuedJob",
    "RedisStore",
    "SQLiteStore",
    "Set",
    "Store",
    "Transaction",
    "ZAdd",
    "ZAddSequenced",
    "ZRemBelow",
    "open_store",
]
