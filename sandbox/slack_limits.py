"""Slack's documented limits on messages, Block Kit blocks and views, checked as Slack checks them.

Pure: `check_message(args)` and `check_view(view)` return None for what Slack accepts, else a `Refusal`
whose `body()` is Slack's answer — `{"ok": false, "error": "invalid_blocks", "errors": [...],
"response_metadata": {"messages": ["[ERROR] must be less than 3001 characters
[json-pointer:/blocks/0/text/text]"]}}`. The Slack emulator applies them to chat.*, views.* and
response_url posts; tests apply them to what the bot answers Slack directly (acknowledgements).

Limits (docs.slack.dev Block Kit reference): 50 blocks per message, 100 per view; section text 1-3000
characters, at most 10 fields of at most 2000; header plain_text 1-150; context 1-10 elements;
actions 1-25 elements; block_id and action_id at most 255; button text 1-75 (plain_text), value at
most 2000, url at most 3000; confirmation dialogs title 100, text 300, buttons 30; options text 75,
value 150; placeholders 150; a modal's title, submit and close 24. A message's `text` at most 40,000
characters (`msg_too_long`), at most 100 attachments (`too_many_attachments`), and something to show
(`no_text`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MESSAGE_BLOCKS = 50
VIEW_BLOCKS = 100
TEXT_LIMIT = 40_000
MAX_ATTACHMENTS = 100
ID_LIMIT = 255


@dataclass(frozen=True)
class Refusal:
    error: str
    errors: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": False, "error": self.error}
        if self.errors:
            out["errors"] = list(self.errors)
            out["response_metadata"] = {"messages": [f"[ERROR] {e}" for e in self.errors]}
        return out


class _Checker:
    """Collects `message [json-pointer:/path]` errors while walking a payload."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, pointer: str, message: str) -> None:
        self.errors.append(f"{message} [json-pointer:{pointer}]")

    def string(self, value: Any, pointer: str, limit: int, minimum: int = 0, required: bool = False) -> None:
        if value is None and not required:
            return
        if not isinstance(value, str):
            self.fail(pointer, "must provide a string")
        elif len(value) < minimum:
            self.fail(pointer, f"must be more than {minimum - 1} characters")
        elif len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def text(self, obj: Any, pointer: str, limit: int, plain: bool = False, required: bool = True) -> None:
        """A text object: plain_text (or mrkdwn where allowed) with 1 to `limit` characters."""
        if obj is None and not required:
            return
        if not isinstance(obj, dict):
            self.fail(pointer, "must provide an object")
            return
        if obj.get("type") not in (("plain_text",) if plain else ("plain_text", "mrkdwn")):
            self.fail(f"{pointer}/type", "must be a valid enum value")
        self.string(obj.get("text"), f"{pointer}/text", limit, minimum=1, required=True)

    def items(self, value: Any, pointer: str, most: int, least: int = 1) -> list:
        if not isinstance(value, list):
            self.fail(pointer, "must provide an array")
            return []
        if len(value) < least:
            self.fail(pointer, f"must provide at least {least} items")
        if len(value) > most:
            self.fail(pointer, f"no more than {most} items allowed")
        return value

    # blocks ----------------------------------------------------------------------------------------
    def blocks(self, blocks: Any, pointer: str, most: int) -> None:
        for i, block in enumerate(self.items(blocks, pointer, most, least=0)):
            self.block(block, f"{pointer}/{i}")

    def block(self, block: Any, p: str) -> None:
        if not isinstance(block, dict):
            self.fail(p, "must provide an object")
            return
        self.string(block.get("block_id"), f"{p}/block_id", ID_LIMIT)
        check = _BLOCKS.get(block.get("type"))
        if check is None:
            self.fail(f"{p}/type", "must be a valid enum value")
        else:
            check(self, block, p)

    def section(self, block: dict, p: str) -> None:
        if "text" not in block and "fields" not in block:
            self.fail(p, "must provide either text or fields")
        self.text(block.get("text"), f"{p}/text", 3000, required=False)
        if "fields" in block:
            for i, field in enumerate(self.items(block["fields"], f"{p}/fields", 10)):
                self.text(field, f"{p}/fields/{i}", 2000)
        if "accessory" in block:
            self.element(block["accessory"], f"{p}/accessory")

    def header(self, block: dict, p: str) -> None:
        self.text(block.get("text"), f"{p}/text", 150, plain=True)

    def context(self, block: dict, p: str) -> None:
        for i, el in enumerate(self.items(block.get("elements"), f"{p}/elements", 10)):
            if isinstance(el, dict) and el.get("type") == "image":
                self.image(el, f"{p}/elements/{i}")
            else:
                self.text(el, f"{p}/elements/{i}", 3000)

    def actions(self, block: dict, p: str) -> None:
        for i, el in enumerate(self.items(block.get("elements"), f"{p}/elements", 25)):
            self.element(el, f"{p}/elements/{i}")

    def image(self, block: dict, p: str) -> None:
        self.string(
            block.get("image_url"), f"{p}/image_url", 3000, minimum=1, required="slack_file" not in block
        )
        self.string(block.get("alt_text"), f"{p}/alt_text", 2000, minimum=1, required=True)
        self.text(block.get("title"), f"{p}/title", 2000, plain=True, required=False)

    def input(self, block: dict, p: str) -> None:
        self.text(block.get("label"), f"{p}/label", 2000, plain=True)
        self.text(block.get("hint"), f"{p}/hint", 2000, plain=True, required=False)
        self.element(block.get("element"), f"{p}/element")

    def markdown(self, block: dict, p: str) -> None:
        self.string(block.get("text"), f"{p}/text", 12000, minimum=1, required=True)

    # elements --------------------------------------------------------------------------------------
    def element(self, el: Any, p: str) -> None:
        if not isinstance(el, dict):
            self.fail(p, "must provide an object")
            return
        kind = el.get("type")
        if kind == "image":
            self.image(el, p)
            return
        if kind not in _ELEMENTS:
            self.fail(f"{p}/type", "must be a valid enum value")
            return
        self.string(el.get("action_id"), f"{p}/action_id", ID_LIMIT, minimum=1)
        self.text(el.get("placeholder"), f"{p}/placeholder", 150, plain=True, required=False)
        if "confirm" in el:
            self.confirm(el["confirm"], f"{p}/confirm")
        if kind == "button":
            self.text(el.get("text"), f"{p}/text", 75, plain=True)
            self.string(el.get("value"), f"{p}/value", 2000)
            self.string(el.get("url"), f"{p}/url", 3000)
            if "style" in el and el["style"] not in ("primary", "danger"):
                self.fail(f"{p}/style", "must be a valid enum value")
        elif "options" in el:
            most = 5 if kind == "overflow" else (10 if kind in ("radio_buttons", "checkboxes") else 100)
            for i, option in enumerate(self.items(el["options"], f"{p}/options", most)):
                self.option(option, f"{p}/options/{i}")

    def option(self, option: Any, p: str) -> None:
        if not isinstance(option, dict):
            self.fail(p, "must provide an object")
            return
        self.text(option.get("text"), f"{p}/text", 75)
        self.string(option.get("value"), f"{p}/value", 150, minimum=1, required=True)

    def confirm(self, dialog: Any, p: str) -> None:
        if not isinstance(dialog, dict):
            self.fail(p, "must provide an object")
            return
        self.text(dialog.get("title"), f"{p}/title", 100, plain=True)
        self.text(dialog.get("text"), f"{p}/text", 300)
        self.text(dialog.get("confirm"), f"{p}/confirm", 30, plain=True)
        self.text(dialog.get("deny"), f"{p}/deny", 30, plain=True)


