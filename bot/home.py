"""The App Home tab: what the bot does and what this user may run."""

from __future__ import annotations

from bot import blocks
from bot.authz import Actor
from bot.registry import DEFAULT


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
                lines.append(f"`{spec.usage}` — {spec.summary}")
    return {
        "type": "home",
        "blocks": [
            blocks.header("ChatOps for Alibaba Cloud"),
            blocks.section(
                "ECS power actions, Cloud Assistant commands, schedules, PagerDuty and ECS events."
            ),
            blocks.divider(),
            blocks.section(
                "\n".join(sorted(lines)) or "_Nothing is open to you yet; ask an admin for a role._"
            ),
        ],
    }
