"""What starts a runbook besides a person: its cron (in its zone, DST-correct) and ECS events.

Both submit the run's plan through the pipeline with a non-user origin and an id derived from what
fired (the runbook and the cron time; the runbook and the event id), so two workers that see the same
minute, or an event delivered twice, start one run. Cron times are evaluated every minute
(`runbooks.cron`) under a store lock, level-triggered: a fire time missed while no worker ran (up to
CATCH_UP seconds ago) still starts its run.

    runbooks:cron:last    hash: runbook → the cron time last acted on (epoch seconds)

The policy's `runbooks` section is declared here (handlers.runbooks.model validates it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from typing import TYPE_CHECKING

from bot.access_policy import APPROVE, permission_matches
from bot.errors import ChatOpsError
from bot.pipeline.gates import submit
from bot.pipeline.plans import Origin
from bot.registry import Capability
from bot.selectors import parse_selector
from handlers.ecs.run_templates import check_values
from handlers.runbooks.commands import plan_run
from handlers.runbooks.model import Runbook, fires_between, validate_runbooks

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.runbooks.triggers")
log = logging.getLogger(__name__)

CRON = "runbooks.cron"
LAST = "runbooks:cron:last"
CATCH_UP = 300.0
RESERVED = ("list", "show", "run", "status", "cancel")


def _check(policy) -> None:
    validate_runbooks(policy.runbooks, policy.run.templates, policy.timezone)
    for name, book in policy.runbooks.items():
        if name in RESERVED:
            raise ValueError(f"runbooks.{name}: {name!r} is a word of `/ecs runbook`; choose another name")
        triggered = book.trigger.cron or book.trigger.event
        for key, param in book.params.items():
            if triggered and param.default is None:
                raise ValueError(
                    f"runbooks.{name}.params.{key}: a runbook with a trigger needs a default for every parameter"
                )
        for i, step in enumerate(book.all_steps()):
            for j, role in enumerate(step.approvers):
                found = policy.roles.get(role)
                if found is None or not permission_matches(found.permissions, APPROVE):
                    raise ValueError(
                        f"runbooks.{name}.steps[{i}].approvers[{j}]: {role!r} is not a role holding 'approve'"
                    )


capability.policy_section("runbooks", dict[str, Runbook], dict, check=_check)


def _id(*parts: object) -> str:
    return "rb" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20]


def start_triggered(services: Services, name: str, book: Runbook, run_id: str, origin: Origin) -> bool:
    """Submit a run with the parameters' defaults; False when this id was submitted before."""
    values = check_values(f"Runbook `{name}`", book.params, {}, "")
    plan = plan_run(services, name, book, values, run_id, origin)
    started = submit(services, plan)
    if started:
        log.info("runbook triggered", extra={"runbook": name, "run": run_id, "origin": origin.kind})
    return started


def channel_of(services: Services, book: Runbook) -> str | None:
    return (
        book.channel
        or services.policy.events.default_channel
        or services.settings.SLACK_NOTIFY_CHANNEL
        or None
    )


@capability.periodic(CRON, minute="*")
def fire_crons(services: Services) -> None:
    with services.store.lock("runbooks:cron", ttl=120, wait=30) as held:
        if not held:
            log.warning("another worker has held the runbooks' cron for 30 s; skipping this tick")
            return
        now = services.clock.time()
        for name, book in services.policy.runbooks.items():
            if not book.trigger.cron:
                continue
            try:
                fire_cron(services, name, book, now)
            except ChatOpsError as exc:  # one runbook's trouble must not hold the others back
                log.warning(
                    "could not start a runbook's cron run", extra={"runbook": name, "error": str(exc)}
                )


def fire_cron(services: Services, name: str, book: Runbook, now: float) -> bool:
    raw = services.store.hget(LAST, name)
    since = max(float(raw), now - CATCH_UP) if raw else now - CATCH_UP
    utc = dt.UTC
    due = fires_between(
        book,
        dt.datetime.fromtimestamp(since, utc),
        dt.datetime.fromtimestamp(now, utc),
        services.policy.timezone,
    )
    if due is None:
        return False
    origin = Origin(
        kind="runbook",
        name=f"{name} cron {due.strftime('%Y-%m-%d %H:%M %Z')}",
        channel=channel_of(services, book),
    )
    started = start_triggered(services, name, book, _id(name, "cron", due.timestamp()), origin)
    services.store.hset(LAST, name, str(due.timestamp()))
    return started


def on_ecs_event(
    services: Services, event_name: str, event_id: str, instance, system_event_id: str | None = None
) -> list[str]:
    """Start the runbooks whose `trigger.event` matches an ECS event (name, and the instance by the
    selector); the ids of the runs started. A trigger that names a system event without its status
    starts one run per system event (`system_event_id`): its later status notices start none."""
    started = []
    for name, book in services.policy.runbooks.items():
        ev = book.trigger.event
        if ev is None or not ev.matches(event_name):
            continue
        if ev.selector and (instance is None or not parse_selector(ev.selector).matches(instance)):
            continue
        per_system_event = bool(system_event_id) and ev.by_system_event(event_name)
        run_id = _id(name, "event", f"system:{system_event_id}" if per_system_event else event_id)
        origin = Origin(kind="event", name=event_id, channel=channel_of(services, book))
        if start_triggered(services, name, book, run_id, origin):
            started.append(run_id)
    return started
