"""`/ecs audit [N]`: the most recent audit records (who, where, what, targets, decision, result)."""

from __future__ import annotations

from bot import blocks
from bot.commands import CommandRequest, Reply
from bot.errors import UserError
from bot.registry import Capability
from bot.render import SECONDS, local_time, plural, row

capability = Capability("handlers.audit")

USAGE = "/ecs audit [COUNT]"


@capability.subcommand(
    "/ecs",
    "audit",
    permission="ecs.audit",
    usage=USAGE,
    summary="Recent audit records (default 20, at most 100).",
)
def audit(req: CommandRequest) -> Reply:
    arg = req.args.strip()
    if arg and not arg.isdigit():
        raise UserError(f"`{arg}` is not a count.", USAGE)
    count = min(int(arg or 20), 100)
    if count < 1:
        raise UserError("The count must be at least 1.", USAGE)
    records = req.services.authz.recent(count)
    tz = req.services.timezone
    lines = []
    for r in records:
        targets = f" on {plural(len(r.targets), 'target')}" if r.targets else ""
        outcome = r.result or r.decision
        who = r.origin or f"<@{r.who}>"  # a schedule's or a runbook's change is not "by <@U…>"
        lines.append(
            row(
                local_time(r.time, tz, SECONDS),
                who,
                f"{r.what}{targets}",
                f"→ {outcome}",
                f"({r.detail})" if r.detail else "",
            )
        )
    text = "\n".join(lines) or "No audit records yet."
    return Reply(
        f"Last {len(records)} audit records",
        [blocks.section(f"*Audit — last {len(records)}*"), blocks.section(blocks.code(text))],
    )
