"""The office-hours engine: level-triggered start / stop of the instances a schedule owns.

Every minute (`schedules.reconcile`, run once per minute across all workers, and under a lock besides)
each schedule's desired state is computed in its zone; the engine acts when the schedule's latest
transition is newer than the one it last acted on — so a transition missed while no worker ran is
acted on at the next tick (a worker down over 21:00 still stops at 21:03), and only the latest one
counts. With `manual: respect` (the default) a person's start during off hours stands until the next
transition; with `enforce` the schedule wins every minute.

An action is the same plan `/ecs stop` builds, with the schedule as its origin, submitted through the
pipeline: batches of 100, the rate limit, retries, the progress message and the report, and intents
with source `schedule` (auto-restart never fights a schedule). The plan's id derives from the
transition, so racing reconcilers, a retried tick or a crash between acting and remembering start
one job per transition.

    schedules:state        hash: schedule → the transition last acted on ({"at", "state"})
    schedules:inventory    the count of tagged instances at the last look for unknown schedules
    schedules:overrides    see handlers.schedules.overrides

Instances opt in with the tag `<schedule_tag>=<name>` (default `Schedule`) or the schedule's
`selector`. They are read by tag when a transition is due, not every minute; the warning before a stop
counts the running ones in one call. Holiday calendars (ICS) are read at the start of a tick when due
(handlers.schedules.calendars); the schedules are compiled again when what they say changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from bot.errors import ChatOpsError
from bot.pipeline.gates import submit
from bot.pipeline.jobs import load_job
from bot.pipeline.plans import Origin, used_key
from bot.registry import Capability
from bot.render import escape
from bot.selectors import Selector, parse_selector
from handlers.ecs.lookup import default_region, resolve
from handlers.ecs.plan import sort_instances
from handlers.ecs.power import plan_power_on
from handlers.ecs.selectors import PowerOptions
from handlers.schedules import calendars
from handlers.schedules import overrides as ovr
from handlers.schedules.daily import day_thread, line_for
from handlers.schedules.model import CompiledSchedule, Schedule, compile_schedule, validate_schedules

if TYPE_CHECKING:
    from bot.ecs_model import InstanceInfo
    from bot.services import Services

capability = Capability("handlers.schedules.engine")
log = logging.getLogger(__name__)

RECONCILE = "schedules.reconcile"
NO_STOCK = "OperationDenied.NoStock"
RETRY_EVERY = 300.0  # a start that failed for lack of stock is tried again this often …
RETRY_WINDOW = 1800.0  # … for this long after the transition, then escalated
STATE = "schedules:state"
INVENTORY = "schedules:inventory"  # the tagged count and time of the last listing for unknown schedules
LIST_EVERY = 86400.0  # that listing is made again at least this often, whatever the count
UTC = dt.UTC


def _check(policy) -> None:
    validate_schedules(policy.schedules, policy.timezone or "UTC")
    calendars.check_files(policy.schedules)


capability.policy_section("schedules", dict[str, Schedule], dict, check=_check)
capability.policy_section(
    "schedule_tag", Annotated[str, Field(pattern=r"^[^\s=,]{1,128}$")], lambda: "Schedule"
)
capability.policy_section("schedule_override_max_days", Annotated[int, Field(ge=1, le=30)], lambda: 7)
capability.permissions("schedule.override")

_compiled: dict[int, tuple[object, str, dict[str, CompiledSchedule]]] = {}
_compiled_lock = threading.Lock()


def compiled(services: Services) -> dict[str, CompiledSchedule]:
    """The policy's schedules, compiled once per policy and version of the holiday calendars."""
    policy = services.policy
    seen = calendars.version(services.store) if calendars.calendar_urls(policy.schedules) else ""
    with _compiled_lock:
        hit = _compiled.get(id(policy))
        if hit is None or hit[0] is not policy or hit[1] != seen:
            zone = policy.timezone or getattr(services.timezone, "key", None) or "UTC"
            days = calendars.known_days(services.store) if seen else {}
            schedules = {n: compile_schedule(n, s, zone, days) for n, s in policy.schedules.items()}
            hit = (policy, seen, schedules)
            _compiled[id(policy)] = hit
        return hit[2]


def now_utc(services: Services) -> dt.datetime:
    return dt.datetime.fromtimestamp(services.clock.time(), UTC)


def notify_channel(services: Services) -> str:
    return services.policy.events.default_channel or services.settings.SLACK_NOTIFY_CHANNEL


def tag_selector(services: Services, name: str) -> Selector:
    return Selector(tags=((services.policy.schedule_tag, name),))


def members(services: Services, name: str, cs: CompiledSchedule) -> list[InstanceInfo]:
    """The instances the schedule owns now: by tag (every page), and by its selector."""
    found = {i.instance_id: i for i in resolve(services, tag_selector(services, name), None)}
    if cs.schedule.selector:
        for i in resolve(services, parse_selector(cs.schedule.selector), None):
            found.setdefault(i.instance_id, i)
    return sort_instances(list(found.values()))


