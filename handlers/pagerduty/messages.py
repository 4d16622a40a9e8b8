"""Slack messages for PagerDuty incidents, pure: the incident card, the thread replies, list lines."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from bot import blocks
from bot.render import CLOCK_ZONE, escape, local_time, parse_time, time_span

if TYPE_CHECKING:
    from handlers.pagerduty.common import OnBehalf
    from handlers.pagerduty.planning import PlannedWindow

ACK_ACTION = "pagerduty.acknowledge"
RESOLVE_ACTION = "pagerduty.resolve"

_STATUS_ICON = {"triggered": ":rotating_light:", "acknowledged": ":eyes:", "resolved": ":white_check_mark:"}

_ACTIVITY = {
    "incident.triggered": "triggered the incident",
    "incident.acknowledged": "acknowledged the incident",
    "incident.unacknowledged": "un-acknowledged the incident (acknowledgement timed out)",
    "incident.resolved": "resolved the incident",
    "incident.reassigned": "reassigned the incident",
    "incident.escalated": "escalated the incident",
    "incident.delegated": "delegated the incident",
    "incident.annotated": "added a note",
    "incident.priority_updated": "changed the priority",
    "incident.reopened": "reopened the incident",
}

STATUS_FOR_EVENT = {
    "incident.triggered": "triggered",
    "incident.acknowledged": "acknowledged",
    "incident.unacknowledged": "triggered",
    "incident.resolved": "resolved",
    "incident.reopened": "triggered",
}


def format_window(start: str, end: str | None, tz: dt.tzinfo, all_day: bool = False) -> str:
    """`Tue 25 Mar 10:00–10:30 CET` (same day) or `Tue 25 Mar 22:00 → Wed 26 Mar 02:00 CET`."""
    s = parse_time(start)
    if s is None:
        return start
    return time_span(s, parse_time(end), tz, all_day=all_day)


def incident_label(incident: dict[str, Any]) -> str:
    number = incident.get("number")
    return f"#{number}" if number else str(incident.get("id") or "?")


def incident_card(
    incident: dict[str, Any],
    tz: dt.tzinfo,
    planned: PlannedWindow | None = None,
    latest: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of the one message an incident has in Slack."""
    status = str(incident.get("status") or "triggered")
    icon = _STATUS_ICON.get(status, ":grey_question:")
    label = incident_label(incident)
    title = str(incident.get("title") or "(no title)")
    link = incident.get("html_url")
    heading = f"<{link}|{label} {escape(title)}>" if link else f"{label} {escape(title)}"
    fields = [
        f"*Status*\n{icon} {status.capitalize()}",
        f"*Urgency*\n{(incident.get('urgency') or 'n/a').capitalize()}",
        f"*Service*\n{escape(incident.get('service') or incident.get('service_id') or 'n/a')}",
        f"*Assigned to*\n{escape(', '.join(incident.get('assignees') or []) or 'nobody')}",
    ]
    if incident.get("priority"):
        fields.append(f"*Priority*\n{escape(incident['priority'])}")
    if incident.get("escalation_policy"):
        fields.append(f"*Escalation policy*\n{escape(incident['escalation_policy'])}")
    out = [blocks.section(f"{icon} *{heading}*", fields)]
    if planned:
        window = format_window(planned.start, planned.end, tz, planned.all_day)
        source = planned.calendar_name or "calendar"
        out.append(blocks.context(f":calendar: Planned work {window} (from {escape(source)})"))
    if latest:
        out.append(blocks.context(latest))
    buttons = []
    if status == "triggered":
        buttons.append(blocks.button("Acknowledge", ACK_ACTION, str(incident.get("id") or ""), "primary"))
    if status in ("triggered", "acknowledged"):
        buttons.append(blocks.button("Resolve", RESOLVE_ACTION, str(incident.get("id") or ""), "danger"))
    if buttons:
        out.append(blocks.actions(*buttons, block_id=f"pagerduty:{incident.get('id')}"))
    text = f"{icon} {label} {title} — {status}" + (
        f" ({incident['urgency']} urgency)" if incident.get("urgency") else ""
    )
    return text, out


def activity_text(
    event_type: str,
    agent: str | None,
    incident: dict[str, Any],
    note: str | None = None,
    on_behalf: OnBehalf | None = None,
) -> str:
    """The thread reply saying who did what."""
    who = f"*{escape(agent)}*" if agent else "PagerDuty (automation)"
    what = _ACTIVITY.get(event_type, event_type.removeprefix("incident.").replace("_", " "))
    text = f"{who} {what}"
    if event_type == "incident.reassigned" and incident.get("assignees"):
        text += " to " + escape(", ".join(incident["assignees"]))
    if event_type == "incident.priority_updated" and incident.get("priority"):
        text += f" to {escape(incident['priority'])}"
    if event_type == "incident.annotated" and note:
        text += ":\n> " + escape(note).replace("\n", "\n> ")
    else:
        text += "."
    if on_behalf:
        text += f"\n_Requested from Slack by <@{on_behalf.user}>"
        if on_behalf.fallback:
            text += (
                f"; no PagerDuty user has their Slack e-mail, so the bot's account "
                f"({on_behalf.email}) was used"
            )
        text += "._"
    return text


def latest_line(event_type: str, agent: str | None, occurred_at: str, tz: dt.tzinfo) -> str:
    who = agent or "PagerDuty"
    what = _ACTIVITY.get(event_type, event_type)
    when = parse_time(occurred_at)
    stamp = f" at {local_time(when, tz, CLOCK_ZONE)}" if when else ""
    return f"Latest: {escape(who)} {what}{stamp}"


def list_line(incident: dict[str, Any]) -> str:
    status = str(incident.get("status") or "")
    icon = _STATUS_ICON.get(status, "")
    label = incident_label(incident)
    title = escape(str(incident.get("title") or ""))
    link = incident.get("html_url")
    head = f"<{link}|{label}>" if link else label
    who = ", ".join(incident.get("assignees") or []) or "nobody"
    return (
        f"{icon} {head} {title} — {status}, {incident.get('urgency') or '?'} urgency · "
        f"{escape(incident.get('service') or '')} · {escape(who)} · `{incident.get('id')}`"
    )
