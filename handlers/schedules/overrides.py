"""Overrides of office-hours schedules: keep instances running (or stopped) until a time, then the
schedule takes them back. Every override expires by itself.

    schedules:overrides    hash: override id → the override (removed when it ends or is cancelled)
"""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from bot import records
from bot.records import Record
from bot.store import Store

KEY = "schedules:overrides"
Mode = Literal["keep-running", "keep-stopped"]
MODES: tuple[Mode, ...] = ("keep-running", "keep-stopped")


class Override(Record):
    id: str
    mode: Mode
    instance_ids: tuple[str, ...]
    names: dict[str, str] = Field(default_factory=dict)  # instance id → name, for messages
    schedules: dict[str, str] = Field(default_factory=dict)  # instance id → its schedule
    selector: str = ""  # what the person typed, or "schedule office-hours" for a button
    until: float
    by: str  # the Slack user who asked
    created_at: float

    def holds_back(self, state: str) -> bool:
        """Whether this override keeps its instances from a transition to `state`."""
        return (self.mode == "keep-running" and state == "stopped") or (
            self.mode == "keep-stopped" and state == "running"
        )

    def label(self) -> str:
        return self.mode.replace("-", " ")


def new_id() -> str:
    return "ov-" + uuid.uuid4().hex[:8]


def save(store: Store, override: Override) -> None:
    store.hset(KEY, override.id, records.dump(override))


def load_all(store: Store) -> list[Override]:
    found = (records.load_or_none(Override, raw) for raw in store.hgetall(KEY).values())
    return sorted((o for o in found if o is not None), key=lambda o: o.until)


def get(store: Store, override_id: str) -> Override | None:
    raw = store.hget(KEY, override_id) if override_id else None
    return records.load_or_none(Override, raw) if raw else None


def remove(store: Store, override_id: str) -> None:
    store.hdel(KEY, override_id)


def held_back(overrides: list[Override], state: str, now: float) -> dict[str, Override]:
    """Instance id → the active override that keeps it from `state`."""
    out: dict[str, Override] = {}
    for o in overrides:
        if o.until > now and o.holds_back(state):
            for iid in o.instance_ids:
                out.setdefault(iid, o)
    return out
