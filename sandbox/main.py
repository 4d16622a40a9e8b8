"""`chatops sandbox`: emulators + web + worker in one process, then the console (or a script)."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
from pathlib import Path

from bot.clock import OffsetClock
from sandbox.console import Console, help_text, run_script
from sandbox.console_live import interactive
from sandbox.stack import BotStack

BANNER = """\
ChatOps sandbox — the bot, a worker and emulated Slack / Alibaba Cloud / PagerDuty on 127.0.0.1.
No credentials, no network. You are alice (admin) in #ops. Try:  /ecs help   (type 'help' for the console)
"""


def run_sandbox(script: str | None = None, data_dir: str | None = None) -> int:
    from bot.logs import configure_logging

    lines: list[str] = []
    if script is not None:
        try:
            lines = (sys.stdin.read() if script == "-" else Path(script).read_text()).splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"chatops: cannot read the script {script}: {reason}", file=sys.stderr)
            return 2
    log_dir = Path(data_dir or tempfile.mkdtemp(prefix="chatops-sandbox-logs-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(log_dir / "sandbox.log", "a")  # noqa: SIM115 - stays open for the whole run
    configure_logging("INFO", stream=log_file)
    logging.getLogger("huey").setLevel(logging.WARNING)
    if threading.current_thread() is threading.main_thread():
        # SIGTERM leaves like Ctrl-C does: through BotStack.stop(), which removes the temporary files.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
    # The bot's wall clock can be moved from the console (`clock +3h`); the emulators keep real time.
    with BotStack(data_dir=data_dir, clock=OffsetClock()) as bot:
        console = Console(bot, sys.stdout)
        if script is not None:
            failed = run_script(console, lines)
            console.say(f"\n{len(lines)} line(s), {failed} failed step(s)")
            return 1 if failed else 0
        return interactive(console, BANNER + f"(logs: {log_dir / 'sandbox.log'})", help_text())
