"""`zadd_within`, one contract for Redis and SQLite: a member joins a sorted set only while it holds
fewer than `limit` members scored at least `low` — atomically, so many processes starting at once admit
exactly `limit` (a runbook's `concurrency`)."""

from __future__ import annotations

import threading

from tests.contract.conftest import open_spec


def test_members_join_until_the_limit_and_low_scores_do_not_count(store):
    assert store.zadd_within("z", "a", 10, limit=2, low=1)
    assert store.zadd_within("z", "b", 11, limit=2, low=1)
    assert not store.zadd_within("z", "c", 12, limit=2, low=1)
    assert store.zadd_within("z", "a", 13, limit=2, low=1)  # already in: counts as in
    store.zadd("z", "a", 0)  # ended: scored below `low`
    assert store.zadd_within("z", "c", 12, limit=2, low=1)
    assert store.zrange_by_score("z", 1, float("inf")) == ["b", "c"]


def test_many_at_once_admit_exactly_the_limit(store_spec):
    admitted: list[str] = []
    start = threading.Barrier(12)

    def join(n: int) -> None:
        store = open_spec(store_spec)
        try:
            start.wait(10)
            if store.zadd_within("busy", f"run-{n}", 100 + n, limit=3, low=1):
                admitted.append(f"run-{n}")
        finally:
            store.close()

    threads = [threading.Thread(target=join, args=(n,), daemon=True) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(admitted) == 3
    check = open_spec(store_spec)
    try:
        assert sorted(check.zrange_by_score("busy", 1, float("inf"))) == sorted(admitted)
    finally:
        check.close()
