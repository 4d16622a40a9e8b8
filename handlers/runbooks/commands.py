"""`/ecs runbook …`: the policy's runbooks, their runs, and starting one from chat.

    /ecs runbook list
    /ecs runbook show NAME                 steps, trigger, next cron time in local time, last 10 runs
    /ecs runbook run NAME [KEY=VALUE ...]  preview (the rendered steps and their targets), then Confirm
    /ecs runbook status RUN_ID
    /ecs runbook cancel RUN_ID             the current step stops, then its `on_failure` steps run

Reading (`ecs.runbook.list`, `show`, `status`) is open to everyone; running or cancelling one needs
`ecs.runbook.NAME`, decided with the instances its steps target (scopes apply), and where the policy's
`approvals` apply, a second person approves before it starts.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

from bot import blocks
from bot.authz import Actor
from bot.commands import CommandRequest, Reply
from bot.errors import UserError
from bot.pipeline.gates import propose
from bot.pipeline.jobs import load_job, wake_job
from bot.pipeline.plans import Origin, Plan, targets_of
from bot.registry import Capability
from bot.render import escape, local_time, plural, table
from bot.selectors import parse_selector, tokenize
from handlers.ecs.lookup import answer, resolve
from handlers.ecs.run_templates import check_values
from handlers.runbooks import machine
from handlers.runbooks import render as look
from handlers.runbooks.job import RUN_KIND, book_of, cancel_key, running_runs, runs_key
from handlers.runbooks.model import Runbook, next_fire

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.runbooks.commands")
capability.read_permissions("ecs.runbook.list", "ecs.runbook.show", "ecs.runbook.status")
capability.permissions("ecs.runbook.*")

USAGE = "/ecs runbook list | show NAME | run NAME [KEY=VALUE ...] | status RUN_ID | cancel RUN_ID"
LAST_RUNS = 10


@capability.subcommand(
    "/ecs",
    "runbook",
    permission="ecs.runbook.list",
    usage=USAGE,
    summary="Multi-step runbooks from the policy file: list, show, run (preview, then Confirm), status, cancel.",
    authorizes_targets=True,
)
def runbook(req: CommandRequest) -> Reply:
    verb, _, rest = req.args.strip().partition(" ")
    handler = VERBS.get(verb.lower() or "list")
    if handler is None:
        raise UserError(f"`{escape(verb)}` is not a runbook command.", USAGE)
    return handler(req, rest.strip())


def runbooks(services: Services) -> dict[str, Runbook]:
    return services.policy.runbooks


def named(services: Services, name: str) -> Runbook:
    books = runbooks(services)
    if not name or name not in books:
        known = ", ".join(f"`{n}`" for n in books) or "none (the policy file has no `runbooks`)"
        said = f"There is no runbook `{escape(name)}`." if name else "Name the runbook."
        raise UserError(f"{said} Runbooks: {known}.", USAGE)
    return books[name]


def _zone(services: Services):
    return services.timezone


def _next(services: Services, book: Runbook) -> str:
    now = dt.datetime.fromtimestamp(services.clock.time(), dt.UTC)
    at = next_fire(book, now, services.policy.timezone)
    return local_time(at, at.tzinfo, "%a %Y-%m-%d %H:%M %Z") if at else "—"


def list_runbooks(req: CommandRequest, rest: str) -> Reply:
    req.authorize("ecs.runbook.list", detail="/ecs runbook list")
    books = runbooks(req.services)
    if not books:
        text = "No runbooks yet: add a `runbooks:` section to the policy file (see policy.example.yaml)."
        return Reply(text, [blocks.section(text)])
    rows = [
        (name, str(len(b.steps)), b.trigger.cron or "chat only", _next(req.services, b))
        for name, b in books.items()
    ]
    body = [
        blocks.section(f"*Runbooks* ({len(rows)})"),
        blocks.section(blocks.code(escape(table(("NAME", "STEPS", "TRIGGER", "NEXT"), rows)))),
        blocks.context(
            "`/ecs runbook show NAME` for its steps and last runs; `/ecs runbook run NAME` to start one."
        ),
    ]
    return Reply(f"{len(rows)} runbooks", body)


def show_runbook(req: CommandRequest, rest: str) -> Reply:
    req.authorize("ecs.runbook.show", detail=f"/ecs runbook show {rest}")
    services, name = req.services, rest.split(" ")[0]
    book = named(services, name)
    lines = [f"{n}. *{escape(s.label)}* {escape(look.describe(s))}" for n, s in enumerate(book.steps, 1)]
    lines += [f"↳ recovery *{escape(s.label)}* {escape(look.describe(s))}" for s in book.recovery]
    trigger = []
    if book.trigger.cron:
        zone = book.trigger.timezone or services.policy.timezone or "UTC"
        trigger.append(f"cron `{book.trigger.cron}` ({zone}), next {_next(services, book)}")
    if book.trigger.event:
        ev = book.trigger.event
        trigger.append(
            f"ECS event `{escape(ev.name)}`" + (f" on `{escape(ev.selector)}`" if ev.selector else "")
        )
    trigger.append("chat: " + look.usage_with_params(name, book).replace("\n", "; "))
    body = [
        blocks.section(
            f"*Runbook {escape(name)}*" + (f" — {escape(book.description)}" if book.description else "")
        ),
        blocks.section("\n".join(lines)),
        blocks.context(" · ".join(trigger) + f" · {book.concurrency} run(s) at a time"),
    ]
    runs = services.store.zrange_by_score(runs_key(name), 1, float("inf"), limit=500)[-LAST_RUNS:]
    rows = []
    for run_id in reversed(runs):
        record = load_job(services.store, run_id)
        if record is None:
            continue
        outcome = (
            machine.outcome(record.state)
            if record.finished and record.state.get("queue") is not None
            else record.status
        )
        if record.state.get("refused"):
            outcome = "refused"
        started = local_time(record.created_at, req.viewer_zone(), "%m-%d %H:%M")
        rows.append((run_id, started, record.plan.origin.audit_label() or record.plan.origin.name, outcome))
    if rows:
        body.append(
            blocks.section(
                "*Last runs*\n" + blocks.code(escape(table(("RUN", "STARTED", "BY", "RESULT"), rows)))
            )
        )
    else:
        body.append(blocks.context("No runs yet."))
    return Reply(f"Runbook {name}", body)


def parse_run(args: str, usage: str = USAGE) -> tuple[str, dict[str, str]]:
    tokens = tokenize(args, usage)
    if not tokens:
        raise UserError("Name the runbook: `/ecs runbook run NAME [KEY=VALUE ...]`.", usage)
    params = {}
    for pair in tokens[1:]:
        key, eq, value = pair.partition("=")
        if not eq or not key:
            raise UserError(f"`{escape(pair)}` is not KEY=VALUE.", usage)
        params[key] = value
    return tokens[0], params


def run_runbook(req: CommandRequest, rest: str) -> Reply:
    return answer(replace(req, args=rest), "runbook")


@capability.builder("runbook")
def build_preview(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
    name, given = parse_run(args)
    book = named(services, name)
    usage = look.usage_with_params(name, book)
    values = check_values(f"Runbook `{escape(name)}`", book.params, given, usage)
    permission = f"ecs.runbook.{name}"
    services.authz.precheck(actor, permission, detail=f"/ecs runbook run {args}")
    run_id = "rb" + uuid.uuid4().hex[:14]
    plan = plan_run(
        services,
        name,
        book,
        values,
        run_id,
        Origin(kind="user", name=actor.user_id, channel=actor.channel_id),
        deadline,
    )
    services.authz.authorize(actor, permission, plan.authz_targets(), detail=f"/ecs runbook run {args}")
    others = running_runs(services, name)
    if len(others) >= book.concurrency:
        return Reply(
            f":no_entry: Runbook `{escape(name)}` is running already (run `{others[0]}`, "
            f"`/ecs runbook status {others[0]}`); it allows {book.concurrency} at a time."
        )
    return propose(services, plan)


def plan_run(
    services: Services,
    name: str,
    book: Runbook,
    values: dict,
    run_id: str,
    origin: Origin,
    deadline: float | None = None,
) -> Plan:
    """The run's plan: every step as it will run (rendered where it reads only the parameters), the
    instances its selectors match now (what authorization and approval rules see)."""
    ctx = machine.context(book, machine.start_state(book, run_id, name, values))
    lines, targets = [], {}
    for n, step in enumerate(book.steps, 1):
        said = look.describe(step)
        said = machine.render(said, ctx) if machine.can_render(said, ctx) else said
        line = f"{n}. *{escape(step.label)}* {escape(said)}"
        if step.selector and machine.can_render(step.selector, ctx):
            found = resolve(services, parse_selector(machine.render(step.selector, ctx)), deadline)
            targets.update((i.instance_id, i) for i in found)
            names = ", ".join(escape(i.name or i.instance_id) for i in found[:5])
            more = f" and {len(found) - 5} more" if len(found) > 5 else ""
            line += f"\n      → {plural(len(found), 'instance')}" + (f": {names}{more}" if found else "")
        lines.append(line)
    now = services.clock.time()
    return Plan(
        id=run_id,
        kind=RUN_KIND,
        permission=f"ecs.runbook.{name}",
        origin=origin,
        summary=f"run runbook {name}",
        created_at=now,
        expires_at=now + services.policy.confirmation.ttl_seconds,
        targets=targets_of(targets.values()),
        body={"name": name, "book": book.model_dump(mode="json"), "params": values, "lines": lines},
    )


def _run_record(services: Services, run_id: str):
    record = load_job(services.store, run_id) if run_id else None
    if record is None or record.plan.kind != RUN_KIND:
        raise UserError(
            f"No runbook run `{escape(run_id)}` is known here (runs are kept for 7 days).",
            "/ecs runbook status RUN_ID · /ecs runbook cancel RUN_ID",
        )
    return record


def status(req: CommandRequest, rest: str) -> Reply:
    req.authorize("ecs.runbook.status", detail=f"/ecs runbook status {rest}")
    services = req.services
    record = _run_record(services, rest.split(" ")[0])
    plan, state = record.plan, record.state
    book = book_of(plan)
    if "queue" not in state:
        return Reply(f"Runbook `{plan.body['name']}` run `{plan.id}` is queued.")
    outcome = machine.outcome(state) if record.finished else None
    took = (record.finished_at - record.created_at) if record.finished and record.finished_at else None
    text, body = look.run_message(
        plan.body["name"],
        plan.id,
        book,
        state,
        services.clock.time(),
        plan.origin.mention(),
        outcome=outcome,
        seconds=took,
        values=machine.context(book, state),
    )
    return Reply(text, body)


def cancel(req: CommandRequest, rest: str) -> Reply:
    services = req.services
    record = _run_record(services, rest.split(" ")[0])
    plan = record.plan
    req.authorize(plan.permission, plan.authz_targets(), detail=f"/ecs runbook cancel {plan.id}")
    if record.finished:
        return Reply(f":information_source: Run `{plan.id}` has finished already; nothing to cancel.")
    if not services.store.set_nx(cancel_key(plan.id), req.actor.user_id, 7 * 86400):
        return Reply(f":information_source: Run `{plan.id}` is being cancelled already.")
    if record.status == "waiting":
        wake_job(services, plan.id)
    return Reply(
        f":no_entry_sign: Cancelling runbook `{escape(plan.body['name'])}` run `{plan.id}`: the current step "
        "stops, then its `on_failure` steps run. The run's message shows the outcome.",
        ephemeral=False,
    )


VERBS = {"list": list_runbooks, "show": show_runbook, "run": run_runbook, "status": status, "cancel": cancel}
