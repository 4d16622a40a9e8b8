"""Intents: what this bot itself asked an instance to do, so event consumers can tell an expected
state change (a user's stop, a schedule's stop) from an unexpected one.

Power actions record an intent *before* calling ECS; the MNS consumer reads it when a state change
arrives (e.g. never auto-restart an instance this bot was asked to stop).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from bot import records
from bot.store import Store

DEFAULT_TTL = 6 * 3600


@dataclass(frozen=True)
class Intent:
    """Persisted with `bot.records` (JSON: action, source, actor, at)."""

    action: str  # "start" | "stop" | "reboot"
    source: str  # "command" | "schedule" | "auto-restart" | ...
    actor: str | None  # Slack user id, schedule name …
    at: float


def _key(instance_id: str) -> str:
    return f"intent:{instance_id}"


def record_intents(
    store: Store,
    instance_ids: Iterable[str],
    action: str,
    source: str,
    actor: str | None,
    ttl: float = DEFAULT_TTL,
) -> None:
    payload = records.dump(Intent(action, source, actor, time.time()))
    for instance_id in instance_ids:
        store.set(_key(instance_id), payload, ttl)


def intent_for(store: Store, instance_id: str) -> Intent | None:
    return records.load_or_none(Intent, store.get(_key(instance_id)))
