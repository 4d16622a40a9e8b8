"""`chatops worker`: the Huey consumer (jobs and periodic jobs) plus long-running loops such as the
MNS consumer. Loops are declared on a capability (bot.registry):

    @capability.background("mns-events")
    def consume(services, stop: threading.Event) -> None:
        while not stop.is_set(): ...

A loop is only started when `enabled(services)` says so (e.g. MNS settings present).
"""

from __future__ import annotations

import logging
import signal
import threading

from bot.registry import LoopSpec

log = logging.getLogger(__name__)


class Worker:
    """Runs the consumer and the loops; `start()` returns at once, `stop()` drains gracefully."""

    def __init__(self, services, workers: int = 4):
        self.services = services
        self.consumer = services.queue.consumer(services, workers=workers)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        self.consumer.start()
        for loop in self.services.registry.loops.values():
            if not loop.enabled(self.services):
                log.info("background loop disabled", extra={"loop": loop.name})
                continue
            t = threading.Thread(target=self._run_loop, args=(loop,), name=f"loop-{loop.name}", daemon=True)
            t.start()
            self.threads.append(t)

    def _run_loop(self, loop: LoopSpec) -> None:
        delay = 1.0
        while not self.stop_event.is_set():
            try:
                loop.fn(self.services, self.stop_event)
                return
            except Exception:  # noqa: BLE001 - a crashed loop is logged and restarted with backoff
                log.exception("background loop crashed; restarting", extra={"loop": loop.name})
                self.stop_event.wait(delay)
                delay = min(delay * 2, 30.0)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout)
        self.consumer.shutdown_timeout = timeout
        self.consumer.stop(graceful=True)

    def run_forever(self) -> None:
        """Block until SIGTERM / SIGINT, then stop gracefully."""
        done = threading.Event()

        def on_signal(signum, frame):
            log.info("worker stopping", extra={"signal": signum})
            done.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        self.start()
        log.info("worker started", extra={"loops": [t.name for t in self.threads]})
        done.wait()
        self.stop()
