"""`/oncall [escalation policy or schedule name]`: who is on call now, grouped by escalation policy and
level, with times in the caller's time zone (their Slack profile's, else the team's)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot import blocks
from bot.commands import DEFAULT, CommandRequest, Reply
from bot.errors import UserError
from bot.registry import Capability
from bot.render import DAY_TIME_ZONE, escape, local_time, parse_time, zone_name
from handlers.pagerduty.common import client
from handlers.pagerduty.parsing import ONCALL_USAGE

capability = Capability("handlers.pagerduty.oncall")


@capability.subcommand(
    "/oncall",
    DEFAULT,
    permission="oncall",
    usage=ONCALL_USAGE,
    summary="Who is on call now, by escalation policy and level.",
)
def oncall(req: CommandRequest) -> Reply:
    query = req.args.strip()
    if query.lower() == "help":
        return Reply(f"*Usage:* `{ONCALL_USAGE}`\nWithout a name: every escalation policy.")
    pd = client(req.services, interactive=True)
    title = "On call now"
    if query:
        policies = _best(pd.find_escalation_policies(query), query)
        schedules = _best(pd.find_schedules(query), query)
        if not policies and not schedules:
            raise UserError(f"No escalation policy or schedule matches “{escape(query)}”.", ONCALL_USAGE)
        entries: dict[tuple, dict[str, Any]] = {}
        if policies:
            for e in pd.oncalls(escalation_policy_ids=[p["id"] for p in policies]):
                entries[_identity(e)] = e
        if schedules:
            for e in pd.oncalls(schedule_ids=[s["id"] for s in schedules]):
                entries[_identity(e)] = e
        found = list(entries.values())
        title += " for " + ", ".join(
            x.get("summary") or x.get("name") or x["id"] for x in policies + schedules
        )
    else:
        found = pd.oncalls()
    tz = req.viewer_zone()
    lines = render_oncalls(found, tz)
    if not lines:
        return Reply(f"{title}: nobody.")
    body = [
        blocks.section(f"*{title}*"),
        blocks.section("\n".join(lines)),
        blocks.context(f"Times in {zone_name(tz)}."),
    ]
    return Reply(title, body)


def _best(items: list[dict[str, Any]], query: str) -> list[dict[str, Any]]:
    """An exact (case-insensitive) name match wins over partial matches."""
    exact = [i for i in items if str(i.get("name") or i.get("summary") or "").lower() == query.lower()]
    return exact or items


def _identity(entry: dict[str, Any]) -> tuple:
    return (
        (entry.get("escalation_policy") or {}).get("id"),
        entry.get("escalation_level"),
        (entry.get("user") or {}).get("id"),
        (entry.get("schedule") or {}).get("id"),
    )


def render_oncalls(entries: list[dict[str, Any]], tz: dt.tzinfo) -> list[str]:
    """Pure: lines grouped by escalation policy, then level (lowest first)."""
    groups: dict[str, dict[int, list[str]]] = {}
    for e in entries:
        policy = (e.get("escalation_policy") or {}).get("summary") or "(no escalation policy)"
        level = int(e.get("escalation_level") or 0)
        who = (e.get("user") or {}).get("summary") or "(unknown user)"
        schedule = (e.get("schedule") or {}).get("summary")
        start, end = parse_time(e.get("start")), parse_time(e.get("end"))
        if end is None:
            span = "always on call" if start is None else f"since {_fmt(start, tz)}"
        else:
            span = f"{_fmt(start, tz)} → {_fmt(end, tz)}" if start else f"until {_fmt(end, tz)}"
        text = who + (f" ({schedule})" if schedule else "") + f" — {span}"
        bucket = groups.setdefault(policy, {}).setdefault(level, [])
        if text not in bucket:
            bucket.append(text)
    lines = []
    for policy in sorted(groups):
        lines.append(f"*{policy}*")
        for level in sorted(groups[policy]):
            lines.append(f"   Level {level}: " + "; ".join(groups[policy][level]))
    return lines


def _fmt(when: dt.datetime | None, tz: dt.tzinfo) -> str:
    return local_time(when, tz, DAY_TIME_ZONE, unknown="?")
