"""Preemptible interruption (`action: delete`, ~5 minutes before release): take the instance out of the
SLB vserver groups the policy names, at once, and say what happened."""

from __future__ import annotations

import logging

from bot.ecs_model import InstanceInfo
from bot.errors import ChatOpsError
from bot.policy import VServerGroupRef
from handlers.events.envelope import EcsEvent
from handlers.events.routing import selector_matches

log = logging.getLogger(__name__)


def group_selects(group: VServerGroupRef, instance_id: str, tags: dict[str, str]) -> bool:
    """A group with ids or tags selects those instances; a group with neither: any of its backends."""
    if group.instance_ids and instance_id in group.instance_ids:
        return True
    if group.tags:
        return selector_matches(group.tags, tags)
    return not group.instance_ids


def remove_from_load_balancers(
    services, event: EcsEvent, facts: InstanceInfo | None, default_region: str
) -> tuple[bool, str]:
    """(ok, what happened) — never raises for SLB failures (they are reported)."""
    policy = services.policy.slb
    iid = event.instance_id
    if not iid:
        return False, "the event names no instance"
    tags = facts.tags if facts else {}
    groups = [g for g in policy.vserver_groups if group_selects(g, iid, tags)]
    if not policy.remove_on_interruption:
        return True, "SLB removal is off in the policy"
    if not groups:
        return True, "no SLB vserver group of the policy selects it"
    slb = services.adapter("slb")
    removed: list[str] = []
    absent: list[str] = []
    errors: list[str] = []
    for group in groups:
        region = group.region or event.region or default_region
        try:
            current = slb.describe_vserver_group(group.id, region)
            mine = current.backends_of(iid)
            if not mine:
                absent.append(group.id)
                continue
            slb.remove_backends(group.id, mine, region)
            ports = ", ".join(str(b.port) for b in mine)
            removed.append(f"`{group.id}` (port {ports})")
        except ChatOpsError as exc:
            log.warning("SLB removal failed", extra={"instance": iid, "group": group.id, "error": str(exc)})
            errors.append(f"`{group.id}`: {exc}")
    parts = []
    if removed:
        parts.append("removed from SLB vserver group " + ", ".join(removed))
    if absent and not removed and not errors:
        parts.append("it was not a backend of " + ", ".join(f"`{g}`" for g in absent))
    if errors:
        parts.append("could not remove it from " + "; ".join(errors))
    return not errors, "; ".join(parts)
