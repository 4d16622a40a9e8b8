"""Classic Load Balancer (SLB 2014-05-15) emulator: the vserver-group actions the bot uses, on the same
ACS wire format and ACS3 signature as the ECS emulator (`sandbox.acs.AcsEmulator`).

Actions: DescribeVServerGroupAttribute, RemoveVServerGroupBackendServers (unknown backends are ignored,
as documented), AddVServerGroupBackendServers (seeding and tests). `BackendServers` is a JSON array of
at most 20 `{ServerId, Port, Weight, Type}`. Error code for an unknown group: `InvalidParameter` with
"The specified VServerGroupId does not exist." (the exact real code is an assumption).

Seeded for the sandbox with one group (`rsp-sandbox-web`, port 80) holding the ECS emulator's
preemptible (spot) instances tagged env=prod.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from sandbox import credentials
from sandbox.acs import AcsEmulator, AcsError, require
from sandbox.emulator import EmulatorSpec, register_emulator

SANDBOX_GROUP = "rsp-sandbox-web"
MAX_BACKENDS_PER_CALL = 20


@dataclass
class VServerGroup:
    group_id: str
    name: str
    load_balancer_id: str
    region: str
    backends: list[dict[str, Any]] = field(default_factory=list)

    def as_map(self) -> dict[str, Any]:
        return {
            "VServerGroupId": self.group_id,
            "VServerGroupName": self.name,
            "LoadBalancerId": self.load_balancer_id,
            "BackendServers": {"BackendServer": [dict(b) for b in self.backends]},
        }


class SlbEmulator(AcsEmulator):
    name = "slb"
    version = "2014-05-15"
    product = "Slb"

    def __init__(self, port: int = 0, secrets: dict[str, str] | None = None):
        super().__init__(
            secrets or {credentials.ALIBABA_ACCESS_KEY_ID: credentials.ALIBABA_ACCESS_KEY_SECRET}, port=port
        )
        self.groups: dict[str, VServerGroup] = {}
        self._lock = threading.Lock()

    # Python-side API (seeding, tests) -----------------------------------------------------------------
    def add_group(
        self,
        group_id: str,
        name: str = "",
        load_balancer_id: str = "lb-sandbox",
        region: str = credentials.REGION_ID,
        backends: list[dict[str, Any]] | None = None,
    ) -> VServerGroup:
        with self._lock:
            group = VServerGroup(group_id, name or group_id, load_balancer_id, region)
            self.groups[group_id] = group
            for b in backends or []:
                self._add(group, b)
            return group

    def server_ids(self, group_id: str) -> list[str]:
        with self._lock:
            return [b["ServerId"] for b in self.groups[group_id].backends]

    # API --------------------------------------------------------------------------------------------
    def api_DescribeVServerGroupAttribute(self, query: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            return self._group(query).as_map()

    def api_RemoveVServerGroupBackendServers(self, query: dict[str, str]) -> dict[str, Any]:
        servers = _backends(query)
        with self._lock:
            group = self._group(query)
            for s in servers:
                port = _port(s)
                group.backends = [
                    b
                    for b in group.backends
                    if not (b["ServerId"] == s["ServerId"] and b["Port"] == port and _type(s) == b["Type"])
                ]
            return {
                "VServerGroupId": group.group_id,
                "BackendServers": {"BackendServer": list(group.backends)},
            }

    def api_AddVServerGroupBackendServers(self, query: dict[str, str]) -> dict[str, Any]:
        servers = _backends(query)
        with self._lock:
            group = self._group(query)
            for s in servers:
                self._add(group, s)
            return {
                "VServerGroupId": group.group_id,
                "BackendServers": {"BackendServer": list(group.backends)},
            }

    # helpers ----------------------------------------------------------------------------------------
    def _group(self, query: dict[str, str]) -> VServerGroup:
        region = require(query, "RegionId")
        group = self.groups.get(require(query, "VServerGroupId"))
        if group is None or group.region != region:
            raise AcsError(400, "InvalidParameter", "The specified VServerGroupId does not exist.")
        return group

    @staticmethod
    def _add(group: VServerGroup, s: dict[str, Any]) -> None:
        entry = {
            "ServerId": str(s["ServerId"]),
            "Port": _port(s),
            "Weight": int(s.get("Weight", 100)),
            "Type": _type(s),
            "Description": str(s.get("Description", "")),
        }
        group.backends = [
            b for b in group.backends if (b["ServerId"], b["Port"]) != (entry["ServerId"], entry["Port"])
        ]
        group.backends.append(entry)


def _backends(query: dict[str, str]) -> list[dict[str, Any]]:
    raw = require(query, "BackendServers")
    try:
        servers = json.loads(raw)
    except ValueError:
        raise AcsError(400, "InvalidParameter", "BackendServers is not a JSON array.") from None
    if not isinstance(servers, list) or not servers or len(servers) > MAX_BACKENDS_PER_CALL:
        raise AcsError(400, "InvalidParameter", "BackendServers must list 1 to 20 servers.")
    for s in servers:
        if not isinstance(s, dict) or not s.get("ServerId"):
            raise AcsError(400, "InvalidParameter", "Every backend server needs a ServerId.")
        _port(s)
    return servers


def _port(s: dict[str, Any]) -> int:
    try:
        port = int(s.get("Port"))
    except (TypeError, ValueError):
        raise AcsError(400, "InvalidParameter", "Every backend server needs a Port (1-65535).") from None
    if not 1 <= port <= 65535:
        raise AcsError(400, "InvalidParameter", "Every backend server needs a Port (1-65535).")
    return port


def _type(s: dict[str, Any]) -> str:
    return str(s.get("Type") or "ecs")


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    tags = instance.get("Tags") or {}
    if isinstance(tags, dict) and "Tag" in tags:
        tags = tags["Tag"]
    if isinstance(tags, list):
        return {str(t.get("TagKey", t.get("Key"))): str(t.get("TagValue", t.get("Value"))) for t in tags}
    return {str(k): str(v) for k, v in dict(tags).items()}


def sandbox_backends(stack: Any) -> list[dict[str, Any]]:
    """The ECS emulator's spot instances tagged env=prod, as port-80 backends."""
    ecs = getattr(stack, "emulators", {}).get("ecs") if stack is not None else None
    instances = list(getattr(ecs, "instances", {}).values()) if ecs is not None else []
    out = []
    for inst in instances:
        spot = str(inst.get("SpotStrategy") or "NoSpot")
        if spot != "NoSpot" and _tags(inst).get("env") == "prod":
            out.append({"ServerId": inst["InstanceId"], "Port": 80, "Weight": 100, "Type": "ecs"})
    return out


def _factory(stack: Any) -> SlbEmulator:
    emu = SlbEmulator()
    emu.add_group(SANDBOX_GROUP, "prod-web", "lb-sandbox-web", backends=sandbox_backends(stack))
    return emu


register_emulator(
    EmulatorSpec(
        name="slb",
        factory=_factory,
        settings=lambda emu: {"SLB_ENDPOINT": emu.base_url},
        order=40,
    )
)
