"""Starting things on loopback: the emulators, and the whole bot (web + worker) against them.

with EmulatorStack() as stack:              # every registered emulator
    env = stack.settings_env()              # SLACK_API_URL=..., ECS_ENDPOINT=..., ...
with BotStack(data_dir) as bot:             # emulators + web + worker in this process
    bot.web_url, bot.services, bot.emulator("slack")
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sandbox import credentials
from sandbox.emulator import Emulator, registered_emulators


class EmulatorStack:
    def __init__(self, names: list[str] | None = None):
        self.names = names
        self.emulators: dict[str, Emulator] = {}
        self.bot_url: str | None = None  # set once the web app listens (emulators that call the bot use it)
        self._specs = {}

    def start(self) -> EmulatorStack:
        for spec in registered_emulators():
            if self.names is not None and spec.name not in self.names:
                continue
            emu = spec.factory(self)
            emu.start()
            self.emulators[spec.name] = emu
            self._specs[spec.name] = spec
        return self

    def get(self, name: str) -> Emulator:
        return self.emulators[name]

    def settings_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for name, emu in self.emulators.items():
            env.update(self._specs[name].settings(emu))
        return env

    def urls(self) -> dict[str, str]:
        return {name: emu.base_url for name, emu in self.emulators.items()}

    def stop(self) -> None:
        for emu in reversed(list(self.emulators.values())):
            stop_hook = getattr(emu, "before_stop", None)
            if callable(stop_hook):
                stop_hook()
            emu.stop()

    def __enter__(self) -> EmulatorStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


SANDBOX_POLICY = Path(__file__).parent / "data" / "policy.yaml"


def sandbox_env(stack: EmulatorStack, data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The bot's environment for a sandbox run: emulator endpoints, sandbox credentials, policy file."""
    env = {
        "CHATOPS_DATA_DIR": str(data_dir),
        "CHATOPS_ADMINS": ",".join(credentials.ADMINS),
        "CHATOPS_CONFIG": str(SANDBOX_POLICY),
        "ALIBABA_CLOUD_REGION_ID": credentials.REGION_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": credentials.ALIBABA_ACCESS_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": credentials.ALIBABA_ACCESS_KEY_SECRET,
    }
    env.update(stack.settings_env())
    env.update(extra or {})
    return env


class BotStack:
    """Emulators + the web app + a worker, all in this process, on loopback."""

    def __init__(
        self,
        data_dir: str | Path | None = None,
        env: dict[str, str] | None = None,
        emulators: list[str] | None = None,
        worker: bool = True,
        worker_threads: int = 4,
        registry: Any = None,
        clock: Any = None,
    ):
        self._tmp = None
        self.clock = clock  # None: the system clock
        self.registry = registry  # None: every capability of the bot
        if data_dir is None:
            self._tmp = tempfile.mkdtemp(prefix="chatops-sandbox-")
            data_dir = self._tmp
        self.data_dir = Path(data_dir)
        self.extra_env = env or {}
        self.stack = EmulatorStack(emulators)
        self.with_worker = worker
        self.worker_threads = worker_threads
        self.services: Any = None
        self.worker: Any = None
        self._server = None

    def start(self) -> BotStack:
        from bot.config import load_settings
        from bot.services import Services
        from bot.web import create_app, serve

        self.stack.start()
        self.env = sandbox_env(self.stack, self.data_dir, self.extra_env)
        self.settings = load_settings(self.env)
        if self.clock is None:
            self.services = Services(self.settings, registry=self.registry)
        else:
            self.services = Services(self.settings, registry=self.registry, clock=self.clock)
        self.app = create_app(self.services)
        self._server = serve(self.app, "127.0.0.1", 0)
        self.web_url = f"http://127.0.0.1:{self._server.server_port}"
        self.stack.bot_url = self.web_url
        if self.with_worker:
            from bot.worker import Worker

            self.worker = Worker(self.services, workers=self.worker_threads)
            self.worker.start()
        return self

    def emulator(self, name: str) -> Any:
        return self.stack.get(name)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=10)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self.stack.stop()
        if self.services is not None:
            self.services.close()
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> BotStack:
        try:
            return self.start()
        except BaseException:  # e.g. Ctrl-C or SIGTERM during start-up: stop what did start
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


# A private redis-server (tests and benchmarks) ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """`redis-server` from PATH on a free loopback port (no persistence unless `persistent`); `url` once
    started."""

    def __init__(self, persistent: bool = False):
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="chatops-redis-")
        self.proc: subprocess.Popen | None = None
        self.persistent = persistent  # AOF with fsync on every write: a SIGKILL loses nothing written

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not on PATH (install Debian's redis-server or set REDIS_URL)")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes" if self.persistent else "no",
                "--appendfsync",
                "always",
                "--dir",
                self.dir,
                "--logfile",
                os.path.join(self.dir, "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self) -> None:
        """SIGKILL, keeping its files (start() again brings it back with what it had written)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def redis_url_or_private() -> tuple[str, RedisServer | None]:
    """REDIS_URL when set, else a private redis-server started now (the caller stops it)."""
    url = os.environ.get("REDIS_URL")
    if url:
        return url, None
    server = RedisServer().start()
    return server.url, server
