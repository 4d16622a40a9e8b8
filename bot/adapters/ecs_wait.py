"""Waiting for ECS instances to reach a state, at a cost that does not grow with the time ECS takes.

- When to look: the first look comes when this kind of wait (region, target state) settled last time,
  learnt from the waits before it; then the usual backoff (`poll_initial` × `poll_factor`ⁿ, at most
  `poll_max`). A kind not seen before is looked at every `poll_initial` / 2 for its first COLD_SECONDS
  when a look costs one call (a probe, or up to 100 ids), then with the backoff: the first wait of a
  kind is seen done within a short look of ECS settling, and what it learns for the next ones is as
  close (a few calls more, once per kind and process). A start that takes ECS 30 s costs one or two
  reads instead of a dozen, and nothing is read while nothing can have changed. Each settled wait
  updates the estimate: settled at the first look, the next first look comes a little earlier (ECS
  may have got faster); settled later, the next first look comes when this one settled.
- How to look: small sets are re-read by id; large tag-scoped sets are watched through status-filtered
  probes (is any of ours still Stopping?), so a look costs O(1) calls instead of O(N/100).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from bot.adapters.ecs_support import Tags, tag_pairs
from bot.ecs_model import IN_FLIGHT, STATUSES, normalize_status

TAG_FILTER_CAP = 1000  # DescribeInstances shows at most this many tag matches
EARLIER = 0.95  # settled at the first look: the next first look comes this much earlier
LONGEST_FIRST_LOOK = 120.0  # seconds; never wait longer than this before the first look
COLD_SECONDS = 3.0  # a kind of wait not seen before looks often for this long


class SettleTimes:
    """How long waits of each kind took to settle (seconds after the wait began), for the next one's
    first look. Thread-safe; kept per adapter, so per process."""

    def __init__(self, floor: float):
        self.floor = floor
        self._expected: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def first_look(self, key: tuple[str, str]) -> float:
        with self._lock:
            return self._expected.get(key, self.floor)

    def known(self, key: tuple[str, str]) -> bool:
        with self._lock:
            return key in self._expected

    def learn(self, key: tuple[str, str], looks: int, first_look: float, settled_at: float) -> None:
        """A wait of this kind settled at its `looks`-th look, begun `settled_at` seconds after the wait."""
        expected = first_look * EARLIER if looks == 1 else settled_at
        with self._lock:
            self._expected[key] = min(LONGEST_FIRST_LOOK, max(self.floor, expected))


class _Inconclusive(Exception):
    """A probe hit the tag-filter cap: its answer may be incomplete."""


class WaitingMixin:
    """`EcsAdapter.wait_for_state` and its probes (uses the adapter's `_describe_ids`, `_pages`,
    `_request`, `poll_*`, `positive_check_max`, `wait_timeout`, `region`)."""

    settle_times: SettleTimes

    def wait_for_state(
        self,
        instance_ids: Iterable[str],
        target_status: str,
        region: str | None = None,
        tags: Tags | None = None,
        timeout: float | None = None,
        on_progress: Callable[[int | None, int], None] | None = None,
    ) -> dict[str, str | None]:
        """Look until none of the instances is on its way to `target_status` (or the timeout); returns
        id → last known status (None: not found any more).

        Up to `positive_check_max` instances (or without `tags`) every look re-reads them by id. Larger
        sets scoped by `tags` (the selector's tag filters, which all of them match) are watched with
        status-filtered probes: "is any of ours still in flight?" costs one call per look; once settled,
        one probe per other status finds those that ended elsewhere, the rest are in the target state.
        `on_progress(reached or None when unknown, total)` runs after each look."""
        target = normalize_status(target_status)
        region = region or self.region
        ids = list(dict.fromkeys(instance_ids))
        statuses: dict[str, str | None] = dict.fromkeys(ids)
        if not ids:
            return statuses
        pairs = tag_pairs(tags)
        probing = bool(pairs) and len(ids) > self.positive_check_max
        in_flight = IN_FLIGHT[target]
        began = time.monotonic()
        deadline = began + (timeout if timeout is not None else self.wait_timeout)
        kind = (region, target)
        first_look = self.settle_times.first_look(kind)
        cold = not self.settle_times.known(kind)

        def often(elapsed: float) -> bool:  # cold, and a look one call (probing may have stopped)
            return cold and elapsed < COLD_SECONDS and (probing or len(ids) <= 100)

        pause, delay, looks = (self.poll_initial / 2 if often(0.0) else first_look), self.poll_initial, 0
        while True:
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))
            looked_at = time.monotonic() - began
            looks += 1
            settled = False
            if probing:
                try:
                    settled, seen = self._probe_round(region, pairs, target, set(ids))
                    statuses.update(seen)
                    reached = len(ids) if settled else None
                except _Inconclusive:
                    probing = False
            if not probing:
                current = {i.instance_id: i.status for i in self._describe_ids(region, ids)}
                statuses = {i: current.get(i) for i in ids}
                settled = not any(s in in_flight for s in statuses.values())
                reached = sum(1 for s in statuses.values() if s == target)
            if on_progress is not None:
                on_progress(reached, len(ids))
            if settled:
                self.settle_times.learn(kind, looks, first_look, looked_at)
                return statuses
            if time.monotonic() >= deadline:
                return statuses
            if often(looked_at):
                pause = self.poll_initial / 2
                continue
            pause = delay
            delay = min(delay * self.poll_factor, self.poll_max)

    def _probe(self, region, pairs, status: str, ours: set[str], first_only: bool) -> set[str]:
        found: set[str] = set()
        rows = 0
        for page in self._pages(self._request(region, pairs, status)):
            rows += len(page)
            found.update(i.instance_id for i in page if i.instance_id in ours)
            if found and first_only:
                return found
        if rows >= TAG_FILTER_CAP:
            raise _Inconclusive(status)
        return found

    def _probe_round(self, region, pairs, target, ours: set[str]) -> tuple[bool, dict[str, str]]:
        for status in IN_FLIGHT[target]:
            found = self._probe(region, pairs, status, ours, first_only=True)
            if found:
                return False, dict.fromkeys(found, status)
        # Where else could they be? Not Pending: an instance never returns to it once it ran.
        others = [s for s in STATUSES if s not in (target, "Pending") and s not in IN_FLIGHT[target]]
        with ThreadPoolExecutor(max_workers=len(others), thread_name_prefix="ecs-probe") as pool:
            found_by_status = list(pool.map(lambda s: self._probe(region, pairs, s, ours, False), others))
        seen = dict.fromkeys(ours, target)
        for status, found in zip(others, found_by_status, strict=True):
            seen.update(dict.fromkeys(found, status))
        return True, seen
