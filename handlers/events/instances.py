"""Instance names and tags for ECS events: cached in the process, fetched from ECS by up to 100 ids per
DescribeInstances, and remembered in the store so released instances (which ECS no longer knows)
keep their name and tags in notifications and history. What is remembered is the `InstanceInfo` ECS
returned, written with `bot.records` (records of the former `InstanceFacts` shape, with nulls for
unknown fields, read back the same)."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from bot import records
from bot.ecs_model import InstanceInfo

log = logging.getLogger(__name__)

PAGE = 100


def remembered_key(instance_id: str) -> str:
    return f"events:instance:{instance_id}"


@dataclass
class Lookup:
    facts: dict[str, InstanceInfo | None] = field(default_factory=dict)
    fresh: list[InstanceInfo] = field(default_factory=list)  # fetched from ECS just now: remember them
    error: str | None = None  # ECS could not be asked (some facts may then come from memory only)


class InstanceDirectory:
    def __init__(self, services, ttl_seconds: float, negative_ttl_seconds: float = 60.0):
        self.services = services
        self.ttl = ttl_seconds
        self.negative_ttl = negative_ttl_seconds
        self._cache: dict[str, tuple[float, InstanceInfo | None]] = {}
        self._lock = threading.Lock()
        self.ecs_calls = 0

    def forget(self, instance_id: str) -> None:
        with self._lock:
            self._cache.pop(instance_id, None)

    def lookup(self, wanted: dict[str, str | None], get_many) -> Lookup:
        """`wanted`: instance id → region (None = default). `get_many(keys)` reads remembered facts."""
        out = Lookup()
        now = time.monotonic()
        misses: dict[str, str | None] = {}
        with self._lock:
            for iid, region in wanted.items():
                hit = self._cache.get(iid)
                if hit is not None and hit[0] > now:
                    out.facts[iid] = hit[1]
                else:
                    misses[iid] = region
        if not misses:
            return out
        found, asked = self._ask_ecs(misses, out)
        unknown = [iid for iid in misses if iid not in found]
        remembered = self._remembered(unknown, get_many)
        with self._lock:
            for iid, facts in found.items():
                self._cache[iid] = (now + self.ttl, facts)
                out.facts[iid] = facts
                out.fresh.append(facts)
            for iid in unknown:
                facts = remembered.get(iid)
                out.facts[iid] = facts
                if iid in asked:  # ECS said it does not exist (released): do not ask again for a while
                    self._cache[iid] = (now + self.negative_ttl, facts)
        return out

    def _ask_ecs(self, misses: dict[str, str | None], out: Lookup) -> tuple[dict[str, InstanceInfo], set]:
        found: dict[str, InstanceInfo] = {}
        asked: set[str] = set()
        by_region: dict[str | None, list[str]] = {}
        for iid, region in misses.items():
            by_region.setdefault(region, []).append(iid)
        try:
            ecs = self.services.adapter("ecs")
        except Exception as exc:  # noqa: BLE001 - no ECS adapter: events still flow, without tags
            out.error = f"ECS unavailable: {exc}"
            return found, asked
        for region, ids in by_region.items():
            for start in range(0, len(ids), PAGE):
                chunk = ids[start : start + PAGE]
                try:
                    self.ecs_calls += 1
                    infos = ecs.describe_instances(region=region, instance_ids=chunk)
                except Exception as exc:  # noqa: BLE001 - any ECS failure: report, fall back to memory
                    out.error = str(exc)
                    log.warning("instance lookup failed", extra={"error": str(exc), "count": len(chunk)})
                    return found, asked
                asked.update(chunk)
                for info in infos:
                    found[info.instance_id] = info
        return found, asked

    @staticmethod
    def _remembered(ids: list[str], get_many) -> dict[str, InstanceInfo]:
        if not ids:
            return {}
        out = {}
        for iid, raw in zip(ids, get_many([remembered_key(i) for i in ids]), strict=True):
            info = records.load_or_none(InstanceInfo, raw)
            if info is not None:
                out[iid] = info
        return out
