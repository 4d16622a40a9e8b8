"""Who is in a Slack user group, for roles that list their members by group (`groups: [S0DEVS]`).

`GroupMembership.contains(group, user)` answers from a per-group cache of member ids:

- a member set fresher than `ttl_seconds` answers at once;
- a user missing from the cached set (a miss) makes it fetch the group again, but at most once per
  `miss_refresh_seconds` per group: a member added in Slack is recognised within seconds, and a stream
  of requests from non-members cannot hammer the Slack API;
- an expired set is fetched again on the next question about the group;
- a fetch that fails (an UpstreamError from the Slack adapter, or a network error) is logged as a
  warning and answers from the last member set fetched, as long as that set is younger than
  `max_stale_seconds` (10 × `ttl_seconds` unless given); with no such set the answer is False (fail
  closed). Attempts after a failure are throttled like misses.

Concurrent questions about one group wait for one fetch instead of each making their own (the web app
is threaded); questions about other groups are not held up. Pure except for the injected `fetch` and
`clock`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from bot.clock import Clock
from bot.errors import ChatOpsError, UpstreamError

log = logging.getLogger(__name__)

STALE_FACTOR = 10  # a cached set answers for up to this many TTLs while Slack cannot be reached


@dataclass
class _Entry:
    members: frozenset[str] | None = None  # the last set fetched (None: never fetched successfully)
    fetched_at: float = float("-inf")  # when `members` was fetched (the clock's monotonic time)
    attempted_at: float = float("-inf")  # when the last fetch was tried, whether it worked or not


class GroupMembership:
    def __init__(
        self,
        fetch: Callable[[str], frozenset[str]],
        clock: Clock,
        ttl_seconds: float = 60,
        miss_refresh_seconds: float = 10,
        max_stale_seconds: float | None = None,
    ):
        self._fetch = fetch
        self._clock = clock
        self.ttl_seconds = ttl_seconds
        self.miss_refresh_seconds = miss_refresh_seconds
        self.max_stale_seconds = (
            STALE_FACTOR * ttl_seconds if max_stale_seconds is None else max_stale_seconds
        )
        self._entries: dict[str, _Entry] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def contains(self, group_id: str, user_id: str) -> bool:
        """Whether `user_id` is in the Slack user group `group_id` (False when that cannot be known)."""
        with self._lock_for(group_id):
            entry = self._entries.setdefault(group_id, _Entry())
            now = self._clock.monotonic()
            if entry.members is not None and now - entry.fetched_at < self.ttl_seconds:
                if user_id in entry.members:
                    return True
            if now - entry.attempted_at >= self.miss_refresh_seconds:  # not asked Slack a moment ago
                self._refresh(group_id, entry, now)
            members = self._usable(entry, now)
            return members is not None and user_id in members

    def _usable(self, entry: _Entry, now: float) -> frozenset[str] | None:
        """The cached set while it may still answer (younger than `max_stale_seconds`), else None."""
        if entry.members is not None and now - entry.fetched_at < self.max_stale_seconds:
            return entry.members
        return None

    def _refresh(self, group_id: str, entry: _Entry, now: float) -> None:
        entry.attempted_at = now
        try:
            members = frozenset(self._fetch(group_id))
        except (ChatOpsError, OSError) as exc:
            age = now - entry.fetched_at
            log.warning(
                "the members of a Slack user group could not be fetched",
                extra={
                    "group": group_id,
                    "error": _describe(exc),
                    "cached_members_used": self._usable(entry, now) is not None,
                    "cached_age_seconds": round(age, 1) if entry.members is not None else None,
                },
            )
            return
        entry.members = members
        entry.fetched_at = now

    def _lock_for(self, group_id: str) -> threading.Lock:
        with self._locks_lock:
            lock = self._locks.get(group_id)
            if lock is None:
                lock = self._locks[group_id] = threading.Lock()
            return lock


def _describe(exc: BaseException) -> str:
    """What went wrong, without what the exception may carry (a request, a header): the provider's
    error code, or the exception's type."""
    if isinstance(exc, UpstreamError):
        return f"{exc.provider}: {exc.code or exc.message}"
    if isinstance(exc, ChatOpsError):
        return f"{type(exc).__name__}: {exc}"
    return type(exc).__name__
