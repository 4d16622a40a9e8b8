"""One contract for both stores: the Redis server and embedded SQLite behave the same."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from bot.errors import StoreUnavailable
from bot.store import RedisStore, open_store
from dedupe import ClaimStatus, Deduper, dedupe_key
from tests.contract.conftest import open_spec


def _open(spec):
    return open_spec(spec)


def test_claim_confirm_then_done(store):
    d = Deduper(store, "t")
    first = d.claim("evt-1")
    assert first.status is ClaimStatus.CLAIMED and first.token
    assert d.claim("evt-1").status is ClaimStatus.BUSY
    assert d.confirm("evt-1", first.token)
    assert d.claim("evt-1").status is ClaimStatus.DONE
    assert d.is_done("evt-1")


def test_release_lets_a_retry_claim_again(store):
    d = Deduper(store, "t")
    first = d.claim("evt-2")
    assert d.release("evt-2", first.token)
    second = d.claim("evt-2")
    assert second.status is ClaimStatus.CLAIMED and second.token != first.token
    assert not d.release("evt-2", first.token)  # a stale token cannot release someone else's claim
    assert not d.confirm("evt-2", first.token)
    assert d.confirm("evt-2", second.token)


def test_pending_claim_expires_so_a_crashed_claimer_does_not_block_forever(store, advance):
    d = Deduper(store, "t", pending_ttl=1.0)  # long enough that a stalled machine still sees it held
    first = d.claim("evt-3")
    assert d.claim("evt-3").status is ClaimStatus.BUSY
    advance(1.2)
    again = d.claim("evt-3")
    assert again.status is ClaimStatus.CLAIMED
    assert not d.confirm("evt-3", first.token)  # the expired claimer learns it lost


def test_done_keys_expire_after_done_ttl(store, advance):
    d = Deduper(store, "t", done_ttl=1.0)
    r = d.claim("evt-4")
    d.confirm("evt-4", r.token)
    assert d.claim("evt-4").status is ClaimStatus.DONE
    advance(1.2)
    assert d.claim("evt-4").status is ClaimStatus.CLAIMED


def test_namespaces_are_separate(store):
    a, b = Deduper(store, "a"), Deduper(store, "b")
    assert a.claim("same").claimed and b.claim("same").claimed


def test_primitives(store):
    assert store.set_nx("k", "1", ttl=5) and not store.set_nx("k", "2")
    assert store.get("k") == "1"
    assert store.compare_and_set("k", "1", "3") and not store.compare_and_set("k", "1", "4")
    assert store.get("k") == "3"
    assert not store.compare_and_delete("k", "1") and store.compare_and_delete("k", "3")
    assert store.get("k") is None
    assert store.incr("c", ttl=5) == 1 and store.incr("c", 4) == 5
    store.hset("h", "f", "v")
    assert store.hget("h", "f") == "v" and store.hgetall("h") == {"f": "v"}
    store.hdel("h", "f")
    assert store.hgetall("h") == {}
    for i in range(5):
        store.list_push("l", str(i), max_len=3)
    assert store.list_range("l") == ["4", "3", "2"]
    assert store.list_range("l", 0, 0) == ["4"]
    store.zadd("z", "a", 1)
    store.zadd("z", "b", 2)
    store.zadd("z", "c", 3)
    assert store.zrange_by_score("z", 2, 3) == ["b", "c"]
    assert store.zremove_below("z", 2) == 1
    assert store.zrange_by_score("z", 0, 10) == ["b", "c"]
    store.set_json("j", {"a": [1, 2]})
    assert store.get_json("j") == {"a": [1, 2]}


def test_delete_removes_a_key_of_any_type(store):
    store.set("a", "1")
    store.hset("h", "f", "v")
    store.list_push("l", "x")
    store.zadd("z", "m", 1)
    for key in ("a", "h", "l", "z"):
        store.delete(key)
    assert store.get("a") is None and store.hgetall("h") == {}
    assert store.list_range("l") == [] and store.zrange_by_score("z", 0, 10) == []


def test_lock_is_exclusive(store):
    with store.lock("job", ttl=5) as got:
        assert got
        with store.lock("job", ttl=5) as again:
            assert not again
    with store.lock("job", ttl=5) as after:
        assert after


def _claim_in_process(spec, key, start_at, queue):
    store = _open(spec)
    while time.time() < start_at:
        time.sleep(0.001)
    result = Deduper(store, "race").claim(key)
    queue.put(result.status.value)
    store.close()


def test_concurrent_claims_from_several_processes_exactly_one_wins(store_spec):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 3.0  # all processes are up by then; they claim together
    procs = [
        ctx.Process(target=_claim_in_process, args=(store_spec, "hot-key", start_at, queue)) for _ in range(6)
    ]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(results) == ["busy"] * 5 + ["claimed"], results


def test_unreachable_redis_raises_store_unavailable():
    from sandbox.stack import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    assert store.ping() is False
    with pytest.raises(StoreUnavailable):
        Deduper(store, "t").claim("x")


def test_open_store_picks_the_backend(tmp_path, redis_url):
    assert open_store(None, tmp_path).backend == "sqlite"
    assert open_store(redis_url, tmp_path).backend == "redis"


def test_key_builder_keeps_keys_short_and_safe():
    assert dedupe_key("pd", "abc") == "pd:abc"
    long = dedupe_key("pd", "x" * 500)
    assert len(long) < 50 and long.startswith("pd:")
    assert dedupe_key("pd", "a b") != dedupe_key("pd", "a:b")
