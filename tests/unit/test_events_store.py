"""The batched claim / effects+confirm store of the ECS-events consumer behaves the same on Redis and on
SQLite (one `Store.commit_many` per batch), and interoperates with `dedupe.Deduper`."""

from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from bot.policy import Policy
from bot.store import Delete, HSet, HSetIfNewer, ListPush, RedisStore, Set, SQLiteStore
from dedupe import ClaimStatus, Deduper
from handlers.events import keys
from handlers.events.batch_store import Commit, EventStore, fifo_drop_through, fifo_peek, fifo_push_op
from handlers.events.history import trim_history


@pytest.fixture(params=["redis", "sqlite"])
def store(request, tmp_path):
    if request.param == "redis":
        s = RedisStore(request.getfixturevalue("redis_url"))
    else:
        s = SQLiteStore(tmp_path / "store.sqlite3")
    yield s
    s.close()


def test_claims_commit_effects_and_confirm_together(store):
    es = EventStore(store, "ns", claim_ttl=30)
    claims = es.claim_many(["a", "b", "a"])
    assert set(claims) == {"a", "b"} and all(c.status is ClaimStatus.CLAIMED for c in claims.values())
    assert es.claim_many(["a"])["a"].status is ClaimStatus.BUSY
    applied = es.commit(
        [
            Commit("a", claims["a"].token, [fifo_push_op("box", "one"), HSet("h", "f", "1")]),
            Commit("b", "not-my-token", [fifo_push_op("box", "never")]),
            Commit(None, None, [fifo_push_op("box", "two"), ListPush("l", "x", 2)]),
        ]
    )
    assert applied == [True, False, True]
    assert [p for _, p in fifo_peek(store, "box", 10)] == ["one", "two"]
    assert store.hget("h", "f") == "1" and store.list_range("l") == ["x"]
    assert es.claim_many(["a"])["a"].status is ClaimStatus.DONE
    assert Deduper(store, "ns").claim("a").status is ClaimStatus.DONE  # same keys as the Deduper
    es.release_many([("b", claims["b"].token)])
    assert es.claim_many(["b"])["b"].status is ClaimStatus.CLAIMED


def test_fifo_order_and_dropping_a_prefix(store):
    es = EventStore(store, "ns", claim_ttl=30)
    es.commit([Commit(None, None, [fifo_push_op("q", f"m{n}") for n in range(5)])])
    first = fifo_peek(store, "q", 3)
    assert [p for _, p in first] == ["m0", "m1", "m2"]
    fifo_drop_through(store, "q", first[-1][0])
    assert [p for _, p in fifo_peek(store, "q", 10)] == ["m3", "m4"]


def test_newest_state_wins_whatever_the_arrival_order(store):
    es = EventStore(store, "ns", claim_ttl=30)
    es.commit([Commit(None, None, [HSetIfNewer(keys.STATE, "i-1", 200.0, "Stopped")])])
    es.commit([Commit(None, None, [HSetIfNewer(keys.STATE, "i-1", 100.0, "Running")])])
    assert es.hget_many(keys.STATE, ["i-1", "i-2"]) == ["200.0|Stopped", None]
    es.commit([Commit(None, None, [Set("k", "v", 60), Delete("gone")])])
    assert es.get_many(["k", "missing"]) == ["v", None]


def test_retention_drops_trails_of_instances_silent_for_longer_than_the_retention(store):
    """(Old entries of active instances are trimmed on each write.)"""
    now = time.time()
    old, recent = now - 40 * 86400, now - 86400
    for iid, at in (("i-old", old), ("i-new", recent)):
        store.zadd(keys.history(iid), f'{{"t": {at}}}', at)
        store.zadd(keys.HISTORY_INDEX, iid, at)
    trim_history(SimpleNamespace(store=store, policy=Policy()))
    assert store.zrange_by_score(keys.history("i-old"), 0, float("inf")) == []
    assert store.zrange_by_score(keys.history("i-new"), 0, float("inf")) == [f'{{"t": {recent}}}']
    assert store.zrange_by_score(keys.HISTORY_INDEX, 0, float("inf")) == ["i-new"]
