"""`/incident show`, pure: an incident's details, its newest log entries and its notes, in the viewer's
time zone, followed by the card's controls."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from bot import blocks
from bot.render import DAY_TIME_ZONE, clip, escape, local_time, parse_time
from handlers.pagerduty.changes import incident_label
from handlers.pagerduty.controls import incident_controls
from handlers.pagerduty.events import normalize_incident
from handlers.pagerduty.messages import STATUS_ICON, heading, incident_fields

SHOWN_NOTES = 5
NOTE_CHARS = 300


@dataclass
class IncidentDetails:
    """What `/incident show` read from PagerDuty (`missing`: the parts it could not read, and why)."""

    incident: dict[str, Any]  # PagerDuty's REST answer
    log: list[dict[str, Any]] | None = None  # newest first (None: not read)
    notes: list[dict[str, Any]] | None = None  # oldest first (None: not read)
    level: int | None = None
    levels: int | None = None
    missing: list[str] = field(default_factory=list)


def _when(value: Any, tz: dt.tzinfo) -> str:
    when = parse_time(value if isinstance(value, str) else None)
    return local_time(when, tz, DAY_TIME_ZONE) if when else "—"


def _name(ref: Any) -> str:
    return (
        escape((ref or {}).get("summary") or (ref or {}).get("name") or "PagerDuty")
        if isinstance(ref, dict)
        else "PagerDuty"
    )


def detail_reply(details: IncidentDetails, tz: dt.tzinfo) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of `/incident show`."""
    raw = details.incident
    inc = normalize_incident(raw)
    status = str(inc.get("status") or "")
    acks = [a for a in raw.get("acknowledgements") or [] if isinstance(a, dict)]
    acked = ", ".join(f"{_when(a.get('at'), tz)} by {_name(a.get('acknowledger'))}" for a in acks) or "—"
    level = f"level {details.level}" if details.level else "level unknown"
    if details.level and details.levels:
        level += f" of {details.levels}"
    fields = [
        *incident_fields(inc, level),
        f"*Created*\n{_when(raw.get('created_at'), tz)}",
        f"*Acknowledged*\n{acked}",
    ]
    out = [blocks.section(f"{heading(inc)}  `{escape(inc.get('id'))}`", fields)]
    retrigger = [
        a.get("at")
        for a in raw.get("pending_actions") or []
        if isinstance(a, dict) and a.get("type") == "unacknowledge"
    ]
    if status == "acknowledged" and retrigger:
        out.append(blocks.context(f":zzz: Triggers again at {_when(retrigger[0], tz)} unless resolved first"))
    if details.log:
        lines = [
            f"`{_when(e.get('created_at'), tz)}` {escape(clip(str(e.get('summary') or e.get('type') or ''), 200))}"
            for e in details.log
        ]
        out.append(blocks.section(f"*Timeline* (newest {len(lines)})\n" + "\n".join(lines)))
    notes = (details.notes or [])[-SHOWN_NOTES:]
    if notes:
        lines = [
            f"*{_name(n.get('user'))}* {_when(n.get('created_at'), tz)}: "
            + escape(clip(str(n.get("content") or ""), NOTE_CHARS)).replace("\n", " ")
            for n in notes
        ]
        total = len(details.notes or [])
        more = f" (newest {len(notes)} of {total})" if total > len(notes) else ""
        out.append(blocks.section(f"*Notes*{more}\n" + "\n".join(lines)))
    elif details.notes is not None:
        out.append(blocks.context("No notes yet."))
    if details.missing:
        out.append(blocks.context(":warning: Not shown: " + "; ".join(details.missing)))
    controls = incident_controls(inc)
    if controls:
        out.append(controls)
    icon = STATUS_ICON.get(status, ":grey_question:")
    text = f"{icon} {incident_label(inc)} {inc.get('title') or ''} — {status}"
    return text, out
