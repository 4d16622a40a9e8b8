"""How ECS events read in Slack — pure functions from facts (`InstanceInfo`) to text and Block Kit.

A `Notice` is what the consumer puts in a channel's outbox: the single-message form (text + blocks)
and the one-line form used by digests (`line`, mrkdwn) and by the digest's attached file (`plain`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bot import blocks, records
from bot.ecs_model import InstanceInfo
from bot.render import CLOCK, escape, local_time, row, tag_text
from handlers.events.envelope import EcsEvent

STATE_EMOJI = {
    "Running": ":large_green_circle:",
    "Starting": ":arrow_forward:",
    "Pending": ":white_circle:",
    "Stopping": ":double_vertical_bar:",
    "Stopped": ":red_circle:",
    "Deleted": ":wastebasket:",
}


@dataclass(frozen=True)
class Notice:
    """Stored in the outboxes with `bot.records` (see digest.outbox_payload)."""

    event_id: str = ""  # "" for a notice rebuilt from a digest line (rerouted)
    kind: str = "other"  # state | interruption | system | restart | quarantine | other
    text: str = ""  # fallback text (notifications) = the whole message for plain clients
    blocks: list[dict] = field(default_factory=list)
    line: str = ""  # one mrkdwn line for digests
    plain: str = ""  # one plain-text line for the digest file
    urgent: bool = False  # posted on its own at the channel's next slot, even during a burst
    instance_id: str | None = None
    state: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}  # no deep copy: hot path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        return records.load(cls, data)


def label(instance_id: str | None, facts: InstanceInfo | None, fallback_name: str | None = None) -> str:
    """`*name* (`id`)` for a message; names and ids come from outside the bot, so they are escaped."""
    name = escape((facts.name if facts else None) or fallback_name or "") or None
    if not instance_id:
        return name or "unknown resource"
    iid = escape(instance_id)
    return f"*{name}* (`{iid}`)" if name and name != iid else f"`{iid}`"


def plain_label(instance_id: str | None, facts: InstanceInfo | None, fallback_name: str | None = None) -> str:
    """`name (id)` for a notification's text (escaped: Slack reads markup there too)."""
    name = escape((facts.name if facts else None) or fallback_name or "") or None
    if not instance_id:
        return name or "unknown resource"
    iid = escape(instance_id)
    return f"{name} ({iid})" if name and name != iid else iid


def _context(event: EcsEvent, facts: InstanceInfo | None, tz: dt.tzinfo) -> str:
    parts = [local_time(event.time, tz)]
    if event.region:
        parts.append(escape(event.region))
    if facts and facts.tags:
        parts.append(escape(tag_text(facts.tags)))
    parts.append(escape(event.name))
    return " · ".join(parts)


def restart_text(restarted: bool, detail: str) -> tuple[str, str]:
    """(mrkdwn, plain) of an auto-restart outcome."""
    if restarted:
        return (
            f":arrows_counterclockwise: Auto-restart: starting it again ({detail}).",
            f"auto-restart: started ({detail})",
        )
    return f":no_entry_sign: Auto-restart skipped: {detail}.", f"auto-restart skipped: {detail}"


def state_notice(
    event: EcsEvent,
    facts: InstanceInfo | None,
    old: str | None,
    tz: dt.tzinfo,
    restart: tuple[bool, str] | None = None,
) -> Notice:
    """A state change; with `restart` (restarted?, detail) the auto-restart outcome is part of it and the
    notice is urgent (posted on its own even during a burst)."""
    new = event.state or "?"
    transition = f"{old} → *{new}*" if old and old != new else f"→ *{new}*"
    plain_transition = f"{old} → {new}" if old and old != new else f"→ {new}"
    who = label(event.instance_id, facts, event.instance_name)
    emoji = STATE_EMOJI.get(new, ":grey_question:")
    text = f"{emoji} {who} {transition}"
    clock = local_time(event.time, tz, CLOCK)
    plain_who = plain_label(event.instance_id, facts, event.instance_name)
    out = [blocks.section(text)]
    line = f"{emoji} {who} {transition} · {clock}"
    fallback = f"{plain_who} {plain_transition}"
    plain_what = plain_transition
    if restart is not None:
        mrkdwn, plain = restart_text(*restart)
        out.append(blocks.section(mrkdwn))
        line += f" · {plain}"
        fallback += f" — {plain}"
        plain_what += f" — {plain}"
    out.append(blocks.context(_context(event, facts, tz)))
    return Notice(
        event_id=event.event_id,
        kind="state",
        text=fallback,
        blocks=out,
        line=line,
        plain=_plain(event, facts, plain_what, tz),
        urgent=restart is not None,
        instance_id=event.instance_id,
        state=new,
    )


