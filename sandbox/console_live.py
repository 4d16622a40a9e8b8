"""The interactive console: what the bot posts, edits and answers is shown as it happens.

A thread watches the Slack emulator's timeline and prints each new effect above the prompt while
nobody's command is running (a running command shows its own effects, in order, after its line).
On a terminal the prompt is prompt_toolkit's, under `patch_stdout`, so background output never garbles
the line being typed; otherwise (stdin or stdout not a terminal) it is plain lines from stdin, and background
output starts on a fresh line and repeats the prompt after it.
"""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext

PROMPT = "chatops> "


class LiveOutput:
    """Shows new effects every `interval` seconds unless a step holds `console.step_lock`."""

    def __init__(self, console, interval: float = 0.1, plain_prompt: bool = False):
        self.console = console
        self.interval = interval
        self.plain_prompt = plain_prompt  # re-print the prompt after background output (plain lines)
        self.prompting = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="console-live", daemon=True)

    def start(self) -> LiveOutput:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        console = self.console
        while not self._stop.wait(self.interval):
            if not console.has_new_effects() or not console.step_lock.acquire(blocking=False):
                continue
            try:
                with console.lock:
                    effects = console.take_new_effects()
                    fresh_line = bool(effects) and self.plain_prompt and self.prompting
                    if fresh_line:
                        console.out.write("\n")
                    console.show_effects(effects)
                    if fresh_line:
                        console.out.write(PROMPT)
                        console.out.flush()
            finally:
                console.step_lock.release()


def _reader() -> tuple[Callable[[str], str], AbstractContextManager, bool]:
    """(read a line, the context that keeps other output above the prompt, is it plain lines)."""
    if sys.stdin.isatty() and sys.stdout.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.patch_stdout import patch_stdout

        session: PromptSession[str] = PromptSession()
        return session.prompt, patch_stdout(raw=True), False
    return _plain_reader(), nullcontext(), True


def _plain_reader() -> Callable[[str], str]:
    """Lines of stdin read by a thread, so the main thread never blocks in a read: a signal (SIGTERM,
    SIGINT) that the kernel hands to another thread still reaches its Python handler within 0.2 s."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in sys.stdin:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    threading.Thread(target=pump, name="console-stdin", daemon=True).start()

    def read(prompt: str) -> str:
        while True:
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                raise EOFError
            return line

    return read


def interactive(console, banner: str, help_text: str) -> int:
    read, keep_above, plain = _reader()
    with keep_above:
        console.out = sys.stdout  # under patch_stdout: the proxy that prints above the prompt
        console.say(banner.rstrip("\n"))
        live = LiveOutput(console, plain_prompt=plain).start()
        try:
            return _loop(console, read, live, help_text)
        finally:
            live.stop()


def _read_line(console, read: Callable[[str], str], live: LiveOutput) -> str:
    if not live.plain_prompt:
        return read(PROMPT)
    with console.lock:  # the prompt and the flag change together: background output sees both or neither
        console.out.write(PROMPT)
        console.out.flush()
        live.prompting = True
    try:
        return read("")
    finally:
        with console.lock:
            live.prompting = False


def _loop(console, read: Callable[[str], str], live: LiveOutput, help_text: str) -> int:
    while True:
        try:
            line = _read_line(console, read, live)
        except (EOFError, KeyboardInterrupt):
            console.say()
            return 0
        if line.strip().lower() in ("quit", "exit"):
            return 0
        with console.step_lock:
            try:
                if line.strip() == "?":
                    console.say(help_text.rstrip())
                else:
                    console.execute(line)
            except KeyboardInterrupt:
                console.say("(interrupted)")
