"""The interactive console (`chatops sandbox` without --script) shows what the bot does in the background
as it happens: after a stop is confirmed, nobody types anything, and the final report still appears.
Once in a pseudo-terminal (prompt_toolkit's prompt) and once with piped stdin (plain input)."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import threading
import time

ENV = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
ENV.pop("REDIS_URL", None)


class Output:
    """Everything the process printed so far, read by a thread; `wait_for` waits with a deadline."""

    def __init__(self, read):
        self.data = b""
        self._read = read
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        while True:
            try:
                chunk = self._read()
            except OSError:
                return
            if not chunk:
                return
            self.data += chunk

    def wait_for(self, text: str, timeout: float, after: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            at = self.data.find(text.encode(), after)
            if at >= 0:
                return at
            time.sleep(0.05)
        raise AssertionError(
            f"{text!r} did not appear within {timeout} s:\n{self.data[-3000:].decode(errors='replace')}"
        )


def _stop_and_confirm(out: Output, type_line) -> None:
    out.wait_for("chatops>", 60)
    type_line("/ecs stop tag:env=dev")
    preview = out.wait_for("Confirm: stop 12", 30)
    type_line("click 1")
    clicked = out.wait_for("clicked [1]", 30, after=preview)
    # Nothing else is typed: the final report must show up on its own.
    out.wait_for("Stopped 12 of 12", 60, after=clicked)


def _finish(proc: subprocess.Popen) -> None:
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_the_final_report_appears_by_itself_in_a_terminal(tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--data-dir", str(tmp_path)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**ENV, "TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1"},
        start_new_session=True,
    )
    os.close(slave)

    def read() -> bytes:
        select.select([master], [], [], 1.0)
        return os.read(master, 65536) or b""

    out = Output(read)
    try:
        _stop_and_confirm(out, lambda line: os.write(master, line.encode() + b"\r"))
        os.write(master, b"\x04")  # Ctrl-D leaves
        _finish(proc)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_the_final_report_appears_by_itself_with_piped_stdin(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "bot.cli", "sandbox", "--data-dir", str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=ENV,
    )
    assert proc.stdin is not None and proc.stdout is not None
    out = Output(lambda: os.read(proc.stdout.fileno(), 65536))

    def type_line(line: str) -> None:
        proc.stdin.write(line.encode() + b"\n")
        proc.stdin.flush()

    try:
        _stop_and_confirm(out, type_line)
        proc.stdin.close()  # end of input leaves
        _finish(proc)
        assert proc.returncode == 0
        text = out.data.decode()
        # background output starts on a line of its own, never after the prompt
        assert "chatops> [#" not in text.split("clicked [1]", 1)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
