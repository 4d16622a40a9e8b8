"""`/ecs history INSTANCE [DAYS]`: the lifecycle trail of one instance from the ECS events the bot saw —
also for released instances, which the console no longer shows. Plus the retention job."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from bot import blocks, records
from bot.commands import CommandRequest, Reply
from bot.ecs_model import InstanceInfo, LookupDeadline
from bot.errors import ChatOpsError, UserError
from bot.registry import Capability
from bot.render import MINUTES, MINUTES_ZONE, SECONDS, escape, local_time, plural, row, tag_text, zone_name
from handlers.events import keys
from handlers.events.instances import remembered_key
from handlers.events.stored import HistoryEntry

capability = Capability("handlers.events.history")

USAGE = "/ecs history INSTANCE [DAYS]   (INSTANCE: an id like i-bp1… or a name; DAYS default 7)"
DEFAULT_DAYS = 7
MAX_LINES = 60
LOOKUP_SECONDS = 2.0  # a name no event carried is looked up in ECS within Slack's answer time


@dataclass(frozen=True)
class HistoryQuery:
    target: str
    days: int


def parse_history_args(args: str, max_days: int) -> HistoryQuery:
    """Pure: `i-abc 3` → HistoryQuery("i-abc", 3). Raises UserError with the usage."""
    parts = args.split()
    if not parts:
        raise UserError("Which instance? Give its id or its name.", USAGE)
    if len(parts) > 2:
        raise UserError(f"Too many arguments: `{args}`.", USAGE)
    days = DEFAULT_DAYS
    if len(parts) == 2:
        raw = parts[1].lower().removesuffix("d")
        if not raw.isdigit() or int(raw) < 1:
            raise UserError(f"`{parts[1]}` is not a number of days.", USAGE)
        days = int(raw)
        if days > max_days:
            raise UserError(f"History is kept for {max_days} days; ask for at most {max_days}.", USAGE)
    return HistoryQuery(parts[0], min(days, max_days))


def describe_entry(entry: HistoryEntry | dict, tz: dt.tzinfo) -> str:
    """One trail line (pure); `entry` may also be the stored data of one."""
    if not isinstance(entry, HistoryEntry):
        entry = records.load(HistoryEntry, entry)
    when = local_time(entry.t, tz, SECONDS)
    name = entry.e
    if entry.s:
        old = entry.o
        what = f"{old} → {entry.s}" if old and old != entry.s else f"→ {entry.s}"
    elif name == "Instance:PreemptibleInstanceInterruption":
        what = "preemptible interruption" + (f": {entry.outcome}" if entry.outcome else "")
    elif entry.st:
        parts = name.split(":")
        what = f"{parts[1] if len(parts) > 1 else name} {entry.st}"
        if entry.nb:
            what += ", not before " + local_time(entry.nb, tz, MINUTES)
    else:
        what = name
    if entry.by:
        what += f"  ({entry.by})"
    if entry.restart:
        what += f"  (auto-restart {entry.restart})"
    return row(when, what)


def resolve(services, target: str) -> tuple[str, list[str]]:
    """(instance id, other ids that carried this name) — the most recent instance with a name wins; a
    name no event carried yet is looked up in ECS (an instance with no events has a history too: none)."""
    store = services.store
    if target.startswith("i-") or store.zrange_by_score(keys.history(target), float("-inf"), float("inf"), 1):
        return target, []
    ids = store.zrange_by_score(keys.name_index(target), float("-inf"), float("inf"))
    if ids:
        return ids[-1], ids[:-1]
    try:
        found = services.adapter("ecs").describe_instances(
            region=services.settings.ALIBABA_CLOUD_REGION_ID,
            name=target,
            deadline=services.clock.monotonic() + LOOKUP_SECONDS,
        )
    except (ChatOpsError, LookupDeadline) as exc:
        raise UserError(
            f"No ECS events were recorded for an instance named `{escape(target)}`, and ECS could not be asked "
            f"for it just now ({exc}). Ids (`i-bp1…`) work without asking ECS."
        ) from None
    exact = [i for i in found if i.name == target] or found
    if not exact:
        raise UserError(
            f"There is no instance named `{escape(target)}` in {services.settings.ALIBABA_CLOUD_REGION_ID}, and no "
            "ECS events were recorded for one. Names are matched exactly; ids look like `i-bp1…`."
        )
    ids = sorted(i.instance_id for i in exact)
    return ids[-1], ids[:-1]


def history_reply(services, query: HistoryQuery, tz: dt.tzinfo | None = None) -> Reply:
    store = services.store
    tz = tz or services.timezone
    iid, others = resolve(services, query.target)
    since = time.time() - query.days * 86400
    entries = [
        e
        for e in (
            records.load_or_none(HistoryEntry, raw)
            for raw in store.zrange_by_score(keys.history(iid), since, float("inf"))
        )
        if e is not None
    ]
    facts = records.load_or_none(InstanceInfo, store.get(remembered_key(iid)))
    name = (facts.name if facts else None) or next((e.n for e in reversed(entries) if e.n), None)
    if name is None and not query.target.startswith("i-"):
        name = query.target
    title = f"*{name}* (`{iid}`)" if name else f"`{iid}`"
    span = "the last day" if query.days == 1 else f"the last {query.days} days"
    if not entries:
        return Reply(
            f"No ECS events recorded for {name or iid} in {span}.",
            [
                blocks.section(f":mag: No ECS events recorded for {title} in {span}."),
                blocks.context(
                    "Events appear here as ECS sends them (start, stop, interruptions, maintenance)."
                ),
            ],
        )
    states = [e for e in entries if e.s]
    now_line = ""
    if states:
        last = states[-1]
        since_text = local_time(last.t, tz, MINUTES_ZONE)
        now_line = (
            f"Released (deleted {since_text})"
            if last.s == "Deleted"
            else f"Last state: *{last.s}* since {since_text}"
        )
    lines = [describe_entry(e, tz) for e in entries]
    shown = lines[-MAX_LINES:]
    more = f"… {len(lines) - len(shown)} earlier events not shown\n" if len(lines) > len(shown) else ""
    context = [f"{plural(len(entries), 'event')} in {span} · times in {zone_name(tz)}"]
    if facts and facts.tags:
        context.append(escape(tag_text(facts.tags, 10)))
    if others:
        context.append("other instances with this name: " + ", ".join(f"`{o}`" for o in others[-5:]))
    out = [blocks.section(f":scroll: *History of* {title}" + (f"\n{now_line}" if now_line else ""))]
    out.append(blocks.section(blocks.code(more + "\n".join(shown))))
    out.append(blocks.context(*context))
    return Reply(f"History of {name or iid}: {plural(len(entries), 'event')} in {span}", out)


@capability.subcommand(
    "/ecs",
    "history",
    permission="ecs.history",
    usage=USAGE,
    summary="Lifecycle trail of one instance from ECS events (also released ones).",
)
def history(req: CommandRequest) -> Reply:
    query = parse_history_args(req.args, req.services.policy.events.history_days)
    return history_reply(req.services, query, req.viewer_zone())


@capability.periodic("events.history-retention", minute="17")
def trim_history(services) -> None:
    """Drop trail entries older than the retention (keys of long-released instances included)."""
    store = services.store
    cutoff = time.time() - services.policy.events.history_days * 86400
    for iid in store.zrange_by_score(keys.HISTORY_INDEX, float("-inf"), cutoff, limit=10_000):
        store.zremove_below(keys.history(iid), cutoff)
    store.zremove_below(keys.HISTORY_INDEX, cutoff)
