"""The batched and atomic Store methods, one contract for Redis and SQLite: batched reads, batched claims
(also under concurrency), atomic commits of typed operations with guards, and leases."""

from __future__ import annotations

import threading

import pytest

from bot.store import (
    DONE,
    PENDING,
    ClaimStatus,
    Delete,
    Expire,
    Guard,
    HDel,
    HSet,
    HSetIfNewer,
    Incr,
    ListPush,
    Set,
    Transaction,
    ZAdd,
    ZAddSequenced,
    ZRemBelow,
)
from dedupe import Deduper
from tests.contract.conftest import open_spec

# batched reads -------------------------------------------------------------------------------------


def test_get_many_answers_in_order_with_none_for_missing_keys(store):
    store.set("a", "1")
    store.set("b", "2", ttl=60)
    assert store.get_many(["b", "missing", "a", "b"]) == ["2", None, "1", "2"]
    assert store.get_many([]) == []


def test_get_many_does_not_return_expired_keys(store, advance):
    store.set("short", "x", ttl=1.0)
    store.set("long", "y", ttl=60)
    assert store.get_many(["short", "long"]) == ["x", "y"]
    advance(1.2)
    assert store.get_many(["short", "long"]) == [None, "y"]


def test_get_many_of_many_keys(store):
    store.commit([Set(f"k{i}", str(i)) for i in range(0, 1200, 2)])
    got = store.get_many([f"k{i}" for i in range(1200)])
    assert got == [str(i) if i % 2 == 0 else None for i in range(1200)]


def test_hget_many_answers_in_order(store):
    store.hset("h", "f1", "v1")
    store.hset("h", "f2", "v2")
    store.hset("other", "f3", "elsewhere")
    assert store.hget_many("h", ["f2", "f3", "f1", "f2"]) == ["v2", None, "v1", "v2"]
    assert store.hget_many("missing", ["f1"]) == [None]
    assert store.hget_many("h", []) == []


# batched claims ------------------------------------------------------------------------------------


def test_claim_many_claims_free_keys_and_reports_done_and_busy(store):
    d = Deduper(store, "ns")
    first = d.claim("busy")
    done = d.claim("done")
    assert d.confirm("done", str(done.token))
    got = store.claim_many(["ns:free", "ns:busy", "ns:done", "ns:free"], ttl=30)
    assert set(got) == {"ns:free", "ns:busy", "ns:done"}
    assert got["ns:free"].status is ClaimStatus.CLAIMED and got["ns:free"].token
    assert got["ns:busy"].status is ClaimStatus.BUSY and got["ns:busy"].token is None
    assert got["ns:done"].status is ClaimStatus.DONE
    assert store.get("ns:free") == PENDING + str(got["ns:free"].token)
    assert store.get("ns:busy") == PENDING + str(first.token)  # untouched
    assert d.confirm("free", str(got["ns:free"].token))  # the Deduper's protocol: same values
    assert store.get("ns:free") == DONE
    assert store.claim_many([], ttl=30) == {}


def test_claim_many_gives_fresh_tokens_or_the_one_it_is_given(store):
    fresh = store.claim_many(["x1", "x2"], ttl=30)
    assert fresh["x1"].token != fresh["x2"].token
    shared = store.claim_many(["y1", "y2"], ttl=30, token="tok")
    assert [shared[k].token for k in ("y1", "y2")] == ["tok", "tok"]
    assert store.get_many(["y1", "y2"]) == [PENDING + "tok", PENDING + "tok"]


def test_a_pending_claim_expires(store, advance):
    first = store.claim_many(["k"], ttl=1.0)["k"]
    assert store.claim_many(["k"], ttl=1.0)["k"].status is ClaimStatus.BUSY
    advance(1.2)
    again = store.claim_many(["k"], ttl=30)["k"]
    assert again.status is ClaimStatus.CLAIMED and again.token != first.token


