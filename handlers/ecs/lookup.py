"""Resolving a selector to instances, within Slack's 3-second answer when possible.

A slash command tries to answer inline with a lookup budget of `INLINE_BUDGET` seconds. A selection too
large for that (thousands of instances, a slow API) is handed to the `ecs.lookup` job, which builds the
same answer without a deadline and delivers it through the command's response_url.
"""

from __future__ import annotations

import difflib
import logging
import time
from typing import TYPE_CHECKING

from bot.authz import Actor
from bot.commands import CommandRequest, Reply
from bot.ecs_model import InstanceInfo, LookupDeadline
from bot.errors import ChatOpsError, UserError, new_correlation_id, user_message
from bot.registry import Capability
from bot.render import escape
from handlers.ecs.plan import sort_instances
from handlers.ecs.selectors import Selector

if TYPE_CHECKING:
    from bot.services import Services

capability = Capability("handlers.ecs.lookup")

log = logging.getLogger(__name__)

INLINE_BUDGET = 2.0


# Answer builders are declared with `@capability.builder(kind)`:
# fn(services, actor, args, deadline) -> Reply; the deadline is None when run by the `ecs.lookup` job.
def default_region(services: Services, selector: Selector) -> str:
    return selector.region or services.settings.ALIBABA_CLOUD_REGION_ID


def resolve(services: Services, selector: Selector, deadline: float | None) -> list[InstanceInfo]:
    """Every instance the selector means, sorted by name. A region the account does not have is
    refused by name (ECS would answer with an empty list or an endpoint error)."""
    ecs = services.adapter("ecs")
    if selector.region:
        known = ecs.regions()
        if known and selector.region not in known:
            close = difflib.get_close_matches(selector.region, known, n=1)
            hint = f" Did you mean `region:{close[0]}`?" if close else ""
            raise UserError(
                f"`{escape(selector.region)}` is not a region of this account.{hint} Its regions: "
                + ", ".join(f"`{r}`" for r in known)
                + "."
            )
    found = ecs.describe_instances(
        region=default_region(services, selector),
        instance_ids=selector.ids or None,
        tags=selector.tag_filter() or None,
        status=selector.status,
        name=selector.name,
        deadline=deadline,
    )
    return sort_instances(found)


def answer(req: CommandRequest, kind: str) -> Reply:
    """Build the answer inline; past the budget, hand it to the task queue and say so."""
    try:
        build = req.services.registry.builders[kind]
        return build(req.services, req.actor, req.args, time.monotonic() + INLINE_BUDGET)
    except LookupDeadline:
        if not req.response_url:
            raise
    req.services.queue.enqueue(
        "ecs.lookup",
        kind=kind,
        args=req.args,
        user=req.actor.user_id,
        channel=req.actor.channel_id,
        response_url=req.response_url,
    )
    return Reply(
        ":hourglass_flowing_sand: That is a large selection; still looking it up — the answer follows here."
    )


@capability.job("ecs.lookup")
def lookup_job(
    services: Services, kind: str, args: str, user: str, channel: str | None, response_url: str
) -> None:
    actor = Actor(user, channel)
    try:
        reply = services.registry.builders[kind](services, actor, args, None)
    except ChatOpsError as exc:
        reply = Reply(user_message(exc))
    except Exception as exc:  # noqa: BLE001 - the user still gets an answer, the log gets the trace
        correlation_id = new_correlation_id()
        log.exception("ECS lookup failed", extra={"kind": kind, "correlation_id": correlation_id})
        reply = Reply(user_message(exc, correlation_id))
    services.slack.respond(response_url, reply.as_response())
