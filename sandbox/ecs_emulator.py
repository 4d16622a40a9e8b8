"""ECS OpenAPI (2014-05-26) emulator, speaking what `alibabacloud_ecs20140526` sends and expects.

Operations: DescribeInstances (InstanceIds / Status / InstanceName (`*` wildcard) / Tag.N filters;
MaxResults + NextToken and legacy PageNumber + PageSize), DescribeInstanceStatus, ListTagResources,
Start/Stop/RebootInstances (AllTogether / SuccessFirst, DryRun, StoppedMode, ForceStop / ForceReboot) and
StartInstance / StopInstance / RebootInstance. Power actions move instances through timed states
(Running → Stopping → Stopped, Stopped → Starting → Running, reboot: Stopping → Starting → Running).
Cloud Assistant (`sandbox/cloud_assistant.py`): RunCommand, DescribeInvocations,
DescribeInvocationResults, StopInvocation and DescribeCloudAssistantStatus, with per-instance runs
(Pending → Running → Success / Failed / Timeout, Aborted, Invalid, Stopping → Terminated, Cancelled).

Behaviour the real API documents and the emulator keeps:
- DescribeInstances returns 10 instances unless MaxResults / PageSize say otherwise (at most 100).
- A tag filter exposes at most 1,000 matching instances (use ListTagResources beyond); `TotalCount`
  still counts every match.
- ListTagResources answers 50 tag entries per page.
- DryRun answers `DRYRUN.SUCCESS` when the checks pass; under SuccessFirst it always does.

Knobs: see `AcsEmulator` (latency, per-API throttling, random 5xx, injected faults) plus
`transition_seconds` and `no_stock` (instances that refuse to start with OperationDenied.NoStock);
Cloud Assistant's `agents`, `command_behaviour` and `invocations` (see `CloudAssistantMixin`).

For other emulators: `add_state_listener(cb)` calls `cb(instance, old_status, new_status)` on every status
change (a copy of the instance dict; a released instance reports new_status "Deleted"); `instances`
maps id → dict (InstanceId, InstanceName, Status, RegionId, ZoneId, Tags as a plain {key: value} dict,
SpotStrategy, …); `seed_fleet`, `add_instance`, `release`, `set_status`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox import credentials
from sandbox.acs import (
    AcsEmulator,
    AcsError,
    decode_token,
    encode_token,
    flat_list,
    flat_objects,
    parse_bool,
    parse_int,
    require,
)
from sandbox.cloud_assistant import CloudAssistantMixin
from sandbox.ecs_fleet import seed_agent_states, seed_batch_fleet, seed_office_fleet
from sandbox.emulator import EmulatorSpec, register_emulator

log = logging.getLogger(__name__)

STATUSES = ("Pending", "Running", "Starting", "Stopping", "Stopped")
TAG_FILTER_CAP = 1000
TAG_PAGE_SIZE = 50
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_REGION_PREFIX = {"cn-hangzhou": "bp1", "cn-shanghai": "uf6", "cn-beijing": "2ze"}

NOT_FOUND = (404, "InvalidInstanceId.NotFound", "The specified InstanceId does not exist.")
BAD_STATUS = (
    403,
    "IncorrectInstanceStatus",
    "The current status of the resource does not support this operation.",
)
NO_STOCK = (
    403,
    "OperationDenied.NoStock",
    "The requested resource is sold out in the specified zone; try other types of resources or other regions and zones.",
)
DRYRUN_OK = (400, "DRYRUN.SUCCESS", "This request is a dryrun request with successful result.")

StateListener = Callable[[dict, str, str], None]


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime())


class EcsEmulator(CloudAssistantMixin, AcsEmulator):
    name = "ecs"
    version = "2014-05-26"
    product = "Ecs"

    def __init__(self, port: int = 0, secrets: dict[str, str] | None = None, seed: int = 7):
        super().__init__(
            secrets or {credentials.ALIBABA_ACCESS_KEY_ID: credentials.ALIBABA_ACCESS_KEY_SECRET}, port, seed
        )
        self.instances: dict[str, dict[str, Any]] = {}
        self.transition_seconds = 2.0
        self.no_stock: set[str] = set()
        self._lock = threading.RLock()
        self._listeners: list[StateListener] = []
        self._timers: list[tuple[float, int, str, str, int]] = []  # (due, seq, id, status, generation)
        self._generation: dict[str, int] = {}
        self._seq = itertools.count()
        self._wake = threading.Condition(self._lock)
        self._ticker: threading.Thread | None = None
        self._stopping = False

    # lifecycle ------------------------------------------------------------------------------------
    def start(self) -> EcsEmulator:
        super().start()
        self._stopping = False
        self._ticker = threading.Thread(target=self._tick_loop, name="ecs-emulator-transitions", daemon=True)
        self._ticker.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify_all()
        if self._ticker is not None:
            self._ticker.join(2)
        super().stop()

    # fleet ----------------------------------------------------------------------------------------
    def add_state_listener(self, callback: StateListener) -> None:
        self._listeners.append(callback)

    def new_instance_id(self, region: str) -> str:
        prefix = _REGION_PREFIX.get(region, "xx0")
        while True:
            iid = "i-" + prefix + "".join(self.rng.choice(_ALPHABET) for _ in range(17))
            if iid not in self.instances:
                return iid

    def add_instance(
        self,
        name: str,
        region: str = credentials.REGION_ID,
        status: str = "Running",
        tags: dict[str, str] | None = None,
        instance_type: str = "ecs.g7.large",
        os_type: str = "linux",
        spot_strategy: str = "NoSpot",
        zone: str | None = None,
        private_ip: str | None = None,
        instance_id: str | None = None,
    ) -> str:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self._lock:
            iid = instance_id or self.new_instance_id(region)
            n = len(self.instances)
            self.instances[iid] = {
                "InstanceId": iid,
                "InstanceName": name,
                "HostName": name,
                "Status": status,
                "RegionId": region,
                "ZoneId": zone or f"{region}-{'hijk'[n % 4]}",
                "InstanceType": instance_type,
                "OSType": os_type,
                "OSName": "Windows Server 2022 Datacenter 64bit"
                if os_type == "windows"
                else "Alibaba Cloud Linux 3.2104 LTS 64 bit",
                "SpotStrategy": spot_strategy,
                "InstanceChargeType": "PostPaid",
                "StoppedMode": "KeepCharging" if status == "Stopped" else "Not-applicable",
                "CreationTime": "2026-01-15T08:00Z",
                "StartTime": "2026-01-15T08:01Z",
                "Tags": dict(tags or {}),
                "PrivateIpAddress": private_ip or f"10.{(n // 62500) % 250}.{(n // 250) % 250}.{n % 250 + 4}",
                "PublicIpAddress": "",
                "VpcId": "vpc-" + region.replace("-", "") + "sandbox",
                "VSwitchId": "vsw-" + region.replace("-", "") + "sandbox",
                "Cpu": 2,
                "Memory": 8192,
            }
            self._generation[iid] = 0
        return iid

    def seed_fleet(
        self,
        count: int = 42,
        region: str = credentials.REGION_ID,
        envs: tuple[str, ...] = ("dev", "staging", "prod"),
        extra_tags: dict[str, str] | None = None,
        status: str | None = None,
        name_prefix: str = "",
    ) -> list[str]:
        """A deterministic fleet: envs round-robin, roles, every 7th Windows (none in dev), every 11th spot, and (unless
        `status` is given) every 8th Stopped."""
        roles = ("web", "api", "worker", "db", "cache", "batch")
        types = ("ecs.g7.large", "ecs.c7.xlarge", "ecs.r7.2xlarge", "ecs.g7.xlarge")
        ids = []
        start = len(self.instances)
        for n in range(count):
            env = envs[n % len(envs)]
            role = roles[(n // len(envs)) % len(roles)]
            windows = n % 7 == 3 and env != "dev"  # dev is all Linux: one command type fits it
            tags = {"env": env, "app": role, "team": "payments" if role in ("api", "db") else "platform"}
            tags.update(extra_tags or {})
            ids.append(
                self.add_instance(
                    name=f"{name_prefix}{env}-{role}-{start + n + 1:02d}",
                    region=region,
                    status=status or ("Stopped" if n % 8 == 7 else "Running"),
                    tags=tags,
                    instance_type=types[n % len(types)],
                    os_type="windows" if windows else "linux",
                    spot_strategy="SpotAsPriceGo" if n % 11 == 5 else "NoSpot",
                )
            )
        return ids

    def release(self, instance_id: str) -> None:
        events = []
        with self._lock:
            inst = self.instances.pop(instance_id, None)
            self._generation.pop(instance_id, None)
            if inst is not None:
                events.append((dict(inst), inst["Status"], "Deleted"))
        self._fire(events)

    def set_status(self, instance_id: str, status: str) -> None:
        """Force a status (tests): cancels pending transitions and notifies listeners."""
        events: list = []
        with self._lock:
            self._generation[instance_id] = self._generation.get(instance_id, 0) + 1
            self._set(instance_id, status, events)
        self._fire(events)

    def status_of(self, instance_id: str) -> str | None:
        self._advance()
        with self._lock:
            inst = self.instances.get(instance_id)
            return inst["Status"] if inst else None

    def statuses(self, ids: list[str] | None = None) -> dict[str, str]:
        self._advance()
        with self._lock:
            return {
                i: self.instances[i]["Status"] for i in (ids or list(self.instances)) if i in self.instances
            }

    # state machine -------------------------------------------------------------------------------
    def _set(self, iid: str, status: str, events: list) -> None:
        inst = self.instances.get(iid)
        if inst is None or inst["Status"] == status:
            return
        old = inst["Status"]
        inst["Status"] = status
        if status == "Running":
            inst["StartTime"] = _now_iso()
            inst["StoppedMode"] = "Not-applicable"
        events.append((dict(inst), old, status))

    def _begin(self, iid: str, steps: list[tuple[str, float]], events: list) -> None:
        """Set the first status now, schedule the rest (each after its delay from the previous)."""
        gen = self._generation.get(iid, 0) + 1
        self._generation[iid] = gen
        first, _ = steps[0]
        self._set(iid, first, events)
        due = time.monotonic()
        for status, delay in steps[1:]:
            due += delay
            heapq.heappush(self._timers, (due, next(self._seq), iid, status, gen))
        self._wake.notify_all()

    def _apply_due(self, now: float) -> list:
        events: list = []
        while self._timers and self._timers[0][0] <= now:
            _, _, iid, status, gen = heapq.heappop(self._timers)
            if self._generation.get(iid) == gen:
                self._set(iid, status, events)
        return events

    def _advance(self) -> None:
        with self._lock:
            events = self._apply_due(time.monotonic())
        self._fire(events)

    def _tick_loop(self) -> None:
        while True:
            with self._wake:
                if self._stopping:
                    return
                now = time.monotonic()
                events = self._apply_due(now)
                due = min(
                    self._timers[0][0] if self._timers else now + 1.0,
                    self._settle_invocations(now) or now + 1.0,
                )
                if not events:
                    self._wake.wait(max(0.005, min(due - now, 1.0)))
                    continue
            self._fire(events)

    def _fire(self, events: list) -> None:
        for inst, old, new in events:
            for listener in list(self._listeners):
                try:
                    listener(inst, old, new)
                except Exception:  # noqa: BLE001 - a listener bug must not break the emulated cloud
                    log.exception("ECS state listener failed", extra={"instance": inst.get("InstanceId")})

    # rendering ------------------------------------------------------------------------------------
    @staticmethod
    def _wire(inst: dict[str, Any]) -> dict[str, Any]:
        out = {
            k: v
            for k, v in inst.items()
            if k not in ("Tags", "PrivateIpAddress", "PublicIpAddress", "VpcId", "VSwitchId")
        }
        out["Tags"] = {"Tag": [{"TagKey": k, "TagValue": v} for k, v in inst["Tags"].items()]}
        out["VpcAttributes"] = {
            "VpcId": inst["VpcId"],
            "VSwitchId": inst["VSwitchId"],
            "PrivateIpAddress": {"IpAddress": [inst["PrivateIpAddress"]]},
            "NatIpAddress": "",
        }
        out["PublicIpAddress"] = {"IpAddress": [inst["PublicIpAddress"]] if inst["PublicIpAddress"] else []}
        out["InnerIpAddress"] = {"IpAddress": []}
        out["EipAddress"] = {"IpAddress": "", "AllocationId": "", "InternetChargeType": ""}
        out["OperationLocks"] = {"LockReason": []}
        out["ExpiredTime"] = "2099-12-31T15:59Z"
        return out

    # queries --------------------------------------------------------------------------------------
    def _in_region(self, region: str) -> list[dict[str, Any]]:
        return [i for i in self.instances.values() if i["RegionId"] == region]

    @staticmethod
    def _tag_match(inst: dict[str, Any], tags: list[dict[str, str]]) -> bool:
        for tag in tags:
            key = tag.get("Key")
            if not key or key not in inst["Tags"]:
                return False
            if "Value" in tag and inst["Tags"][key] != tag["Value"]:
                return False
        return True

    def api_DescribeRegions(self, q: dict[str, str]) -> dict:
        with self._lock:
            regions = sorted({i["RegionId"] for i in self.instances.values()} | set(_REGION_PREFIX))
        return {
            "Regions": {"Region": [{"RegionId": r, "LocalName": r, "Status": "available"} for r in regions]}
        }

    def api_DescribeInstances(self, q: dict[str, str]) -> dict:
        region = require(q, "RegionId")
        self._advance()
        tags = flat_objects(q, "Tag")
        with self._lock:
            items = self._in_region(region)
            if q.get("InstanceIds"):
                ids = _json_list(q["InstanceIds"], "InstanceIds")
                if len(ids) > 100:
                    raise AcsError(
                        400, "InvalidParameter.InstanceIds", "InstanceIds accepts at most 100 ids."
                    )
                wanted = set(ids)
                items = [i for i in items if i["InstanceId"] in wanted]
            if q.get("Status"):
                if q["Status"] not in STATUSES:
                    raise AcsError(
                        400, "InvalidStatus.ValueNotSupported", f"Status {q['Status']!r} is not supported."
                    )
                items = [i for i in items if i["Status"] == q["Status"]]
            if q.get("InstanceName"):
                pattern = re.compile(
                    "^" + ".*".join(re.escape(p) for p in q["InstanceName"].split("*")) + "$", re.DOTALL
                )
                items = [i for i in items if pattern.match(i["InstanceName"])]
            if q.get("ZoneId"):
                items = [i for i in items if i["ZoneId"] == q["ZoneId"]]
            if q.get("InstanceType"):
                items = [i for i in items if i["InstanceType"] == q["InstanceType"]]
            if tags:
                items = [i for i in items if self._tag_match(i, tags)]
            total = len(items)
            if tags:
                items = items[:TAG_FILTER_CAP]
            if "MaxResults" in q or "NextToken" in q:
                size = min(parse_int(q, "MaxResults", 10, 1), 100)
                offset = decode_token(q.get("NextToken"))
                page = items[offset : offset + size]
                more = offset + size < len(items)
                return {
                    "TotalCount": total,
                    "NextToken": encode_token(offset + size) if more else "",
                    "Instances": {"Instance": [self._wire(i) for i in page]},
                }
            number = parse_int(q, "PageNumber", 1, 1)
            size = parse_int(q, "PageSize", 10, 1, 100)
            page = items[(number - 1) * size : number * size]
            return {
                "TotalCount": total,
                "PageNumber": number,
                "PageSize": size,
                "NextToken": "",
                "Instances": {"Instance": [self._wire(i) for i in page]},
            }

    def api_DescribeInstanceStatus(self, q: dict[str, str]) -> dict:
        region = require(q, "RegionId")
        self._advance()
        ids = flat_list(q, "InstanceId")
        if len(ids) > 100:
            raise AcsError(400, "InvalidParameter.InstanceId", "InstanceId accepts at most 100 ids.")
        number = parse_int(q, "PageNumber", 1, 1)
        size = parse_int(q, "PageSize", 10, 1, 50)
        with self._lock:
            items = self._in_region(region)
            if ids:
                wanted = set(ids)
                items = [i for i in items if i["InstanceId"] in wanted]
            if q.get("ZoneId"):
                items = [i for i in items if i["ZoneId"] == q["ZoneId"]]
            page = items[(number - 1) * size : number * size]
            return {
                "TotalCount": len(items),
                "PageNumber": number,
                "PageSize": size,
                "InstanceStatuses": {
                    "InstanceStatus": [{"InstanceId": i["InstanceId"], "Status": i["Status"]} for i in page]
                },
            }

    def api_ListTagResources(self, q: dict[str, str]) -> dict:
        region = require(q, "RegionId")
        resource_type = require(q, "ResourceType")
        ids = flat_list(q, "ResourceId")
        tags = flat_objects(q, "Tag")
        if len(ids) > 50:
            raise AcsError(
                400,
                "NumberExceed.ResourceIds",
                "The maximum number of ResourceIds is exceeded. The maximum is 50.",
            )
        if not ids and not tags:
            raise AcsError(
                400, "MissingParameter.ResourceIdOrTag", "Either ResourceId or Tag must be specified."
            )
        offset = decode_token(q.get("NextToken"))
        entries = []
        with self._lock:
            if resource_type.lower() == "instance":
                items = self._in_region(region)
                if ids:
                    wanted = set(ids)
                    items = [i for i in items if i["InstanceId"] in wanted]
                for inst in items:
                    if tags and not self._tag_match(inst, tags):
                        continue
                    keys = [t["Key"] for t in tags] if tags else list(inst["Tags"])
                    for key in keys:
                        entries.append(
                            {
                                "ResourceId": inst["InstanceId"],
                                "ResourceType": "instance",
                                "TagKey": key,
                                "TagValue": inst["Tags"][key],
                            }
                        )
        page = entries[offset : offset + TAG_PAGE_SIZE]
        more = offset + TAG_PAGE_SIZE < len(entries)
        return {
            "NextToken": encode_token(offset + TAG_PAGE_SIZE) if more else "",
            "TagResources": {"TagResource": page},
        }

    # power actions --------------------------------------------------------------------------------
    def _check(self, action: str, iid: str, region: str | None) -> tuple[int, str, str] | None:
        inst = self.instances.get(iid)
        if inst is None or (region is not None and inst["RegionId"] != region):
            return NOT_FOUND
        needed = "Stopped" if action == "start" else "Running"
        if inst["Status"] != needed:
            return BAD_STATUS
        if action == "start" and iid in self.no_stock:
            return NO_STOCK
        return None

    def _apply(self, action: str, iid: str, stopped_mode: str | None, events: list) -> tuple[str, str]:
        inst = self.instances[iid]
        previous = inst["Status"]
        t = self.transition_seconds
        if action == "start":
            self._begin(iid, [("Starting", 0), ("Running", t)], events)
        elif action == "stop":
            inst["StoppedMode"] = stopped_mode or "KeepCharging"
            self._begin(iid, [("Stopping", 0), ("Stopped", t)], events)
        else:
            self._begin(iid, [("Stopping", 0), ("Starting", t / 2), ("Running", t / 2)], events)
        return previous, inst["Status"]

    def _power_batch(self, q: dict[str, str], action: str) -> dict:
        region = require(q, "RegionId")
        self._advance()
        ids = flat_list(q, "InstanceId")
        if not ids:
            raise AcsError(400, "MissingParameter.InstanceIds", "InstanceId.N is mandatory for this action.")
        if len(ids) > 100:
            raise AcsError(400, "InvalidParameter.InstanceIds", "The number of InstanceId.N exceeds 100.")
        mode = q.get("BatchOptimization") or "AllTogether"
        if mode not in ("AllTogether", "SuccessFirst"):
            raise AcsError(
                400, "InvalidParameter.BatchOptimization", f"BatchOptimization {mode!r} is not supported."
            )
        stopped_mode = _stopped_mode(q) if action == "stop" else None
        dry_run = parse_bool(q.get("DryRun"))
        events: list = []
        with self._lock:
            checks = [(iid, self._check(action, iid, region)) for iid in ids]
            first_error = next((err for _, err in checks if err is not None), None)
            if dry_run:
                raise AcsError(*(first_error if first_error and mode == "AllTogether" else DRYRUN_OK))
            if first_error and mode == "AllTogether":
                raise AcsError(*first_error)
            responses = []
            for iid, err in checks:
                if err is not None:
                    responses.append(
                        {
                            "InstanceId": iid,
                            "Code": err[1],
                            "Message": err[2],
                            "PreviousStatus": "",
                            "CurrentStatus": "",
                        }
                    )
                    continue
                previous, current = self._apply(action, iid, stopped_mode, events)
                responses.append(
                    {
                        "InstanceId": iid,
                        "Code": "200",
                        "Message": "success",
                        "PreviousStatus": previous,
                        "CurrentStatus": current,
                    }
                )
        self._fire(events)
        return {"InstanceResponses": {"InstanceResponse": responses}}

    def _power_one(self, q: dict[str, str], action: str) -> dict:
        iid = require(q, "InstanceId")
        self._advance()
        stopped_mode = _stopped_mode(q) if action == "stop" else None
        events: list = []
        with self._lock:
            err = self._check(action, iid, None)
            if parse_bool(q.get("DryRun")):
                raise AcsError(*(err or DRYRUN_OK))
            if err:
                raise AcsError(*err)
            self._apply(action, iid, stopped_mode, events)
        self._fire(events)
        return {}

    def api_StartInstances(self, q):
        return self._power_batch(q, "start")

    def api_StopInstances(self, q):
        return self._power_batch(q, "stop")

    def api_RebootInstances(self, q):
        return self._power_batch(q, "reboot")

    def api_StartInstance(self, q):
        return self._power_one(q, "start")

    def api_StopInstance(self, q):
        return self._power_one(q, "stop")

    def api_RebootInstance(self, q):
        return self._power_one(q, "reboot")


def _stopped_mode(q: dict[str, str]) -> str | None:
    mode = q.get("StoppedMode") or None
    if mode not in (None, "KeepCharging", "StopCharging"):
        raise AcsError(400, "InvalidParameter.StoppedMode", f"StoppedMode {mode!r} is not supported.")
    return mode


def _json_list(raw: str, name: str) -> list[str]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise AcsError(400, f"InvalidParameter.{name}", f"{name} must be a JSON array.") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AcsError(400, f"InvalidParameter.{name}", f"{name} must be a JSON array of strings.")
    return value


def build_sandbox_ecs(stack) -> EcsEmulator:
    """The sandbox's ECS: 42 instances in the default region (dev / staging / prod, Linux and Windows),
        6 in cn-shanghai, 15 office machines in the default region that opt in to office-hours schedules and 3
    stopped batch machines (role=batch) for the sample runbook;
        three dev machines' Cloud Assistant agents are stopped or missing (`ecs_fleet.AGENT_STATES`);
        emulators already started that want ECS state changes are subscribed."""
    emulator = EcsEmulator()
    emulator.seed_fleet(42)
    emulator.seed_fleet(6, region="cn-shanghai", name_prefix="sh-")
    seed_office_fleet(emulator)  # after the fleet: the instances above keep their ids
    seed_batch_fleet(emulator)
    seed_agent_states(emulator)
    for other in getattr(stack, "emulators", {}).values():
        hook = getattr(other, "on_ecs_state_change", None)
        if callable(hook):
            emulator.add_state_listener(hook)
    return emulator


register_emulator(
    EmulatorSpec(
        name="ecs",
        factory=build_sandbox_ecs,
        settings=lambda emu: {"ECS_ENDPOINT": emu.base_url},
        order=30,
    )
)
