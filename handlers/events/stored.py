"""What the ECS-events capability keeps in the store, as records (`bot.records`): one trail entry of
`/ecs history`, the open digest of a channel, a maintenance marker, a quarantined message. The remembered
facts of an instance are `bot.ecs_model.InstanceInfo`. Field names are the stored JSON keys (the trail's
are short: there are many entries), so records written before these models existed load unchanged."""

from __future__ import annotations

from bot.records import Record


class HistoryEntry(Record):
    """One line of an instance's trail (a sorted set member, scored by `t`)."""

    t: float = 0.0  # event time, epoch seconds
    e: str = ""  # event name, e.g. Instance:StateChange
    id: str | None = None  # event id
    s: str | None = None  # new state (state changes)
    o: str | None = None  # the state before, when known
    n: str | None = None  # the instance name at the time
    st: str | None = None  # system event status
    nb: float | None = None  # system event: not before (epoch seconds)
    restart: str | None = None  # auto-restart outcome
    outcome: str | None = None  # preemptible interruption outcome
    by: str | None = None  # who asked the bot for this change ("stop by <@U…>", "start by schedule …")


class DigestLine(Record):
    """One notice as a burst digest keeps it (short keys: a digest holds thousands)."""

    l: str = ""  # noqa: E741 - the stored key; the mrkdwn line
    p: str = ""  # the plain-text line (the digest's file)
    w: str = "event"  # what happened (the new state, else the notice kind)
    i: str | None = None  # the instance


class DigestState(Record):
    """The open digest of one channel, so another notifier resumes it."""

    id: str
    started: float
    ts: str | None = None  # the Slack message, once posted
    last: float | None = None  # when its latest notice arrived


class MaintenanceMarker(Record):
    """A system maintenance event under way for an instance (its stop is expected)."""

    event: str = ""
    status: str | None = None


class Quarantined(Record):
    """An MNS message that could not be handled, kept for people to look at."""

    message_id: str
    dequeue_count: int
    reason: str
    event_id: str | None = None
    at: float
    body: str
