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


class OffsetClock(Clock):
    """Another clock's wall time moved by an offset (the sandbox's `clock` console command): `set` and
    `advance` move `time()`; `monotonic()` and `sleep()` are the base clock's, so waits, deadlines and
    timeouts stay real. Safe to move from one thread while others read it."""

    def __init__(self, base: Clock = SYSTEM_CLOCK, offset: float = 0.0):
        self.base = base
        self._offset = float(offset)
        self._lock = threading.Lock()

    @property
    def offset(self) -> float:
        """Seconds this clock is ahead of its base (negative: behind)."""
        with self._lock:
            return self._offset

    def time(self) -> float:
        with self._lock:
            offset = self._offset
        return self.base.time() + offset

    def monotonic(self) -> float:
        return self.base.monotonic()

    def sleep(self, seconds: float) -> None:
        self.base.sleep(seconds)

    def set(self, epoch_seconds: float) -> None:
        """From now on `time()` reads `epoch_seconds` and goes on from there."""
        with self._lock:
            self._offset = float(epoch_seconds) - self.base.time()

    def advance(self, seconds: float) -> None:
        """Move the wall time by `seconds` (negative: back)."""
        with self._lock:
            self._offset += float(seconds)

    def reset(self) -> None:
        """Back to the base clock's time."""
        with self._lock:
            self._offset = 0.0
