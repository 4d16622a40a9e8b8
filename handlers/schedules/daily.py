"""One Slack thread per schedule and day: the day's first transition posts its head, every job the
schedule starts that day reports in the thread, and the head keeps the day's summary (what started,
what stopped, what overrides held back, and the instance-hours the schedule keeps off).

    schedules:day:<schedule>:<local date>    the thread's ts and the day's lines (JSON)
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import TYPE_CHECKING

from bot import blocks
from bot.errors import ChatOpsError
from bot.render import plural

if TYPE_CHECKING:
    from bot.services import Services
    from handlers.schedules.model import CompiledSchedule

log = logging.getLogger(__name__)
KEEP = 3 * 86400


def hours_off(cs: CompiledSchedule, day: dt.date) -> float:
    """Hours of the local day `day` in which the schedule wants its instances stopped."""
    start = dt.datetime.combine(day, dt.time(), tzinfo=cs.zone).astimezone(dt.UTC)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=cs.zone).astimezone(dt.UTC)
    state = cs.desired(start)
    edges = [
        (start, state),
        *((t.at, t.state) for t in cs.transitions(start, end) if t.at < end),
        (end, None),
    ]
    off = sum(
        (b[0] - a[0]).total_seconds() for a, b in zip(edges, edges[1:], strict=False) if a[1] == "stopped"
    )
    return off / 3600


def _head(
    name: str, cs: CompiledSchedule, day: dt.date, lines: list[str], instances: int
) -> tuple[str, list]:
    title = f"Schedule `{name}` — {day:%a %d %b %Y} ({cs.zone})"
    saved = hours_off(cs, day) * instances
    body = [blocks.section(f":calendar: *{title}*")]
    if lines:
        body.append(blocks.section("\n".join(lines[-20:])))
    body.append(
        blocks.context(
            f"≈ {saved:,.0f} instance-hours off today against always-on · each job reports in this thread"
        )
    )
    return title, body


def day_thread(
    services: Services,
    channel: str,
    name: str,
    cs: CompiledSchedule,
    at: dt.datetime,
    line: str,
    instances: int,
) -> str | None:
    """The ts of the schedule's thread for the local day of `at` (posted on first use), with `line`
    added to its head's summary. None when Slack cannot be reached: the job then posts on its own."""
    day = at.astimezone(cs.zone).date()
    key = f"schedules:day:{name}:{day.isoformat()}"
    raw = services.store.get(key)
    state = json.loads(raw) if raw else {"ts": None, "lines": []}
    state["lines"].append(line)
    title, body = _head(name, cs, day, state["lines"], instances)
    try:
        if state["ts"]:
            services.slack.update(channel, state["ts"], title, body)
        else:
            state["ts"] = services.slack.post(channel, title, body).ts
    except ChatOpsError as exc:
        log.warning("could not keep the schedule's day thread", extra={"schedule": name, "error": str(exc)})
    services.store.set(key, json.dumps(state), KEEP)
    return state["ts"]


def line_for(
    verb: str,
    at: dt.datetime,
    cs: CompiledSchedule,
    targets: int,
    held: int,
    why: str,
    due: dt.datetime | None = None,
) -> str:
    """One line of the day's summary: when the transition was due (and when it was acted on, if that
    was later: a tick missed while no worker ran), what it did and why."""
    acted = at.astimezone(cs.zone)
    when = (due or at).astimezone(cs.zone)
    shown = when.strftime("%H:%M") if when.date() == acted.date() else when.strftime("%a %d %b %H:%M")
    if due is not None and (at - due).total_seconds() > 120:
        shown += f" (acted at {acted:%H:%M})"
    held_text = f", {held} held by overrides" if held else ""
    mark = ":large_green_circle:" if verb == "start" else ":red_circle:"
    return f"{mark} {shown} {verb} {plural(targets, 'instance')}{held_text} — {why}"
