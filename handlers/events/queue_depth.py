"""How far behind the MNS consumer is: once a minute a worker reads the queue of ECS events —
GetQueueAttributes for the messages waiting (active), in flight (inactive) and delayed, and a
BatchPeekMessage, which leaves the messages as they are, for the age of the oldest one waiting.

The reading is kept in the store, so every worker that consumes the queue exposes the same, latest one
(whichever worker took it), and `/ecs events status` shows it in Slack:

    chatops_mns_messages{state="active|inactive|delayed"}
    chatops_mns_oldest_message_age_seconds      0 when nothing waits

A reading older than a few minutes is no reading: the metrics are NaN and the status says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bot import blocks, records
from bot.commands import CommandRequest, Reply
from bot.errors import ChatOpsError, UserError
from bot.registry import Capability
from bot.render import ago, plural
from handlers.events import keys
from handlers.events.consumer import mns_configured

capability = Capability("handlers.events.queue_depth")
capability.read_permissions("ecs.events")

JOB = "events.queue-depth"
READING_TTL = 300  # seconds a reading stands for the queue
PEEK = 16  # messages peeked at for the oldest one waiting
BEHIND_SECONDS = 300  # the status warns when the oldest waiting message is older than this
STATES = ("active", "inactive", "delayed")
USAGE = "/ecs events status"


@dataclass(frozen=True)
class QueueReading:
    queue: str
    active: int
    inactive: int
    delayed: int
    oldest_age_seconds: float  # of the oldest waiting message seen; 0 when none waits
    read_at: float


def oldest_age(now: float, enqueue_times_ms: list[int]) -> float:
    """Seconds the oldest of these messages has waited (pure); 0 for none."""
    if not enqueue_times_ms:
        return 0.0
    return round(max(0.0, now - min(enqueue_times_ms) / 1000), 3)


def take_reading(services) -> QueueReading:
    now = services.clock.time()
    client = services.adapter("mns").queue(timeout=10)
    try:
        attrs = client.attributes()
        waiting = client.peek(PEEK) if attrs.active else []
    finally:
        client.close()
    age = oldest_age(now, [m.enqueue_time_ms for m in waiting])
    return QueueReading(client.queue_name, attrs.active, attrs.inactive, attrs.delayed, age, now)


def latest(services) -> QueueReading | None:
    return records.load_or_none(QueueReading, services.store.get(keys.QUEUE_DEPTH))


def expose(services) -> None:
    """This process's metrics show the latest reading from now on (read from the store when scraped)."""

    def value(field: str) -> float:
        try:
            reading = latest(services)
        except ChatOpsError:  # the store is down: unknown, not a scrape that fails
            return math.nan
        return math.nan if reading is None else float(getattr(reading, field))

    messages = services.metrics.gauge(
        "chatops_mns_messages",
        "Messages in the MNS queue of ECS events by state (read once a minute)",
        ["state"],
    )
    for state in STATES:
        messages.labels(state).set_function(lambda state=state: value(state))
    services.metrics.gauge(
        "chatops_mns_oldest_message_age_seconds",
        "Age of the oldest message seen waiting in the MNS queue of ECS events (0: none waits)",
    ).set_function(lambda: value("oldest_age_seconds"))


@capability.background("events.queue-depth-metrics", enabled=mns_configured)
def expose_in_worker(services, stop) -> None:
    """Every worker that consumes the queue shows the latest reading, not only the one that took it."""
    expose(services)


@capability.periodic(JOB, minute="*")
def read_queue_depth(services) -> None:
    if not mns_configured(services):
        return
    reading = take_reading(services)
    services.store.set(keys.QUEUE_DEPTH, records.dump(reading), ttl=READING_TTL)


def status_reply(reading: QueueReading | None, now: float) -> Reply:
    """What `/ecs events status` answers (pure)."""
    if reading is None:
        text = "No reading of the MNS queue yet: a `chatops worker` reads it once a minute."
        return Reply(text, [blocks.section(f":hourglass: {text}")])
    behind = reading.oldest_age_seconds > BEHIND_SECONDS
    head = f":inbox_tray: *ECS events queue* `{reading.queue}`"
    if behind:
        head += f"\n:warning: The consumer has fallen behind: a message has waited {_duration(reading.oldest_age_seconds)}."
    fields = [
        f"*Waiting*\n{reading.active}",
        f"*In flight*\n{reading.inactive}",
        f"*Delayed*\n{reading.delayed}",
        f"*Oldest waiting*\n{_duration(reading.oldest_age_seconds) if reading.active else 'none'}",
    ]
    text = (
        f"ECS events queue {reading.queue}: {plural(reading.active, 'message')} waiting, "
        f"{reading.inactive} in flight, {reading.delayed} delayed"
    )
    when = f"Read {ago(max(0.0, now - reading.read_at))} by a worker (once a minute)."
    return Reply(text, [blocks.section(head, fields), blocks.context(when)])


def _duration(seconds: float) -> str:
    return ago(seconds).removesuffix(" ago")


@capability.subcommand(
    "/ecs",
    "events",
    permission="ecs.events",
    usage=USAGE,
    summary="How far behind the consumer of ECS events is: the MNS queue's messages by state.",
)
def events_status(req: CommandRequest) -> Reply:
    if req.args.strip().lower() not in ("", "status"):
        raise UserError(f"Unknown: `{req.args.strip()}`.", USAGE)
    if not mns_configured(req.services):
        raise UserError("ECS events are not configured here (MNS_ENDPOINT and MNS_QUEUE are unset).")
    return status_reply(latest(req.services), req.services.clock.time())
