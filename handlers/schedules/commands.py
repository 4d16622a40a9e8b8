"""`/ecs schedule …`: office-hours schedules from the policy file, their instances, next transitions and
overrides that expire by themselves.

    /ecs schedule list
    /ecs schedule show NAME
    /ecs schedule preview NAME [DAYS]
    /ecs schedule override SELECTOR keep-running|keep-stopped until TIME
    /ecs schedule overrides
    /ecs schedule cancel OVERRIDE_ID

Reading is open to everyone (`ecs.schedule.list`, `show`, `preview`); overrides need `schedule.override`
for every instance they touch (scopes apply) and are audited.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING

from bot import blocks
from bot.commands import CommandRequest, Reply
from bot.errors import UserError
from bot.registry import Capability
from bot.render import DAY_TIME_ZONE, escape, local_time, plural, table
from bot.selectors import GRAMMAR, parse_selector, tokenize
from handlers.ecs.lookup import resolve
from handlers.schedules import calendars
from handlers.schedules import overrides as ovr
from handlers.schedules.engine import compiled, end_overrides, last_acted, members, now_utc
from handlers.schedules.model import calendar_label
from handlers.schedules.override_time import TIME_HELP, parse_until

if TYPE_CHECKING:
    from bot.services import Services
    from handlers.schedules.model import CompiledSchedule

capability = Capability("handlers.schedules.commands")
capability.read_permissions("ecs.schedule.list", "ecs.schedule.show", "ecs.schedule.preview")

USAGE = (
    "/ecs schedule list | show NAME | preview NAME [DAYS] | "
    "override SELECTOR keep-running|keep-stopped until TIME | overrides | cancel OVERRIDE_ID"
)
OVERRIDE_USAGE = (
    f"/ecs schedule override SELECTOR keep-running|keep-stopped until TIME\n{TIME_HELP}.\n{GRAMMAR}"
)
SHOWN = 20
MAX_PREVIEW_DAYS = 31


@capability.subcommand(
    "/ecs",
    "schedule",
    permission="ecs.schedule.list",
    usage=USAGE,
    summary="Office-hours schedules: their instances, next transitions in local time, and overrides.",
    authorizes_targets=True,
)
def schedule(req: CommandRequest) -> Reply:
    verb, _, rest = req.args.partition(" ")
    handler = VERBS.get(verb.lower() or "list")
    if handler is None:
        raise UserError(f"`{escape(verb)}` is not a schedule command.", USAGE)
    return handler(req, rest.strip())


def _named(services: Services, name: str) -> CompiledSchedule:
    schedules = compiled(services)
    if name not in schedules:
        known = ", ".join(f"`{n}`" for n in schedules) or "none (the policy file has no `schedules`)"
        raise UserError(f"There is no schedule `{escape(name)}`. Schedules: {known}.", USAGE)
    return schedules[name]


def _periods(cs: CompiledSchedule) -> str:
    out = []
    for p in cs.schedule.periods:
        span = f"{p.start or '…'}–{p.stop or '…'}"
        out.append(f"{p.days} {span}")
    return ", ".join(out)


def _next(cs: CompiledSchedule, now: dt.datetime, tz: dt.tzinfo) -> str:
    upcoming = cs.next_transitions(now, days=14)
    if not upcoming:
        return "none in 14 days"
    t = upcoming[0]
    return f"{t.state} {local_time(t.at, cs.zone, '%a %H:%M %Z')}"


def list_schedules(req: CommandRequest, rest: str) -> Reply:
    req.authorize("ecs.schedule.list", detail=f"/ecs schedule list {rest}".strip())
    services, now = req.services, now_utc(req.services)
    schedules = compiled(services)
    if not schedules:
        text = "No schedules yet: add a `schedules:` section to the policy file (see policy.example.yaml)."
        return Reply(text, [blocks.section(text)])
    tag = services.policy.schedule_tag
    counts = Counter(
        i.tags.get(tag, "") for i in services.adapter("ecs").describe_instances(tags={tag: None})
    )
    rows = [
        (name, str(cs.zone), _periods(cs), str(counts.get(name, 0)), _next(cs, now, req.viewer_zone()))
        for name, cs in schedules.items()
    ]
    body = [
        blocks.section(f"*Schedules* ({len(rows)})"),
        blocks.section(blocks.code(table(("NAME", "ZONE", "PERIODS", "INSTANCES", "NEXT"), rows))),
        blocks.context(f"Instances opt in with the tag `{tag}=<name>`. `/ecs schedule show NAME` for more."),
    ]
    unknown = sorted(v for v in counts if v and v not in schedules)
    if unknown:
        body.append(
            blocks.context(
                ":warning: Tagged with an unknown schedule: " + ", ".join(f"`{escape(v)}`" for v in unknown)
            )
        )
    return Reply(f"{len(rows)} schedules", body)


def show(req: CommandRequest, rest: str) -> Reply:
    name = rest.strip()
    req.authorize("ecs.schedule.show", detail=f"/ecs schedule show {name}")
    services, now = req.services, now_utc(req.services)
    cs = _named(services, name)
    found = members(services, name, cs)
    by_status = Counter(i.status for i in found)
    held = [o for o in ovr.load_all(services.store) if set(o.instance_ids) & {i.instance_id for i in found}]
    s = cs.schedule
    facts = [
        f"*Zone:* {cs.zone} · *now* {local_time(now, cs.zone, DAY_TIME_ZONE)} · desired: *{cs.desired(now) or 'unknown'}*",
        f"*Periods:* {_periods(cs)}",
        f"*Stop mode:* {s.stop_mode} · *manual starts:* {s.manual}"
        + (f" · *selector:* `{s.selector}`" if s.selector else ""),
    ]
    if s.holidays or s.workdays:
        facts.append(
            f"*Holidays:* {_holidays(services, cs, now)} · *make-up workdays:* {', '.join(s.workdays) or 'none'}"
        )
    acted = last_acted(services, name)
    if acted:
        facts.append(
            f"*Last acted on:* {acted.get('state')} at {local_time(acted.get('at'), cs.zone, DAY_TIME_ZONE)}"
        )
    rows = [(i.name, i.instance_id, i.status) for i in found[:SHOWN]]
    counts = ", ".join(f"{n} {st}" for st, n in by_status.most_common()) or "none"
    body = [
        blocks.section(f"*Schedule `{name}`*"),
        blocks.section("\n".join(facts)),
        blocks.section(
            f"*Instances:* {counts}"
            + (("\n" + blocks.code(table(("NAME", "ID", "STATUS"), rows))) if rows else "")
        ),
    ]
    if len(found) > SHOWN:
        body.append(blocks.context(f"…and {len(found) - SHOWN} more"))
    if held:
        body.append(
            blocks.section("*Overrides:*\n" + "\n".join(_override_line(o, req.viewer_zone()) for o in held))
        )
    upcoming = cs.next_transitions(now, days=7)[:4]
    if upcoming:
        body.append(
            blocks.context(
                "Next: "
                + " · ".join(f"{t.state} {local_time(t.at, cs.zone, '%a %d %b %H:%M')}" for t in upcoming)
            )
        )
    return Reply(f"Schedule {name}: {counts}", blocks.limit_blocks(body))


def _holidays(services, cs, now: dt.datetime) -> str:
    """The schedule's holidays as written (a calendar by its file name and what was read from it), and
    the next one."""
    read = calendars.states(services.store)
    today = now.astimezone(cs.zone).date()
    parts = []
    for text in cs.schedule.holidays:
        url = text.strip()
        if url not in cs.calendars:
            parts.append(escape(text))
            continue
        state = read.get(url) or {}
        ahead = sum(1 for d in cs.calendar_holidays(url) if d >= today)
        note = f"{ahead} ahead" if "days" in state else "not read yet"
        if state.get("error"):
            note += f"; cannot be read now: {state['error']}"
        parts.append(f"calendar `{escape(calendar_label(url))}` ({escape(note)})")
    upcoming = next(
        ((d, n) for d in (today + dt.timedelta(days=k) for k in range(366)) if (n := cs.is_holiday(d))), None
    )
    nxt = f" · next: {upcoming[0]:%a %d %b %Y} ({escape(upcoming[1])})" if upcoming else ""
    return (", ".join(parts) or "none") + nxt


def preview(req: CommandRequest, rest: str) -> Reply:
    words = rest.split()
    if not words:
        raise UserError("Name the schedule.", "/ecs schedule preview NAME [DAYS]")
    name = words[0]
    days = 7
    if len(words) > 1:
        if not words[1].isascii() or not words[1].isdigit() or not 1 <= int(words[1]) <= MAX_PREVIEW_DAYS:
            raise UserError(
                f"DAYS is a number from 1 to {MAX_PREVIEW_DAYS}.", "/ecs schedule preview NAME [DAYS]"
            )
        days = int(words[1])
    req.authorize("ecs.schedule.preview", detail=f"/ecs schedule preview {rest}".strip())
    services, now = req.services, now_utc(req.services)
    cs = _named(services, name)
    upcoming = cs.next_transitions(now, days=days)
    count = len(members(services, name, cs))
    rows = [
        (
            local_time(t.at, cs.zone, "%a %d %b %H:%M %Z"),
            "start" if t.state == "running" else "stop",
            t.reason,
        )
        for t in upcoming[:60]
    ]
    head = f"Schedule `{name}`: {plural(len(upcoming), 'transition')} in the next {plural(days, 'day')} ({cs.zone})"
    body = [blocks.section(f"*{head}*")]
    if rows:
        body.append(blocks.section(blocks.code(table(("WHEN (LOCAL)", "ACTION", "WHY"), rows))))
    body.append(
        blocks.context(
            f"Each touches the schedule's {plural(count, 'instance')} (as tagged now); overrides hold some back."
        )
    )
    return Reply(head, body)


def _override_line(o: ovr.Override, tz: dt.tzinfo) -> str:
    names = ", ".join(o.names.get(i, i) for i in o.instance_ids[:5])
    more = f" and {len(o.instance_ids) - 5} more" if len(o.instance_ids) > 5 else ""
    until = local_time(o.until, tz, DAY_TIME_ZONE)
    return f"`{o.id}` {o.label()} until {until}: {escape(names)}{more} (by <@{o.by}>)"


def override(req: CommandRequest, rest: str) -> Reply:
    tokens = tokenize(rest, OVERRIDE_USAGE)
    modes = [t for t in tokens if t in ovr.MODES]
    if len(modes) != 1 or "until" not in tokens or tokens.index("until") < tokens.index(modes[0]):
        raise UserError("Say what to keep and until when.", OVERRIDE_USAGE)
    split = tokens.index(modes[0])
    selector = parse_selector(" ".join(tokens[:split]), OVERRIDE_USAGE) if split else None
    if selector is None or selector.is_empty:
        raise UserError("Say which instances (a selector, e.g. `tag:env=dev` or a name).", OVERRIDE_USAGE)
    when = " ".join(tokens[tokens.index("until") + 1 :])
    services = req.services
    tz = req.viewer_zone()
    now = now_utc(services)
    max_span = dt.timedelta(days=services.policy.schedule_override_max_days)
    until = parse_until(when, now, tz, max_span)
    owner = _schedules_of(services, resolve(services, selector, None))
    if not owner:
        raise UserError(
            f"No instance matching `{escape(selector.text())}` belongs to a schedule.", OVERRIDE_USAGE
        )
    found = list(owner)
    record = req.authorize("schedule.override", found, detail=f"/ecs schedule override {rest}")
    o = ovr.Override(
        id=ovr.new_id(),
        mode=modes[0],
        instance_ids=tuple(i.instance_id for i in found),
        names={i.instance_id: i.name for i in found},
        schedules={i.instance_id: owner[i] for i in found},
        selector=selector.text(),
        until=until.timestamp(),
        by=req.actor.user_id,
        created_at=now.timestamp(),
    )
    ovr.save(services.store, o)
    services.authz.record_result(record, "ok", f"override {o.id}: {o.label()} until {until.isoformat()}")
    what = "stops" if o.mode == "keep-running" else "starts"
    text = (
        f":pushpin: Override `{o.id}`: {plural(len(found), 'instance')} {o.label()} until "
        f"{local_time(until, tz, DAY_TIME_ZONE)}; the schedule {what} nothing of them before then and takes "
        f"them back when it ends. `/ecs schedule cancel {o.id}` ends it now."
    )
    return Reply(text, [blocks.section(text), blocks.context(_override_line(o, tz))], ephemeral=False)


def _schedules_of(services: Services, instances: list) -> dict:
    """Instance → the schedule it belongs to (by tag, else by a schedule's selector), for those that do."""
    schedules = compiled(services)
    tag = services.policy.schedule_tag
    out = {}
    for i in instances:
        name = i.tags.get(tag)
        if name in schedules:
            out[i] = name
            continue
        for sname, cs in schedules.items():
            if cs.schedule.selector and parse_selector(cs.schedule.selector).matches(i):
                out[i] = sname
                break
    return out


def list_overrides(req: CommandRequest, rest: str) -> Reply:
    req.authorize("ecs.schedule.list", detail="/ecs schedule overrides")
    now = req.services.clock.time()
    active = [o for o in ovr.load_all(req.services.store) if o.until > now]
    if not active:
        text = "No overrides are active."
        return Reply(text, [blocks.section(text)])
    tz = req.viewer_zone()
    lines = [_override_line(o, tz) for o in active]
    return Reply(f"{len(active)} overrides", [blocks.section("*Active overrides*\n" + "\n".join(lines))])


def cancel(req: CommandRequest, rest: str) -> Reply:
    services = req.services
    o = ovr.get(services.store, rest.strip())
    if o is None:
        raise UserError(
            f"There is no active override `{escape(rest.strip())}`.", "/ecs schedule cancel OVERRIDE_ID"
        )
    found = services.adapter("ecs").describe_instances(instance_ids=o.instance_ids)
    req.authorize("schedule.override", found or o.instance_ids, detail=f"/ecs schedule cancel {o.id}")
    now = services.clock.time()
    ended = o.model_copy(update={"until": now})
    end_overrides(services, now + 0.001, [ended])
    return Reply(
        f":wastebasket: Override `{o.id}` ended; the schedule has its instances back.", ephemeral=False
    )


VERBS = {
    "list": list_schedules,
    "show": show,
    "preview": preview,
    "override": override,
    "overrides": list_overrides,
    "cancel": cancel,
}
