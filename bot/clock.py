"""Where time comes from. Every component that reads the time or waits is given a clock; tests give a
`ManualClock` and move it forward instead of sleeping or monkeypatching `time`."""

from __future__ import annotations

import threading
import time


class Clock:
    """The system clock: wall time (seconds since the epoch), a monotonic clock, and sleeping."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM_CLOCK = Clock()


class ManualClock(Clock):
    """A clock that moves only when told to (`advance`); `sleep` advances it at once."""

    def __init__(self, start: float = 1_800_000_000.0):
        self._now = float(start)
        self._lock = threading.Lock()

    def time(self) -> float:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        return self.time()

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += seconds

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