def running_count(services: Services, name: str, cs: CompiledSchedule) -> int:
    """How many of the schedule's instances run now: one call when it selects by tag alone."""
    if cs.schedule.selector:
        return sum(1 for i in members(services, name, cs) if i.status == "Running")
    tag = services.policy.schedule_tag
    region = default_region(services, tag_selector(services, name))
    return services.adapter("ecs").count_instances(region=region, tags={tag: name}, status="Running")


def last_acted(services: Services, name: str) -> dict | None:
    raw = services.store.hget(STATE, name)
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def _remember(services: Services, name: str, acted: dict) -> None:
    services.store.hset(STATE, name, json.dumps(acted))


def plan_id(*parts: object) -> str:
    return "sch" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20]


@capability.periodic(RECONCILE, minute="*")
def reconcile(services: Services) -> None:
    # One reconciler at a time; one asked for while another runs (a clock moved in the sandbox, a
    # retried tick) waits for it, then finds little or nothing left to do.
    with services.store.lock("schedules:reconcile", ttl=300, wait=60) as held:
        if not held:
            log.warning("another reconciler has held the schedules for a minute; skipping this tick")
            return
        calendars.refresh(services, calendars.calendar_urls(services.policy.schedules))
        now = services.clock.time()
        overrides = ovr.load_all(services.store)
        acted = set()
        for name, cs in compiled(services).items():
            try:
                if reconcile_schedule(services, name, cs, now, overrides):
                    acted.add(name)
            except ChatOpsError as exc:  # one schedule's trouble must not hold the others back
                log.warning("could not reconcile a schedule", extra={"schedule": name, "error": str(exc)})
        # A schedule that acted this tick already took back the instances of overrides that ended.
        end_overrides(services, now, overrides, skip=acted)


