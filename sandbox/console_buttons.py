"""Which button `click` means.

Every message the console shows with buttons gets a number (`message 3`, printed after its buttons);
its buttons are [1], [2] … from the top. `click N` presses button N of the message shown last with
buttons (what is just above the prompt); `click N of M` presses button N of message M, which stays
reachable while Slack still shows its buttons. An edit that keeps buttons keeps the message's number;
an edit without buttons, or a deletion, retires them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

CLICK_USAGE = "usage: click N  or  click N of M  (button N of message M)"
_CLICK = re.compile(r"^(\d+)(?:\s+(?:of|in)\s+(?:message\s+|msg\s+|#)?(\d+))?$", re.IGNORECASE)


@dataclass
class Button:
    element: dict
    block: dict
    channel: str | None
    message_ts: str | None
    ephemeral: bool
    message: dict
    number: int = 0  # [N] within its message
    message_number: int = 0  # its message's number


@dataclass
class _Pending:
    key: tuple[str, str] | None
    ctx: dict
    buttons: list[Button] = field(default_factory=list)

    def add(self, block: dict, element: dict) -> int:
        ctx = self.ctx
        button = Button(element, block, ctx["channel"], ctx["ts"], ctx["ephemeral"], ctx["message"])
        self.buttons.append(button)
        button.number = len(self.buttons)
        return button.number


class ButtonBoard:
    def __init__(self) -> None:
        self._messages: dict[int, list[Button]] = {}  # message number → its buttons
        self._by_key: dict[tuple[str, str], int] = {}  # (channel, ts) → message number
        self._shown: list[int] = []  # message numbers with buttons, the one shown last at the end
        self._next = 1

    def start(self, channel: str | None, ts: str | None, ephemeral: bool, message: dict) -> _Pending:
        """A message about to be rendered; pass `.add` to render_blocks, then `finish` it."""
        key = (channel, ts) if channel and ts else None
        return _Pending(key, {"channel": channel, "ts": ts, "ephemeral": ephemeral, "message": message})

    def finish(self, pending: _Pending) -> int | None:
        """Register the rendered message's buttons; its message number, or None without buttons."""
        number = self._by_key.get(pending.key) if pending.key else None
        if not pending.buttons:
            if number is not None:
                self.retire(pending.key)
            return None
        if number is None:
            number, self._next = self._next, self._next + 1
            if pending.key:
                self._by_key[pending.key] = number
        for button in pending.buttons:
            button.message_number = number
        self._messages[number] = pending.buttons
        if number in self._shown:
            self._shown.remove(number)
        self._shown.append(number)
        return number

    def retire(self, key: tuple[str, str] | None) -> None:
        """The message was edited without buttons or deleted: its buttons are gone."""
        number = self._by_key.pop(key, None) if key else None
        if number is not None:
            self._messages.pop(number, None)
            if number in self._shown:
                self._shown.remove(number)

    def find(self, text: str) -> Button | str:
        """The button `click TEXT` means, or a one-line reason why there is none."""
        m = _CLICK.match(text.strip())
        if m is None:
            return CLICK_USAGE
        n = int(m.group(1))
        if m.group(2) is None:
            if not self._shown:
                return f"there is no button [{n}] — no message with buttons is shown yet"
            message = self._shown[-1]
        else:
            message = int(m.group(2))
            if message not in self._messages:
                known = ", ".join(str(k) for k in self._shown) or "none"
                return f"there is no message {message} with buttons (messages with buttons: {known})"
        buttons = self._messages[message]
        if not 1 <= n <= len(buttons):
            has = "only [1]" if len(buttons) == 1 else f"[1]–[{len(buttons)}]"
            return f"there is no button [{n}] in message {message} (it has {has}; buttons are numbered per message)"
        return buttons[n - 1]
