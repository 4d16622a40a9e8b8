"""Store fixtures shared by the store contract suites: every test runs on a real Redis server and on
SQLite in tmp_path. SQLite's TTLs follow an injected ManualClock (`advance` moves it); Redis expires
keys on its own clock, so there `advance` is a real wait (callers keep it to about a second)."""

from __future__ import annotations

import time

import pytest

from bot.clock import ManualClock
from bot.store import RedisStore, SQLiteStore


@pytest.fixture(params=["redis", "sqlite"])
def store_spec(request, tmp_path):
    if request.param == "redis":
        return ("redis", request.getfixturevalue("redis_url"))
    return ("sqlite", str(tmp_path / "store.sqlite3"))


@pytest.fixture
def clock():
    return ManualClock()


def open_spec(spec, clock=None):
    kind, where = spec
    if kind == "redis":
        return RedisStore(where)
    return SQLiteStore(where) if clock is None else SQLiteStore(where, clock=clock)


@pytest.fixture
def store(store_spec, clock):
    s = open_spec(store_spec, clock)
    yield s
    s.close()


@pytest.fixture
def advance(store_spec, clock):
    """Let `seconds` pass for the store's TTLs."""

    def go(seconds: float) -> None:
        if store_spec[0] == "sqlite":
            clock.advance(seconds)
        else:
            assert seconds <= 2.0, "keep real waits on Redis short"
            time.sleep(seconds)

    return go
