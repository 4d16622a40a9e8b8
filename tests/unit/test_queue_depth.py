"""The pure parts of the queue-depth reading: the oldest waiting message's age, and what
`/ecs events status` answers (which Slack must accept)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from handlers.events.queue_depth import QueueReading, oldest_age, status_reply
from sandbox.slack_limits import check_message


def test_oldest_age_is_that_of_the_earliest_enqueued_and_never_negative():
    assert oldest_age(1000.0, []) == 0.0
    assert oldest_age(1000.0, [990_000, 400_000, 999_500]) == 600.0
    assert oldest_age(1000.0, [1_002_000]) == 0.0  # a message stamped by a clock a little ahead


def test_status_says_when_the_consumer_has_fallen_behind():
    calm = status_reply(QueueReading("ecs-events", 3, 1, 0, 12.0, 1000.0), now=1030.0)
    assert calm.text == "ECS events queue ecs-events: 3 messages waiting, 1 in flight, 0 delayed"
    assert "fallen behind" not in str(calm.blocks) and "Read 30s ago" in str(calm.blocks)
    behind = status_reply(QueueReading("ecs-events", 900, 16, 2, 1800.0, 1000.0), now=1000.0)
    assert "fallen behind: a message has waited 30m" in str(behind.blocks)
    assert "No reading" in status_reply(None, now=0.0).text


@given(
    st.text(min_size=1, max_size=300),
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.integers(0, 10**7),
    st.floats(0, 10**8),
)
def test_slack_accepts_every_status(queue, active, inactive, delayed, age):
    reply = status_reply(QueueReading(queue, active, inactive, delayed, age, 0.0), now=5.0)
    assert check_message({"text": reply.text, "blocks": reply.blocks}) is None