def reconcile_schedule(
    services: Services, name: str, cs: CompiledSchedule, now: float, overrides: list[ovr.Override]
) -> bool:
    """Act on the schedule's latest transition if it is newer than the one acted on. True if a job started."""
    latest = cs.last_transition(dt.datetime.fromtimestamp(now, UTC))
    if latest is None:
        return False
    acted = last_acted(services, name)
    if acted is not None and acted.get("at", 0) >= latest.at.timestamp():
        if latest.state == "running":
            retry_no_stock(services, name, cs, acted, now, overrides)
        if cs.schedule.manual != "enforce":
            return False
        minute = int(now // 60)
        pid = plan_id(name, "enforce", minute)
        return act(services, name, cs, latest.state, pid, overrides, now, why="enforced")
    pid = plan_id(name, latest.at.timestamp(), latest.state)
    started = act(services, name, cs, latest.state, pid, overrides, now, why=latest.reason, due=latest.at)
    _remember(services, name, {"at": latest.at.timestamp(), "state": latest.state, "job": pid})
    if acted is not None and latest.at.timestamp() < now - 120:
        log.warning(
            "acted on a transition missed while no worker ran",
            extra={"schedule": name, "transition": latest.at.isoformat(), "state": latest.state},
        )
    return started


def act(
    services: Services,
    name: str,
    cs: CompiledSchedule,
    state: str,
    pid: str,
    overrides: list[ovr.Override],
    now: float,
    instances: list[InstanceInfo] | None = None,
    why: str = "",
    due: dt.datetime | None = None,
) -> bool:
    """Start or stop the schedule's instances (or `instances`) not held back by an override; the job
    reports in the schedule's thread of the day."""
    if services.store.get(used_key(pid)):  # this transition's job exists already
        return False
    held = ovr.held_back(overrides, state, now)
    candidates = members(services, name, cs) if instances is None else instances
    chosen = [i for i in candidates if i.instance_id not in held]
    verb = "start" if state == "running" else "stop"
    options = PowerOptions(stopped_mode=cs.schedule.stop_mode if verb == "stop" else None)
    channel = notify_channel(services) or None
    origin = Origin(kind="schedule", name=name, channel=channel)
    power, plan = plan_power_on(
        services, verb, tag_selector(services, name), options, origin, chosen, plan_id=pid
    )
    if not power.targets:
        return False
    if channel:
        at = dt.datetime.fromtimestamp(now, UTC)
        kept = len(candidates) - len(chosen)
        line = line_for(verb, at, cs, len(power.targets), kept, why or verb, due)
        ts = day_thread(services, channel, name, cs, at, line, len(candidates))
        plan = plan.model_copy(update={"origin": origin.model_copy(update={"thread_ts": ts})})
    started = submit(services, plan)
    if started:
        log.info(
            "schedule acts",
            extra={"schedule": name, "action": verb, "instances": len(power.targets), "held": len(held)},
        )
    return started


def end_overrides(
    services: Services, now: float, overrides: list[ovr.Override], skip: set[str] | frozenset = frozenset()
) -> None:
    """Overrides whose time is up: their instances given back to their schedule now (except to the
    schedules in `skip`, which have just acted on all their instances), then removed. An override whose
    hand-back failed, or whose worker stopped half-way, is handed back again at the next tick; its
    plans' ids derive from the override, so what was already started is not started twice."""
    active = [o for o in overrides if o.until > now]
    for o in overrides:
        if o.until > now:
            continue
        handed_back = True
        by_schedule: dict[str, list[str]] = {}
        for iid in o.instance_ids:
            by_schedule.setdefault(o.schedules.get(iid, ""), []).append(iid)
        for name, ids in by_schedule.items():
            cs = compiled(services).get(name)
            state = cs.desired(dt.datetime.fromtimestamp(now, UTC)) if cs else None
            if cs is None or state is None or name in skip:
                continue
            try:
                found = services.adapter("ecs").describe_instances(instance_ids=ids)
                why = f"override {o.id} ended"
                act(services, name, cs, state, plan_id(o.id, name), active, now, instances=found, why=why)
            except ChatOpsError as exc:
                handed_back = False
                log.warning("could not end an override", extra={"override": o.id, "error": str(exc)})
        if handed_back:
            ovr.remove(services.store, o.id)


@capability.periodic("schedules.inventory", minute="*/10")
def report_unknown_schedules(services: Services) -> None:
    """Instances tagged with a schedule the policy does not have: reported once each (ops channel and
    log); they are left alone. Each run counts the tagged instances (one call); they are listed only
    when that count changed since the last listing, or that listing is a day old (a tag edited in place
    keeps the count)."""
    tag = services.policy.schedule_tag
    known = compiled(services)
    if not known:  # no schedules at all: the tag is not this bot's to judge
        return
    ecs = services.adapter("ecs")
    now = services.clock.time()
    total = ecs.count_instances(tags={tag: None})
    try:
        last = json.loads(services.store.get(INVENTORY) or "{}")
    except ValueError:
        last = {}
    if last.get("tag") == tag and last.get("total") == total and 0 <= now - last.get("at", 0) < LIST_EVERY:
        return
    found: dict[str, list[InstanceInfo]] = {}
    for i in ecs.describe_instances(tags={tag: None}):
        name = i.tags.get(tag, "")
        if name not in known:
            found.setdefault(name, []).append(i)
    channel = services.policy.events.ops_channel or notify_channel(services)
    for name, instances in sorted(found.items()):
        if not services.store.set_nx(f"schedules:unknown:{name}", "1", 30 * 86400):
            continue
        names = ", ".join(i.name or i.instance_id for i in instances[:10])
        more = f" and {len(instances) - 10} more" if len(instances) > 10 else ""
        log.warning(
            "instances name an unknown schedule", extra={"schedule": name, "instances": len(instances)}
        )
        if channel:
            known_names = ", ".join(f"`{n}`" for n in known) or "none"
            services.slack.post(
                channel,
                f":warning: {len(instances)} instance(s) carry `{tag}={escape(name)}`, but the policy has no "
                f"schedule `{escape(name)}` (it has {known_names}); they are left alone: {escape(names)}{more}.",
            )
    services.store.set(INVENTORY, json.dumps({"tag": tag, "total": total, "at": now}), 2 * LIST_EVERY)


def retry_no_stock(
    services: Services,
    name: str,
    cs: CompiledSchedule,
    acted: dict,
    now: float,
    overrides: list[ovr.Override],
) -> None:
    """Instances the schedule could not start for lack of stock (StopCharging gives the resources up):
    tried again every RETRY_EVERY seconds for RETRY_WINDOW, then escalated once to Slack."""
    jobs = [j for j in (acted.get("job"), *acted.get("retries", [])) if j]
    last = load_job(services.store, jobs[-1]) if jobs else None
    if last is None or not last.finished or acted.get("escalated"):
        return
    results = (last.state.get("results") or {}).values()
    failed = sorted(r["instance_id"] for r in results if r.get("code") == NO_STOCK)
    if not failed:
        return
    if now - acted["at"] >= RETRY_WINDOW:
        acted["escalated"] = True
        _remember(services, name, acted)
        channel = services.policy.events.ops_channel or notify_channel(services)
        minutes = round(RETRY_WINDOW / 60)
        log.warning(
            "a schedule could not start instances for lack of stock",
            extra={"schedule": name, "instances": failed},
        )
        if channel:
            services.slack.post(
                channel,
                f":rotating_light: Schedule `{name}` could not start {len(failed)} instance(s) for lack of stock "
                f"(`{NO_STOCK}`), tried for {minutes} min: {', '.join(failed[:20])}. Start them in another zone or "
                "with another instance type, or by hand once stock returns.",
            )
        return
    if now - acted.get("retried_at", acted["at"]) < RETRY_EVERY:
        return
    found = [
        i for i in services.adapter("ecs").describe_instances(instance_ids=failed) if i.status == "Stopped"
    ]
    pid = plan_id(name, acted["at"], "retry", len(jobs))
    act(services, name, cs, "running", pid, overrides, now, instances=found, why=f"retry: {NO_STOCK}")
    acted.setdefault("retries", []).append(pid)
    acted["retried_at"] = now
    _remember(services, name, acted)
