"""Queue management and peeking through the real `mns` SDK (aliyun-mns-sdk) against the MNS emulator:
what `Queue.create`, `get_attributes`, `set_attributes`, `delete`, `Account.list_queue` and the peeks
see, and the documented limits (attribute ranges, message size, retention)."""

from __future__ import annotations

import pytest
from mns.account import Account
from mns.mns_exception import MNSServerException
from mns.queue import Message, QueueMeta

from bot.clock import OffsetClock
from sandbox import credentials
from sandbox.mns_emulator import MnsEmulator

AK, SK = credentials.ALIBABA_ACCESS_KEY_ID, credentials.ALIBABA_ACCESS_KEY_SECRET


@pytest.fixture
def clock():
    return OffsetClock()  # real time, movable: retention and visibility without waiting


@pytest.fixture
def mns(clock):
    emu = MnsEmulator(queues=("events",), clock=clock).start()
    yield emu
    emu.before_stop()
    emu.stop()


@pytest.fixture
def account(mns):
    return Account(mns.base_url, AK, SK)


def server_error(call) -> MNSServerException:
    with pytest.raises(MNSServerException) as err:
        call()
    return err.value


def test_get_attributes_counts_active_inactive_and_delayed_messages(mns, account):
    queue = account.get_queue("events")
    queue.set_encoding(False)
    for body in ("one", "two", "three"):
        queue.send_message(Message(body))
    queue.send_message(Message("later", delay_seconds=600))
    queue.receive_message(wait_seconds=0)
    meta = queue.get_attributes()
    assert (meta.active_messages, meta.inactive_messages, meta.delay_messages) == (2, 1, 1)
    assert (meta.visibility_timeout, meta.maximum_message_size, meta.polling_wait_seconds) == (30, 65536, 0)
    assert meta.message_retention_period == 345600 and meta.delay_seconds == 0
    assert meta.queue_name == "events" and meta.logging_enabled is False
    assert 0 < meta.create_time <= meta.last_modify_time


def test_create_is_idempotent_for_equal_attributes_and_refuses_others(mns, account):
    queue = account.get_queue("work")
    url = queue.create(QueueMeta(vis_timeout=60, msg_ttl=3600))
    assert url == f"{mns.base_url}/queues/work"
    assert queue.create(QueueMeta(vis_timeout=60, msg_ttl=3600)) == url
    err = server_error(lambda: queue.create(QueueMeta(vis_timeout=61)))
    assert err.type == "QueueAlreadyExist"
    meta = queue.get_attributes()
    assert (meta.visibility_timeout, meta.message_retention_period) == (60, 3600)


def test_create_checks_the_documented_attribute_ranges_and_names(account):
    for meta in (QueueMeta(vis_timeout=43201), QueueMeta(max_msg_size=1023), QueueMeta(msg_ttl=59)):
        assert server_error(lambda m=meta: account.get_queue("bad").create(m)).type == "InvalidArgument"
    assert (
        server_error(lambda: account.get_queue("-dash-first").create(QueueMeta())).type == "InvalidQueueName"
    )
    assert server_error(lambda: account.get_queue("bad").get_attributes()).type == "QueueNotExist"


def test_set_attributes_changes_only_what_it_names(clock, account):
    queue = account.get_queue("events")
    before = queue.get_attributes()
    clock.advance(5)
    queue.set_attributes(QueueMeta(polling_wait_sec=3))
    after = queue.get_attributes()
    assert after.polling_wait_seconds == 3 and after.visibility_timeout == before.visibility_timeout
    assert after.last_modify_time >= before.create_time + 5 and after.create_time == before.create_time


def test_list_queue_by_prefix_with_paging_and_delete(mns, account):
    for name in ("alpha-1", "alpha-2", "alpha-3", "beta"):
        account.get_queue(name).create(QueueMeta())
    urls, marker = account.list_queue("alpha", 2)
    assert [u.rsplit("/", 1)[1] for u in urls] == ["alpha-1", "alpha-2"] and marker
    rest, end = account.list_queue("alpha", 2, marker)
    assert [u.rsplit("/", 1)[1] for u in rest] == ["alpha-3"] and end == ""
    account.get_queue("alpha-2").delete()
    urls, _ = account.list_queue("alpha")
    assert [u.rsplit("/", 1)[1] for u in urls] == ["alpha-1", "alpha-3"]
    assert server_error(lambda: account.get_queue("alpha-2").delete()).type == "QueueNotExist"


def test_peek_leaves_visibility_and_dequeue_count_as_they_were(mns, account):
    queue = account.get_queue("events")
    queue.set_encoding(False)
    sent = queue.send_message(Message("look, do not touch"))
    for _ in range(2):
        peeked = queue.peek_message()
        assert peeked.message_id == sent.message_id and peeked.dequeue_count == 0
    assert [m.message_id for m in queue.batch_peek_message(16)] == [sent.message_id]
    got = queue.receive_message(wait_seconds=0)
    assert got.message_id == sent.message_id and got.dequeue_count == 1
    assert server_error(queue.peek_message).type == "MessageNotExist"  # in flight: not visible
    assert mns.message_info(sent.message_id, "events")["dequeue_count"] == 1


def test_message_size_follows_the_queue_maximum(account):
    queue = account.get_queue("small")
    queue.create(QueueMeta(max_msg_size=1024))
    queue.set_encoding(False)
    queue.send_message(Message("x" * 1024))
    assert server_error(lambda: queue.send_message(Message("x" * 1025))).type == "InvalidArgument"


def test_a_batch_holds_at_most_64_kb_of_bodies_whatever_each_one_is(mns, account):
    """BatchSendMessage: up to 16 messages of at most 64 KB together (each within the queue's maximum)."""
    queue = account.get_queue("events")
    queue.set_encoding(False)
    queue.batch_send_message([Message("x" * 16384) for _ in range(4)])  # 64 KB exactly
    err = server_error(
        lambda: queue.batch_send_message([Message("x" * 16384) for _ in range(4)] + [Message("y")])
    )
    assert err.type == "InvalidArgument"
    assert mns.depth("events") == 4  # nothing of the refused batch was kept


def test_messages_older_than_the_retention_period_are_gone(clock, account):
    queue = account.get_queue("short")
    queue.create(QueueMeta(msg_ttl=60))
    queue.set_encoding(False)
    queue.send_message(Message("soon gone"))
    queue.receive_message(wait_seconds=0)  # received or not, retention ends it
    queue.send_message(Message("also gone"))
    clock.advance(61)
    meta = queue.get_attributes()
    assert (meta.active_messages, meta.inactive_messages) == (0, 0)
    assert server_error(lambda: queue.receive_message(wait_seconds=0)).type == "MessageNotExist"


def test_queue_default_delay_applies_to_messages_without_their_own(clock, account):
    queue = account.get_queue("delayed")
    queue.create(QueueMeta(delay_sec=30))
    queue.set_encoding(False)
    queue.send_message(Message("waits"))
    queue.send_message(Message("now", delay_seconds=0))
    assert queue.receive_message(wait_seconds=0).message_body == "now"
    assert queue.get_attributes().delay_messages == 1
    clock.advance(31)
    assert queue.receive_message(wait_seconds=0).message_body == "waits"
