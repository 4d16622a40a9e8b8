"""Admitting a queued job together with its dedupe keys, on both stores: `Store.admit_batch` where the
store shares the queue's backend (Redis), and the claim → enqueue → confirm path of `DeliveryGate`
everywhere else — with the same outcomes, and exactly one job per delivery under concurrency."""

from __future__ import annotations

import threading

import pytest

from bot.queue import TaskQueue
from bot.registry import Registry
from bot.store import DONE, PENDING, ClaimStatus, QueuedJob
from dedupe.admit import Admission, DeliveryGate, MultiKeyClaims
from handlers.pagerduty import webhook
from tests.contract.conftest import open_spec

JOB = webhook.EFFECT_JOB
JOBS = Registry().include(webhook.capability)  # the queue binds the job the gate enqueues


@pytest.fixture
def queue(store_spec, tmp_path):
    kind, where = store_spec
    return TaskQueue(where if kind == "redis" else None, tmp_path / "queue", JOBS)


def test_the_store_admits_only_jobs_of_a_queue_on_its_own_backend(store_spec, store, queue):
    job = queue.durable_message(JOB, delivery=b"{}", webhook_id="w", index=0)
    if store_spec[0] == "redis":
        assert store.atomic_admit and store.admits(job)
        assert not store.admits(QueuedJob("sqlite", "elsewhere", b""))
    else:
        assert job is None and not store.atomic_admit and not store.admits(job)
        with pytest.raises(NotImplementedError):
            store.admit_batch([(("k",), QueuedJob("redis", "q", b""))], 60)


def test_admit_batch_checks_enqueues_and_marks_in_one_step(redis_url):
    store = open_spec(("redis", redis_url))
    queue = TaskQueue(redis_url, "/nonexistent", JOBS)
    try:
        store.set("ns:pending", PENDING + "someone")
        store.set("ns:done", DONE)
        jobs = [queue.durable_message(JOB, delivery=b"{}", webhook_id=str(i), index=0) for i in range(5)]
        codes = store.admit_batch(
            [
                (("ns:a", "ns:b"), jobs[0]),
                (("ns:c", "ns:b"), jobs[1]),  # shares a key with the first: already done by then
                (("ns:pending",), jobs[2]),
                (("ns:x", "ns:done"), jobs[3]),
                (("ns:d",), jobs[4]),
            ],
            done_ttl=60,
        )
        assert codes == [
            ClaimStatus.CLAIMED,
            ClaimStatus.DONE,
            ClaimStatus.BUSY,
            ClaimStatus.DONE,
            ClaimStatus.CLAIMED,
        ]
        assert store.get_many(["ns:a", "ns:b", "ns:c", "ns:x", "ns:d"]) == [DONE, DONE, None, None, DONE]
        assert 0 < store.client.pttl("chatops:ns:a") <= 60_000
        assert queue.pending() == 2  # the two admitted jobs, and only them
    finally:
        store.close()


def test_the_gate_admits_once_then_answers_duplicate(store, queue):
    gate = DeliveryGate(store, queue, "pd")
    assert gate.admit(("wh:1", "ev:1"), JOB, delivery=b"{}", webhook_id="1", index=0) is Admission.ACCEPTED
    assert gate.admit(("wh:1", "ev:1"), JOB, delivery=b"{}", webhook_id="1", index=0) is Admission.DUPLICATE
    # the same event under another webhook id is the same delivery
    assert gate.admit(("wh:2", "ev:1"), JOB, delivery=b"{}", webhook_id="2", index=0) is Admission.DUPLICATE
    assert store.get_many(["pd:wh:1", "pd:ev:1"]) == [DONE, DONE]
    assert queue.pending() == 1


def test_a_delivery_claimed_elsewhere_is_busy(store, queue):
    store.set("pd:ev:9", PENDING + "another-replica", ttl=60)
    gate = DeliveryGate(store, queue, "pd")
    assert gate.admit(("ev:9",), JOB, delivery=b"{}", webhook_id="9", index=0) is Admission.BUSY
    assert queue.pending() == 0
    assert store.get("pd:ev:9") == PENDING + "another-replica"


def test_concurrent_copies_of_one_delivery_enqueue_one_job(store_spec, store, queue, clock):
    copies = 12
    start = threading.Barrier(copies)
    outcomes: list[Admission] = []
    errors: list[BaseException] = []
    gates = [DeliveryGate(store, queue, "pd"), DeliveryGate(open_spec(store_spec, clock), queue, "pd")]

    def deliver(n: int) -> None:
        try:
            start.wait()
            outcomes.append(
                gates[n % 2].admit(("wh:c", "ev:c"), JOB, delivery=b"{}", webhook_id="c", index=0)
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(n,), daemon=True) for n in range(copies)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    gates[1].store.close()
    assert errors == []
    assert outcomes.count(Admission.ACCEPTED) == 1
    assert set(outcomes) <= {Admission.ACCEPTED, Admission.DUPLICATE, Admission.BUSY}
    assert queue.pending() == 1


def test_confirming_keys_marks_ours_and_expired_ones_done_but_not_someone_elses(store, advance):
    claims = MultiKeyClaims(store, "pd", pending_ttl=1.0, done_ttl=60)
    mine = claims.claim(["a", "b", "c"])
    assert mine.claimed
    advance(1.2)  # our claim expired ...
    store.set("pd:b", PENDING + "another-replica", ttl=60)  # ... and someone else took one key
    store.set("pd:c", PENDING + str(mine.token), ttl=60)
    claims.confirm(["a", "b", "c"], str(mine.token))
    assert store.get_many(["pd:a", "pd:b", "pd:c"]) == [DONE, PENDING + "another-replica", DONE]
