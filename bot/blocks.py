"""Block Kit builders: small functions that return the dicts Slack expects (limits applied here)."""

from __future__ import annotations

import json
from typing import Any

SECTION_LIMIT = 3000
MAX_BLOCKS = 50


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _clip(text, 150), "emoji": True}}


def section(text: str, fields: list[str] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text)}}
    if fields:
        block["fields"] = [{"type": "mrkdwn", "text": _clip(f, 2000)} for f in fields[:10]]
    return block


def context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _clip(t, 2000)} for t in texts[:10]]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str = "", style: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style in ("primary", "danger"):
        out["style"] = style
    return out


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)[:25]}
    if block_id:
        block["block_id"] = block_id
    return block


def _plain(text: str, limit: int) -> dict[str, Any]:
    return {"type": "plain_text", "text": _clip(text, limit), "emoji": True}


def option(text: str, value: str) -> dict[str, Any]:
    return {"text": _plain(text, 75), "value": value[:150]}


def overflow(action_id: str, options: list[dict[str, Any]]) -> dict[str, Any]:
    """The ⋯ menu: at most five options, each sent as the action's selected_option."""
    return {"type": "overflow", "action_id": action_id, "options": options[:5]}


def select(placeholder: str, action_id: str, options: list[dict[str, Any]]) -> dict[str, Any]:
    """A drop-down menu (static_select) of up to 100 options."""
    return {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": _plain(placeholder, 150),
        "options": options[:100],
    }


def _input(block_id: str, label: str, element: dict[str, Any], optional: bool, hint: str | None):
    block: dict[str, Any] = {
        "type": "input",
        "block_id": block_id,
        "label": _plain(label, 2000),
        "element": element,
        "optional": optional,
    }
    if hint:
        block["hint"] = _plain(hint, 2000)
    return block


def text_input(
    block_id: str,
    label: str,
    action_id: str,
    *,
    multiline: bool = False,
    max_length: int | None = None,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": action_id, "multiline": multiline}
    if max_length:
        element["max_length"] = max_length
    return _input(block_id, label, element, optional, hint)


def select_input(
    block_id: str,
    label: str,
    action_id: str,
    options: list[dict[str, Any]],
    *,
    optional: bool = False,
    hint: str | None = None,
) -> dict[str, Any]:
    element = {"type": "static_select", "action_id": action_id, "options": options[:100]}
    return _input(block_id, label, element, optional, hint)


def user_input(
    block_id: str, label: str, action_id: str, *, optional: bool = False, hint: str | None = None
) -> dict[str, Any]:
    return _input(block_id, label, {"type": "users_select", "action_id": action_id}, optional, hint)


def modal(
    callback_id: str, title: str, body: list[dict[str, Any]], submit: str, metadata: dict[str, Any]
) -> dict[str, Any]:
    """A modal view; `metadata` (a JSON object, e.g. the channel answers go to) comes back with its
    submission (bot.commands.ViewRequest.metadata)."""
    return {
        "type": "modal",
        "callback_id": callback_id,
        "title": _plain(title, 24),
        "submit": _plain(submit, 24),
        "close": _plain("Cancel", 24),
        "private_metadata": json.dumps(metadata, separators=(",", ":")),
        "blocks": body[:100],
    }


def code(text: str) -> str:
    """A preformatted mrkdwn block, clipped so the closing fence survives."""
    return "```" + _clip(text, SECTION_LIMIT - 7) + "```"


def limit_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return blocks[:MAX_BLOCKS]
