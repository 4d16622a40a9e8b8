"""Cloud Assistant for the ECS emulator: RunCommand, DescribeInvocations, DescribeInvocationResults,
StopInvocation and DescribeCloudAssistantStatus, as `alibabacloud_ecs20140526` sends and parses them
(shared/reference/protocols.md §4.2).

`CloudAssistantMixin` goes before `AcsEmulator` in `EcsEmulator`'s bases and uses the emulator's
`instances` and `statuses()`. Knobs and state (public):

- `agents`: instance id → "running" (the default for an id not in it) | "stopped" | "not-installed".
- `command_behaviour(instance, text, type) -> (duration_seconds, exit_code, output)`, or None for
  `cloud_assistant_shell.run_script` (sleep / exit / echo / hostname / uptime …).
- `invocations`: invoke id → record (InvokeId, CommandId, RegionId, CommandType, command (the decoded
  text), Name, Timeout, WorkingDir, Username, ClientToken, created_at (time.time()), instances: id →
  entry). An entry holds InstanceId, status, error_code, error_info, exit_code, output, duration,
  phases (its timeline, see `cloud_assistant_wire`) and `finished_at`: the time.time() at which it
  reached its terminal status (None until then; the ECS emulator's timer thread sets it as it happens).
  The latency knob and `calls` apply as to every other action.

An instance goes Pending → Running (after 0.1 s) → after `duration` Success (exit 0) or Failed
(ErrorCode ExitCodeNonzero); a run longer than `Timeout` seconds ends Timeout (ExecutionTimeout) at
Timeout. At RunCommand an instance whose OS does not take the script type is Invalid
(CommandNotApplicable), one not Running is Aborted (InstanceNotRunning), one whose agent is stopped or
not installed is Aborted (ClientNotRunning). StopInvocation: Running → Stopping (0.2 s) → Terminated;
Pending → Cancelled; the others stay. Output above 24 KB is cut, `Dropped` counts the bytes cut. A
repeated ClientToken answers the first call's InvokeId and CommandId and starts nothing.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any

from sandbox.acs import AcsError, parse_bool, parse_int, require
from sandbox.cloud_assistant_shell import run_script
from sandbox.cloud_assistant_wire import (
    ACTIVE,
    INVOKE_STATUS,
    OVERALL,
    RECORD_FILTER,
    RECORD_STATUS,
    TYPES,
    Behaviour,
    agent_item,
    command_text,
    instance_ids,
    invocation_item,
    new_entry,
    overall,
    page,
    phase_at,
    result_item,
    status_filter,
    stop_entry,
    wants_base64,
)

_ID_PREFIX = {"cn-hangzhou": "hz0", "cn-shanghai": "sh0", "cn-beijing": "bj0"}


class CloudAssistantMixin:
    # provided by EcsEmulator: its instances, its lock and the condition its timer thread waits on
    # (the thread calls `_settle_invocations`)
    instances: dict[str, dict[str, Any]]
    statuses: Callable[..., dict[str, str]]
    _lock: Any
    _wake: threading.Condition

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.agents: dict[str, str] = {}
        self.command_behaviour: Behaviour | None = None
        self.invocations: dict[str, dict] = {}
        self._tokens: dict[str, str] = {}
        self._active: set[str] = set()
        self._serial = 0

    def agent_state(self, instance_id: str) -> str:
        return self.agents.get(instance_id, "running")

    # timeline -------------------------------------------------------------------------------------
    def _settle_invocations(self, now: float) -> float | None:
        """Bring every live entry's status (and finished_at) up to `now`; returns when the next change
        is due. Called with the emulator's lock held."""
        due: float | None = None
        for invoke_id in list(self._active):
            record = self.invocations[invoke_id]
            live = False
            for entry in record["instances"].values():
                entry["status"], since = phase_at(entry, now)
                if entry["status"] not in ACTIVE:
                    if entry["finished_at"] is None:
                        entry["finished_at"] = record["created_at"] + (since - record["created_mono"])
                    continue
                live = True
                upcoming = min((at for at, _ in entry["phases"] if at > now), default=None)
                if upcoming is not None:
                    due = upcoming if due is None else min(due, upcoming)
            if not live:
                self._active.discard(invoke_id)
        return due

    def _new_id(self, kind: str, region: str) -> str:
        self._serial += 1
        digest = hashlib.sha256(f"{id(self)}:{self._serial}:{time.time_ns()}".encode()).hexdigest()
        return f"{kind}-{_ID_PREFIX.get(region, 'xx0')}{digest[:14]}"

    def _ids_of(self, invoke_id: str) -> dict:
        return {"InvokeId": invoke_id, "CommandId": self.invocations[invoke_id]["CommandId"]}

    # RunCommand / StopInvocation -----------------------------------------------------------------
    def api_RunCommand(self, q: dict[str, str]) -> dict:
        region = require(q, "RegionId")
        command_type = require(q, "Type")
        if command_type not in TYPES:
            raise AcsError(400, "InvalidParameter.Type", f"Type {command_type!r} is not supported.")
        text = command_text(q)
        ids = instance_ids(q, 100, required=True)
        timeout = parse_int(q, "Timeout", 60, 1, 86400)
        if (q.get("RepeatMode") or "Once") != "Once":
            raise AcsError(400, "InvalidParameter.RepeatMode", "Only RepeatMode Once is emulated.")
        token = q.get("ClientToken") or ""
        if len(token) > 64 or not token.isascii():
            raise AcsError(400, "InvalidParameter.ClientToken", "ClientToken is at most 64 ASCII characters.")
        if len(q.get("Name") or "") > 128:
            raise AcsError(400, "InvalidParameter.Name", "Name is at most 128 characters.")
        with self._wake:
            if token in self._tokens:
                return self._ids_of(self._tokens[token])
        statuses = self.statuses(ids)
        with self._lock:
            found = {i: dict(self.instances[i]) for i in ids if i in statuses}
        missing = [i for i in ids if i not in found or found[i]["RegionId"] != region]
        if missing:
            raise AcsError(
                404, "InvalidInstance.NotFound", f"The specified instance {missing[0]} does not exist."
            )
        t0, wall = time.monotonic(), time.time()
        run = (self.command_behaviour or run_script, text, command_type, timeout)
        entries = {
            i: new_entry(found[i], statuses[i] == "Running", self.agent_state(i), run, t0) for i in ids
        }
        with self._wake:
            if token in self._tokens:  # the same token, sent twice at once
                return self._ids_of(self._tokens[token])
            invoke_id = self._new_id("t", region)
            self.invocations[invoke_id] = {
                "InvokeId": invoke_id,
                "CommandId": self._new_id("c", region),
                "RegionId": region,
                "CommandType": command_type,
                "command": text,
                "Name": q.get("Name") or "",
                "Timeout": timeout,
                "WorkingDir": q.get("WorkingDir") or "",
                "Username": q.get("Username") or "",
                "ClientToken": token,
                "created_at": wall,
                "created_mono": t0,
                "instances": entries,
            }
            if token:
                self._tokens[token] = invoke_id
            self._active.add(invoke_id)
            self._settle_invocations(t0)
            self._wake.notify_all()
            return self._ids_of(invoke_id)

    def api_StopInvocation(self, q: dict[str, str]) -> dict:
        region = require(q, "RegionId")
        invoke_id = require(q, "InvokeId")
        ids = set(instance_ids(q, 50, required=False))
        with self._wake:
            record = self.invocations.get(invoke_id)
            if record is None or record["RegionId"] != region:
                raise AcsError(
                    404, "InvalidInvokeId.NotFound", f"The specified InvokeId {invoke_id} does not exist."
                )
            now = time.monotonic()
            self._settle_invocations(now)
            for iid, entry in record["instances"].items():
                if (not ids or iid in ids) and stop_entry(entry, now):
                    self._active.add(invoke_id)
            self._settle_invocations(now)
            self._wake.notify_all()
        return {}

    # reads ----------------------------------------------------------------------------------------
    def _matching(self, q: dict[str, str]) -> list[dict]:
        """The region's invocations that pass the InvokeId / CommandId / InstanceId filters, newest
        first. Called with the emulator's lock held."""
        region = require(q, "RegionId")
        self._settle_invocations(time.monotonic())
        out = []
        for record in reversed(list(self.invocations.values())):
            if record["RegionId"] != region:
                continue
            if any(q.get(k) and q[k] != record[k] for k in ("InvokeId", "CommandId")):
                continue
            if q.get("InstanceId") and q["InstanceId"] not in record["instances"]:
                continue
            out.append(record)
        return out

    def api_DescribeInvocations(self, q: dict[str, str]) -> dict:
        include = parse_bool(q.get("IncludeOutput"))
        as_base64 = wants_base64(q)
        wanted = status_filter(q, "InvokeStatus", OVERALL)
        with self._wake:
            rows = []
            for record in self._matching(q):
                if q.get("CommandType") and q["CommandType"] != record["CommandType"]:
                    continue
                if q.get("CommandName") and q["CommandName"] != record["Name"]:
                    continue
                status = overall([e["status"] for e in record["instances"].values()])
                if wanted and wanted not in (status, INVOKE_STATUS.get(status, status)):
                    continue
                rows.append((record, status))
            shown, meta = page(q, rows)
            now = time.monotonic()
            out = [invocation_item(record, status, include, as_base64, now) for record, status in shown]
        return {**meta, "Invocations": {"Invocation": out}}

    def api_DescribeInvocationResults(self, q: dict[str, str]) -> dict:
        as_base64 = wants_base64(q)
        wanted = status_filter(q, "InvokeRecordStatus", RECORD_FILTER)
        with self._wake:
            rows = [
                (record, entry)
                for record in self._matching(q)
                for entry in record["instances"].values()
                if not q.get("InstanceId") or entry["InstanceId"] == q["InstanceId"]
                if not wanted or RECORD_STATUS.get(entry["status"], "Failed") == wanted
            ]
            shown, meta = page(q, rows)
            now = time.monotonic()
            results = [result_item(record, entry, as_base64, now) for record, entry in shown]
        return {"Invocation": {**meta, "InvocationResults": {"InvocationResult": results}}}

    def api_DescribeCloudAssistantStatus(self, q: dict[str, str]) -> dict:
        region = require(q, "RegionId")
        ids = instance_ids(q, 50, required=False)
        os_type = (q.get("OSType") or "").lower()
        statuses = self.statuses(ids or None)
        with self._lock:
            items = [dict(i) for i in self.instances.values() if i["RegionId"] == region]
        if ids:
            order = {iid: n for n, iid in enumerate(ids)}
            items = sorted(
                (i for i in items if i["InstanceId"] in order), key=lambda i: order[i["InstanceId"]]
            )
        if os_type:
            items = [i for i in items if i.get("OSType", "linux") == os_type]
        shown, meta = page(q, items, 50 if ids else 10)
        with self._wake:
            self._settle_invocations(time.monotonic())
            delivered: dict[str, list[tuple[dict, dict]]] = {}
            for record in self.invocations.values():
                for iid, entry in record["instances"].items():
                    if entry["phases"][0][1] == "Pending":  # it reached the agent
                        delivered.setdefault(iid, []).append((record, entry))
            rows = []
            for inst in shown:
                iid = inst["InstanceId"]
                agent = self.agent_state(iid)
                online = agent == "running" and statuses.get(iid) == "Running"
                rows.append(agent_item(inst, agent, online, delivered.get(iid, [])))
        return {**meta, "InstanceCloudAssistantStatusSet": {"InstanceCloudAssistantStatus": rows}}
