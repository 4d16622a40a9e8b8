"""The App Home tab: what the bot does and what this user may run, and where (scopes)."""

from __future__ import annotations

from bot import blocks
from bot.access_policy import APPROVE
from bot.authz import Actor
from bot.registry import DEFAULT


def where_note(services, actor: Actor, permission: str) -> str:
    """ " — only on `tag:env=dev`" when the caller's roles hold the permission on some instances only."""
    scopes = services.authz.scopes_of(actor, permission)
    return " — _only on " + " or ".join(f"`{s}`" for s in scopes) + "_" if scopes else ""


def access_notes(services, actor: Actor) -> list[str]:
    """What the caller should know about the two-person rule and approving."""
    notes = []
    for rule in services.policy.approvals:
        where = f" in <#{rule.channel}>" if rule.channel else ""
        notes.append(
            f"{', '.join(f'`{a}`' for a in rule.actions)} on {rule.describe()} needs a second person's "
            f"approval (Approve / Deny{where})."
        )
    if services.authz.allowed(actor, APPROVE):
        notes.append("You may approve other people's requests" + where_note(services, actor, APPROVE) + ".")
    return notes


def home_view(services, user_id: str) -> dict:
    actor = Actor(user_id)
    lines = []
    for _command, table in sorted(services.registry.commands.items()):
        seen = set()
        for spec in table.values():
            if spec.name in seen or spec.name == DEFAULT and len(table) > 1:
                continue
            seen.add(spec.name)
            if services.authz.allowed(actor, spec.permission):
                lines.append(f"`{spec.usage}` — {spec.summary}{where_note(services, actor, spec.permission)}")
    notes = access_notes(services, actor)
    return {
        "type": "home",
        "blocks": [
            blocks.header("ChatOps for Alibaba Cloud"),
            blocks.section(
                "ECS power actions (preview, Confirm, approval where the policy asks for it), PagerDuty "
                "incidents and on-call, and ECS events in the right channels."
            ),
            blocks.divider(),
            blocks.section(
                "\n".join(sorted(lines)) or "_Nothing is open to you yet; ask an admin for a role._"
            ),
            *([blocks.context(*notes)] if notes else []),
        ],
    }
