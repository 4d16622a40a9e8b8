"""Slash commands and buttons: registration and the one dispatch path (parse → authorize → handle → reply).

A capability registers what it offers; it never sees Bolt:

    @subcommand("/ecs", "stop", permission="ecs.stop", usage="/ecs stop SELECTOR [--dry-run]",
                summary="Stop instances (preview, then Confirm)")
    def stop(req: CommandRequest) -> Reply: ...

    @action("ecs.confirm")
    def confirm(req: ActionRequest) -> Reply: ...

Errors become ephemeral answers (user errors with usage, upstream errors with the provider's request
id, bugs with a correlation id that is also logged). No stack trace reaches Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.authz import Actor, AuditRecord
from bot.errors import ChatOpsError, Forbidden, UserError, new_correlation_id, user_message

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


@dataclass
class Reply:
    """What the bot answers. `ephemeral` answers are seen by the caller only."""

    text: str
    blocks: list[dict] | None = None
    ephemeral: bool = True
    replace_original: bool = False
    delete_original: bool = False

    def as_ack(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "response_type": "ephemeral" if self.ephemeral else "in_channel",
        }
        if self.blocks:
            out["blocks"] = self.blocks
        return out

    def as_response(self) -> dict[str, Any]:
        out = self.as_ack()
        if self.replace_original:
            out["replace_original"] = True
        if self.delete_original:
            out["delete_original"] = True
        return out


@dataclass
class CommandRequest:
    services: Services
    actor: Actor
    command: str  # "/ecs"
    name: str  # "stop"
    args: str  # everything after the sub-command
    response_url: str | None = None
    trigger_id: str | None = None
    audit: AuditRecord | None = None

    def authorize(
        self, permission: str, targets: list[str] | tuple[str, ...] = (), detail: str | None = None
    ):
        return self.services.authz.authorize(self.actor, permission, targets, detail)


@dataclass
class ActionRequest:
    services: Services
    actor: Actor
    action_id: str
    value: str
    channel_id: str | None
    message_ts: str | None
    response_url: str | None
    message: dict = field(default_factory=dict)

    def authorize(
        self, permission: str, targets: list[str] | tuple[str, ...] = (), detail: str | None = None
    ):
        return self.services.authz.authorize(self.actor, permission, targets, detail)


@dataclass(frozen=True)
class Subcommand:
    command: str
    name: str
    permission: str
    usage: str
    summary: str
    handler: Callable[[CommandRequest], Reply]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ActionSpec:
    action_id: str
    handler: Callable[[ActionRequest], Reply | None]


_COMMANDS: dict[str, dict[str, Subcommand]] = {}
_ACTIONS: dict[str, ActionSpec] = {}
# A command without sub-commands (e.g. /oncall) registers the name "" as its default.
DEFAULT = ""


def subcommand(
    command: str, name: str, *, permission: str, usage: str, summary: str, aliases: tuple[str, ...] = ()
):
    def register(fn: Callable[[CommandRequest], Reply]):
        spec = Subcommand(command, name, permission, usage, summary, fn, aliases)
        table = _COMMANDS.setdefault(command, {})
        for key in (name, *aliases):
            table[key] = spec
        return fn

    return register


def action(action_id: str):
    def register(fn: Callable[[ActionRequest], Reply | None]):
        _ACTIONS[action_id] = ActionSpec(action_id, fn)
        return fn

    return register


def commands() -> dict[str, dict[str, Subcommand]]:
    return {k: dict(v) for k, v in _COMMANDS.items()}


def subcommands_of(command: str) -> list[Subcommand]:
    seen: dict[str, Subcommand] = {}
    for spec in _COMMANDS.get(command, {}).values():
        seen.setdefault(spec.name, spec)
    return list(seen.values())


def _fail(exc: BaseException, what: str) -> Reply:
    if isinstance(exc, ChatOpsError):
        log.info("request refused", extra={"what": what, "error": str(exc), "kind": type(exc).__name__})
        return Reply(user_message(exc))
    correlation_id = new_correlation_id()
    log.exception("bug while handling request", extra={"what": what, "correlation_id": correlation_id})
    return Reply(user_message(exc, correlation_id))


def dispatch_command(services: Services, payload: dict[str, Any]) -> Reply:
    """Run a slash command payload (the form fields Slack sends) and return the answer to ack with."""
    command = str(payload.get("command") or "")
    text = " ".join(str(payload.get("text") or "").split())
    actor = Actor(str(payload.get("user_id") or ""), payload.get("channel_id"), payload.get("user_name"))
    table = _COMMANDS.get(command)
    if not table:
        return Reply(f":warning: `{command}` is not a command this bot knows.")
    first, _, rest = text.partition(" ")
    spec = table.get(first.lower())
    if spec is None and DEFAULT in table:
        spec, rest = table[DEFAULT], text
    if spec is None and not first:
        spec = table.get("help")
    if spec is None:
        known = ", ".join(f"`{s.name}`" for s in subcommands_of(command) if s.name)
        return Reply(f":warning: Unknown sub-command `{first}`. Try `{command} help` (known: {known}).")
    req = CommandRequest(
        services=services,
        actor=actor,
        command=command,
        name=spec.name,
        args=rest.strip(),
        response_url=payload.get("response_url"),
        trigger_id=payload.get("trigger_id"),
    )
    try:
        req.audit = req.authorize(spec.permission, detail=f"{command} {text}".strip())
        reply = spec.handler(req)
    except UserError as exc:
        if exc.usage is None and not isinstance(exc, Forbidden):
            exc.usage = spec.usage
        return _fail(exc, f"{command} {spec.name}")
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a correlation id
        return _fail(exc, f"{command} {spec.name}")
    return reply


def dispatch_action(services: Services, payload: dict[str, Any]) -> list[Reply]:
    """Run each button in a block_actions payload; returns the replies (usually one)."""
    user = payload.get("user") or {}
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
    container = payload.get("container") or {}
    actor = Actor(str(user.get("id") or ""), channel, user.get("username") or user.get("name"))
    replies: list[Reply] = []
    for act in payload.get("actions") or []:
        action_id = str(act.get("action_id") or "")
        spec = _ACTIONS.get(action_id)
        if spec is None:
            replies.append(Reply(f":warning: This button (`{action_id}`) is no longer supported."))
            continue
        req = ActionRequest(
            services=services,
            actor=actor,
            action_id=action_id,
            value=str(act.get("value") or ""),
            channel_id=channel,
            message_ts=container.get("message_ts") or (payload.get("message") or {}).get("ts"),
            response_url=payload.get("response_url"),
            message=payload.get("message") or {},
        )
        try:
            reply = spec.handler(req)
        except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a correlation id
            reply = _fail(exc, f"button {action_id}")
        if reply is not None:
            replies.append(reply)
    return replies
