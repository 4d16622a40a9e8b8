"""Slash commands and buttons: the one dispatch path (parse → authorize → handle → reply).

A capability declares what it offers on its `Capability` (bot.registry); it never sees Bolt:

    @capability.subcommand("/ecs", "audit", permission="ecs.audit", usage="/ecs audit [N]", summary="…")
    def audit(req: CommandRequest) -> Reply: ...

    @capability.action("incident.ack", permission="incident.ack")
    def ack(req: ActionRequest) -> Reply: ...

    @capability.view("incident.note", permission="incident.note")     # a modal's submission
    def note(req: ViewRequest) -> Reply | ViewAnswer | None: ...

Every button carries a permission, checked before its handler runs. A command or button that acts on
targets declares `authorizes_targets` (or, for a plan's gates, the plan's permission): the dispatcher
only pre-checks that the caller holds the permission at all, and the decision that is audited is made
once the targets are known.

Errors become ephemeral answers (user errors with usage, upstream errors with the provider's request
id, bugs with a correlation id that is also logged). No stack trace reaches Slack.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.authz import Actor, AuditRecord
from bot.errors import ChatOpsError, Forbidden, UserError, new_correlation_id, user_message
from bot.registry import DEFAULT, HANDLER_AUTHORIZES
from bot.render import escape

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

MAX_COMMAND_CHARS = 4096


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

    def authorize(self, permission: str, targets: Iterable[Any] = (), detail: str | None = None):
        return self.services.authz.authorize(self.actor, permission, targets, detail)

    def viewer_zone(self) -> dt.tzinfo:
        return viewer_zone(self.services, self.actor.user_id)


def viewer_zone(services: Services, user_id: str | None) -> dt.tzinfo:
    """The caller's time zone (their Slack profile's) for answers only they see; else the team's."""
    name = services.slack.user_timezone(user_id) if user_id else None
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return services.timezone


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
    audit: AuditRecord | None = None
    trigger_id: str | None = None  # lets the handler open a modal (valid for 3 seconds)

    def authorize(self, permission: str, targets: Iterable[Any] = (), detail: str | None = None):
        return self.services.authz.authorize(self.actor, permission, targets, detail)

    def viewer_zone(self) -> dt.tzinfo:
        return viewer_zone(self.services, self.actor.user_id)


MAX_METADATA_CHARS = 3000  # Slack's limit on a view's private_metadata


@dataclass
class ViewRequest:
    """A modal's submission. `values` maps each input's action_id to what was entered or chosen;
    `metadata` is the JSON object the modal was opened with (bot.blocks.modal), `channel_id` its
    "channel" (where answers go)."""

    services: Services
    actor: Actor
    callback_id: str
    values: dict[str, str | None]
    metadata: dict[str, Any]
    audit: AuditRecord | None = None

    @property
    def channel_id(self) -> str | None:
        return self.actor.channel_id

    def authorize(self, permission: str, targets: Iterable[Any] = (), detail: str | None = None):
        return self.services.authz.authorize(self.actor, permission, targets, detail)


@dataclass
class ViewAnswer:
    """What a modal's submission is answered with: `errors` (block_id → why) keep the modal open with
    the reasons under the inputs; otherwise it closes and `reply`, if any, is shown to the submitter
    (ephemeral, in the modal's channel)."""

    errors: dict[str, str] | None = None
    reply: Reply | None = None
    channel_id: str | None = None


def _fail(exc: BaseException, what: str) -> Reply:
    if isinstance(exc, ChatOpsError):
        log.info("request refused", extra={"what": what, "error": str(exc), "kind": type(exc).__name__})
        return Reply(user_message(exc))
    correlation_id = new_correlation_id()
    log.exception("bug while handling request", extra={"what": what, "correlation_id": correlation_id})
    return Reply(user_message(exc, correlation_id))


def _record_rejection(services: Services, req: CommandRequest, permission: str, exc: UserError) -> None:
    """A command that was allowed and then refused its arguments is audited as rejected (a refusal by
    the policy was audited where it was decided)."""
    if isinstance(exc, Forbidden):
        return
    if req.audit is not None:
        services.authz.record_result(req.audit, "rejected", exc.message[:300])
        return
    services.authz.append(
        AuditRecord(
            who=req.actor.user_id,
            channel=req.actor.channel_id,
            what=permission,
            targets=[],
            decision="allow",
            result="rejected",
            detail=f"{req.command} {req.name} {req.args}".strip() + f": {exc.message}"[:300],
        )
    )


