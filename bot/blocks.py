"""Block Kit builders: small functions that return the dicts Slack expects, within Slack's limits.

Slack refuses a message whose blocks break a limit (`invalid_blocks`), so the builders never do: text
too long is cut and says so ("… (120 more characters cut)"), and text shorter than one character (which
Slack also refuses) becomes a dash. Limits: section text 3000, fields ≤ 10 of ≤ 2000, header 150,
context ≤ 10 elements, button text 75 and value 2000, actions ≤ 25 elements, 50 blocks a message.
"""

from __future__ import annotations

import json
from typing import Any

SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
HEADER_LIMIT = 150
BUTTON_LIMIT = 75
VALUE_LIMIT = 2000
MAX_FIELDS = 10
MAX_CONTEXT = 10
MAX_ACTIONS = 25
MAX_BLOCKS = 50
EMPTY = "—"  # what stands for no text (Slack refuses text shorter than 1 character)


def _clip(text: str, limit: int = SECTION_LIMIT) -> str:
    """`text` in at most `limit` characters, never empty; a long cut says how much it cut."""
    if not text.strip():
        return EMPTY
    if len(text) <= limit:
        return text
    if limit < 500:  # headers, buttons: no room for a note
        return text[: limit - 1] + "…"
    keep = limit - 1
    while True:
        note = f"… ({len(text) - keep} more characters cut)"
        if keep + len(note) <= limit:
            return text[:keep] + note
        keep = limit - len(note)


def _mrkdwn(text: str, limit: int) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": _clip(text, limit)}


def header(text: str) -> dict[str, Any]:
    return {
        "type": "header",
        "text": {"type": "plain_text", "text": _clip(text, HEADER_LIMIT), "emoji": True},
    }


def section(text: str, fields: list[str] | None = None) -> dict[str, Any]:
    """A section; with `fields` and no text, the fields alone (never an empty text)."""
    block: dict[str, Any] = {"type": "section"}
    shown = [f for f in fields or [] if f.strip()][:MAX_FIELDS]
    if text.strip() or not shown:
        block["text"] = _mrkdwn(text, SECTION_LIMIT)
    if shown:
        block["fields"] = [_mrkdwn(f, FIELD_LIMIT) for f in shown]
    return block


def context(*texts: str) -> dict[str, Any]:
    shown = [t for t in texts if t.strip()][:MAX_CONTEXT] or [EMPTY]
    return {"type": "context", "elements": [_mrkdwn(t, SECTION_LIMIT) for t in shown]}


def divider() -> dict[str, Any]:
    return {"type": "divider"}


def button(text: str, action_id: str, value: str = "", style: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": _clip(text, BUTTON_LIMIT), "emoji": True},
        "action_id": action_id,
        "value": value[:VALUE_LIMIT],
    }
    if style in ("primary", "danger"):
        out["style"] = style
    return out


def actions(*elements: dict[str, Any], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": list(elements)[:MAX_ACTIONS]}
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
    return "```" + _clip(text, SECTION_LIMIT - 6) + "```"


def limit_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most 50 blocks; when there are more, the last one says how many were left out."""
    if len(blocks) <= MAX_BLOCKS:
        return blocks
    left_out = len(blocks) - (MAX_BLOCKS - 1)
    return [*blocks[: MAX_BLOCKS - 1], context(f"… {left_out} more blocks not shown")]