def test_concurrent_batched_claims_claim_each_key_exactly_once(store_spec, clock):
    keys = [f"race:{i}" for i in range(60)]
    threads = 6
    start = threading.Barrier(
        threads, timeout=60
    )  # a thread that cannot start fails the test, never hangs it
    won: list[list[str]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def claimer(n: int) -> None:
        try:
            s = open_spec(store_spec, clock)  # its own connections
        except BaseException as exc:
            errors.append(exc)
            start.abort()
            return
        try:
            mine = keys[n * 5 :] + keys[: n * 5]  # every thread wants every key, from another start
            start.wait()
            for i in range(0, len(mine), 20):
                got = s.claim_many(mine[i : i + 20], ttl=30)
                won[n] += [k for k, r in got.items() if r.claimed]
        except BaseException as exc:
            errors.append(exc)
        finally:
            s.close()

    workers = [threading.Thread(target=claimer, args=(n,), daemon=True) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == [] and not any(w.is_alive() for w in workers)
    claimed = [k for per_thread in won for k in per_thread]
    assert sorted(claimed) == sorted(keys)  # each key once, by exactly one thread


# atomic commits ------------------------------------------------------------------------------------


def test_commit_applies_every_kind_of_operation(store):
    store.set("gone", "x")
    store.hset("h", "old", "1")
    assert store.commit(
        [
            Set("s", "v"),
            Set("s-ttl", "v", ttl=60),
            Delete("gone"),
            Incr("n", 2),
            Incr("n", 3),
            HSet("h", "f", "v"),
            HDel("h", "old"),
            ListPush("l", "a"),
            ListPush("l", "b", max_len=1),
            ZAdd("z", "m1", 1.0),
            ZAdd("z", "m2", 2.0),
            ZAdd("z", "m3", 3.0),
            ZRemBelow("z", 2.0),
            ZAddSequenced("fifo", "one", "fifo-seq"),
            ZAddSequenced("fifo", "one", "fifo-seq"),
            Expire("s", 60),
        ]
    )
    assert store.get_many(["s", "s-ttl", "gone", "n"]) == ["v", "v", None, "5"]
    assert store.hgetall("h") == {"f": "v"}
    assert store.list_range("l") == ["b"]
    assert store.zrange_by_score("z", float("-inf"), float("inf")) == ["m2", "m3"]
    assert store.zrange_by_score("fifo", float("-inf"), float("inf")) == [
        "000000000000001|one",
        "000000000000002|one",
    ]
    assert store.get("fifo-seq") == "2"


def test_ttls_of_commits_expire(store, advance):
    store.commit([Set("a", "1", ttl=1.0), Incr("n", 1, ttl=1.0), Set("b", "2"), Expire("b", 1.0)])
    assert store.get_many(["a", "n", "b"]) == ["1", "1", "2"]
    advance(1.2)
    assert store.get_many(["a", "n", "b"]) == [None, None, None]


def test_the_newest_write_wins_whatever_the_order(store):
    store.commit([HSetIfNewer("state", "i-1", 200.0, "Stopped")])
    store.commit([HSetIfNewer("state", "i-1", 100.0, "Running")])
    store.commit(
        [HSetIfNewer("state", "i-2", 100.0, "Running"), HSetIfNewer("state", "i-2", 150.5, "Stopped")]
    )
    assert store.hget_many("state", ["i-1", "i-2"]) == ["200.0|Stopped", "150.5|Stopped"]


def test_a_failing_guard_applies_nothing_of_its_transaction(store):
    store.set("claim", PENDING + "mine")
    store.hset("h", "f", "before")
    assert not store.commit(
        [HSet("h", "f", "after"), ZAddSequenced("q", "x", "q-seq"), Set("other", "1")],
        guards=[Guard("claim", PENDING + "mine"), Guard("claim-2", PENDING + "mine")],
    )
    assert store.hget("h", "f") == "before"
    assert store.zrange_by_score("q", float("-inf"), float("inf")) == []
    assert store.get_many(["other", "q-seq"]) == [None, None]
    assert store.commit([Set("claim", DONE)], guards=[Guard("claim", PENDING + "mine")])
    assert store.get("claim") == DONE


def test_a_none_guard_means_absent(store):
    assert store.commit([Set("k", "first")], guards=[Guard("k", None)])
    assert not store.commit([Set("k", "second")], guards=[Guard("k", None)])
    assert store.get("k") == "first"


def test_commit_many_applies_each_transaction_on_its_own_in_order(store):
    store.set("claim:a", PENDING + "ta")
    store.set("claim:b", PENDING + "someone-else")
    results = store.commit_many(
        [
            Transaction([ListPush("log", "a"), Set("claim:a", DONE)], [Guard("claim:a", PENDING + "ta")]),
            Transaction([ListPush("log", "b"), Set("claim:b", DONE)], [Guard("claim:b", PENDING + "tb")]),
            Transaction([ListPush("log", "a again")], [Guard("claim:a", PENDING + "ta")]),  # sees the first
            Transaction([ListPush("log", "free")]),
        ]
    )
    assert results == [True, False, False, True]
    assert store.list_range("log") == ["free", "a"]
    assert store.get_many(["claim:a", "claim:b"]) == [DONE, PENDING + "someone-else"]
    assert store.commit_many([]) == []


def test_something_that_is_not_an_operation_is_refused_before_anything_is_written(store):
    with pytest.raises(TypeError):
        store.commit([Set("k", "v"), ("SET", "k2", "v")])  # type: ignore[list-item]
    assert store.get_many(["k", "k2"]) == [None, None]


# leases ----------------------------------------------------------------------------------------------


def test_a_lease_is_held_renewed_and_released_by_its_holder_only(store):
    assert store.acquire_lease("notifier", "me", ttl=30)
    assert not store.acquire_lease("notifier", "you", ttl=30)
    assert store.lease_holder("notifier") == "me"
    assert store.renew_lease("notifier", "me", ttl=30)
    assert not store.renew_lease("notifier", "you", ttl=30)
    assert not store.release_lease("notifier", "you")
    assert store.lease_holder("notifier") == "me"
    assert store.release_lease("notifier", "me")
    assert store.lease_holder("notifier") is None
    assert store.acquire_lease("notifier", "you", ttl=30)


def test_a_lease_that_is_not_renewed_expires(store, advance):
    assert store.acquire_lease("job", "me", ttl=1.0)
    assert store.renew_lease("job", "me", ttl=1.0)
    advance(1.2)
    assert store.lease_holder("job") is None
    assert not store.renew_lease("job", "me", ttl=1.0)  # lost: the holder learns it
    assert store.acquire_lease("job", "you", ttl=30)


def test_renewing_a_lease_extends_it(store, advance):
    assert store.acquire_lease("long", "me", ttl=1.0)
    assert store.renew_lease("long", "me", ttl=60)
    advance(30)
    assert store.lease_holder("long") == "me"
    assert store.renew_lease("long", "me", ttl=60)
    advance(59)
    assert store.lease_holder("long") == "me"
    advance(2)
    assert store.lease_holder("long") is None


def test_a_lock_waits_for_the_holders_ttl_on_the_stores_clock(store):
    assert store.set_nx("lock:job", "crashed-holder", ttl=1.0)
    with store.lock("job", ttl=5, wait=0.0) as got:
        assert not got
    with store.lock("job", ttl=5, wait=3.0) as got:  # SQLite: the ManualClock moves as it waits
        assert got
        assert store.get("lock:job") not in (None, "crashed-holder")
    assert store.get("lock:job") is None
