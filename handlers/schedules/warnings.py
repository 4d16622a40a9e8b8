"""The warning before a schedule stops its instances (`warn_minutes` ahead, default 15), with Snooze 1 h
/ Snooze 2 h / Skip tonight. A button is an override of the schedule's instances (needs
`schedule.override` for all of them, audited): snoozed, they stop when the snooze ends; skipped, they
stay up for that night: until the schedule's next start, or, when that is days away (a Friday, a
stretch of holidays), until its time of day the next morning, when the schedule takes them back (the
desired state then is stopped: they stop). The night after is a normal night.

    schedules:warned:<schedule>:<transition>    set once: each stop is announced once
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from bot import blocks
from bot.commands import ActionRequest, Reply
from bot.errors import ChatOpsError, UserError
from bot.registry import Capability
from bot.render import escape, local_time, plural
from handlers.schedules import overrides as ovr
from handlers.schedules.days import local_instant
from handlers.schedules.engine import UTC, compiled, members, notify_channel, running_count

if TYPE_CHECKING:
    from bot.services import Services
    from handlers.schedules.model import CompiledSchedule

capability = Capability("handlers.schedules.warnings")
log = logging.getLogger(__name__)

SNOOZE_ACTION = "schedule.snooze"
CHOICES = {"1h": ("Snooze 1 h", 3600), "2h": ("Snooze 2 h", 7200), "skip": ("Skip tonight", None)}


def upcoming_stop(cs: CompiledSchedule, now: dt.datetime):
    """The schedule's next stop, if it falls within its warning time."""
    ahead = dt.timedelta(minutes=cs.schedule.warn_minutes)
    if not ahead:
        return None
    for t in cs.next_transitions(now, days=1):
        if t.at > now + ahead:
            return None
        if t.state == "stopped":
            return t
    return None


def end_of_night(cs: CompiledSchedule, stop_at: dt.datetime) -> dt.datetime:
    """When Skip tonight ends: the schedule's next start, but no later than the first time its local
    wall time comes round after the stop (a Friday's skip ends on Saturday morning, not on Monday, and
    one before a week of holidays ends the next morning); 12 h after the stop without a start in sight."""
    starts = [x for x in cs.next_transitions(stop_at, days=14) if x.state == "running"]
    if not starts:
        return stop_at + dt.timedelta(hours=12)
    wall = starts[0].local
    day = stop_at.astimezone(cs.zone).date()
    morning = local_instant(cs.zone, day, wall.hour, wall.minute)
    if morning <= stop_at:
        morning = local_instant(cs.zone, day + dt.timedelta(days=1), wall.hour, wall.minute)
    return min(starts[0].at, morning)


@capability.periodic("schedules.warn", minute="*")
def warn_before_stops(services: Services) -> None:
    now = dt.datetime.fromtimestamp(services.clock.time(), UTC)
    channel = notify_channel(services)
    if not channel:
        return
    with services.store.lock("schedules:warn", ttl=120, wait=30) as held:
        if not held:
            return
        for name, cs in compiled(services).items():
            t = upcoming_stop(cs, now)
            key = f"schedules:warned:{name}:{int(t.at.timestamp())}" if t else ""
            if t is None or services.store.get(key):
                continue
            try:  # marked once posted: a worker stopped in between warns again rather than never
                running = running_count(services, name, cs)
                if running:
                    services.slack.post(channel, *warning(name, cs, t, running, now))
                services.store.set(key, "1", 2 * 86400)
            except ChatOpsError as exc:
                log.warning(
                    "could not warn before a scheduled stop", extra={"schedule": name, "error": str(exc)}
                )


def warning(name: str, cs: CompiledSchedule, t, count: int, now: dt.datetime) -> tuple[str, list[dict]]:
    minutes = max(1, round((t.at - now).total_seconds() / 60))
    when = local_time(t.at, cs.zone, "%H:%M %Z")
    text = f"Schedule `{name}` stops {plural(count, 'running instance')} at {when} (in {minutes} min)."
    stamp = int(t.at.timestamp())
    buttons = [
        blocks.button(label, SNOOZE_ACTION, f"{name}|{stamp}|{key}") for key, (label, _) in CHOICES.items()
    ]
    body = [
        blocks.section(f":alarm_clock: {escape(text)}"),
        blocks.actions(*buttons, block_id=f"warn-{name}-{stamp}"),
        blocks.context(
            "Snoozed, they stop when the snooze ends; skipped, they stay up tonight, until the schedule's next "
            "start or the next morning at that time, whichever comes first."
        ),
    ]
    return text, body


@capability.action(SNOOZE_ACTION, permission="schedule.override", authorizes_targets=True)
def snooze(req: ActionRequest) -> Reply:
    services = req.services
    name, stamp, key = _parse(req.value)
    cs = compiled(services).get(name)
    if cs is None or key not in CHOICES:
        return Reply(":warning: This warning belongs to a schedule the policy no longer has.")
    stop_at = dt.datetime.fromtimestamp(stamp, UTC)
    now = dt.datetime.fromtimestamp(services.clock.time(), UTC)
    label, seconds = CHOICES[key]
    if seconds is None:
        until = end_of_night(cs, stop_at)
    else:
        until = max(stop_at, now) + dt.timedelta(seconds=seconds)
    found = members(services, name, cs)
    if not found:
        return Reply(f":information_source: Schedule `{name}` has no instances now; nothing to keep up.")
    record = req.authorize("schedule.override", found, detail=f"{label}: schedule {name}")
    o = ovr.Override(
        id=ovr.new_id(),
        mode="keep-running",
        instance_ids=tuple(i.instance_id for i in found),
        names={i.instance_id: i.name for i in found},
        schedules={i.instance_id: name for i in found},
        selector=f"schedule {name}",
        until=until.timestamp(),
        by=req.actor.user_id,
        created_at=now.timestamp(),
    )
    ovr.save(services.store, o)
    services.authz.record_result(record, "ok", f"{label.lower()}: override {o.id} until {until.isoformat()}")
    local = local_time(until, cs.zone, "%a %H:%M %Z")
    text = f":zzz: {label} by <@{req.actor.user_id}>: schedule `{name}` keeps {plural(len(found), 'instance')} up until {local} (override `{o.id}`)."
    return Reply(text, [blocks.section(text)], ephemeral=False, replace_original=True)


def _parse(value: str) -> tuple[str, int, str]:
    parts = value.split("|")
    if len(parts) != 3 or not parts[1].isdigit():
        raise UserError("This button's value is not one the bot made.")
    return parts[0], int(parts[1]), parts[2]
