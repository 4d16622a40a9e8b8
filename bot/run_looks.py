"""When a Cloud Assistant run looks at its invocations. Pure (the caller sleeps and reads the clock).

- The backoff: looks start `first` apart and grow by `factor` up to `cap` (about 1 s), so that every
  instance's result is seen within about a second of ECS reporting it, at about one call per second per
  batch.
- The learnt finish: the same command (type, content, region) run before finished `expected` seconds
  after it was sent. One look is placed just then, and the looks after it start short again, so a
  3 s command is seen done at about 3 s instead of at the next backoff look (3.6 s): a run step
  followed by another one does not wait for nothing. It never replaces a backoff look, it adds one.
- Learning: a run was last seen running at one look and seen done at the next, so the command took
  between the two. The runs of one command keep the narrowest such bracket they agree on (a run
  outside it starts a new one: the command got faster or slower) and the next run places its look
  halfway in it: seen done there, the bracket's top comes down; seen running, its bottom goes up and
  the short looks after it find the finish. A few runs in, the placed look lands within a tenth of a
  second of the command's time. Brackets are combined in any order to the same result: many runs of
  one command ending at once all learn the same thing.
- Runs side by side: runs of one command in flight at once learn from each other while they wait (the
  poll loop gives the schedule the latest estimate before each pause, `expect`). The first one seen
  done places the looks of the others, and a look that sees one still running inside the bracket
  raises its bottom for all, so a command never run before is seen done by most of its runs within a
  few tenths of a second instead of at their next backoff look.
"""

from __future__ import annotations

import hashlib
import threading

LONGEST = 3600.0  # seconds; an expected finish is never learnt beyond this


def command_key(region: str, api_type: str, command: str) -> str:
    """What makes two runs 'the same command' for their finish times."""
    return hashlib.sha256(f"{region}\n{api_type}\n{command}".encode()).hexdigest()[:32]


class LookSchedule:
    """The looks of one run's poll loop. `expected`: when the same command finished last time (seconds
    after it was sent), or None. `elapsed` arguments are seconds since the command was sent."""

    def __init__(self, first: float, factor: float, cap: float, expected: float | None = None):
        self.first, self.factor, self.cap = first, factor, cap
        self.expected = expected
        self.delay = first
        self.placed = False  # the look at `expected` is behind us (or there is none)
        self.running_at = 0.0  # the latest look that saw the run not done (0: sent, not looked yet)
        self.due: float | None = None  # when the next look is, once `pause` planned it

    def saw_running(self, elapsed: float) -> None:
        self.running_at = elapsed

    def expect(self, expected: float | None) -> None:
        """What the runs of the same command say now (runs in flight side by side learn from each other
        while they wait). A new estimate ahead of this run's last look places one more look; one before
        the planned look brings that look forward to it, and the looks after it start short again."""
        if expected is None or expected == self.expected or expected <= self.running_at:
            return
        self.expected, self.placed = expected, False
        if self.due is not None and expected < self.due:
            self.placed, self.due, self.delay = True, expected, self.first / 2

    def pause(self, elapsed: float) -> float:
        """How long to sleep before the next look (it is then `due`)."""
        if self.expected is not None and not self.placed and elapsed + self.delay >= self.expected:
            self.placed = True
            pause, self.delay = max(0.0, self.expected - elapsed), self.first / 2
        else:
            pause, self.delay = self.delay, min(self.delay * self.factor, self.cap)
        self.due = elapsed + pause
        return pause


class FinishTimes:
    """How long commands took, by `command_key`, for the next run's placed look. Thread-safe; kept per
    process (a worker learns from its own runs)."""

    def __init__(self, longest: float = LONGEST):
        self.longest = longest
        self._brackets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def expected(self, key: str) -> float | None:
        with self._lock:
            bracket = self._brackets.get(key)
        return None if bracket is None else min(self.longest, (bracket[0] + bracket[1]) / 2)

    def saw_running(self, key: str, elapsed: float) -> None:
        """A run of this command was seen still running `elapsed` seconds after it was sent: inside the
        known bracket, its bottom goes up (outside it, the run says nothing the bracket can hold)."""
        with self._lock:
            known = self._brackets.get(key)
            if known is not None and known[0] < elapsed < known[1]:
                self._brackets[key] = (elapsed, known[1])

    def learn(self, key: str, running_at: float, done_at: float) -> None:
        """A run of this command was seen running `running_at` seconds after it was sent, and done at
        the next look, `done_at` seconds after."""
        low, high = max(0.0, min(running_at, done_at)), max(0.0, done_at)
        with self._lock:
            known = self._brackets.get(key)
            if known is not None and max(low, known[0]) <= min(high, known[1]):
                low, high = max(low, known[0]), min(high, known[1])
            self._brackets[key] = (low, high)
