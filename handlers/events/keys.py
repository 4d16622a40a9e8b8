"""Store keys of the ECS-events capability (one place, so readers and writers agree)."""

from __future__ import annotations

DEDUPE_NAMESPACE = "mns-events"
STATE = "events:state"  # hash: instance id → "<epoch>|<state>" (newest event wins)
HISTORY_INDEX = "events:history-index"  # zset: instance id, scored by its latest event time
CHANNELS = "events:channels"  # hash: channel → "1" for every channel that ever had an outbox
QUARANTINE = "events:quarantine"  # list, newest first
NOTIFIER_LEASE = "events:notifier-lease"
OUTBOX_SEQ = "events:seq"  # counter: the order of every outbox entry (batch_store.fifo_push_op)
QUEUE_DEPTH = "events:queue-depth"  # the latest reading of the MNS queue's attributes (queue_depth.py)


def history(instance_id: str) -> str:
    return f"events:history:{instance_id}"


def name_index(name: str) -> str:
    return f"events:name:{name.lower()}"


def maintenance(instance_id: str) -> str:
    return f"events:maintenance:{instance_id}"


def interrupted(instance_id: str) -> str:
    return f"events:interrupted:{instance_id}"


def restarts(instance_id: str) -> str:
    return f"events:restarts:{instance_id}"


def outbox(channel: str) -> str:
    return f"events:outbox:{channel}"


def urgent(channel: str) -> str:
    return f"events:urgent:{channel}"


def channel_state(channel: str) -> str:
    return f"events:chan:{channel}"


def digest_lines(channel: str, digest_id: str) -> str:
    return f"events:digest:{channel}:{digest_id}"
