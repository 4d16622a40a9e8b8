"""Store fixtures shared by the store contract suites: every test runs on a real Redis server and on
SQLite in tmp_path.

`advance(seconds)` lets time pass for the store's TTLs without waiting: SQLite's TTLs follow an injected
ManualClock, which it moves. Redis keeps TTLs on the server, so there it moves every key of ours the
same way: each remaining TTL (PTTL) shrinks by `seconds`, and a key whose TTL would have run out is
gone — what the server's clock would have done, checked against the TTLs the store actually set."""

from __future__ import annotations

import pytest
import redis

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

    kind, where = store_spec
    if kind == "sqlite":
        yield clock.advance
        return
    client = redis.Redis.from_url(where)

    def go(seconds: float) -> None:
        ms = int(seconds * 1000)
        for key in client.scan_iter("chatops:*", count=1000):
            left = client.pttl(key)
            if left < 0:  # no TTL (-1), or gone already (-2)
                continue
            if left <= ms:
                client.delete(key)
            else:
                client.pexpire(key, left - ms)

    yield go
    client.close()


@pytest.fixture
def slack():
    """The Slack emulator, on its own (no bot)."""
    from sandbox.slack_emulator import SlackEmulator

    emu = SlackEmulator().start()
    yield emu
    emu.stop()


def messenger(emu, token: str | None = None):
    """The bot's Slack adapter over the real slack_sdk client, pointed at the emulator."""
    from bot.adapters.slack import SlackMessenger, make_web_client
    from sandbox import credentials

    return SlackMessenger(make_web_client(token or credentials.SLACK_BOT_TOKEN, emu.base_url + "/api/"))
