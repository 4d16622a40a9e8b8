"""Block Kit → readable terminal text, with numbered buttons."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]+)>")
_MENTION = re.compile(r"<@([A-Z0-9_]+)>")
_CHANNEL = re.compile(r"<#([A-Z0-9_]+)(\|[^>]*)?>")


def mrkdwn(text: str, names: dict[str, str] | None = None) -> str:
    names = names or {}
    text = _LINK.sub(r"\2 (\1)", text)
    text = _MENTION.sub(lambda m: "@" + names.get(m.group(1), m.group(1)), text)
    text = _CHANNEL.sub(lambda m: "#" + names.get(m.group(1), m.group(1)), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text_of(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("text") or "")
    return str(obj or "")


# Menus: each option is shown as a button of its own ("⋯" for an overflow menu, "▾" for a drop-down);
# clicking it sends the option as the menu's selected_option, as Slack does.
MENUS = {"overflow": "⋯", "static_select": "▾"}


def _menu(block: dict, menu: dict, number_button: Callable[[dict, dict], int]) -> list[str]:
    out = []
    for option in menu.get("options") or []:
        choice = {
            "type": menu["type"],
            "action_id": menu.get("action_id"),
            "selected_option": option,
            "text": option.get("text"),
        }
        out.append(f"[{number_button(block, choice)}] {MENUS[menu['type']]} {_text_of(option.get('text'))}")
    return out


def render_blocks(
    blocks: list[dict], number_button: Callable[[dict, dict], int], names: dict[str, str] | None = None
) -> list[str]:
    """Lines for the blocks; `number_button(block, element)` assigns the console number of a button."""
    lines: list[str] = []
    for block in blocks or []:
        kind = block.get("type")
        if kind == "header":
            lines.append("== " + _text_of(block.get("text")) + " ==")
        elif kind == "section":
            if block.get("text"):
                lines.extend(mrkdwn(_text_of(block["text"]), names).splitlines())
            for f in block.get("fields") or []:
                lines.append("  " + mrkdwn(_text_of(f), names).replace("\n", " "))
            acc = block.get("accessory")
            if isinstance(acc, dict) and acc.get("type") == "button":
                lines.append(f"  [{number_button(block, acc)}] {_text_of(acc.get('text'))}")
        elif kind == "context":
            parts = [mrkdwn(_text_of(e), names) for e in block.get("elements") or []]
            lines.append("  (" + " · ".join(p for p in parts if p) + ")")
        elif kind == "divider":
            lines.append("  ---")
        elif kind == "actions":
            buttons = []
            for el in block.get("elements") or []:
                if el.get("type") == "button":
                    style = {"primary": "*", "danger": "!"}.get(el.get("style") or "", "")
                    buttons.append(f"[{number_button(block, el)}] {style}{_text_of(el.get('text'))}")
            if buttons:
                lines.append("  " + "   ".join(buttons))
            for el in block.get("elements") or []:
                if el.get("type") in MENUS:
                    lines.append("  " + "   ".join(_menu(block, el, number_button)))
        elif kind == "rich_text":
            lines.append("  " + str(block)[:200])
    return [line.replace("```", "") for line in lines]
