"""Calendar occurrences → PagerDuty actions, pure.

Given the occurrences of one calendar around `now` and what the store remembers about occurrences that
already became incidents, decide what to do:

- an occurrence whose start (minus the lead) has come and whose end has not, and that is not cancelled,
  opens one incident (its `incident_key` is derived from the UID and the original start, so every
  worker, every re-sync and every restart computes the same key);
- an occurrence that became an incident and was edited afterwards gets a note saying what changed;
  one cancelled (STATUS:CANCELLED, an EXDATE, or removed) gets a note saying so; edits and
  cancellations before the start simply mean nothing opens;
- optionally (policy) an incident still open at the end of its occurrence is resolved.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot import records
from bot.records import Record
from bot.render import time_span

if TYPE_CHECKING:
    from bot.adapters.calendar import Occurrence

# A zero-length event stays "due" this long, so a sync that runs once a minute still sees it.
MIN_WINDOW = dt.timedelta(minutes=5)
# How long after its end an opened occurrence is still watched for edits and cancellation.
WATCH_AFTER_END = dt.timedelta(days=1)
TITLE_LIMIT = 1024


@dataclass(frozen=True)
class CalendarConfig:
    url: str
    service_id: str | None
    channel: str | None = None
    lead: dt.timedelta = dt.timedelta(0)
    resolve_at_end: bool = False

    @property
    def name(self) -> str:
        parts = urlsplit(self.url)
        if parts.scheme in ("http", "https"):
            return parts.hostname or "calendar"
        return PurePosixPath(parts.path or self.url).stem or "calendar"

    @property
    def key(self) -> str:
        return hashlib.sha256(self.url.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Opened:
    """What the store remembers about an occurrence that became an incident."""

    identity: str
    incident_id: str
    incident_key: str
    summary: str
    description: str
    location: str
    start: str  # ISO, UTC
    end: str
    fingerprint: str
    cancelled_noted: bool = False
    resolved: bool = False

    def to_json(self) -> str:
        return records.dump(self)

    @classmethod
    def from_json(cls, raw: str) -> Opened:
        return records.load(cls, raw)

    @property
    def end_time(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.end)


@dataclass(frozen=True)
class OpenIncident:
    occurrence: Occurrence
    incident_key: str
    title: str
    details: str


@dataclass(frozen=True)
class AddNote:
    opened: Opened
    text: str
    claim: str  # what makes two notes "the same" (the new fingerprint, or "cancelled")
    updated: Opened  # the state to remember once the note is added


@dataclass(frozen=True)
class ResolveIncident:
    opened: Opened


Action = OpenIncident | AddNote | ResolveIncident


def incident_key(occ: Occurrence) -> str:
    """Derived from the event UID and the occurrence's (original) start: the same on every worker."""
    raw = f"{occ.uid}|{occ.original_start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    return "chatops-cal-" + hashlib.sha256(raw.encode()).hexdigest()[:32]


