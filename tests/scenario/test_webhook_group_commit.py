"""The group commit behind the webhook endpoint's Redis call: every caller gets its own result, every
item is sent exactly once, a failed batch fails each of its callers and only them."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from dedupe.admit import GroupCommit


def test_concurrent_callers_share_batches_and_get_their_own_results():
    batches: list[list[int]] = []

    def run(items):
        batches.append(list(items))
        time.sleep(0.002)  # a round trip: later callers queue up behind it
        return [i * 10 for i in items]

    commit = GroupCommit(run, max_batch=8)
    start = threading.Barrier(24)

    def call(i):
        start.wait()
        return commit.submit(i)

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(call, range(24)))
    assert results == [i * 10 for i in range(24)]
    sent = sorted(i for batch in batches for i in batch)
    assert sent == list(range(24))  # each item exactly once
    assert len(batches) < 24 and max(len(b) for b in batches) <= 8  # shared, and capped


def test_a_failed_batch_fails_its_callers_only():
    fail = threading.Event()
    fail.set()

    def run(items):
        if fail.is_set() and 0 in items:
            fail.clear()
            raise ConnectionError("store down")
        return list(items)

    commit = GroupCommit(run)
    with pytest.raises(ConnectionError):
        commit.submit(0)
    assert commit.submit(0) == 0  # the next call leads a new batch
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(commit.submit, range(1, 9))) == list(range(1, 9))
