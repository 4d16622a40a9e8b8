"""Looks at invocations asked for at about the same moment, answered together.

Many runs poll at once (50 runbooks each with a run step, the batches of one large run), and ECS limits
each API per second. Each caller asks for one InvokeId; the callers that ask while a look of their
region is in flight wait for it to end and are then answered together by the next one: one id alone is
read by itself (DescribeInvocations by InvokeId); several are read with one listing of the region's
newest invocations, and an id the listing does not hold (older than its newest page) by itself. So the
calls per second stay near one per region, whatever the number of runs, and no caller waits longer than
one call in flight plus its own.

There is no thread of its own: the first caller of a region reads for everyone waiting with it, then
hands the next group to one of its callers (so nobody serves others' looks for longer than one call).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

State = TypeVar("State")


class _Look:
    __slots__ = ("invoke_id", "ready", "lead", "state", "error")

    def __init__(self, invoke_id: Any):
        self.invoke_id = invoke_id
        self.ready = threading.Event()
        self.lead = False
        self.state = None
        self.error: BaseException | None = None


def _by_key(key: Any, listing: dict) -> Any:
    return listing.get(key)


class GroupedLooks(Generic[State]):
    """`one(region, key)` reads one invocation (None: not found); `newest(region)` lists the region's
    newest; `pick(key, listing)` is the key's state in that listing, or None when the listing does not
    hold all of it (then it is read by itself). By default keys are InvokeIds and the listing is a
    dict by InvokeId."""

    def __init__(
        self,
        one: Callable[[str, Any], State | None],
        newest: Callable[[str], Any],
        pick: Callable[[Any, Any], State | None] = _by_key,
    ):
        self.one, self.newest, self.pick = one, newest, pick
        self._lock = threading.Lock()
        self._queued: dict[str, list[_Look]] = {}
        self._busy: set[str] = set()

    def waiting(self, region: str) -> int:
        """How many looks of the region wait for the one in flight."""
        with self._lock:
            return len(self._queued.get(region, ()))

    def idle(self) -> bool:
        with self._lock:
            return not self._busy and not any(self._queued.values())

    def look(self, region: str, invoke_id: Any) -> State | None:
        mine = _Look(invoke_id)
        with self._lock:
            self._queued.setdefault(region, []).append(mine)
            if region not in self._busy:
                self._busy.add(region)
                mine.lead = True
        if not mine.lead:
            mine.ready.wait()  # answered, or handed the next group to read
        if mine.lead:
            self._serve(region)
        if mine.error is not None:
            raise mine.error
        return mine.state

    def _serve(self, region: str) -> None:
        with self._lock:
            group = self._queued.pop(region, [])
        try:
            answers = self._read(region, [look.invoke_id for look in group])
            for look in group:
                look.state = answers.get(look.invoke_id)
        except BaseException as exc:  # noqa: BLE001 - every waiter hears of it, and nobody hangs
            for look in group:
                look.error = exc
        finally:
            with self._lock:
                after = self._queued.get(region)
                handed = after[0] if after else None
                if handed is not None:
                    handed.lead = True
                else:
                    self._busy.discard(region)
            for look in group:
                look.lead = False
                look.ready.set()
            if handed is not None:
                handed.ready.set()

    def _read(self, region: str, keys: Iterable[Any]) -> dict[Any, State | None]:
        wanted = list(dict.fromkeys(keys))
        if len(wanted) == 1:
            return {wanted[0]: self.one(region, wanted[0])}
        listing = self.newest(region)
        out: dict[Any, State | None] = {}
        for key in wanted:
            found = self.pick(key, listing)
            out[key] = found if found is not None else self.one(region, key)
        return out
