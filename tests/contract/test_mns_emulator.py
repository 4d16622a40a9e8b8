"""The MNS adapter and the real `mns` SDK (aliyun-mns-sdk) against the MNS emulator, over loopback."""

from __future__ import annotations

import threading
import time

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message

from bot.adapters.mns import MnsQueueClient
from bot.errors import UpstreamError
from sandbox import credentials
from sandbox.mns_emulator import MnsEmulator
from tests.support import wait_for

AK, SK = credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET


@pytest.fixture
def mns():
    emu = MnsEmulator(queues=("events", "other")).start()
    yield emu
    emu.before_stop()
    emu.stop()


def client(emu, queue="events", secret=SK) -> MnsQueueClient:
    return MnsQueueClient(emu.base_url, queue, AK, secret, timeout=10)


def test_sdk_send_and_receive_with_its_default_base64_encoding(mns):
    queue = Account(mns.base_url, AK, SK).get_queue("events")
    sent = queue.send_message(Message('{"name": "Instance:StateChange"}'))
    assert len(sent.message_id) == 32
    got = queue.receive_message(wait_seconds=1)
    assert got.message_body == b'{"name": "Instance:StateChange"}'
    assert got.dequeue_count == 1 and got.enqueue_time > 0 and got.next_visible_time > got.first_dequeue_time
    queue.delete_message(got.receipt_handle)
    with pytest.raises(MNSServerException) as err:
        queue.receive_message(wait_seconds=0)
    assert err.value.type == "MessageNotExist"
    assert mns.depth("events") == 0


def test_adapter_reads_bodies_raw_so_base64_and_json_mix_in_one_batch(mns):
    mns.send("eyJhIjogMX0=")
    mns.send('{"a": 2, "x": "<&>"}')
    got = client(mns).receive(16, 0)
    assert [m.body for m in got] == ["eyJhIjogMX0=", '{"a": 2, "x": "<&>"}']
    assert all(m.dequeue_count == 1 for m in got)


def test_empty_receive_is_an_empty_list_and_long_polling_returns_a_late_message(mns):
    c = client(mns)
    assert c.receive(16, 0) == []
    threading.Timer(0.3, lambda: mns.send("late")).start()
    got = c.receive(16, 5)
    assert [m.body for m in got] == ["late"]


def test_the_emulator_counts_the_receives_long_polling_now(mns):
    c = client(mns)
    assert mns.waiting_receives == 0
    got: list = []
    poller = threading.Thread(target=lambda: got.extend(c.receive(16, 5)))
    poller.start()
    wait_for(lambda: mns.waiting_receives == 1, 5, message="the receive is polling")
    mns.send("now")
    poller.join(5)
    assert [m.body for m in got] == ["now"] and mns.waiting_receives == 0


def test_batch_receive_returns_at_most_sixteen(mns):
    mns.send_many([f"m{i}" for i in range(20)])
    c = client(mns)
    first = c.receive(16, 0)
    second = c.receive(16, 0)
    assert len(first) == 16 and len(second) == 4
    assert {m.body for m in first + second} == {f"m{i}" for i in range(20)}


def test_visibility_timeout_redelivers_with_a_new_handle_and_a_higher_dequeue_count(mns):
    mns.set_visibility_timeout(0.5, "events")
    mns.send("again")
    c = client(mns)
    (first,) = c.receive(1, 0)
    assert c.receive(1, 0) == []  # invisible while in flight
    (second,) = wait_for(lambda: c.receive(1, 1), timeout=10, message="redelivery")
    assert second.message_id == first.message_id
    assert second.dequeue_count == 2 and second.receipt_handle != first.receipt_handle
    assert c.delete([first.receipt_handle]) == [first.receipt_handle]  # stale handle
    assert c.delete([second.receipt_handle]) == []
    assert mns.depth("events") == 0


def test_batch_delete_with_a_stale_handle_deletes_the_rest(mns):
    mns.send_many(["a", "b", "c"])
    c = client(mns)
    got = c.receive(16, 0)
    stale = "0000-1-deadbeef"
    assert c.delete([m.receipt_handle for m in got] + [stale]) == [stale]
    assert mns.depth("events") == 0 and mns.deleted_count("events") == 3


