"""Block Kit builders: small functions that return the dicts Slack expects (limits applied here)."""

from __future__ import annotations

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


def code(text: str) -> str:
    """A preformatted mrkdwn block, clipped so the closing fence survives."""
    return "```" + _clip(text, SECTION_LIMIT - 7) + "```"


def limit_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return blocks[:MAX_BLOCKS]