def fingerprint(occ: Occurrence) -> str:
    raw = "\x1f".join(
        [occ.summary, occ.description, occ.location, occ.start.isoformat(), occ.end.isoformat()]
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def is_due(occ: Occurrence, now: dt.datetime, lead: dt.timedelta) -> bool:
    end = max(occ.end, occ.start + MIN_WINDOW)
    return not occ.cancelled and occ.start - lead <= now < end


def opened_state(occ: Occurrence, incident_id: str, key: str) -> Opened:
    return Opened(
        identity=occ.identity,
        incident_id=incident_id,
        incident_key=key,
        summary=occ.summary,
        description=occ.description,
        location=occ.location,
        start=occ.start.isoformat(),
        end=occ.end.isoformat(),
        fingerprint=fingerprint(occ),
    )


def format_span(start: dt.datetime, end: dt.datetime, tz: dt.tzinfo, all_day: bool = False) -> str:
    return time_span(start, end, tz, all_day=all_day, year=True)


def incident_text(occ: Occurrence, config: CalendarConfig, tz: dt.tzinfo) -> tuple[str, str]:
    """(title, body details) of the incident an occurrence opens."""
    title = (occ.summary or "Planned work (untitled calendar event)")[:TITLE_LIMIT]
    lines = [
        f"Planned work from calendar “{config.name}”.",
        f"Window: {format_span(occ.start, occ.end, tz, occ.all_day)}",
    ]
    if occ.location:
        lines.append(f"Location: {occ.location}")
    if occ.description:
        lines += ["", occ.description]
    lines += ["", f"Calendar event UID: {occ.uid}"]
    return title, "\n".join(lines)


def plan(
    occurrences: list[Occurrence],
    opened: dict[str, Opened],
    config: CalendarConfig,
    now: dt.datetime,
    tz: dt.tzinfo,
) -> list[Action]:
    """The actions one sync of one calendar should take (idempotent: executing them twice is safe
    because each is claimed in the store before it acts)."""
    actions: list[Action] = []
    by_identity: dict[str, Occurrence] = {}
    for occ in occurrences:
        by_identity[occ.identity] = occ
    for occ in occurrences:
        if occ.identity not in opened and is_due(occ, now, config.lead):
            title, details = incident_text(occ, config, tz)
            actions.append(OpenIncident(occ, incident_key(occ), title, details))
    for state in opened.values():
        if state.end_time + WATCH_AFTER_END < now:
            continue
        occ = by_identity.get(state.identity)
        if occ is None or occ.cancelled:
            if not state.cancelled_noted:
                how = "was cancelled" if occ is not None else "was removed from the calendar (or cancelled)"
                actions.append(
                    AddNote(
                        state,
                        f"Calendar update: this planned work {how} after the incident was opened.",
                        "cancelled",
                        replace(state, cancelled_noted=True),
                    )
                )
        elif fingerprint(occ) != state.fingerprint:
            actions.append(
                AddNote(
                    state,
                    describe_change(state, occ, tz),
                    fingerprint(occ),
                    replace(
                        opened_state(occ, state.incident_id, state.incident_key),
                        resolved=state.resolved,
                        cancelled_noted=False,
                    ),
                )
            )
        if config.resolve_at_end and not state.resolved:
            end = occ.end if occ is not None and not occ.cancelled else state.end_time
            if now >= end:
                actions.append(ResolveIncident(state))
    return actions


def describe_change(state: Opened, occ: Occurrence, tz: dt.tzinfo) -> str:
    changes = []
    if occ.summary != state.summary:
        changes.append(f"title “{state.summary}” → “{occ.summary}”")
    old_start, old_end = dt.datetime.fromisoformat(state.start), dt.datetime.fromisoformat(state.end)
    if occ.start != old_start or occ.end != old_end:
        changes.append(
            f"window {format_span(old_start, old_end, tz)} → {format_span(occ.start, occ.end, tz, occ.all_day)}"
        )
    if occ.location != state.location:
        changes.append(f"location “{state.location or '—'}” → “{occ.location or '—'}”")
    if occ.description != state.description:
        changes.append("description changed:\n" + (occ.description or "(now empty)"))
    return "Calendar update after the incident was opened: " + "; ".join(changes or ["details changed"])


class PlannedWindow(Record):
    """What the Slack card shows about the planned window (stored under the incident key)."""

    start: str = ""  # ISO
    end: str | None = None
    all_day: bool = False
    calendar_name: str | None = None
    channel: str | None = None  # the calendar's channel mapping
    uid: str | None = None


def occurrence_summary(occ: Occurrence, config: CalendarConfig) -> PlannedWindow:
    return PlannedWindow(
        start=occ.start.isoformat(),
        end=occ.end.isoformat(),
        all_day=occ.all_day,
        calendar_name=config.name,
        channel=config.channel,
        uid=occ.uid,
    )
