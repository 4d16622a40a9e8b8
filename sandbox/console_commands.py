"""Console commands contributed by other modules (an emulator's `inject`, the bot's `clock`):

    @console_command("inject", "inject KIND INSTANCE   what it does")
    def inject(console, rest: str) -> bool: ...     # True: the step passed

The console dispatches a line whose first word is a registered name to its function and lists the
usage lines in `help`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# name → (usage line, fn(console, rest) -> bool)
EXTRA_COMMANDS: dict[str, tuple[str, Callable[[Any, str], bool]]] = {}


def console_command(name: str, usage: str):
    def register(fn):
        EXTRA_COMMANDS[name] = (usage, fn)
        return fn

    return register
