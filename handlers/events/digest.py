"""A burst digest of one channel — pure: what it holds and how it reads.

When more events wait for a channel than Slack lets us post (about one message per second per channel),
they are coalesced into one digest message, edited in place while the burst lasts. It shows counts,
the instances touched and the latest lines; when the burst ends, the complete list (every event, one
line each) is attached as a file, so nothing is lost.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, deque
from dataclasses import dataclass, field

from bot import blocks, records
from bot.render import clock_span, plural
from handlers.events.render import Notice
from handlers.events.stored import DigestLine


def entry(notice: Notice | dict) -> str:
    """The compact form of a notice kept in the digest (a DigestLine: line, plain line, what, instance)."""
    if isinstance(notice, Notice):
        line, plain = notice.line, notice.plain
        what, instance = notice.state or notice.kind, notice.instance_id
    else:
        line, plain = notice.get("line"), notice.get("plain")
        what, instance = notice.get("state") or notice.get("kind"), notice.get("instance_id")
    return records.dump(DigestLine(l=line or "", p=plain or "", w=what or "event", i=instance))


def outbox_payload(notice: Notice | dict) -> str:
    """What an outbox holds: the digest entry, a newline, the whole notice (JSON never contains a raw
    newline) — so moving notices into a digest needs no parsing."""
    if not isinstance(notice, Notice):
        notice = records.load(Notice, notice)
    return entry(notice) + "\n" + records.dump(notice)


def split_payload(payload: str) -> tuple[str, Notice]:
    head, sep, tail = payload.partition("\n")
    if not sep:  # a bare notice
        notice = records.load(Notice, head)
        return entry(notice), notice
    return head, records.load(Notice, tail)


def payload_entry(payload: str) -> str:
    head, sep, _ = payload.partition("\n")
    return head if sep else entry(records.load(Notice, head))


def read_line(raw_entry: str) -> DigestLine:
    """A digest entry back (one that is not a record reads as its own text)."""
    found = records.load_or_none(DigestLine, raw_entry)
    return found if found is not None else DigestLine(l=raw_entry, p=raw_entry)


@dataclass
class DigestView:
    digest_id: str
    started: float
    inline: int = 20
    ts: str | None = None
    last_item_at: float = 0.0
    count: int = 0
    max_seq: int = 0
    by_what: Counter = field(default_factory=Counter)
    instances: set = field(default_factory=set)
    latest: deque = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.latest = deque(self.latest, maxlen=self.inline)

    def add(self, seq: int, raw_entry: str, now: float) -> bool:
        """Count one entry (idempotent by seq). False when it was counted already."""
        if seq <= self.max_seq:
            return False
        e = read_line(raw_entry)
        self.max_seq = seq
        self.count += 1
        self.by_what[e.w or "event"] += 1
        if e.i:
            self.instances.add(e.i)
        self.latest.append(e.l or e.p or "")
        self.last_item_at = max(self.last_item_at, now)
        return True

    def file_name(self, channel: str) -> str:
        return f"ecs-events-{channel}-{self.digest_id}.txt"

    def needs_file(self) -> bool:
        return self.count > self.inline

    def render(self, tz: dt.tzinfo, final: bool, channel: str) -> tuple[str, list[dict]]:
        span = clock_span(self.started, max(self.last_item_at, self.started), tz)
        counts = " · ".join(f"{what} ×{n:,}" for what, n in self.by_what.most_common(12))
        head = (
            ":white_check_mark: *ECS events — burst summary*"
            if final
            else ":zap: *ECS events — burst in progress*"
        )
        summary = f"{plural(self.count, 'event')} on {plural(len(self.instances), 'instance')} · {span}"
        text = f"ECS events digest {self.digest_id}: {plural(self.count, 'event')} on {plural(len(self.instances), 'instance')}"
        out = [blocks.section(f"{head}\n{summary}"), blocks.context(counts or "no events")]
        if final and not self.needs_file():
            title = f"*All {self.count} events*"
        else:
            title = f"*Latest {len(self.latest)} of {self.count:,}*"
        out.append(blocks.section(title + "\n" + "\n".join(self.latest)))
        if not final:
            note = (
                "Coalesced to keep to Slack's pace (about one message per second per channel); "
                "this message updates while the burst lasts. The full list is attached when it ends."
            )
        elif self.needs_file():
            note = f"Every event, one per line: `{self.file_name(channel)}` (attached below)."
        else:
            note = "`/ecs history INSTANCE` shows one instance's trail."
        out.append(blocks.context(note))
        return text, out

    def file_text(self, entries: list[str]) -> str:
        lines = [read_line(raw).p for raw in entries]
        header = f"# ECS events digest {self.digest_id}: {plural(len(lines), 'event')}, oldest first\n"
        return header + "\n".join(lines) + "\n"
