"""`/ecs help` and `/incident help`: what the caller may run, with usage."""

from __future__ import annotations

from bot import blocks
from bot.commands import CommandRequest, Reply
from bot.home import access_notes, where_note
from bot.registry import DEFAULT, Capability
from bot.render import plural

capability = Capability("handlers.help")

INTROS = {
    "/ecs": "Alibaba Cloud ECS from Slack: find instances, start / stop / reboot them (preview, then Confirm), "
    "and follow their lifecycle.",
    "/incident": "PagerDuty incidents from Slack.",
}


def render_help(req: CommandRequest) -> Reply:
    authz = req.services.authz
    specs = sorted(
        (s for s in req.services.registry.subcommands_of(req.command) if s.name != DEFAULT),
        key=lambda s: (s.name != "help", s.name),
    )
    allowed = [s for s in specs if authz.allowed(req.actor, s.permission)]
    hidden = len(specs) - len(allowed)
    lines = [
        f"`{s.usage}`\n      {s.summary}{where_note(req.services, req.actor, s.permission)}" for s in allowed
    ]
    body = [
        blocks.section(f"*{req.command}* — {INTROS.get(req.command, '')}"),
        blocks.section("\n".join(lines) or "_Nothing you may run here._"),
    ]
    notes = []
    roles = authz.roles_of(req.actor)
    if req.actor.user_id in authz.admins:
        notes.append("You are a bootstrap admin: every command is open to you.")
    elif roles:
        notes.append("Your roles: " + ", ".join(roles) + ".")
    if hidden:
        verb = "needs" if hidden == 1 else "need"
        notes.append(f"{plural(hidden, 'more sub-command')} {verb} a role you do not have; ask an admin.")
    if req.command == "/ecs":
        notes += access_notes(req.services, req.actor)
        notes.append(
            "Selectors: a name (`prod-web-03`), `i-…` ids (comma-separated), `tag:key=value`, `tag:key`, `name:web-*`, `status:running`, `region:cn-hangzhou`."
        )
    if notes:
        body.append(blocks.context(*notes))
    text = f"{req.command} — " + ", ".join(s.name for s in allowed)
    return Reply(text, body)


@capability.subcommand("/ecs", "help", permission="ecs.help", usage="/ecs help", summary="This help.")
def ecs_help(req: CommandRequest) -> Reply:
    return render_help(req)


@capability.subcommand(
    "/incident", "help", permission="incident.help", usage="/incident help", summary="This help."
)
def incident_help(req: CommandRequest) -> Reply:
    return render_help(req)