def dispatch_command(services: Services, payload: dict[str, Any]) -> Reply:
    """Run a slash command payload (the form fields Slack sends) and return the answer to ack with."""
    command = str(payload.get("command") or "")
    raw = str(payload.get("text") or "")
    if len(raw) > MAX_COMMAND_CHARS:  # never sent on to a vendor API (ECS answers 414, and so on)
        return Reply(
            f":warning: That is {len(raw):,} characters; a command takes at most {MAX_COMMAND_CHARS:,}. "
            f"Try `{escape(command[:40])} help`."
        )
    text = " ".join(raw.split())
    actor = Actor(str(payload.get("user_id") or ""), payload.get("channel_id"), payload.get("user_name"))
    registry = services.registry
    table = registry.commands.get(command)
    if not table:
        known = ", ".join(f"`{c}`" for c in sorted(registry.commands))
        return Reply(
            f":warning: `{escape(command)}` is not a command this bot knows. Its commands: {known} "
            "(each has `help`, e.g. `/ecs help`)."
        )
    first, _, rest = text.partition(" ")
    # the arguments keep their inner spacing and line breaks (a command sent to Cloud Assistant is
    # taken as typed); each handler tokenizes what it needs
    body = raw.strip()
    rest = body[len(body.split(None, 1)[0]) :].strip() if body else ""
    spec = table.get(first.lower())
    if spec is None and DEFAULT in table:
        spec, rest = table[DEFAULT], body
    if spec is None and not first:
        spec = table.get("help")
    if spec is None:
        names = [s.name for s in registry.subcommands_of(command) if s.name]
        close = difflib.get_close_matches(first.lower(), names, n=1, cutoff=0.6)
        hint = f" Did you mean `{command} {close[0]}`?" if close else ""
        known = ", ".join(f"`{n}`" for n in names)
        return Reply(
            f":warning: Unknown sub-command `{escape(first)}`.{hint} Try `{command} help` (known: {known})."
        )
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
        detail = f"{command} {text}".strip()
        if spec.authorizes_targets:  # the handler decides once it knows the targets
            services.authz.precheck(actor, spec.permission, detail=detail)
        else:
            req.audit = req.authorize(spec.permission, detail=detail)
        reply = spec.handler(req)
    except UserError as exc:
        if exc.usage is None and not isinstance(exc, Forbidden):
            exc.usage = spec.usage
        _record_rejection(services, req, spec.permission, exc)
        return _fail(exc, f"{command} {spec.name}")
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a correlation id
        return _fail(exc, f"{command} {spec.name}")
    return reply


def action_value(act: dict[str, Any]) -> str:
    """What an interactive element carries: a button's value, the chosen option of an overflow menu or
    a select, or the user a user picker chose."""
    option = act.get("selected_option")
    if isinstance(option, dict) and isinstance(option.get("value"), str):
        return option["value"]
    if isinstance(act.get("selected_user"), str):
        return act["selected_user"]
    return str(act.get("value") or "")


def dispatch_action(services: Services, payload: dict[str, Any]) -> list[Reply]:
    """Run each button in a block_actions payload; returns the replies (usually one)."""
    user = payload.get("user") or {}
    channel = (payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id")
    container = payload.get("container") or {}
    actor = Actor(str(user.get("id") or ""), channel, user.get("username") or user.get("name"))
    replies: list[Reply] = []
    for act in payload.get("actions") or []:
        action_id = str(act.get("action_id") or "")
        spec = services.registry.actions.get(action_id)
        if spec is None:
            replies.append(Reply(f":warning: This button (`{action_id}`) is no longer supported."))
            continue
        req = ActionRequest(
            services=services,
            actor=actor,
            action_id=action_id,
            value=action_value(act),
            channel_id=channel,
            message_ts=container.get("message_ts") or (payload.get("message") or {}).get("ts"),
            response_url=payload.get("response_url"),
            message=payload.get("message") or {},
            trigger_id=payload.get("trigger_id"),
        )
        try:
            detail = f"button {action_id}"
            if spec.permission in HANDLER_AUTHORIZES:
                pass  # a plan's gate, or the chosen option, authorizes with its permission and targets
            elif spec.authorizes_targets:
                services.authz.precheck(actor, spec.permission, detail=detail)
            else:
                req.audit = req.authorize(spec.permission, detail=detail)
            reply = spec.handler(req)
        except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a correlation id
            reply = _fail(exc, f"button {action_id}")
        if reply is not None:
            replies.append(reply)
    return replies


def _input_value(element: Any) -> str | None:
    if not isinstance(element, dict):
        return None
    if isinstance(element.get("value"), str):
        return element["value"]
    return action_value(element) or None


def view_values(view: dict[str, Any]) -> dict[str, str | None]:
    """The submitted inputs of a view, by action_id (text typed, option or user chosen)."""
    values: dict[str, str | None] = {}
    state = ((view.get("state") or {}).get("values")) or {}
    for block in state.values() if isinstance(state, dict) else ():
        if isinstance(block, dict):
            for action_id, element in block.items():
                values[str(action_id)] = _input_value(element)
    return values


def view_metadata(view: dict[str, Any]) -> dict[str, Any]:
    """The JSON object a modal carries in private_metadata ({} when absent or not an object)."""
    raw = view.get("private_metadata")
    if not isinstance(raw, str) or not raw or len(raw) > MAX_METADATA_CHARS:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def dispatch_view(services: Services, payload: dict[str, Any]) -> ViewAnswer:
    """Run a view_submission payload through the handler its callback_id names."""
    user = payload.get("user") or {}
    view = payload.get("view") or {}
    callback_id = str(view.get("callback_id") or "")
    metadata = view_metadata(view)
    channel = metadata.get("channel")
    channel = channel if isinstance(channel, str) and channel else None
    req = ViewRequest(
        services=services,
        actor=Actor(str(user.get("id") or ""), channel, user.get("username") or user.get("name")),
        callback_id=callback_id,
        values=view_values(view),
        metadata=metadata,
    )
    spec = services.registry.views.get(callback_id)
    if spec is None:
        reply = Reply(":warning: This form is no longer supported; nothing was changed.")
        return ViewAnswer(reply=reply, channel_id=req.channel_id)
    try:
        detail = f"form {callback_id}"
        if spec.authorizes_targets:
            services.authz.precheck(req.actor, spec.permission, detail=detail)
        else:
            req.audit = req.authorize(spec.permission, detail=detail)
        answer = spec.handler(req)
    except Exception as exc:  # noqa: BLE001 - the one place that turns bugs into a correlation id
        answer = _fail(exc, f"form {callback_id}")
    if isinstance(answer, ViewAnswer):
        return answer
    return ViewAnswer(reply=answer, channel_id=req.channel_id)