def test_change_visibility_to_zero_releases_the_message_at_once(mns):
    mns.send("release me")
    c = client(mns)
    (m,) = c.receive(1, 0)
    assert c.change_visibility(m.receipt_handle, 0) is not None
    (again,) = c.receive(1, 0)
    assert again.message_id == m.message_id and again.dequeue_count == 2
    assert c.change_visibility("0000-1-deadbeef", 0) is None


def test_change_visibility_extends_and_returns_a_new_handle(mns):
    mns.send("extend me")
    queue = Account(mns.base_url, AK, SK).get_queue("events")
    queue.set_encoding(False)
    m = queue.receive_message(wait_seconds=0)
    changed = queue.change_message_visibility(m.receipt_handle, 60)
    assert changed.receipt_handle != m.receipt_handle
    assert int(changed.next_visible_time) > time.time() * 1000
    queue.delete_message(changed.receipt_handle)


def test_wrong_secret_and_unknown_queue_are_refused(mns):
    with pytest.raises(UpstreamError) as err:
        client(mns, secret="wrong").receive(1, 0)
    assert err.value.code == "SignatureDoesNotMatch" and err.value.request_id
    with pytest.raises(UpstreamError) as err:
        client(mns, queue="nope").receive(1, 0)
    assert err.value.code == "QueueNotExist"


def test_injected_server_error_surfaces_as_upstream_error(mns):
    mns.fail_next.append((500, "InternalError"))
    with pytest.raises(UpstreamError) as err:
        client(mns).receive(1, 0)
    assert err.value.code == "InternalError" and err.value.provider == "MNS"


def test_interrupt_ends_a_long_poll(mns):
    c = client(mns)
    result: list = []
    t = threading.Thread(target=lambda: result.append(c.receive(16, 20)), daemon=True)
    t.start()
    wait_for(lambda: c._receiving, timeout=5, message="the long poll to start")
    c.interrupt()
    t.join(10)
    assert not t.is_alive() and result == [[]]


def test_sdk_batch_send_and_adapter_send(mns):
    queue = Account(mns.base_url, AK, SK).get_queue("other")
    queue.set_encoding(False)
    sent = queue.batch_send_message([Message("one"), Message("two")])
    assert len(sent) == 2
    assert client(mns, "other").send("three")
    assert sorted(m.body for m in client(mns, "other").receive(16, 0)) == ["one", "three", "two"]


def test_a_batch_the_sdk_cannot_parse_is_read_leniently(mns):
    mns.send('{"a": 1}')
    mns.send("control \x01\x02 characters")
    mns.send("")
    mns.send('{"a": 2, "x": "<&>"}')
    got = client(mns).receive(16, 0)  # the SDK's XML parser refuses this answer (RespDataDamaged)
    assert [m.body for m in got] == ['{"a": 1}', "control \x01\x02 characters", "", '{"a": 2, "x": "<&>"}']
    assert all(m.dequeue_count == 1 and m.receipt_handle for m in got)
    assert client(mns).delete(m.receipt_handle for m in got) == []
    assert mns.depth("events") == 0


def test_adapter_reads_attributes_and_peeks_without_consuming(mns):
    mns.send_many(["a", "b"])
    mns.send("c", queue="events", delay=600)
    c = client(mns)
    assert c.peek(16) and c.attributes().active == 2
    (got,) = c.receive(1, 0)
    attrs = c.attributes()
    assert (attrs.name, attrs.active, attrs.inactive, attrs.delayed) == ("events", 1, 1, 1)
    assert attrs.visibility_timeout == 30 and attrs.retention_seconds == 345600
    peeked = c.peek(16)
    assert [p.dequeue_count for p in peeked] == [0] and peeked[0].message_id != got.message_id
    assert c.peek(16)[0].enqueue_time_ms == peeked[0].enqueue_time_ms
    assert client(mns, "other").peek(16) == []
    mns.send("control \x01 characters", queue="other")  # the SDK's XML parser refuses the answer
    (odd,) = client(mns, "other").peek(16)
    assert odd.dequeue_count == 0 and odd.enqueue_time_ms > 0
    with pytest.raises(UpstreamError) as err:
        client(mns, "nope").attributes()
    assert err.value.code == "QueueNotExist" and not err.value.retryable
