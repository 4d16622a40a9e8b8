"""`/ecs list [SELECTOR]` and `/ecs status [SELECTOR]`: a compact, sorted table; long lists show their
head with "…and N more" and attach the full list as a file."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from bot import blocks
from bot.authz import Actor
from bot.commands import CommandRequest, Reply
from bot.ecs_model import InstanceInfo
from bot.errors import UpstreamError
from bot.intents import intent_for
from bot.registry import Capability
from bot.render import ago
from handlers.ecs.lookup import answer, default_region, resolve
from handlers.ecs.render import TABLE_ROWS, listing_tsv, more_note, plural, status_counts, table
from handlers.ecs.selectors import GRAMMAR, Selector, parse_selector

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.ecs.listing")

log = logging.getLogger(__name__)

LIST_USAGE = "/ecs list [SELECTOR]"
STATUS_USAGE = "/ecs status [SELECTOR]"


@capability.subcommand(
    "/ecs",
    "list",
    permission="ecs.list",
    usage=LIST_USAGE,
    summary="Instances matching a selector (the whole region without one): id, name, status, type, IP, tags.",
)
def list_instances(req: CommandRequest) -> Reply:
    return answer(req, "list")


@capability.subcommand(
    "/ecs",
    "status",
    permission="ecs.status",
    usage=STATUS_USAGE,
    summary="Status counts and the last action this bot took on each instance.",
)
def instance_status(req: CommandRequest) -> Reply:
    return answer(req, "status")


@capability.builder("list")
def build_list(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
    selector = parse_selector(args, f"{LIST_USAGE}\n{GRAMMAR}")
    return listing_reply(services, actor, selector, resolve(services, selector, deadline), "list")


@capability.builder("status")
def build_status(services: Services, actor: Actor, args: str, deadline: float | None) -> Reply:
    selector = parse_selector(args, f"{STATUS_USAGE}\n{GRAMMAR}")
    return listing_reply(services, actor, selector, resolve(services, selector, deadline), "status")


def _last_action(services: Services):
    now = services.clock.time()

    def note(inst: InstanceInfo) -> str:
        intent = intent_for(services.store, inst.instance_id)
        return f"{intent.action} ({intent.source}) {ago(now - intent.at)}" if intent else "-"

    return note


def listing_reply(
    services: Services, actor: Actor, selector: Selector, instances: list[InstanceInfo], kind: str
) -> Reply:
    region = default_region(services, selector)
    where = f" matching `{selector.text()}`" if selector.text() else ""
    missing = [i for i in selector.ids if i not in {x.instance_id for x in instances}]
    if not instances:
        text = f"No instances{where} in {region}."
        return Reply(text, [blocks.section(text)])
    title = f"*{plural(len(instances), 'instance')}*{where} in {region}"
    if kind == "status":
        title += f" — {status_counts(instances)}"
    note = _last_action(services) if kind == "status" else None
    body = [blocks.section(title), blocks.section(blocks.code(table(instances, TABLE_ROWS, note)))]
    attached = False
    if len(instances) > TABLE_ROWS and actor.channel_id:
        try:
            services.slack.upload_text(
                actor.channel_id,
                f"ecs-{kind}-{region}.tsv",
                listing_tsv(instances),
                title=f"ECS {kind}: {len(instances)} instances{where.replace('`', '')} in {region}",
            )
            attached = True
        except UpstreamError as exc:
            log.warning("could not attach the instance list", extra={"error": str(exc)})
    more = more_note(len(instances), TABLE_ROWS, attached)
    notes = [n for n in (more, f"Not found: {', '.join(missing)}" if missing else None) if n]
    if notes:
        body.append(blocks.context(*notes))
    return Reply(title.replace("*", ""), body)
