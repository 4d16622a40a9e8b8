"""Lists, one contract for Redis and SQLite: `list_range` and `list_trim` take Redis's indexes (negative
ones count from the oldest end, out-of-range ones are clamped), checked against a model of LRANGE /
LTRIM on every small list and index pair."""

from __future__ import annotations

import threading

INDEXES = range(-6, 7)


def model_span(items: list[str], start: int, stop: int) -> list[str]:
    """What Redis's LRANGE answers (and LTRIM keeps) for a list held newest first."""
    n = len(items)
    start = max(0, n + start) if start < 0 else start
    stop = min(n - 1, n + stop if stop < 0 else stop)
    return items[start : stop + 1] if start <= stop else []


def fill(store, key: str, n: int) -> list[str]:
    store.delete(key)
    for i in range(n):
        store.list_push(key, f"v{i}")
    return [f"v{i}" for i in reversed(range(n))]


def test_list_range_takes_redis_indexes(store):
    for n in range(5):
        items = fill(store, "l", n)
        for start in INDEXES:
            for stop in INDEXES:
                assert store.list_range("l", start, stop) == model_span(items, start, stop), (n, start, stop)


def test_list_trim_keeps_what_list_range_would_answer(store):
    for n in (0, 1, 3, 4):
        for start in INDEXES:
            for stop in INDEXES:
                items = fill(store, "l", n)
                store.list_trim("l", start, stop)
                assert store.list_range("l") == model_span(items, start, stop), (n, start, stop)


def test_trimming_an_empty_range_deletes_the_list_and_other_keys_stay(store):
    fill(store, "l", 3)
    fill(store, "other", 2)
    store.list_trim("l", 0, -4)  # drop the 3 oldest: all of them
    assert store.list_range("l") == [] and store.list_range("other") == ["v1", "v0"]
    store.list_push("l", "new")
    assert store.list_range("l") == ["new"]
    store.list_trim("missing", 0, 0)
    assert store.list_range("missing") == []


def test_dropping_the_oldest_is_safe_against_concurrent_pushes(store):
    fill(store, "l", 100)  # v99 … v0, newest first
    pushed = threading.Event()

    def push() -> None:
        for i in range(100, 200):
            store.list_push("l", f"v{i}")
        pushed.set()

    writer = threading.Thread(target=push, daemon=True)
    writer.start()
    store.list_trim("l", 0, -51)  # the 50 oldest (v0 … v49) go, whatever was pushed meanwhile
    writer.join(10)
    assert pushed.is_set()
    kept = store.list_range("l")
    assert kept == [f"v{i}" for i in reversed(range(50, 200))]
