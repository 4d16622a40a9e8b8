"""`/ecs run …`: build the run plan (free text or a template), answer with the preview; `status` and
`stop` of a run by its InvokeId. The work is the `ecs.run` plan kind (handlers.ecs.run_job); stopping is
the `ecs.run.stop` kind (handlers.ecs.run_stop).

Free text needs `ecs.run`, a template `ecs.run.template.NAME`; both are decided with the targets (the
dispatcher lets everyone reach the command: `ecs.run.status` is a read permission). Nothing writes to
ECS before Confirm; every refusal comes before any call that changes anything.
"""

from __future__ import annotations

import difflib
import uuid
from typing import TYPE_CHECKING

from bot.authz import Actor
from bot.commands import CommandRequest, Reply
from bot.errors import Forbidden, UserError
from bot.pipeline.gates import propose
from bot.pipeline.plans import Origin, Plan, targets_of
from bot.registry import Capability
from bot.render import escape
from handlers.ecs.lookup import answer, default_region, resolve
from handlers.ecs.run_job import KIND, find_run, invoke_ids, run_plan, runs_of
from handlers.ecs.run_plan import (
    RUN_USAGE,
    build_run_plan,
    check_content,
    choose_type,
    nothing_runs,
    parse_run_args,
)
from handlers.ecs.run_render import progress, status_text
from handlers.ecs.run_stop import propose_stop
from handlers.ecs.run_templates import RunPolicy, render

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.ecs.run")
capability.policy_section("run", RunPolicy, RunPolicy)
capability.read_permissions("ecs.run.status")
capability.permissions("ecs.run", "ecs.run.template.*")


@capability.subcommand(
    "/ecs",
    "run",
    permission="ecs.run.status",
    usage=RUN_USAGE,
    summary="Run a command (or a policy template) on instances through Cloud Assistant: preview, then Confirm; live progress and every output as a file.",
    authorizes_targets=True,
)
def command(req: CommandRequest) -> Reply:
    first, _, rest = req.args.partition(" ")
    if first == "status":
        return status(req, rest.strip())
    if first == "stop":
        return propose_stop(req, rest.strip())
    return answer(req, "run")


@capability.builder("run")
def build(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
    return build_preview(services, actor, args, deadline)


def as_plan(run, origin: Origin) -> Plan:
    return Plan(
        id=run.plan_id,
        kind=KIND.name,
        permission=run.permission,
        origin=origin,
        summary=run.summary(),
        created_at=run.created_at,
        expires_at=run.expires_at,
        targets=targets_of(run.targets),
        body=run.as_dict(),
    )


def _template(services: Services, name: str):
    templates = services.policy.run.templates
    found = templates.get(name)
    if found is None:
        close = difflib.get_close_matches(name, list(templates), n=1)
        hint = f" Did you mean `{close[0]}`?" if close else ""
        known = ", ".join(f"`{t}`" for t in templates) or "none (the policy's `run.templates`)"
        raise UserError(f"There is no template `{escape(name)}`.{hint} Templates: {known}.", RUN_USAGE)
    return found


def build_preview(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
    request = parse_run_args(args)
    limits = services.policy.run
    if request.template:
        template = _template(services, request.template)
        text, _ = render(request.template, template, request.params, RUN_USAGE)
        kind, timeout = request.type or template.type, request.timeout or template.timeout_seconds
        permission = f"ecs.run.template.{request.template}"
    else:
        text, kind = request.command or "", request.type
        timeout = request.timeout or limits.default_timeout_seconds
        permission = "ecs.run"
    if timeout > limits.max_timeout_seconds:
        raise UserError(
            f"`--timeout` is at most {limits.max_timeout_seconds} s here (`run.max_timeout_seconds`).",
            RUN_USAGE,
        )
    check_content(text, limits.max_command_bytes)
    services.authz.precheck(actor, permission, detail=f"/ecs run {args}")
    instances = resolve(services, request.selector, deadline)
    region = default_region(services, request.selector)
    if not instances:
        return Reply(f"No instances match `{escape(request.selector.text())}` in {region}; nothing to run.")
    running = [i for i in instances if i.status == "Running"]
    kind = choose_type(kind, running or instances)
    agents = services.adapter("cloud_assistant").agents_running([i.instance_id for i in running], region)
    origin = Origin(kind="user", name=actor.user_id, channel=actor.channel_id)
    run = build_run_plan(
        request,
        text,
        kind,
        timeout,
        instances,
        agents,
        plan_id=uuid.uuid4().hex[:16],
        region=region,
        requester=actor.user_id,
        channel=actor.channel_id,
        now=services.clock.time(),
        ttl_seconds=services.policy.confirmation.ttl_seconds,
    )
    plan = as_plan(run, origin)
    detail = f"/ecs run {args}"  # as typed; then what runs, if the text typed is not it verbatim
    if request.template or text not in args:  # a rendered template, or Slack's escaping undone
        detail += f"\n---\n{text}"
    record = services.authz.authorize(actor, plan.permission, plan.authz_targets(), detail=detail)
    cap = services.policy.ecs.max_instances.get("run")
    if cap is not None and len(run.targets) > cap:
        message = (
            f"Refused: this would run on {len(run.targets)} instances, and the policy allows at most {cap} "
            "per `/ecs run`. Narrow the selector or ask an admin to raise `ecs.max_instances.run`."
        )
        services.authz.record_result(record, "refused", message[:300])
        raise Forbidden(message)
    if not run.targets:
        return Reply(nothing_runs(run))
    return propose(services, plan)


def status(req: CommandRequest, ident: str) -> Reply:
    services = req.services
    record = find_run(services, ident)
    req.authorize("ecs.run.status", detail=f"/ecs run status {ident}")
    plan = run_plan(record.plan)
    runs = runs_of(record.state)
    ids = invoke_ids(record.state)
    text = status_text(plan, runs, ids, record.finished)
    elapsed = (record.finished_at or services.clock.time()) - record.state.get("sent_at", record.created_at)
    names = {i.instance_id: i.name or i.instance_id for i in plan.targets}
    phase = "finished" if record.finished else (record.phase or "queued")
    _, body = progress(plan, runs, ids, elapsed, phase, names)
    return Reply(text, body)