def _plain(event: EcsEvent, facts: InstanceInfo | None, what: str, tz: dt.tzinfo) -> str:
    tags = f"  [{escape(tag_text(facts.tags, 20))}]" if facts and facts.tags else ""
    who = plain_label(event.instance_id, facts, event.instance_name)
    return row(local_time(event.time, tz), who, what + tags)


def interruption_notice(
    event: EcsEvent, facts: InstanceInfo | None, outcome: str, ok: bool, tz: dt.tzinfo
) -> Notice:
    who = label(event.instance_id, facts, event.instance_name)
    head = (
        f":warning: Preemptible instance {who} will be released in about 5 minutes (action `{event.action}`)."
    )
    status = (":white_check_mark: " if ok else ":x: ") + outcome
    return Notice(
        event_id=event.event_id,
        kind="interruption",
        text=f"Preemptible instance {plain_label(event.instance_id, facts, event.instance_name)} "
        f"is being reclaimed: {outcome}",
        blocks=[blocks.section(head), blocks.section(status), blocks.context(_context(event, facts, tz))],
        line=f":warning: {who} preemptible interruption · {outcome}",
        plain=_plain(event, facts, f"preemptible interruption (action {event.action}): {outcome}", tz),
        urgent=True,
        instance_id=event.instance_id,
    )


def system_notice(event: EcsEvent, facts: InstanceInfo | None, tz: dt.tzinfo) -> Notice:
    who = label(event.instance_id, facts, event.instance_name)
    parts = event.name.split(":")
    what = parts[1] if len(parts) > 1 else event.name
    status = event.event_status or "?"
    not_before = f" — not before *{local_time(event.not_before, tz)}*" if event.not_before else ""
    head = f":calendar: System event `{what}` for {who}: *{status}*{not_before}"
    nb_plain = f", not before {local_time(event.not_before, tz)}" if event.not_before else ""
    return Notice(
        event_id=event.event_id,
        kind="system",
        text=f"System event {what} for "
        f"{plain_label(event.instance_id, facts, event.instance_name)}: {status}{nb_plain}",
        blocks=[blocks.section(head), blocks.context(_context(event, facts, tz))],
        line=f":calendar: {who} {what} *{status}*{nb_plain}",
        plain=_plain(event, facts, f"system event {what}: {status}{nb_plain}", tz),
        urgent=status in ("Scheduled", "Executing"),
        instance_id=event.instance_id,
    )


def other_notice(event: EcsEvent, facts: InstanceInfo | None, tz: dt.tzinfo) -> Notice:
    who = label(event.instance_id, facts, event.instance_name)
    level = f" ({event.level})" if event.level else ""
    return Notice(
        event_id=event.event_id,
        kind="other",
        text=f"ECS event {event.name}{level}",
        blocks=[
            blocks.section(f":information_source: `{event.name}`{level} for {who}"),
            blocks.context(_context(event, facts, tz)),
        ],
        line=f":information_source: {who} `{event.name}`{level}",
        plain=_plain(event, facts, f"{event.name}{level}", tz),
        instance_id=event.instance_id,
    )


def restart_notice(
    event: EcsEvent, facts: InstanceInfo | None, restarted: bool, detail: str, tz: dt.tzinfo
) -> Notice:
    """The auto-restart outcome on its own (for `auto_restart.channel`)."""
    who = label(event.instance_id, facts, event.instance_name)
    mrkdwn, plain = restart_text(restarted, detail)
    return Notice(
        event_id=f"{event.event_id}:restart",
        kind="restart",
        text=plain_label(event.instance_id, facts, event.instance_name) + " " + plain,
        blocks=[blocks.section(f"{who}: {mrkdwn}"), blocks.context(_context(event, facts, tz))],
        line=f"{who}: {mrkdwn}",
        plain=_plain(event, facts, plain, tz),
        urgent=True,
        instance_id=event.instance_id,
    )


def quarantine_notice(message_id: str, dequeue_count: int, reason: str, excerpt: str) -> Notice:
    # the reason may quote the message, and the excerpt is the message: both made inert for mrkdwn
    head = (
        f":biohazard_sign: Quarantined MNS message `{escape(message_id)}` (delivered {dequeue_count}×): "
        f"{escape(reason)}. It was kept in the bot's store and deleted from the queue."
    )
    return Notice(
        event_id=f"quarantine:{message_id}",
        kind="quarantine",
        text=f"Quarantined MNS message {escape(message_id)}: {escape(reason)}",
        blocks=[blocks.section(head), blocks.section(blocks.code(escape(excerpt) or "(empty body)"))],
        line=head,
        plain=f"quarantined message {message_id}: {reason}",
        urgent=True,
    )