def _accept(checker: _Checker, block: dict, pointer: str) -> None:
    """Blocks whose content is not limited here (dividers, rich text, files, videos)."""


_BLOCKS: dict[str, Callable[[_Checker, dict, str], None]] = {
    "section": _Checker.section,
    "header": _Checker.header,
    "context": _Checker.context,
    "actions": _Checker.actions,
    "image": _Checker.image,
    "input": _Checker.input,
    "markdown": _Checker.markdown,
    "divider": _accept,
    "rich_text": _accept,
    "file": _accept,
    "video": _accept,
}
_ELEMENTS = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "timepicker",
        "email_text_input",
        "number_input",
        "plain_text_input",
        "url_text_input",
        "overflow",
        "radio_buttons",
        "static_select",
        "external_select",
        "users_select",
        "conversations_select",
        "channels_select",
        "multi_static_select",
        "multi_external_select",
        "multi_users_select",
        "multi_conversations_select",
        "multi_channels_select",
        "rich_text_input",
        "file_input",
    }
)


def check_message(args: dict[str, Any]) -> Refusal | None:
    """chat.postMessage / postEphemeral / update, a response_url post or a slash command's answer."""
    text, blocks, attachments = args.get("text"), args.get("blocks"), args.get("attachments")
    if blocks is not None and not isinstance(blocks, list):
        return Refusal("invalid_blocks_format")
    if attachments is not None and not isinstance(attachments, list):
        return Refusal("invalid_attachments")
    if not text and not blocks and not attachments:
        return Refusal("no_text")
    if isinstance(text, str) and len(text) > TEXT_LIMIT:
        return Refusal("msg_too_long")
    if attachments and len(attachments) > MAX_ATTACHMENTS:
        return Refusal("too_many_attachments")
    checker = _Checker()
    if blocks:
        checker.blocks(blocks, "/blocks", MESSAGE_BLOCKS)
    for i, attachment in enumerate(attachments or []):
        if isinstance(attachment, dict) and "blocks" in attachment:
            checker.blocks(attachment["blocks"], f"/attachments/{i}/blocks", MESSAGE_BLOCKS)
    return Refusal("invalid_blocks", tuple(checker.errors)) if checker.errors else None


def check_view(view: Any) -> Refusal | None:
    """views.open / publish / update / push: Slack answers `invalid_arguments` with the pointers."""
    checker = _Checker()
    if not isinstance(view, dict):
        checker.fail("/view", "must provide an object")
        return Refusal("invalid_arguments", tuple(checker.errors))
    if view.get("type") not in ("modal", "home"):
        checker.fail("/view/type", "must be a valid enum value")
    if view.get("type") == "modal":
        checker.text(view.get("title"), "/view/title", 24, plain=True)
        for key in ("submit", "close"):
            checker.text(view.get(key), f"/view/{key}", 24, plain=True, required=False)
    checker.string(view.get("private_metadata"), "/view/private_metadata", 3000)
    checker.string(view.get("callback_id"), "/view/callback_id", ID_LIMIT)
    checker.blocks(view.get("blocks", []), "/view/blocks", VIEW_BLOCKS)
    return Refusal("invalid_arguments", tuple(checker.errors)) if checker.errors else None
