"""Intents: what this bot itself asked an instance to do, so event consumers can tell an expected
state change (a user's stop, a schedule's stop) from an unexpected one.

Power actions record an intent *before* calling ECS; the MNS consumer reads it when a state change
arrives (e.g. never auto-restart an instance this bot was asked to stop).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot import records
from bot.store import Set, Store

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
    at: float,
    ttl: float = DEFAULT_TTL,
) -> None:
    """`at`: when the change was asked for (the caller's clock)."""
    payload = records.dump(Intent(action, source, actor, at))
    store.commit([Set(_key(i), payload, ttl) for i in instance_ids])  # one round trip for a whole batch


def intent_for(store: Store, instance_id: str) -> Intent | None:
    return records.load_or_none(Intent, store.get(_key(instance_id)))


def intents_for(store: Store, instance_ids: list[str]) -> dict[str, Intent]:
    """The intents of many instances in one read (those without one are left out)."""
    found = store.get_many([_key(i) for i in instance_ids])
    out = {}
    for iid, raw in zip(instance_ids, found, strict=True):
        intent = records.load_or_none(Intent, raw)
        if intent is not None:
            out[iid] = intent
    return out


_LEADS_TO = {
    "stop": ("Stopping", "Stopped"),
    "start": ("Starting", "Running"),
    "reboot": ("Stopping", "Starting", "Running"),
}


def caused_by(intent: Intent | None, state: str | None, at: float) -> str | None:
    """Who asked for a state change the bot requested (`<@U…>`, `schedule office-hours`, `auto-restart`),
    when `intent` explains `state` reached at `at`; None otherwise."""
    if intent is None or state not in _LEADS_TO.get(intent.action, ()) or at < intent.at - 60:
        return None
    if intent.source == "command" and intent.actor:
        return f"{intent.action} by <@{intent.actor}>"
    return f"{intent.action} by {intent.source}" + (f" {intent.actor}" if intent.actor else "")
