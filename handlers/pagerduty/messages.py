"""Slack messages for PagerDuty incidents, pure: the incident card, the thread replies, list lines.
The card's buttons and menus are in `controls`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from bot import blocks
from bot.render import CLOCK_ZONE, DAY_TIME_ZONE, escape, local_time, parse_time, time_span
from handlers.pagerduty.changes import incident_label as incident_label  # re-exported: cards use it
from handlers.pagerduty.controls import incident_controls

if TYPE_CHECKING:
    from handlers.pagerduty.common import OnBehalf
    from handlers.pagerduty.planning import PlannedWindow

STATUS_ICON = {"triggered": ":rotating_light:", "acknowledged": ":eyes:", "resolved": ":white_check_mark:"}

_ACTIVITY = {
    "incident.triggered": "triggered the incident",
    "incident.acknowledged": "acknowledged the incident",
    "incident.unacknowledged": "un-acknowledged the incident (acknowledgement timed out)",
    "incident.resolved": "resolved the incident",
    "incident.reassigned": "reassigned the incident",
    "incident.escalated": "escalated the incident",
    "incident.delegated": "reassigned the incident to another escalation policy",
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


def heading(incident: dict[str, Any]) -> str:
    """`:eyes: *#12 Title*`, linked to the incident in PagerDuty."""
    icon = STATUS_ICON.get(str(incident.get("status") or "triggered"), ":grey_question:")
    label = incident_label(incident)
    title = escape(incident.get("title") or "(no title)")
    link = incident.get("html_url")
    return f"{icon} *<{link}|{label} {title}>*" if link else f"{icon} *{label} {title}*"


def incident_fields(incident: dict[str, Any], level: str | None = None) -> list[str]:
    """The fields an incident is shown with (a flat snapshot); `level` (`level 2 of 3`) goes with its
    escalation policy, and with it every field is shown, also when empty (`/incident show`)."""
    status = str(incident.get("status") or "triggered")
    fields = [
        f"*Status*\n{STATUS_ICON.get(status, ':grey_question:')} {status.capitalize()}",
        f"*Urgency*\n{(incident.get('urgency') or 'n/a').capitalize()}",
        f"*Service*\n{escape(incident.get('service') or incident.get('service_id') or 'n/a')}",
        f"*Assigned to*\n{escape(', '.join(incident.get('assignees') or []) or 'nobody')}",
    ]
    if incident.get("priority") or level:
        fields.append(f"*Priority*\n{escape(incident.get('priority') or 'none')}")
    if incident.get("escalation_policy") or level:
        policy = escape(incident.get("escalation_policy") or "n/a")
        fields.append(f"*Escalation policy*\n{policy}" + (f" ({level})" if level else ""))
    return fields


def incident_card(
    incident: dict[str, Any],
    tz: dt.tzinfo,
    planned: PlannedWindow | None = None,
    latest: str | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) of the one message an incident has in Slack."""
    status = str(incident.get("status") or "triggered")
    icon = STATUS_ICON.get(status, ":grey_question:")
    label = incident_label(incident)
    title = str(incident.get("title") or "(no title)")
    out = [blocks.section(heading(incident), incident_fields(incident))]
    if planned:
        window = format_window(planned.start, planned.end, tz, planned.all_day)
        source = planned.calendar_name or "calendar"
        out.append(blocks.context(f":calendar: Planned work {window} (from {escape(source)})"))
    snoozed = parse_time(incident.get("snoozed_until")) if status == "acknowledged" else None
    if snoozed:
        out.append(blocks.context(f":zzz: Snoozed until {local_time(snoozed, tz, DAY_TIME_ZONE)}"))
    if latest:
        out.append(blocks.context(latest))
    controls = incident_controls(incident)
    if controls:
        out.append(controls)
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
    what: str | None = None,
    snooze_ended: bool = False,
) -> str:
    """The thread reply saying who did what (`what` for a change no webhook names, e.g. a snooze)."""
    who = f"*{escape(agent)}*" if agent else "PagerDuty (automation)"
    text = f"{who} {what or _what(event_type, incident)}"
    if event_type == "incident.unacknowledged" and snooze_ended:
        text = "PagerDuty: the snooze ended, so the incident is triggered again"
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


def _what(event_type: str, incident: dict[str, Any]) -> str:
    what = _ACTIVITY.get(event_type, event_type.removeprefix("incident.").replace("_", " "))
    assignees = escape(", ".join(incident.get("assignees") or []))
    if event_type in ("incident.reassigned", "incident.escalated") and assignees:
        return f"{what} to {assignees}"
    if event_type == "incident.delegated" and incident.get("escalation_policy"):
        return f"reassigned the incident to the escalation policy {escape(incident['escalation_policy'])}"
    if event_type == "incident.priority_updated":
        priority = incident.get("priority")
        return f"{what} to {escape(priority)}" if priority else "removed the priority"
    return what


def latest_line(
    event_type: str, agent: str | None, occurred_at: str, tz: dt.tzinfo, what: str | None = None
) -> str:
    who = agent or "PagerDuty"
    what = what or _ACTIVITY.get(event_type, event_type)
    when = parse_time(occurred_at)
    stamp = f" at {local_time(when, tz, CLOCK_ZONE)}" if when else ""
    return f"Latest: {escape(who)} {what}{stamp}"


def list_line(incident: dict[str, Any]) -> str:
    status = str(incident.get("status") or "")
    icon = STATUS_ICON.get(status, "")
    label = incident_label(incident)
    title = escape(str(incident.get("title") or ""))
    link = incident.get("html_url")
    head = f"<{link}|{label}>" if link else label
    who = ", ".join(incident.get("assignees") or []) or "nobody"
    return (
        f"{icon} {head} {title} — {status}, {incident.get('urgency') or '?'} urgency · "
        f"{escape(incident.get('service') or '')} · {escape(who)} · `{incident.get('id')}`"
    )
